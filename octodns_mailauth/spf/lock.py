"""The SPF lock file: third-party DNS answers the policies depend on, kept in
the user's repo so CI and pre-commit are deterministic and offline."""

from __future__ import annotations

from pathlib import Path

from ..resolver import Resolver


def open_lock(path: str | Path | None, policies_dir: str | Path) -> Resolver | None:
    """The offline resolver for a processor: `path`, or the default lock file
    beside the policies.  None when there is no lock (yet)."""
    return None
