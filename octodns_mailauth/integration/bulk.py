"""Compiling every policy of a run at once (the processor's dry compile in
__init__), spread over worker processes when there are many and CPUs are idle.

Workers are forked from this process, so they start with everything it has read
(policies, catalog, SPF lock, DKIM state, report evidence) and read the DKIM keys
themselves: no private key crosses a process boundary.  What comes back is what
a zone's plan uses of each result (records, findings, what of the zone view the
compile read) and whether a placeholder key went into it, as plain dataclasses;
an exception a compile raised comes back too and is raised here, the first in
policy order, as a compile in this process would.  Fork only: without it (not
Linux), or with other threads running in this process (a fork copies their
locks as they are), every policy compiles here.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .._workers import idle_cpus
from ..context import CompileResult
from ..errors import PolicyError
from ..findings import Severity
from ..policy.loader import (
    DeferredPolicy,
    LoadedPolicy,
    domain_from_filename,
    parse_policy,
    read_policy_file,
)

T = TypeVar("T")
R = TypeVar("R")

# One policy compiled: (its result, whether a placeholder key went into it).
Compile = Callable[[str], tuple[CompileResult, bool]]

# Below this many policies one process is as fast: starting workers costs more.
PARALLEL_MIN_POLICIES = 200
CHUNK_POLICIES = 50  # per task: results come back while others compile


def compile_all(domains: Sequence[str], compile: Compile) -> dict[str, tuple[CompileResult, bool]]:
    """`compile(domain)` for every domain, in worker processes when worth it (one
    per idle CPU).  The results, by domain, in order;
    the first exception, in that order, is raised."""

    def slim(domain: str) -> tuple[CompileResult, bool]:
        result, placeholder = compile(domain)
        return _for_zones(result), placeholder

    out: dict[str, tuple[CompileResult, bool]] = {}
    done = fork_map(slim, domains, here=compile)
    for domain, one in zip(domains, done, strict=False):  # it ends at an exception
        if isinstance(one, BaseException):
            raise one
        out[domain] = one
    return out


class FirstPass:
    """Reading the policy files and their first (dry) compile in ONE pass of
    worker processes, when the files are read in workers at all: each worker
    compiles the policies it has just parsed, and sends back their text and
    domain (a `DeferredPolicy`, parsed here again only if something reads it) with
    the result.  Unpickling every parsed policy (pydantic models) here cost this
    process about as much as all its other work in __init__.

    `each` is for `load_policy_dir(each=...)`.  `prepare()` reads what every
    compile shares (the config's zones, the SPF lock, the DKIM state); it runs
    before the workers start, and when it fails (or `fuse` is false, or there
    will be no workers) the files are read as before and nothing is compiled:
    the caller then prepares and compiles after reading, in that order, so its
    errors come in the same order as ever."""

    def __init__(
        self,
        compile: Callable[[LoadedPolicy], tuple[CompileResult, bool]],
        prepare: Callable[[], None],
        *,
        fuse: bool = True,
    ) -> None:
        self._compile = compile
        self._prepare = prepare
        self._fuse = fuse
        self.prepared = False
        self._done: dict[str, tuple[CompileResult, bool] | Exception] = {}

    def each(self, load: Callable[[Path], Any], paths: list[Path]) -> list[Any]:
        jobs = workers_for(len(paths))
        if not (self._fuse and jobs > 1 and _can_fork()):
            return fork_map(load, paths, jobs=jobs)
        try:
            self._prepare()
        except Exception:
            return fork_map(load, paths, jobs=jobs)  # the caller raises it after reading
        self.prepared = True
        # The first file is read and compiled here, before the fork: what each worker
        # would otherwise do for itself on first use (lazy imports, the policy schema,
        # the catalog entries it names, the public suffix rules) is then done once.
        outcomes = _run_chunk(self._read_and_compile, paths[:1])
        if not (outcomes and isinstance(outcomes[-1], Exception)):
            outcomes += fork_map(self._read_and_compile, paths[1:], jobs=jobs)
        out = []
        for outcome in outcomes:
            if isinstance(outcome, tuple):
                lp, self._done[lp.domain] = outcome  # a domain read twice is an error
                outcome = lp
            out.append(outcome)
        return out

    def _read_and_compile(self, path: Path) -> Any:
        try:
            text = read_policy_file(path)
            lp = parse_policy(text, str(path), domain_from_filename(path))
        except PolicyError as e:
            return list(e.findings)
        done: tuple[CompileResult, bool] | Exception
        try:
            result, placeholder = self._compile(lp)
            done = _for_zones(result), placeholder
        except Exception as e:  # raised by the caller if every file reads well
            done = e
        return DeferredPolicy(text, lp.path, lp.domain, lp.acknowledge), done

    def compile_all(
        self, domains: Sequence[str], compile: Compile
    ) -> dict[str, tuple[CompileResult, bool]]:
        """A `compile_all` for PolicyRun.place: the workers' results when they
        compiled (the first exception, in policy order, raised), else `compile_all`."""
        if not self.prepared:
            return compile_all(domains, compile)
        out = {}
        for domain in domains:
            one = self._done[domain]
            if isinstance(one, BaseException):
                raise one
            out[domain] = one
        return out


def workers_for(count: int) -> int:
    """How many worker processes `count` items get: one per idle CPU, or 1 (here)."""
    return idle_cpus(waiting=True) if count >= PARALLEL_MIN_POLICIES else 1


def fork_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    jobs: int | None = None,
    here: Callable[[T], R] | None = None,
) -> list[R | Exception]:
    """`fn(item)` for every item, in order, in forked worker processes when there
    are many and CPUs are idle (else `here`, default `fn`, in this process).  An
    exception `fn` raises is returned in its item's place and ends the list (as
    a loop here would stop there): the caller raises it."""
    if jobs is None:
        jobs = workers_for(len(items))
    if jobs <= 1 or not _can_fork():
        return _run_chunk(here or fn, items)
    chunks = [items[i : i + CHUNK_POLICIES] for i in range(0, len(items), CHUNK_POLICIES)]
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)),
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(fn, os.getpid()),  # inherited by the fork, never pickled
    ) as pool:
        out: list[R | Exception] = []
        for done in pool.map(_worker_chunk, chunks):
            out += done
            if done and isinstance(done[-1], Exception):
                break  # the later chunks' results are not looked at
        return out


def _can_fork() -> bool:
    return sys.platform == "linux" and threading.active_count() == 1


_fn: Callable[[Any], Any] | None = None  # a worker's, from _start_worker
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _start_worker(fn: Callable[[Any], Any], parent: int) -> None:
    global _fn
    _fn = fn
    # A worker ends with the process that forked it: killed mid-run, that process
    # would otherwise leave it waiting for work forever.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before that
        os._exit(1)


def _worker_chunk(items: Sequence[Any]) -> list[Any]:
    assert _fn is not None
    return _run_chunk(_fn, items)


def _run_chunk(fn: Callable[[T], R], items: Sequence[T]) -> list[R | Exception]:
    out: list[R | Exception] = []
    for item in items:
        try:
            out.append(fn(item))
        except Exception as e:
            out.append(e)
            break
    return out


def _for_zones(result: CompileResult) -> CompileResult:
    """What a zone's plan reads of a result (integration/run.py): its records,
    findings and zone reads; the steps' details stay in the worker.  The findings
    the processor logs go formatted (Finding.format keeps its text): formatting
    them here, in parallel, spares the process that logs them."""
    for finding in result.findings:
        if finding.severity is not Severity.INFO:
            finding.format()
    return CompileResult(
        result.domain, result.records, result.findings, zone_reads=result.zone_reads
    )
