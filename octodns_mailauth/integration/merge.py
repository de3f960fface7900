"""Merging wanted records into an octoDNS zone, by the rules in README "Merging".

`plan` decides without touching the zone: the octoDNS records to put there and
every conflict as a finding (a hand-written SPF or DMARC value, a CNAME beside
our records, a different MX, two policies wanting one record), all of them, not
the first.  `apply` puts the planned records in.  Records of `source` count as
ours; everything else in the zone is someone else's and is never changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from octodns.context import ContextDict
from octodns.record import Record, ValidationError

from ..findings import Finding, Severity
from ..records import txt_kind_matches
from ..records.base import DesiredRecord, escape_txt, unescape_txt
from ..zoneview import value_text
from .zonemap import ZoneNames

Claims = dict[tuple[str, str, str | None], DesiredRecord]


@dataclass(frozen=True)
class MergePlan:
    records: tuple[Any, ...]  # octoDNS Records to add, replacing ours and merged values
    findings: tuple[Finding, ...]


def plan(
    zone: Any,
    wanted: Iterable[DesiredRecord],
    *,
    source: object,
    lenient: bool = False,
    names: ZoneNames | None = None,
) -> MergePlan:
    """`names`: the zone's, when the caller has them (integration/run.py)."""
    names = names or ZoneNames(zone)
    existing: dict[tuple[str, str], Any] = {}
    by_name: dict[str, list[Any]] = {}
    for record in zone.records:
        existing[(record.name, record._type)] = record
        by_name.setdefault(record.name, []).append(record)
    claimed: Claims = {}
    out: list[Any] = []
    findings: list[Finding] = []
    for want in wanted:
        name = names.relative(want.name) or ""
        problems = claims([want], claimed)
        here = by_name.get(name)  # mostly nothing: then nothing there to compare
        theirs = [r for r in here if getattr(r, "source", None) is not source] if here else []
        current = existing.get((name, want.type)) if here else None
        foreign = current is not None and current in theirs
        data: dict[str, Any] = {"type": want.type, "ttl": current.ttl if foreign else want.ttl}
        clash = next((r for r in theirs if (r._type == "CNAME") != (want.type == "CNAME")), None)
        if clash is not None:
            what = "a CNAME" if clash._type == "CNAME" else f"a {clash._type} record"
            hint = (
                f"remove the {clash._type} record at {name or '@'} from the zone (an old DKIM "
                "key there gives way to the provider's CNAME), or the sender from the policy"
                if want.type == "CNAME"
                else f"remove the CNAME at {name or '@'} from the zone, or the setting that "
                "publishes this record from the policy"
            )
            problems.append(_conflict(want, clash, f"{what} (a CNAME must stand alone)", hint))
        elif want.type == "TXT":
            data["values"], clashing = _txt_values(want, current, foreign)
            if clashing:
                problems.append(
                    _conflict(
                        want, current, f"a hand-written {want.kind or 'TXT'} value {clashing!r}"
                    )
                )
        elif want.type == "CNAME":
            if foreign and current.value != want.values[0]:
                problems.append(_conflict(want, current, "a different CNAME"))
            data["value"] = want.values[0]
        else:
            if foreign and sorted(want.values) != sorted(value_text(v) for v in current.values):
                problems.append(_conflict(want, current, f"a different {want.type} record"))
            data["values"] = [_octodns_value(want.type, v) for v in want.values]
        if problems:
            findings += problems
            continue
        context = f"{want.location or 'mail policy'} ({want.owner})"
        try:
            record = Record.new(
                zone, name, ContextDict(data, context=context), source=source, lenient=lenient
            )
        except ValidationError as e:
            findings.append(
                Finding(
                    Severity.ERROR,
                    f"octoDNS rejects the {want.type} record at {want.name}: {e}",
                    want.location,
                    code="zone-merge-invalid",
                )
            )
            continue
        # A second record of ours at this name (a vendor's TXT beside our SPF)
        # merges with this one, not replaces it.
        existing[(name, want.type)] = record
        by_name.setdefault(name, []).append(record)
        out.append(record)
    return MergePlan(tuple(out), tuple(findings))


def apply(zone: Any, merge: MergePlan, lenient: bool = False) -> None:
    for record in merge.records:
        zone.add_record(record, replace=True, lenient=lenient)


def claims(records: Iterable[DesiredRecord], claimed: Claims) -> list[Finding]:
    """Two policies (a domain's and its subdomain's, say) wanting one record is
    an error, never a silent last-writer-wins.  TXT values of no managed kind
    (verification tokens) may share a name."""
    out = []
    for want in records:
        if want.type == "TXT" and want.kind is None:
            continue
        first = claimed.setdefault((want.name, want.type, want.kind), want)
        if first is not want and _policy_of(first) != _policy_of(want):
            out.append(
                Finding(
                    Severity.ERROR,
                    f"{want.owner} wants the {want.kind or want.type} record at {want.name}, "
                    f"which the policy {_policy_of(first)} also publishes ({first.owner})",
                    want.location,
                    "let one policy own that name",
                    code="record-claimed-twice",
                )
            )
    return out


def _policy_of(record: DesiredRecord) -> str:
    return record.location.file if record.location else "?"


def _txt_values(want: DesiredRecord, current: Any, foreign: bool) -> tuple[list[str], str]:
    """Our value(s), escaped for octoDNS, plus every value of another kind
    already at the name, kept byte for byte (never unescaped and re-escaped,
    which would change `\\DDD` escapes we do not own); and the first
    hand-written value of our kind that differs from ours, if any."""
    ours = [escape_txt(v) for v in want.values]
    if current is None:
        return ours, ""
    keep: list[str] = []
    clashing = ""
    for raw in map(str, current.values):
        text = unescape_txt(raw)
        if want.kind and txt_kind_matches(want.kind, text):
            if text not in want.values and foreign and not want.takeover:
                clashing = clashing or text
        else:
            keep.append(raw)
    return keep + [v for v in ours if v not in keep], clashing


def _octodns_value(rtype: str, text: str) -> Any:
    if rtype == "MX":
        preference, exchange = text.split()
        return {"preference": int(preference), "exchange": exchange}
    return text


CONFLICT = "zone-merge-conflict"  # the finding code of a clash with the zone's own record


def _conflict(want: DesiredRecord, theirs: Any, what: str, hint: str | None = None) -> Finding:
    origin = getattr(theirs, "context", None) or (
        f"source {theirs.source.id}" if getattr(theirs, "source", None) else "the zone"
    )
    return Finding(
        Severity.ERROR,
        f"{want.owner} wants a {want.type} record at {want.name}, but the zone already has "
        f"{what} there (from {origin})",
        want.location,
        hint or (_TAKEOVER_HINTS.get(want.kind or "") if "hand-written" in what else None),
        code=CONFLICT,
    )


_TAKEOVER_HINTS = {
    "spf": "remove it from the zone, or set `spf: {takeover: true}` in the policy",
    "dmarc": "remove it from the zone, or set `dmarc: {takeover: true}` in the policy",
    "dkim": "remove it from the zone or choose another selector",
    "mta-sts": "remove the hand-written record from the zone, or `mta_sts:` from the policy",
    "tlsrpt": "remove the hand-written record from the zone, or `tls_rpt:` from the policy",
    "bimi": "remove the hand-written record from the zone, or `bimi:` from the policy",
    "": "remove it from the zone, or the setting that publishes it from the policy",
}
