"""Which zone a name belongs to, and which zones run the processor.

Two views of one rule (a name belongs to the longest zone that contains it):
`ZoneMap` for a whole config, immutable and built per run; `ZoneNames` for one
octoDNS Zone, whose `sub_zones` octoDNS computed from every configured zone
(dynamic ones included), so a processor needs nothing else to place a record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..dmarc.reports import EXTERNAL_DESTINATION_CODE
from ..findings import Finding, Location, Severity
from ..names import normalize, relative_to, zone_of


@dataclass(frozen=True)
class ZoneMap:
    zones: frozenset[str]  # every configured zone: lower case, no trailing dot
    mine: frozenset[str]  # those that run the processor
    complete: bool = True  # False when a dynamic zone's sources could not be listed

    def zone_of(self, name: str) -> str | None:
        """The longest configured zone containing `name`, or None."""
        return zone_of(normalize(name), self.zones)

    def policy_findings(self, policies: Iterable[Any], pid: str, config: str) -> list[Finding]:
        """A policy whose domain is in no zone, or in a zone that does not run
        the processor: nothing would be published, so it is an error."""
        if not self.complete:
            return []
        out = []
        for lp in policies:
            zone = self.zone_of(lp.domain)
            if zone is None:
                problem = (
                    f"policy for {lp.domain} but no zone in the octoDNS config contains it "
                    f"({config})"
                )
                hint = f"add {lp.domain}. under zones: with this processor, or remove the file"
            elif zone not in self.mine:
                problem = (
                    f"policy for {lp.domain} but its zone {zone}. does not run the processor "
                    f"{pid!r} ({config}), so nothing would be published"
                )
                hint = f"add `processors: [{pid}]` to zone {zone}. in the octoDNS config"
            else:
                continue
            out.append(
                Finding(Severity.ERROR, problem, Location(lp.path, 1), hint, code="policy-no-zone")
            )
        return out

    def settle_report_authorizations(self, result: Any) -> Any:
        """`result` (a CompileResult) with each external DMARC report destination
        whose authorization record lands in a zone that runs the processor said as
        info: the record is published with the policy, nobody has to be asked."""
        if not self.complete:
            return result
        published = {
            r.location: r
            for r in result.records
            if "._report._dmarc." in r.name and self.zone_of(r.name) in self.mine
        }
        if not published:
            return result
        findings = []
        for f in result.findings:
            record = published.get(f.location) if f.code == EXTERNAL_DESTINATION_CODE else None
            if record is not None:
                host = record.name.split("._report._dmarc.", 1)[1]
                f = replace(
                    f,
                    severity=Severity.INFO,
                    message=f"{result.domain}'s reports go to {host}, outside its "
                    f'organizational domain: {record.name}. TXT "{record.values[0]}" '
                    f"authorizes them, published in zone {self.zone_of(record.name)} of this "
                    "config",
                    hint=None,
                )
            findings.append(f)
        return replace(result, findings=findings)


class ZoneNames:
    """The names of one octoDNS zone's plan: `name in names` is whether `name`
    belongs to the zone (not to a configured sub-zone), and
    `relative` is `names.relative_to` the zone, each worked out once per name (a
    plan asks both of each record's name several times)."""

    def __init__(self, zone: Any) -> None:
        self.origin = normalize(zone.name)
        self._sub_zones = zone.sub_zones
        self._relative: dict[str, str | None] = {}
        self._in: dict[str, bool] = {}

    def relative(self, name: str) -> str | None:
        """`name` relative to the zone ('' for the apex), or None when outside it."""
        try:
            return self._relative[name]
        except KeyError:
            rel = self._relative[name] = relative_to(name, self.origin)
            return rel

    def __contains__(self, name: str) -> bool:
        try:
            return self._in[name]
        except KeyError:
            rel = self.relative(name)
            inside = rel is not None and (
                rel == "" or not self._sub_zones or zone_of(rel, self._sub_zones) is None
            )
            self._in[name] = inside
            return inside
