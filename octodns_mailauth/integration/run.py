"""One run over a folder of policies: each policy compiled once per zone view,
and what each zone gets.

Thread-safe without a global lock: a policy's compiles are serialised by a
lock of its own (its DKIM keys are generated inside them, so a key is made
once), different policies compile in parallel, and nothing about a zone is
stored: `zone()` works from the octoDNS Zone it is handed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..compile import CompileResult
from ..context import ZoneView
from ..findings import Finding, Severity
from ..names import normalize
from ..policy.loader import LoadedPolicy
from ..zoneview import zone_view
from . import merge
from .zonemap import in_zone

Compiler = Callable[[LoadedPolicy, ZoneView | None], CompileResult]


@dataclass(frozen=True)
class ZonePlan:
    home: tuple[str, ...]  # the policies whose domain is in this zone
    results: tuple[CompileResult, ...]  # theirs, then others' that place records here
    merge: merge.MergePlan

    @property
    def findings(self) -> list[Finding]:
        """The home policies' findings, others' errors, and the merge's conflicts."""
        out = [f for r in self.results if r.domain in self.home for f in r.findings]
        out += [f for r in self.results if r.domain not in self.home for f in r.errors]
        return out + list(self.merge.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]


class PolicyRun:
    def __init__(
        self,
        policies: Mapping[str, LoadedPolicy],
        compiler: Compiler,
        placed: Mapping[str, CompileResult] | None = None,
    ) -> None:
        """`placed`: a compile of every policy (a dry one will do) saying where
        its records go, so a zone finds the other policies that place records in
        it (a DMARC report authorization, say) without compiling them all."""
        self.policies = dict(policies)
        self._compiler = compiler
        self.placed = placed or {}
        self._locks = {domain: threading.Lock() for domain in self.policies}
        self._cache: dict[tuple[str, frozenset[Any] | None], CompileResult] = {}
        # Policies by each name at or above their domain (and, from `placed`, those
        # placing records at or below each name): a zone looks up its own name
        # instead of scanning every policy, so a run is linear in the policies.
        self._below: dict[str, list[str]] = {}
        for domain in self.policies:
            for name in _at_and_above(domain):
                self._below.setdefault(name, []).append(domain)

    @property
    def placed(self) -> dict[str, CompileResult]:
        return self._placed

    @placed.setter
    def placed(self, placed: Mapping[str, CompileResult]) -> None:
        self._placed = dict(placed)
        self._placing: dict[str, dict[str, None]] = {}
        for domain, result in self._placed.items():
            for record in result.records:
                for name in _at_and_above(record.name):
                    self._placing.setdefault(name, {})[domain] = None

    def compile(self, lp: LoadedPolicy, view: ZoneView | None) -> CompileResult:
        key = (lp.domain, None if view is None else frozenset(view.items()))
        with self._locks[lp.domain]:
            result = self._cache.get(key)
            if result is None:
                result = self._compiler(lp, view)
                self._cache[key] = result
            return result

    def zone(self, zone: Any, *, source: object, lenient: bool = False) -> ZonePlan:
        """What octoDNS `zone` gets: its policies compiled against the zone's
        own records, records other policies place in it, merged by `merge.plan`."""
        name = normalize(zone.name)
        home = tuple(d for d in self._below.get(name, ()) if in_zone(zone, d))
        view = zone_view(zone, lambda record: getattr(record, "source", None) is source)
        results = [self.compile(self.policies[d], view) for d in home]
        for domain in self._placing.get(name, ()):
            placed = self._placed[domain]
            if domain not in home and any(in_zone(zone, r.name) for r in placed.records):
                # Not this zone's policy: its own zone's records are not known here.
                results.append(self.compile(self.policies[domain], None))
        # Records of a policy with errors too: nothing is applied then, and
        # every conflict shows in the same run.
        wanted = [r for result in results for r in result.records if in_zone(zone, r.name)]
        return ZonePlan(
            home, tuple(results), merge.plan(zone, wanted, source=source, lenient=lenient)
        )


def _at_and_above(name: str) -> list[str]:
    """`a.b.example` -> a.b.example, b.example, example."""
    labels = normalize(name).split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]
