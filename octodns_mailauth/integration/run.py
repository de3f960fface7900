"""One run over a folder of policies: each policy compiled once, its result
reused for every zone view that agrees with what it read, and what each zone gets.

Thread-safe without a global lock: a policy's compiles are serialised by a
lock of its own (its DKIM keys are generated inside them, so a key is made
once), different policies compile in parallel, and nothing about a zone is
stored: `zone()` works from the octoDNS Zone it is handed.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..context import CompileResult
from ..findings import Finding, Severity
from ..names import at_and_above
from ..policy.loader import LoadedPolicy
from ..zoneview import ZoneView, zone_view
from . import merge
from .zonemap import ZoneNames

Compiler = Callable[[LoadedPolicy, ZoneView | None], CompileResult]
CompileAll = Callable[
    [list[str], Callable[[str], tuple[CompileResult, bool]]],
    Mapping[str, tuple[CompileResult, bool]],
]


@dataclass(frozen=True)
class ZonePlan:
    home: tuple[str, ...]  # the policies whose domain is in this zone
    results: tuple[CompileResult, ...]  # theirs, then others' that place records here
    merge: merge.MergePlan

    @functools.cached_property  # asked for the errors, then for what to log
    def findings(self) -> list[Finding]:
        """The home policies' findings, others' errors, and the merge's conflicts."""
        out = [f for r in self.results if r.domain in self.home for f in r.findings]
        out += [f for r in self.results if r.domain not in self.home for f in r.errors]
        return out + list(self.merge.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    def refusing(self, lenient: bool) -> list[Finding]:
        """The errors that refuse the zone: when lenient, a conflict with one of the
        zone's own records is not one (that record is kept, ours left out)."""
        return [f for f in self.errors if not (lenient and f.code == merge.CONFLICT)]


class PolicyRun:
    def __init__(
        self,
        policies: Mapping[str, LoadedPolicy],
        compiler: Compiler,
        dry: Compiler | None = None,
        placeholder: Callable[[str], bool] = lambda domain: False,
    ) -> None:
        """`compiler` compiles with the real keys, `dry` with placeholders where a
        key would be generated (nothing written; `placeholder(domain)` says whether
        a domain got one, and then its dry results are not reused for the real run)."""
        self.policies = dict(policies)
        self._compiler = compiler
        self._dry = dry or compiler
        self._placeholder = placeholder
        self._locks = {domain: threading.Lock() for domain in self.policies}
        # Each policy's results so far, with whether placeholders went into them:
        # one is reused for any zone view that agrees with what it read of its own
        # (ZoneReads.agrees), so a policy compiles once per run unless the zone's
        # records change what it says.
        self._cache: dict[str, list[tuple[CompileResult, bool]]] = {}
        self._places: dict[str, tuple[str, ...]] = {}  # the names each policy's records have
        self._placing: dict[str, dict[str, None]] = {}
        # Policies by each name at or above their domain (and, from `placed`, those
        # placing records at or below each name): a zone looks up its own name
        # instead of scanning every policy, so a run is linear in the policies.
        self._below: dict[str, list[str]] = {}
        for domain in self.policies:
            for name in at_and_above(domain):
                self._below.setdefault(name, []).append(domain)

    def place(self, compile_all: CompileAll) -> dict[str, CompileResult]:
        """Compile every policy without a zone (dry), which says where its records
        go: a zone then finds the other policies that place records in it (a DMARC
        report authorization, say) without compiling them all.  Returns the results.
        `compile_all(domains, compile)` runs `compile` for each domain (bulk.py
        spreads them over worker processes)."""
        done = compile_all(list(self.policies), self._dry_alone)
        for domain, entry in done.items():
            self._cache.setdefault(domain, []).append(entry)
        placed = {domain: done[domain][0] for domain in self.policies}
        for domain, result in placed.items():
            self._places[domain] = tuple(dict.fromkeys(r.name for r in result.records))
            for name in dict.fromkeys(n for r in self._places[domain] for n in at_and_above(r)):
                self._placing.setdefault(name, {})[domain] = None
        return placed

    def _dry_alone(self, domain: str) -> tuple[CompileResult, bool]:
        """A policy's dry compile without a zone, and whether a placeholder key
        went into it (its result is then not reused for the real run)."""
        return self._dry(self.policies[domain], None), self._placeholder(domain)

    def compile(
        self, lp: LoadedPolicy, view: ZoneView | None, *, dry: bool = False
    ) -> CompileResult:
        with self._locks[lp.domain]:
            entries = self._cache.setdefault(lp.domain, [])
            for result, placeholder in entries:
                if (dry or not placeholder) and result.zone_reads.agrees(view):
                    return result
            if dry:
                result = self._dry(lp, view)
                entries.append((result, self._placeholder(lp.domain)))
            else:
                result = self._compiler(lp, view)
                entries.append((result, False))
            return result

    def zone(
        self, zone: Any, *, source: object, lenient: bool = False, dry: bool = False
    ) -> ZonePlan:
        """What octoDNS `zone` gets: its policies compiled against the zone's
        own records, records other policies place in it, merged by `merge.plan`.
        `dry`: placeholders for keys that would be generated (the zone validator)."""
        names = ZoneNames(zone)
        home = tuple(d for d in self._below.get(names.origin, ()) if d in names)
        view = zone_view(zone, lambda record: getattr(record, "source", None) is source)
        results = [self.compile(self.policies[d], view, dry=dry) for d in home]
        for domain in self._placing.get(names.origin, ()):
            if domain not in home and any(n in names for n in self._places[domain]):
                # Not this zone's policy: its own zone's records are not known here.
                results.append(self.compile(self.policies[domain], None, dry=dry))
        # Records of a policy with errors too: nothing is applied then, and
        # every conflict shows in the same run.
        wanted = [r for result in results for r in result.records if r.name in names]
        if not dry:
            self._forget(names, home)
        return ZonePlan(
            home,
            tuple(results),
            merge.plan(zone, wanted, source=source, lenient=lenient, names=names),
        )

    def _forget(self, names: ZoneNames, home: tuple[str, ...]) -> None:
        """Drop the results of policies whose records all went into this zone: its
        plan was the last use, and a run over thousands of zones need not hold
        every result (one whose records other zones get stays)."""
        for domain in home:
            if all(name in names for name in self._places.get(domain, ())):
                with self._locks[domain]:
                    self._cache.pop(domain, None)
