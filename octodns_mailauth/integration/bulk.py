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

import multiprocessing
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from .._workers import idle_cpus
from ..context import CompileResult

# One policy compiled: (its result, whether a placeholder key went into it).
Compile = Callable[[str], tuple[CompileResult, bool]]

# Below this many policies one process is as fast: starting workers costs more.
PARALLEL_MIN_POLICIES = 200
CHUNK_POLICIES = 50  # per task: results come back while others compile


def compile_all(
    domains: Sequence[str], compile: Compile, *, jobs: int | None = None
) -> dict[str, tuple[CompileResult, bool]]:
    """`compile(domain)` for every domain, in worker processes when worth it
    (`jobs`: how many; default one per idle CPU).  The results, by domain, in order."""
    if jobs is None:
        jobs = idle_cpus() if len(domains) >= PARALLEL_MIN_POLICIES else 1
    if jobs <= 1 or not _can_fork():
        return {domain: compile(domain) for domain in domains}
    chunks = [domains[i : i + CHUNK_POLICIES] for i in range(0, len(domains), CHUNK_POLICIES)]
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)),
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(compile,),  # inherited by the fork, never pickled
    ) as pool:
        out: dict[str, tuple[CompileResult, bool]] = {}
        for chunk in pool.map(_compile_chunk, chunks):
            for domain, result, placeholder in chunk:
                if isinstance(result, BaseException):
                    raise result
                out[domain] = (result, placeholder)
        return out


def _can_fork() -> bool:
    return sys.platform == "linux" and threading.active_count() == 1


_compile: Compile | None = None  # a worker's, from _start_worker


def _start_worker(compile: Compile) -> None:
    global _compile
    _compile = compile


def _compile_chunk(
    domains: Sequence[str],
) -> list[tuple[str, CompileResult | BaseException, bool]]:
    """What a worker does: compile some policies; an exception stops the chunk
    (the main process raises the first one, in policy order)."""
    assert _compile is not None
    out: list[tuple[str, CompileResult | BaseException, bool]] = []
    for domain in domains:
        try:
            result, placeholder = _compile(domain)
        except Exception as e:
            out.append((domain, e, False))
            break
        out.append((domain, _for_zones(result), placeholder))
    return out


def _for_zones(result: CompileResult) -> CompileResult:
    """What a zone's plan reads of a result (integration/run.py): its records,
    findings and zone reads; the steps' details stay in the worker."""
    return CompileResult(
        result.domain, result.records, result.findings, zone_reads=result.zone_reads
    )
