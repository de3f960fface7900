"""Shared fixtures.  The loopback PowerDNS server lives in pdns_fixture.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pdns_fixture import pdns  # noqa: F401  (session fixture: the loopback PowerDNS)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# Tests marked `slow` (they build virtualenvs from the package index) run only when
# this is set, as CI does: `OCTODNS_MAILAUTH_SLOW_TESTS=1 script/test`.
SLOW_ENV = "OCTODNS_MAILAUTH_SLOW_TESTS"
# Modules whose tests share a module fixture that is expensive to build (a corpus
# served and analysed, key generation, a hook installed): under pytest-xdist
# (script/test) each runs whole on one worker, so the fixture is built once.
ONE_WORKER = frozenset(
    {
        "test_init_roundtrip.py",
        "test_precommit.py",
        "test_spf_flatten_auto.py",
        "test_spf_realworld.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(SLOW_ENV):
        return
    skip = pytest.mark.skip(reason=f"slow: set {SLOW_ENV}=1 to run it (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` with ONE_WORKER as the groups and every other test on its own.
    The group is taken from the test's file here: xdist's own `xdist_group` marks are
    lost with pytest 9.2's node ids (pytest-xdist issue 1386)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return file if Path(file).name in ONE_WORKER else nodeid

    return Scheduling(config, log)


@contextlib.contextmanager
def octodns_threads_joined() -> Iterator[None]:
    """The worker threads of every octoDNS Manager made inside end before it exits.
    A sync that raises at one zone leaves the other zones' work running in its
    threads (octoDNS cancels none of it): that work would go on in the next test,
    compiling there (a count of compiles sees it), validating its zones with the
    zone validator the next test's processor registered, logging into its
    capture, reading relative paths from its working directory."""
    import octodns.manager

    # Weakly: an executor collected meanwhile has ended its threads (and a test may
    # wait for that, as forking workers needs no other thread: test_bulk_compile.py).
    made: weakref.WeakSet[Any] = weakref.WeakSet()
    real = octodns.manager.ThreadPoolExecutor

    class Joined(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.add(self)

    octodns.manager.ThreadPoolExecutor = Joined  # type: ignore[misc]
    try:
        yield
    finally:
        octodns.manager.ThreadPoolExecutor = real  # type: ignore[misc]
        for executor in list(made):
            executor.shutdown(wait=True)


@pytest.fixture(autouse=True)
def _octodns_threads_end_with_the_test() -> Iterator[None]:
    with octodns_threads_joined():
        yield


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
