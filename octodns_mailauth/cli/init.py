"""`octodns-mailauth init DOMAIN`: write a policy from what is published.

The records come from the zone's YamlProvider sources in the octoDNS config
(offline) or from live DNS (`--nameserver`).  The policy is compiled before it
is written (it must load and compile cleanly), never overwrites a file, and
the output says which hand-written values the policy now publishes, so they
can go from the zone file (`--remove-from-zone` does that, atomically).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._fs import atomic_write
from ..adopt import Unexpressed, adopt, dns_term_order_changed
from ..catalog import load_catalog
from ..context import CompileResult
from ..errors import PolicyError
from ..findings import Severity
from ..integration.merge import plan
from ..names import normalize, relative_to
from ..policy.loader import parse_policy
from ..records import txt_kind_matches
from ..records.dkim import key_name, split_key_name
from ..zoneedit import Removal, remove_values
from ..zoneview import zone_view
from .exitcodes import EXIT_OK, EXIT_POLICY
from .livedns import LiveDns
from .settings import Settings, UsageError, require_policies, resolve
from .workspace import Workspace, load

HEADER = """\
# Mail policy for {domain}, written by `octodns-mailauth init` from {source}.
# Reference: README "Policy reference"; check it with `octodns-mailauth validate`.
"""

UNALIGNED_NOTE = (
    "set by octodns-mailauth init: already authorised in the published SPF record; "
    "check how it can align (octodns-mailauth explain)"
)


@dataclass
class Published:
    """The records a domain publishes, and where each came from."""

    view: dict[tuple[str, str], tuple[str, ...]]
    source: str  # for the policy header and messages
    zone: str | None = None  # the configured zone, when read from the config
    records: list[Any] = field(default_factory=list)  # octoDNS records, for their file/line
    asked: list[str] = field(default_factory=list)  # live: DKIM names asked


def published_from_config(settings: Settings, domain: str) -> Published:
    """The domain's records as the config's YamlProvider sources hold them.
    The one place init reads the octoDNS config's zones."""
    ws = Workspace(settings, [])
    zone = ws.zone_for(domain)
    source = ws.source_zone(zone)
    if source is None:
        raise UsageError(
            f"{domain}: no zone in {settings.octo.path} contains it; add {domain}. under "
            "zones: first (or read live DNS with --nameserver)"
        )
    if source.skipped:
        print(
            f"note: zone {zone}: sources {', '.join(source.skipped)} are not YamlProvider "
            "sources and were not read",
            file=sys.stderr,
        )
    view = zone_view(source.zone, lambda record: False)
    return Published(
        view, f"the zone {zone}. in {settings.octo.path}", zone, list(source.zone.records)
    )


def published_live(
    catalog: Any, domain: str, nameserver: str, timeout: float, selectors: list[str]
) -> Published:
    """The domain's records from live DNS.  DNS cannot list a zone, so DKIM
    selectors are asked by name: the catalog's fixed ones and --selector."""
    dns = LiveDns(nameserver, timeout)
    view: dict[tuple[str, str], tuple[str, ...]] = {}
    names = {domain: ("TXT", "MX"), f"_dmarc.{domain}": ("TXT",)}
    wanted = list(selectors)
    for entry_id in catalog.ids():
        entry = catalog.get(entry_id)
        for group in [entry.dkim, entry.return_path, *entry.records]:
            if group is None:
                continue
            wanted += getattr(group, "selectors", [])
            for tpl in group.records:
                if "{" not in tpl.name and tpl.name != "@":
                    names.setdefault(f"{tpl.name}.{domain}", ("CNAME", "TXT"))
    for selector in dict.fromkeys(wanted):
        names.setdefault(key_name(selector, domain), ("CNAME", "TXT"))
    asked = []
    for name, types in names.items():
        if key := split_key_name(name):
            asked.append(key[0])
        for rtype in types:
            values, alias = dns.query(name, rtype)
            if alias is not None or not values:
                continue
            view[(name, rtype)] = tuple(values)
            if rtype == "CNAME":
                break
    return Published(view, f"live DNS ({dns.where})", asked=asked)


def run(args: Any) -> int:
    settings = resolve(args)
    policies = _policies_folder(settings)
    domain = normalize(args.domain)
    target = policies / f"{domain}.yaml"
    if target.exists():
        raise UsageError(
            f"{target} exists; init never overwrites a policy (edit it, or move it away to "
            "start again)"
        )
    _refuse_second_policy(settings, domain)
    catalog = load_catalog(settings.catalog)
    if args.nameserver:
        if args.remove_from_zone:
            raise UsageError(
                "--remove-from-zone edits the zone file: it needs --config, not --nameserver"
            )
        published = published_live(
            catalog, domain, args.nameserver, args.timeout, list(args.selector or [])
        )
    else:
        if settings.octo is None:
            raise UsageError(
                "init reads the zone from --config FILE (its YamlProvider sources) or live DNS "
                "(--nameserver HOST); give one"
            )
        published = published_from_config(settings, domain)
    return adopt_and_write(settings, domain, published, catalog, target, args)


def _policies_folder(settings: Settings) -> Path:
    """The policy folder; a first policy may create it (its parent must exist)."""
    folder = settings.policies
    if folder is not None and not folder.exists() and folder.parent.is_dir():
        folder.mkdir(mode=0o755)
        print(f"created the policy folder {folder}")
    return require_policies(settings)


def _refuse_second_policy(settings: Settings, domain: str) -> None:
    ws = load(settings)
    for lp in ws.policies:
        if lp.domain == domain:
            raise UsageError(f"{lp.path} is already the policy for {domain}; init writes none")


def adopt_and_write(
    settings: Settings, domain: str, published: Published, catalog: Any, target: Path, args: Any
) -> int:
    adoption = adopt(domain, published.view, catalog)
    if published.asked:
        print(
            "live DNS cannot list DKIM selectors; asked: "
            + ", ".join(published.asked)
            + " (name others with --selector)"
        )
    if not adoption.spf_expressible:
        print(f"{domain}: the published SPF record cannot be written as a policy:")
        for item in adoption.blocked("spf"):
            print(f"  {item.what}: {item.reason}")
        print("nothing written; keep the SPF record hand-written until those terms are gone")
        return EXIT_POLICY
    text, result, acknowledged = _compile_clean(settings, domain, adoption, target, published)
    if result.errors:
        print(f"{domain}: the adopted policy does not compile cleanly; nothing written:")
        for finding in result.errors:
            print(f"  {finding.format()}")
        return EXIT_POLICY
    if args.stdout:
        sys.stdout.write(text)
        return EXIT_OK
    target.parent.mkdir(parents=True, exist_ok=True)
    # The zone edit is planned (and checked) before anything is written, so a
    # value that cannot be cut leaves both the policy folder and the zone as they were.
    edits = None
    if args.remove_from_zone and published.zone is not None and adoption.owned:
        edits = _plan_removal(_locate(adoption.owned, published), published)
    if not atomic_write(target, text, 0o644, overwrite=False):
        raise UsageError(f"{target} appeared while init ran; nothing written")
    print(f"wrote {target}")
    _report(adoption, result, acknowledged, published, settings, edits)
    return EXIT_OK


def _compile_clean(
    settings: Settings, domain: str, adoption: Any, target: Path, published: Published
) -> tuple[str, Any, list[str]]:
    """Render, load and compile as the processor would.  Senders that only fail
    alignment get `unaligned_ok` (said in the output); a DMARC record the policy
    cannot carry as it is stays hand-written (with the reason).  Returns the
    text, the compile result (its errors: nothing may be written) and the
    senders acknowledged."""
    ws = Workspace(settings, [])
    acknowledged: list[str] = []
    for _ in range(4):
        text = HEADER.format(domain=domain, source=published.source) + yaml.safe_dump(
            adoption.policy, sort_keys=False, default_flow_style=False, width=1 << 16
        )
        try:
            lp = parse_policy(text, str(target), domain)
        except PolicyError as e:
            result = CompileResult(domain, findings=list(e.findings))
        else:
            result = ws.compile(lp, published.view)
        errors = result.errors
        if not errors:
            return text, result, acknowledged
        paths = [(f.location and f.location.key_path) or "" for f in errors]
        if "dmarc" in adoption.policy and all(p.startswith("dmarc") for p in paths):
            _keep_dmarc_by_hand(adoption, domain, errors)
            continue
        blocked = []
        for finding, path in zip(errors, paths, strict=True):
            m = re.match(r"senders\[(\d+)\]", path)
            if finding.code == "align-none" and m:
                blocked.append(int(m.group(1)))
        if not blocked or len(blocked) != len(errors):
            return text, result, acknowledged
        for index in blocked:
            sender = adoption.policy["senders"][index]
            sender["unaligned_ok"] = UNALIGNED_NOTE
            acknowledged.append(sender["name"])
    return text, result, acknowledged


def _keep_dmarc_by_hand(adoption: Any, domain: str, errors: list[Any]) -> None:
    del adoption.policy["dmarc"]
    adoption.owned = [o for o in adoption.owned if o.why != "dmarc"]
    why = "; ".join(f.message for f in errors)
    adoption.unexpressed.append(
        Unexpressed(
            adoption.dmarc or f"_dmarc.{domain}",
            f"the policy cannot publish it as it is ({why}); it stays hand-written",
            "dmarc",
            False,
        )
    )


def _report(
    adoption: Any,
    result: Any,
    acknowledged: list[str],
    published: Published,
    settings: Settings,
    edits: Any,
) -> None:
    senders = adoption.policy.get("senders", [])
    if senders:
        print(
            "senders: "
            + ", ".join(
                s["name"] + (f" ({s['provider']})" if "provider" in s else "") for s in senders
            )
        )
    for name in acknowledged:
        print(
            f"sender {name}: cannot align under the published DMARC policy; unaligned_ok "
            "is set so the policy compiles: review it (octodns-mailauth explain)"
        )
    for note in adoption.notes:
        print(f"note: {note}")
    for item in adoption.unexpressed:
        print(f"not adopted: {item.what}: {item.reason}")
    for finding in result.findings:
        if finding.severity is Severity.WARNING:
            print(f"warning: {finding.detail()}")
    compiled = [r for r in result.records if r.kind == "spf" and r.name == adoption.domain]
    if adoption.spf and compiled and dns_term_order_changed(adoption.spf, compiled[0].values[0]):
        print(
            "note: the compiled SPF record evaluates its DNS terms (a, mx, include) in another "
            "order than the published one: the same senders pass unless a lookup fails (a void "
            "lookup, such as an MX host without AAAA for an IPv6 sender, or the 10-lookup "
            "limit), where receivers may stop at a different term"
        )
    _new_records(result, published)
    _owned(adoption, published, edits)
    _sync_check(result, published, settings)


def _sync_check(result: Any, published: Published, settings: Settings) -> None:
    """The processor's merge over the zone as it now is: would octodns-sync pass?"""
    if published.zone is None or settings.octo is None:
        return
    source = Workspace(settings, []).source_zone(published.zone)
    if source is None:
        return
    findings = plan(source.zone, result.records, source=settings).findings
    if not findings:
        print("octodns-sync will accept the zone with this policy")
    else:
        print(
            "octodns-sync will refuse the zone until the values listed above are deleted: "
            + "; ".join(f.detail() for f in findings)
        )


def _new_records(result: Any, published: Published) -> None:
    have = {(n, t): set(v) for (n, t), v in published.view.items()}
    for record in result.records:
        present = have.get((record.name, record.type), set())
        if record.kind is not None and record.type == "TXT":
            if any(txt_kind_matches(record.kind, v) for v in present):
                continue
        if not set(record.values) <= present:
            print(
                f"new: the policy also publishes {record.name} {record.type} "
                + " ".join(record.values)
                + f" ({record.owner})"
            )


def _owned(adoption: Any, published: Published, edits: Any) -> None:
    """The hand-written values the policy now publishes: where they are, and
    either the advice to delete them or (with --remove-from-zone) their removal."""
    if not adoption.owned:
        return
    if edits is not None:
        _apply_removal(edits)
        return
    print("the policy now publishes these hand-written values; delete them from the zone:")
    for owned, where in _locate(adoption.owned, published):
        at = where or published.source
        print(f"  {at}: {owned.name} {owned.type} {owned.value!r} ({owned.why})")
    if published.zone is not None:
        print("  (or run init with --remove-from-zone to remove them)")


def _locate(owned: list[Any], published: Published) -> list[tuple[Any, str | None]]:
    out = []
    for item in owned:
        relative = relative_to(item.name, published.zone or "")
        where = None
        for record in published.records:
            if record.name == relative and record._type == item.type:
                where = _file_line(getattr(record, "context", None))
        out.append((item, where))
    return out


def _file_line(context: Any) -> str | None:
    m = re.match(r"(?P<file>.+), line (?P<line>\d+), column \d+$", str(context or ""))
    return f"{m['file']}:{m['line']}" if m else None


def _plan_removal(
    located: list[tuple[Any, str | None]], published: Published
) -> list[tuple[str, str, list[Any]]]:
    """(file, its new text, the removals) for each zone file; every file checked."""
    by_file: dict[str, list[Removal]] = {}
    for item, where in located:
        if where is None:
            raise UsageError(
                f"{item.name} {item.type}: cannot tell which zone file holds it; nothing written"
            )
        path = where.rsplit(":", 1)[0]
        relative = relative_to(item.name, published.zone or "")
        by_file.setdefault(path, []).append(Removal(relative, item.type, item.value))
    return [
        (path, remove_values(Path(path), removals), removals) for path, removals in by_file.items()
    ]


def _apply_removal(edits: list[tuple[str, str, list[Any]]]) -> None:
    for path, text, removals in edits:
        atomic_write(path, text, os.stat(path).st_mode & 0o777)
        for removal in removals:
            print(f"removed from {path}: {removal.name or '@'} {removal.type} {removal.value!r}")
