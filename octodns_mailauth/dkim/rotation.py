"""DKIM key rotation: selectors move through published, active, retired and
revoked states; the committed state file says where each one is."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_rotation_state(path: str | Path | None, policies_dir: str | Path) -> Any:
    """The committed rotation state for a processor, or None."""
    return None
