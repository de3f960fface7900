"""Kill a command with SIGKILL at random points, for crash-safety tests.

A command runs in a child: a new Python (`python -c BOOT module:function args...`,
as a user runs it) or, cheaper, a fork of the test process calling a function.  Its
file-system
calls (`os.open` for writing, `os.write`, `os.fsync`, `os.replace`, `os.rename`,
`os.link`, `os.unlink`, `os.mkdir`, and `open()` for writing) are counted.  A kill is
either *at I/O call N* (the child sends itself SIGKILL just before its Nth call, so
every step of a write sequence is hit) or *after a delay* (the parent kills it from
outside at a random time).  Either way it is a real SIGKILL: no handler, no `finally`,
no flush.

Use `torture()`: it measures one clean run, then kills `runs` times at random points
(alternating the two kinds), calls `check()` after each kill (the files must be the
old or the new content), and after each kill reruns the command to completion
(`rerun=True`; a run that finished before its kill needs none), so "a rerun
completes" is checked too::

    stats = torture("octodns_mailauth.cli:main", ["spf", "refresh", ...],
                    runs=50, reset=put_old_lock, check=lock_is_old_or_new, cwd=tmp_path)
    stats = torture(lambda: main(["spf", "refresh", ...]), runs=100, ...)  # forked
    assert stats.killed >= 50
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import importlib
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def instrument(kill_at: int) -> Callable[[], int]:
    """In a child: count file-system calls and SIGKILL ourselves just before call
    number `kill_at` (0: never).  Returns a function giving the count so far."""
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(fn: Callable[..., object], writes: Callable[..., bool] | None = None) -> Any:
        def inner(*a: Any, **k: Any) -> object:
            if writes is None or writes(*a, **k):
                tick()
            return fn(*a, **k)

        return inner

    os.open = wrap(os.open, lambda p, flags, *a, **k: bool(flags & _WRITE_FLAGS))
    for name in ("write", "fsync", "replace", "rename", "link", "unlink", "mkdir", "rmdir"):
        setattr(os, name, wrap(getattr(os, name)))
    builtins.open = wrap(
        builtins.open,
        lambda f, mode="r", *a, **k: (
            isinstance(f, str | bytes | os.PathLike) and any(c in mode for c in "wax+")
        ),
    )
    return lambda: count


def child_main() -> None:
    """`python -c BOOT module:function args...`: instrumented, then the entry point."""
    original_open = builtins.open
    counted = instrument(int(os.environ.get("CRASH_KILL_AT") or 0))
    report = os.environ.get("CRASH_COUNT_FILE")
    if report:
        # Not counted (the original open): kill runs do not make this call.
        atexit.register(lambda: original_open(report, "w").write(str(counted())))
    module, _, func = sys.argv[1].partition(":")
    sys.argv = sys.argv[1:]
    sys.exit(getattr(importlib.import_module(module), func)())


BOOT = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
BOOT += "import crash; crash.child_main()"


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


def run_forked(
    func: Callable[[], int | None],
    *,
    kill_at_io: int | None = None,
    kill_after: float | None = None,
    timeout: float = 120,
) -> tuple[Outcome, int | None]:
    """Run `func()` in a forked child (no interpreter start-up: every import is done),
    maybe killing it; also returns the child's I/O call count when it finished."""
    import json
    import tempfile

    fd, result_path = tempfile.mkstemp(prefix="crash-result.")
    os.close(fd)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        out = io.StringIO()
        original_open = builtins.open
        counted: Callable[[], int] = lambda: 0  # noqa: E731
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                counted = instrument(kill_at_io or 0)
                code = int(func() or 0)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            out.write(f"{type(err).__name__}: {err}")
            code = 71
        finally:
            with original_open(result_path, "w") as fh:
                json.dump({"count": counted(), "out": out.getvalue()}, fh)
            os._exit(code)
    deadline = time.monotonic() + (timeout if kill_after is None else kill_after)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            assert kill_after is not None, f"the child hung for {timeout} s"
            break
        time.sleep(0.001)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    try:
        result = json.loads(Path(result_path).read_text() or "null")
    finally:
        os.unlink(result_path)
    if result is None:  # killed before it could report
        return Outcome(code, "", ""), None
    return Outcome(code, result["out"], ""), result["count"]


def torture(
    target: str | Callable[[], int | None],
    args: Sequence[str] = (),
    *,
    runs: int,
    reset: Callable[[], None],
    check: Callable[[Outcome], None],
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    rerun: bool = True,
    ok: Callable[[Outcome], None] | None = None,
    seed: int | None = None,
    kills: int | None = None,
) -> Stats:
    """Kill `target` `runs` times at random points; see the module docstring.

    `target` is "module:function" (run with `args` as its argv in a new interpreter,
    as a user runs it) or a callable (run in a forked child: no start-up cost).

    `reset()` puts the files back in their before state; `check(outcome)` asserts
    the files are whole after a kill; `ok(outcome)` (default: exit code 0) judges a
    clean run and each rerun.  Kills that come after the command already finished
    are not counted in `killed`; the caller asserts how many it needs.  With
    `kills`, it stops once that many kills have landed (`runs` is then the most it
    tries), since a delay kill on a loaded machine often comes after the end."""
    rng = random.Random(seed if seed is not None else os.environ.get("CRASH_SEED", 1))
    ok = ok or _exit_zero

    def go(
        kill_at_io: int | None = None, kill_after: float | None = None
    ) -> tuple[Outcome, int | None]:
        if callable(target):
            return run_forked(target, kill_at_io=kill_at_io, kill_after=kill_after)
        count_file = Path(cwd) / ".crash-count"
        count_file.unlink(missing_ok=True)
        outcome = run(
            target, args, cwd=cwd, env=env, kill_at_io=kill_at_io, kill_after=kill_after,
            count_file=None if kill_at_io or kill_after is not None else count_file,
        )  # fmt: skip
        count = int(count_file.read_text()) if count_file.exists() else None
        count_file.unlink(missing_ok=True)
        return outcome, count

    stats = Stats()
    reset()
    started = time.monotonic()
    clean, count = go()
    stats.clean_seconds = time.monotonic() - started
    ok(clean)
    stats.io_calls = count or 0
    assert stats.io_calls > 0, "the command made no file-system call: nothing to kill"
    for i in range(runs):
        if kills is not None and stats.killed >= kills:
            break
        reset()
        if i % 2 == 0:
            point = rng.randint(1, stats.io_calls)
            outcome, _ = go(kill_at_io=point)
            label = f"io#{point}"
        else:
            # Within 80% of the clean run's time, so most delay kills land while it runs.
            delay = rng.uniform(0, 0.8 * stats.clean_seconds)
            outcome, _ = go(kill_after=delay)
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
        if rerun and outcome.killed:
            again, _ = go()
            ok(again)
    return stats


def _exit_zero(outcome: Outcome) -> None:
    assert outcome.returncode == 0, (outcome.returncode, outcome.stdout, outcome.stderr)
