"""Shared fixtures.  The loopback PowerDNS server lives in pdns_fixture.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pdns_fixture import (  # noqa: F401  (the loopback PowerDNS: session, module's own)
    pdns,
    pdns_private,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# Tests marked `slow` (they build virtualenvs from the package index) run only when
# this is set, as CI does: `OCTODNS_MAILAUTH_SLOW_TESTS=1 script/test`.
SLOW_ENV = "OCTODNS_MAILAUTH_SLOW_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(SLOW_ENV):
        return
    skip = pytest.mark.skip(reason=f"slow: set {SLOW_ENV}=1 to run it (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of zones/ (without keys or output) as the working directory,
    since the example config's paths are relative to it."""
    shutil.copytree(
        ROOT / "zones",
        tmp_path / "zones",
        ignore=shutil.ignore_patterns(".dkim", "output", "__pycache__"),
    )
    monkeypatch.chdir(tmp_path)
    os.umask(0o022)
    return tmp_path
