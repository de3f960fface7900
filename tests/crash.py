"""Kill a command with SIGKILL at random points, for crash-safety tests.

A command runs in a child Python (`python -c BOOT entry args...`) whose file-system
calls (`os.open` for writing, `os.write`, `os.fsync`, `os.replace`, `os.rename`,
`os.link`, `os.unlink`, `os.mkdir`, and `open()` for writing) are counted.  A kill is
either *at I/O call N* (the child sends itself SIGKILL just before its Nth call, so
every step of a write sequence is hit) or *after a delay* (the parent kills it from
outside at a random time).  Either way it is a real SIGKILL: no handler, no `finally`,
no flush.

Use `torture()`: it measures one clean run, then kills `runs` times at random points
(alternating the two kinds), calls `check()` after each kill (the files must be the
old or the new content), and after each kill reruns the command to completion
(`rerun=True`) so "a rerun completes" is checked too::

    stats = torture("octodns_mailauth.cli:main", ["spf", "refresh", ...],
                    runs=50, reset=put_old_lock, check=lock_is_old_or_new, cwd=tmp_path)
    assert stats.killed >= 50
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Runs in the child: count I/O calls; SIGKILL self at call number $CRASH_KILL_AT;
# write the final count to $CRASH_COUNT_FILE at exit (clean runs only).
BOOT = r"""
import builtins, importlib, os, signal, sys
_at = int(os.environ.get("CRASH_KILL_AT") or 0)
_n = 0
def _tick():
    global _n
    _n += 1
    if _n == _at:
        os.kill(os.getpid(), signal.SIGKILL)
def _wrap(fn, writes=None):
    def inner(*a, **k):
        if writes is None or writes(*a, **k):
            _tick()
        return fn(*a, **k)
    return inner
_open = builtins.open
_W = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
os.open = _wrap(os.open, lambda p, flags, *a, **k: bool(flags & _W))
for _name in ("write", "fsync", "replace", "rename", "link", "unlink", "mkdir", "rmdir"):
    setattr(os, _name, _wrap(getattr(os, _name)))
builtins.open = _wrap(
    builtins.open,
    lambda f, mode="r", *a, **k: isinstance(f, (str, bytes, os.PathLike))
    and any(c in mode for c in "wax+"),
)
def _report():
    path = os.environ.get("CRASH_COUNT_FILE")
    if path:
        with _open(path, "w") as fh:  # not counted: kill runs do not make this call
            fh.write(str(_n))
import atexit
atexit.register(_report)
_module, _, _func = sys.argv[1].partition(":")
sys.argv = [sys.argv[1]] + sys.argv[2:]
_rc = getattr(importlib.import_module(_module), _func)()
sys.exit(_rc)
"""


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


@dataclass
class Stats:
    runs: int = 0
    killed: int = 0  # runs that really died of SIGKILL (not finished before the kill)
    by_io_call: int = 0
    by_delay: int = 0
    io_calls: int = 0  # I/O calls in one clean run
    clean_seconds: float = 0.0
    kill_points: list[str] = field(default_factory=list)


def run(
    entry: str,
    args: Sequence[str],
    *,
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    kill_at_io: int | None = None,
    kill_after: float | None = None,
    count_file: Path | None = None,
    timeout: float = 120,
) -> Outcome:
    """Run `entry` ("module:function") with `args` in a child, maybe killing it."""
    child_env = dict(os.environ if env is None else env)
    child_env.pop("CRASH_KILL_AT", None)
    child_env.pop("CRASH_COUNT_FILE", None)
    if kill_at_io:
        child_env["CRASH_KILL_AT"] = str(kill_at_io)
    if count_file is not None:
        child_env["CRASH_COUNT_FILE"] = str(count_file)
    proc = subprocess.Popen(
        [sys.executable, "-c", BOOT, entry, *args],
        cwd=cwd,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if kill_after is not None:
        try:
            proc.wait(kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=timeout)
    return Outcome(proc.returncode, out, err)


def torture(
    entry: str,
    args: Sequence[str],
    *,
    runs: int,
    reset: Callable[[], None],
    check: Callable[[Outcome], None],
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    rerun: bool = True,
    ok: Callable[[Outcome], None] | None = None,
    seed: int | None = None,
) -> Stats:
    """Kill `entry args` `runs` times at random points; see the module docstring.

    `reset()` puts the files back in their before state; `check(outcome)` asserts
    the files are whole after a kill; `ok(outcome)` (default: exit code 0) judges a
    clean run and each rerun.  Kills that come after the command already finished
    are not counted in `killed`; the caller asserts how many it needs."""
    rng = random.Random(seed if seed is not None else os.environ.get("CRASH_SEED", 1))
    ok = ok or _exit_zero
    stats = Stats()
    count_file = Path(cwd) / ".crash-count"
    reset()
    started = time.monotonic()
    clean = run(entry, args, cwd=cwd, env=env, count_file=count_file)
    stats.clean_seconds = time.monotonic() - started
    ok(clean)
    stats.io_calls = int(count_file.read_text())
    count_file.unlink()
    assert stats.io_calls > 0, "the command made no file-system call: nothing to kill"
    for i in range(runs):
        reset()
        if i % 2 == 0:
            point = rng.randint(1, stats.io_calls)
            outcome = run(entry, args, cwd=cwd, env=env, kill_at_io=point)
            label = f"io#{point}"
        else:
            delay = rng.uniform(0, stats.clean_seconds)
            outcome = run(entry, args, cwd=cwd, env=env, kill_after=delay)
            label = f"{delay:.3f}s"
        stats.runs += 1
        if outcome.killed:
            stats.killed += 1
            stats.kill_points.append(label)
            if i % 2 == 0:
                stats.by_io_call += 1
            else:
                stats.by_delay += 1
        else:
            ok(outcome)
        check(outcome)
        if rerun:
            again = run(entry, args, cwd=cwd, env=env)
            ok(again)
    return stats


def _exit_zero(outcome: Outcome) -> None:
    assert outcome.returncode == 0, (outcome.returncode, outcome.stdout, outcome.stderr)
