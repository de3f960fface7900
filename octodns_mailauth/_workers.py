"""How many worker processes a bulk job gets: one per idle CPU (the CPUs this
process may run on, less the load average), so a busy machine is not made
busier by processes that only wait for a CPU."""

from __future__ import annotations

import os


def idle_cpus() -> int:
    """CPUs this process may use less the 1-minute load average, at least 1."""
    cpus = usable_cpus()
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available here
        return cpus
    return max(1, min(cpus, round(cpus - load)))


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
