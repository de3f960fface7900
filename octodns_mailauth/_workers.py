"""How many worker processes a bulk job gets: one per idle CPU (the CPUs this
process may run on, less the load average), so a busy machine is not made
busier by processes that only wait for a CPU."""

from __future__ import annotations

import os


def idle_cpus(*, waiting: bool = False) -> int:
    """CPUs this process may use less the 1-minute load average, at least 1.
    `waiting`: this process only waits while its workers run, so one CPU's worth
    of the load (its own work so far, say reading the policies) counts as idle."""
    cpus = usable_cpus()
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available here
        return cpus
    if waiting:
        load = max(0.0, load - 1)
    return max(1, min(cpus, round(cpus - load)))


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
