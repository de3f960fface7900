"""The installed `octodns-mailauth` command: `cli.main` in a process of its own.

Outside the `cli` package so that what is set here comes before the CLI's imports.
Tests call `cli.main` in their own process, where none of this applies.
"""

from __future__ import annotations

import gc


def collect_less() -> None:
    """The cyclic collector's pace of this command (benchmarks that time a command's
    work in their own process call it too, to time what the command does)."""
    # A short-lived process: the cyclic collector's default pace (a pass every 700
    # allocations) walks the class graphs octoDNS and pydantic build while they are
    # imported, and frees next to nothing.  Fewer passes, the same objects.
    gc.set_threshold(100_000, 50, 50)


def main() -> int:
    collect_less()
    from .cli import main as cli_main

    try:
        return cli_main()
    finally:
        # The process ends next: interpreter shutdown would run the collector over
        # every object still alive, only for the OS to take the memory back.  Frozen
        # objects are left out of it; what shutdown does besides (atexit handlers,
        # flushing and closing the standard streams) is unchanged.
        gc.freeze()
