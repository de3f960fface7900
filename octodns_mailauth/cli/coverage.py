"""`octodns-mailauth coverage --config FILE`: every zone of the octoDNS config,
whether a mail policy covers it, what mail records it has, and what to do.

A zone that takes mail (MX) or sends it (SPF terms, DKIM keys) without a
policy can be spoofed or is managed by hand: it gets an `init` command.  A zone
that does neither should say so (`parked: true`).  Read offline from the
config's YamlProvider sources, like `validate --config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..records import txt_kind_matches
from ..records.dmarc import parse_dmarc
from ..records.mx import exchanges
from ..records.spf import SpfSyntaxError, parse, select_records
from ..zoneview import zone_view
from .exitcodes import EXIT_OK
from .render import md_table, table
from .settings import UsageError, resolve
from .workspace import Workspace, load


@dataclass
class ZoneRow:
    zone: str
    policy: str  # the policy domains in the zone, "" for none
    alias: str | None
    mx: str  # "yes", "null MX", "no", "?" (not read)
    spf: str  # "-all only", "yes", "no", "?"
    dmarc: str  # "p=...", "no", "?"
    suggestion: str
    unread: list[str]


def _mail_records(view: dict[tuple[str, str], tuple[str, ...]], zone: str) -> dict[str, Any]:
    mx = view.get((zone, "MX"), ())
    out: dict[str, Any] = {"mx": "no" if not mx else ("yes" if exchanges(mx) else "null MX")}
    try:
        spf_text = select_records(list(view.get((zone, "TXT"), ())))
    except SpfSyntaxError:
        out["spf"], out["sends"] = "several (permerror)", True
    else:
        if spf_text is None:
            out["spf"], out["sends"] = "no", False
        else:
            try:
                terms = [m for m in parse(spf_text).mechanisms if m.name != "all"]
            except SpfSyntaxError:
                terms = [None]
            out["spf"] = "yes" if terms else "-all only"
            out["sends"] = bool(terms) or spf_text.strip().lower() == "v=spf1"
    dkim = [n for (n, t) in view if "._domainkey." in n and t in ("TXT", "CNAME")]
    out["sends"] = out["sends"] or bool(dkim)
    dmarc = [v for v in view.get((f"_dmarc.{zone}", "TXT"), ()) if txt_kind_matches("dmarc", v)]
    if not dmarc:
        out["dmarc"] = "no"
    else:
        parsed = parse_dmarc(dmarc[0])
        out["dmarc"] = f"p={parsed.tags['p']}" if "p" in parsed.tags else "invalid"
    return out


def coverage_rows(settings: Any) -> list[ZoneRow]:
    if settings.policies is not None and not settings.policies.exists():
        # No policy yet (the first `init` creates the folder): every zone is uncovered.
        ws = Workspace(settings, [])
    else:
        ws = load(settings)
    mine = set(ws.processor_zones())
    policies_by_zone: dict[str, list[str]] = {}
    for lp in ws.policies:
        policies_by_zone.setdefault(ws.zone_for(lp.domain), []).append(lp.domain)
    rows = []
    for zone in settings.octo.zone_names() if settings.octo else ():
        zconf = settings.octo.zone_conf(zone)
        alias = zconf.get("alias")
        policy = ", ".join(sorted(policies_by_zone.get(zone, [])))
        runs = zone in mine
        if alias:
            target = str(alias).rstrip(".")
            why = (
                f"alias of {target}: gets {target}'s mail records as they are; give it its "
                "own zone and policy if it sends mail as itself"
            )
            rows.append(ZoneRow(zone, policy, target, "?", "?", "?", why, []))
            continue
        source = ws.source_zone(zone)
        view = zone_view(source.zone, lambda r: False) if source is not None else {}
        mail = _mail_records(view, zone)
        if policy:
            # What the zone holds by hand; the policy publishes its own.
            for key in ("spf", "dmarc"):
                mail[key] = "policy" if mail[key] == "no" else f"{mail[key]} (hand-written)"
            suggestion = "covered"
            if not runs:
                suggestion = f"add `processors: [{settings.id}]` to the zone"
        elif mail["mx"] == "yes" or mail["sends"]:
            suggestion = f"octodns-mailauth init {zone} --config {settings.octo.path}"
        else:
            suggestion = f"parked: true in {settings.policies}/{zone}.yaml"
        if not policy and not runs:
            suggestion += f" (and add `processors: [{settings.id}]` to the zone)"
        unread = list(source.skipped) if source is not None else []
        rows.append(
            ZoneRow(zone, policy, None, mail["mx"], mail["spf"], mail["dmarc"], suggestion, unread)
        )
    return rows


def run(args: Any) -> int:
    if not getattr(args, "config", None):
        raise UsageError("coverage reads the zones of an octoDNS config: give --config FILE")
    settings = resolve(args)
    rows = coverage_rows(settings)
    headers = ["zone", "policy", "MX", "SPF", "DMARC", "suggestion"]
    cells = [
        [
            r.zone,
            r.policy or ("(alias)" if r.alias else "none"),
            r.mx,
            r.spf,
            r.dmarc,
            r.suggestion + (f"; sources not read: {', '.join(r.unread)}" if r.unread else ""),
        ]
        for r in rows
    ]
    if args.format == "markdown":
        for row in cells:
            if row[-1].startswith("octodns-mailauth"):
                row[-1] = f"`{row[-1]}`"
        print(md_table(headers, cells))
        return EXIT_OK
    print(table(cells, headers))
    uncovered = [r.zone for r in rows if not r.policy and not r.alias]
    covered = len(rows) - len(uncovered)
    print(f"\n{len(rows)} zones: {covered} with a policy or an alias, {len(uncovered)} without")
    return EXIT_OK
