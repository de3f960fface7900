"""The SPF compile step: limits across nested includes, flattening from the lock,
splitting, names other than the apex, and the policy checks.

Every emitted record is re-analysed here with `analyze` over the same data,
independently of what the step says about it.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from static_resolver import StaticResolver

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.cli import report
from octodns_mailauth.cli.render import spf_tree_lines
from octodns_mailauth.cli.report import DomainReport
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.dns.lockfile import NO_LOCK, LockEntry, LockResolver, SpfLock
from octodns_mailauth.dns.resolver import Resolver
from octodns_mailauth.errors import KeyUnavailable
from octodns_mailauth.findings import Severity
from octodns_mailauth.policy.loader import parse_policy
from octodns_mailauth.records.spf import parse
from octodns_mailauth.spf.lookups import LookupTree, analyze
from octodns_mailauth.spf.size import SIZE_GUIDELINE, answer_size

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
CATALOG = load_catalog([])


class NoKeys:
    def public_key(self, domain: str, key: object) -> str:
        raise KeyUnavailable("no keys in these tests")


def vendor(n_children: int, name: str, base: int) -> dict[str, str]:
    """A vendor record including `n_children` leaf records of two /25 ranges each
    (adjacent, so flattening must merge them into one /24)."""
    out = {name: "v=spf1 " + " ".join(f"include:n{i}.{name}" for i in range(n_children)) + " ~all"}
    for i in range(n_children):
        out[f"n{i}.{name}"] = f"v=spf1 ip4:10.{base}.{i}.0/25 ip4:10.{base}.{i}.128/25 ~all"
    return out


def records_of(data: dict[str, str]) -> dict[tuple[str, str], list[str]]:
    return {(n, "TXT"): [t] for n, t in data.items()}


THIRD_PARTY = {
    **vendor(4, "big-esp.example", 1),  # 5 lookups
    **vendor(3, "crm.example", 2),  # 4 lookups
    **vendor(2, "helpdesk.example", 3),  # 3 lookups
    "kept.example": "v=spf1 exists:%{i}._spf.kept.example ip4:192.0.2.0/24 ~all",
    "strict.example": "v=spf1 -ip4:192.0.2.1 ip4:192.0.2.0/24 ~all",
    "open.example": "v=spf1 +all",
    "ptr.example": "v=spf1 ptr:ptr.example ~all",
}


def lock_of(
    data: dict[str, str], when: datetime = NOW, tmp: Path = Path("spf-lock.json")
) -> LockResolver:
    lock = SpfLock(tmp, refreshed=when)
    for name, text in data.items():
        lock.entries[name] = LockEntry(when, answers={"TXT": [text]})
    return LockResolver(lock)


def compile_text(
    text: str, resolver: object = None, zone: dict | None = None, now: datetime = NOW
) -> CompileResult:
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    return compile_policy(lp, CATALOG, NoKeys(), resolver, zone, now=now)  # type: ignore[arg-type]


def spf_at(result: CompileResult, name: str = "example.com") -> str:
    values = [r.values[0] for r in result.records if r.name == name and r.kind == "spf"]
    assert len(values) == 1, values
    return values[0]


def codes(result: CompileResult, severity: Severity | None = None) -> list[str]:
    return [f.code or "" for f in result.findings if severity is None or f.severity is severity]


ELEVEN = """\
senders:
  - {name: esp, include: [big-esp.example]}
  - {name: crm, include: [crm.example]}
  - {name: helpdesk, include: [helpdesk.example]}
"""


def test_eleven_nested_lookups_fail_listing_each_sender() -> None:
    result = compile_text(ELEVEN, lock_of(THIRD_PARTY))
    (err,) = [f for f in result.errors if f.code == "spf-too-many-lookups"]
    # 5 + 4 + 3 = 12: counted through the includes, not just the 3 top-level terms.
    assert "needs 12 DNS lookups" in err.message
    assert "esp: 5" in err.message and "crm: 4" in err.message and "helpdesk: 3" in err.message
    assert "flatten: true" in (err.hint or "") and "flatten: auto" in (err.hint or "")
    assert "'esp'" in (err.hint or "")  # the costliest sender is named
    assert err.rfc == "RFC 7208 §4.6.4"
    assert err.location is not None and err.location.file == "mail/example.com.yaml"
    tree = result.details.spf
    assert isinstance(tree, LookupTree) and tree.total == 12


def test_flatten_auto_passes_and_the_record_needs_at_most_ten() -> None:
    resolver = lock_of(THIRD_PARTY)
    result = compile_text(ELEVEN + "spf: {flatten: auto}\n", resolver)
    assert not result.errors, [str(f) for f in result.errors]
    value = spf_at(result)
    # Independent check: a fresh analysis of what we publish.
    tree = analyze("example.com", lock_of(THIRD_PARTY), value)
    assert tree.total <= 10 and not tree.permerrors()
    # Only the costliest include went: esp (5) brings 12 down to 7.
    assert "include:big-esp.example" not in value
    assert "include:crm.example" in value and "include:helpdesk.example" in value
    # Eight adjacent /25s (10.1.0.0 - 10.1.3.255) merged into one /22.
    assert "ip4:10.1.0.0/22" in value and "/25" not in value
    info = [f for f in result.findings if f.code == "spf-flattened"]
    assert info and "big-esp.example" in info[0].message and "2026-11-25" in info[0].message


def test_flattened_addresses_match_the_include_tree() -> None:
    result = compile_text(
        "senders:\n  - {name: esp, include: [big-esp.example], flatten: true}\n",
        lock_of(THIRD_PARTY),
    )
    record = parse(spf_at(result))
    got = {m.network for m in record.mechanisms if m.network is not None}
    want = {ipaddress.ip_network(f"10.1.{i}.{h}/25") for i in range(4) for h in (0, 128)}
    covered = {n for n in want if any(n.subnet_of(g) for g in got)}  # type: ignore[arg-type]
    assert covered == want
    assert sum(a.num_addresses for a in got) == sum(w.num_addresses for w in want)


def test_flatten_keeps_exists_and_refuses_non_pass_terms() -> None:
    result = compile_text(
        "senders:\n"
        "  - {name: a, include: [kept.example], flatten: true}\n"
        "  - {name: b, include: [strict.example], flatten: true}\n",
        lock_of(THIRD_PARTY),
    )
    value = spf_at(result)
    assert "exists:%{i}._spf.kept.example" in value and "ip4:192.0.2.0/24" in value
    assert "include:kept.example" not in value
    assert "include:strict.example" in value  # -ip4 inside: flattening would be wrong
    (warn,) = [f for f in result.findings if f.code == "spf-flatten-failed"]
    assert "non-pass term '-ip4:192.0.2.1'" in warn.message


def test_flatten_without_lock_entry_says_run_refresh() -> None:
    result = compile_text(
        "senders:\n  - {name: a, include: [unknown.example], flatten: true}\n",
        lock_of(THIRD_PARTY),
    )
    assert "include:unknown.example" in spf_at(result)
    missing = [f for f in result.findings if f.code == "spf-lock-missing"]
    assert missing and "unknown.example TXT" in missing[0].message
    assert "lock refresh" in (missing[0].hint or "")
    assert missing[0].severity is Severity.WARNING
    assert missing[0].cause is None  # this policy's lock lacks it: not a run-wide cause


def test_stale_lock_warns_and_fresh_does_not() -> None:
    old = lock_of(THIRD_PARTY, when=NOW - timedelta(days=45))
    text = "senders:\n  - {name: a, include: [crm.example]}\n"
    stale = [f for f in compile_text(text, old).findings if f.code == "spf-lock-stale"]
    assert stale and "45 days ago" in stale[0].message and "lock refresh" in (stale[0].hint or "")
    assert "spf-lock-stale" not in codes(compile_text(text, lock_of(THIRD_PARTY)))
    longer = compile_text(text + "spf: {lock_max_age_days: 60}\n", old)
    assert "spf-lock-stale" not in codes(longer)


def test_no_lock_is_a_warning_and_nothing_is_counted() -> None:
    result = compile_text(ELEVEN, None)
    assert not result.errors  # 3 top-level lookups; nested ones unknown
    (note,) = [f for f in result.findings if f.code == "spf-lock-missing"]
    assert note.severity is Severity.WARNING and "no SPF lock" in note.message
    assert note.cause == NO_LOCK  # the processor says it once per run
    assert result.details.spf_not_followed == [
        "big-esp.example",
        "crm.example",
        "helpdesk.example",
    ]
    rep = report.build(parse_policy(ELEVEN, "mail/example.com.yaml", "example.com"), result)
    assert rep.spf_total is None and not rep.spf_per_sender
    text = report.text(rep)
    assert "not counted" in text and "lookups (limit 10)" not in text.split("DMARC")[0]
    assert "not counted" in report.markdown(rep)


def test_long_record_is_split_into_chained_includes() -> None:
    ips = ", ".join(f"198.51.{i}.7" for i in range(40))
    zone = {("example.com", "TXT"): ("google-site-verification=" + "x" * 43,)}
    result = compile_text(f"senders:\n  - name: farm\n    ip4: [{ips}]\n", None, zone)
    spf = [r for r in result.records if r.kind == "spf"]
    names = [r.name for r in spf]
    assert names[0] == "example.com" and names[1] == "_spf1.example.com"
    for r in spf:
        others = list(zone.get((r.name, "TXT"), ()))
        assert answer_size(r.name, [r.values[0], *others]) <= SIZE_GUIDELINE
    # The chain still lists every address, once, reachable from the apex.
    data = {(r.name, "TXT"): [r.values[0]] for r in spf}
    tree = analyze("example.com", StaticResolver(data))
    assert not tree.permerrors() and tree.total == len(spf) - 1
    listed = [m for r in spf for m in parse(r.values[0]).mechanisms if m.name == "ip4"]
    assert sorted(str(m.network) for m in listed) == sorted(f"198.51.{i}.7/32" for i in range(40))
    assert "spf-split" in codes(result, Severity.INFO)


def test_spf_names_publish_at_bounce_host() -> None:
    text = (
        "senders:\n"
        "  - {name: relay, ip4: [192.0.2.5], return_path: bounce.example.com}\n"
        "  - {name: esp, include: [crm.example]}\n"
        "spf:\n  names:\n    mta: [esp]\n"
    )
    result = compile_text(text, lock_of(THIRD_PARTY))
    assert spf_at(result, "bounce.example.com") == "v=spf1 ip4:192.0.2.5 -all"
    assert spf_at(result, "mta.example.com") == "v=spf1 include:crm.example -all"
    # mta is nobody's return path: published, but receivers never check it.
    (warn,) = [f for f in result.findings if f.code == "spf-no-mail-use"]
    assert "mta.example.com" in warn.message and warn.rfc == "RFC 7208 §2.4"
    # Its lookups are counted as the apex's are: past 10 it is an error at spf.names.mta.
    more = "include: [crm.example, big-esp.example, helpdesk.example]"
    over = compile_text(text.replace("include: [crm.example]", more), lock_of(THIRD_PARTY))
    (error,) = [e for e in over.errors if e.location and e.location.key_path == "spf.names.mta"]
    assert error.code == "spf-too-many-lookups" and "mta.example.com needs 12" in error.message


def test_spf_names_unknown_sender_is_an_error() -> None:
    result = compile_text("senders:\n  - {name: a, ip4: [192.0.2.1]}\nspf: {names: {b: [x]}}\n")
    (err,) = result.errors
    assert "no sender is named 'x'" in err.message and err.location is not None
    assert err.location.key_path == "spf.names.b"


def test_catalog_bounce_record_is_analysed() -> None:
    text = (
        "senders:\n  - name: shop\n    provider: amazonses\n    region: eu-west-1\n"
        "    mail_from: bounce\n"
    )
    result = compile_text(text, lock_of({"amazonses.com": "v=spf1 ip4:192.0.2.0/24 -all"}))
    assert not result.errors
    # The vendor's record is walked from our bounce host: its error is said with that path.
    result = compile_text(text, lock_of({"amazonses.com": "v=spf1 a:museum -all"}))
    (error,) = result.errors
    assert error.code == "spf-permerror"
    assert error.message.startswith("bounce.example.com > include:amazonses.com: SPF term")


def test_neutral_all_with_enforcing_dmarc_warns() -> None:
    text = (
        "senders:\n  - {name: a, ip4: [192.0.2.1]}\nspf: {all: neutral}\n"
        "dmarc: {policy: reject, rua: [mailto:d@example.com]}\n"
    )
    result = compile_text(text)
    (warn,) = [f for f in result.findings if f.code == "spf-neutral-all"]
    assert "?all" in warn.message and warn.location is not None and warn.location.line == 3


def test_pass_all_ptr_and_duplicate_includes_in_the_tree() -> None:
    data = {
        **THIRD_PARTY,
        "twice.example": "v=spf1 include:crm.example ~all",
    }
    text = (
        "senders:\n  - {name: a, include: [open.example, ptr.example]}\n"
        "  - {name: b, include: [crm.example, twice.example]}\n"
    )
    result = compile_text(text, lock_of(data))
    assert "spf-pass-all" in codes(result, Severity.ERROR)
    assert "spf-ptr" in codes(result, Severity.WARNING)
    dup = [f for f in result.findings if f.code == "spf-duplicate-include"]
    assert dup and "crm.example is included twice" in dup[0].message


def test_two_spf_records_at_another_name_of_the_zone() -> None:
    zone = {("old.example.com", "TXT"): ("v=spf1 -all", "v=spf1 ~all")}
    result = compile_text("senders:\n  - {name: a, ip4: [192.0.2.1]}\n", None, zone)
    (warn,) = [f for f in result.findings if f.code == "spf-two-records"]
    assert "old.example.com" in warn.message and warn.rfc == "RFC 7208 §3.2"


def test_own_names_come_from_the_zone_not_the_lock() -> None:
    zone = {("mail.example.com", "A"): ("192.0.2.9",)}
    result = compile_text(
        "senders:\n  - {name: a, a: [mail.example.com, gone.example.com]}\n",
        lock_of({}),
        zone,
    )
    tree = result.details.spf
    assert isinstance(tree, LookupTree)
    assert tree.void_total == 1  # gone.example.com: NXDOMAIN in our own zone
    assert "spf-lock-missing" not in codes(result)


@pytest.mark.parametrize("mode", ["always", "auto", "never", "false", "true"])
def test_flatten_modes(mode: str) -> None:
    result = compile_text(
        f"senders:\n  - {{name: a, include: [crm.example]}}\nspf: {{flatten: {mode}}}\n",
        lock_of(THIRD_PARTY),
    )
    value = spf_at(result)
    assert ("include:crm.example" in value) == (mode not in ("always", "true"))


# --- through octoDNS, over the example ---------------------------------------------


def test_octodns_sync_fails_past_ten_and_passes_flattened(example: Path) -> None:
    """Real vendor records from the example's lock: Google (4) + Microsoft 365 (1)
    + SendGrid (2) + Mandrill (1) + three more includes of our own = 11."""
    import yaml
    from octodns.manager import Manager

    from octodns_mailauth.errors import MailAuthProcessorError

    lock_path = example / "zones" / "mail" / "spf-lock.json"
    lock = SpfLock.load(lock_path)
    extra = {
        "spf.mandrillapp.com": "v=spf1 ip4:198.2.128.0/24 ip4:198.2.132.0/22 ~all",
        "a.vendor.example": "v=spf1 ip4:203.0.113.0/25 ~all",
        "b.vendor.example": "v=spf1 ip4:203.0.113.128/25 ~all",
        "c.vendor.example": "v=spf1 ip6:2001:db8:c::/48 ~all",
    }
    for name, text in extra.items():
        lock.entries[name] = LockEntry(NOW, answers={"TXT": [text]})
    lock.refreshed = NOW
    lock.write()
    policy_path = example / "zones" / "mail" / "example.com.yaml"
    policy = yaml.safe_load(policy_path.read_text())
    policy["senders"] += [
        {"name": "staff", "provider": "google"},
        {"name": "mandrill", "include": ["spf.mandrillapp.com"]},
        {"name": "vendors", "include": list(extra)[1:]},
    ]
    policy_path.write_text(yaml.safe_dump(policy))
    with pytest.raises(MailAuthProcessorError) as info:
        Manager("zones/config.yaml").sync(dry_run=True)
    text = str(info.value)
    assert "zones/mail/example.com.yaml" in text and "needs 11 DNS lookups" in text
    for part in ("staff: 4", "vendors: 3", "newsletters: 2", "office: 1", "mandrill: 1"):
        assert part in text
    assert "flatten: true" in text and "flatten: auto" in text

    policy["spf"]["flatten"] = "auto"
    policy_path.write_text(yaml.safe_dump(policy))
    Manager("zones/config.yaml").sync(dry_run=False)
    import dns.zone

    zone = dns.zone.from_file(
        str(example / "zones" / "output" / "example.com.zone"),
        "example.com",
        relativize=False,
        check_origin=False,
    )
    served: dict[tuple[str, str], list[str]] = {}
    for name, rdataset in zone.iterate_rdatasets("TXT"):
        texts = [b"".join(r.strings).decode() for r in rdataset]
        served[(name.to_text().rstrip(".").lower(), "TXT")] = texts
    offline = LockResolver(SpfLock.load(lock_path))

    class Published(Resolver):
        def query(self, name: str, rdtype: str) -> list[str]:
            key = (name.rstrip(".").lower(), rdtype.upper())
            return served[key] if key in served else offline.query(name, rdtype)

    tree = analyze("example.com", Published())  # what a receiver sees, from the zone file
    assert tree.record is not None and tree.record.startswith("v=spf1")
    assert tree.total <= 10 and not tree.permerrors(), spf_tree_lines(tree)
    # The plan with the fewest split records, then the fewest includes flattened:
    # one single-lookup include is enough, Google's many ranges would need a split.
    assert "include:_spf.google.com" in tree.record
    assert not any(c.domain.startswith("_spf1.") for c in tree.children), spf_tree_lines(tree)
    left = [i for i in ("spf.mandrillapp.com", *list(extra)[1:]) if f"include:{i}" in tree.record]
    assert len(left) == 3 and tree.total == 10, spf_tree_lines(tree)


# --- lookups per sender add up to the total ---------------------------------------------------


def _report(
    text: str, resolver: object, zone: dict | None = None
) -> tuple[CompileResult, DomainReport]:
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    result = compile_policy(lp, CATALOG, NoKeys(), resolver, zone, now=NOW)  # type: ignore[arg-type]
    return result, report.build(lp, result)


def _published(result: CompileResult, zone: dict | None = None) -> StaticResolver:
    """The records we publish, the zone's and the third-party data, for an
    independent analysis."""
    data = records_of(SPREAD)
    data.update({key: list(values) for key, values in (zone or {}).items()})
    for r in result.records:
        if r.kind == "spf":
            data[(r.name, "TXT")] = [r.values[0]]
    return StaticResolver(data)


SPREAD = {
    **THIRD_PARTY,
    "many.example": "v=spf1 "
    + " ".join(f"exists:%{{i}}.e{i}.many.example" for i in range(7))
    + " ip4:192.0.2.0/24 ~all",
}
FARM = ", ".join(f"198.51.{i}.7" for i in range(40))  # long enough to force a split


def test_flattened_terms_stay_with_their_sender_in_explain() -> None:
    zone = {("example.com", "A"): ("192.0.2.80",)}
    result, rep = _report(
        "senders:\n"
        "  - {name: a, include: [many.example], flatten: true}\n"
        "  - {name: b, a: true}\n",
        lock_of(SPREAD),
        zone,
    )
    total = analyze("example.com", _published(result, zone)).total  # independent: 7 exists + a
    assert total == 8
    assert result.details.spf_per_sender == {"a": 7, "b": 1}
    assert rep.spf_total == total and rep.spf_per_sender == {"a": 7, "b": 1}
    line = [x for x in report.text(rep).splitlines() if "per sender" in x][0]
    assert line.strip() == "per sender: a 7, b 1" and "?" not in line


def test_split_over_ten_counts_the_link_and_sums_to_the_total() -> None:
    text = (
        f"senders:\n  - name: a\n    ip4: [{FARM}]\n    include: [big-esp.example, crm.example]\n"
        "  - {name: b, include: [helpdesk.example]}\n"
    )
    result, rep = _report(text, lock_of(SPREAD))
    assert "spf-split" in codes(result, Severity.INFO)
    total = analyze("example.com", _published(result)).total
    assert total == 13  # 5 + 4 + 3 + the include:_spf1 link
    (err,) = [f for f in result.errors if f.code == "spf-too-many-lookups"]
    assert f"needs {total} DNS lookups" in err.message
    shown = err.message.split("lookups per sender: ")[1].rstrip(")")
    per = {k: int(v) for k, v in (part.split(": ") for part in shown.split(", "))}
    assert per == {"a": 9, "b": 3, "split records": 1} and sum(per.values()) == total
    assert "'a'" in (err.hint or "")  # the costliest sender, not the split
    assert rep.spf_per_sender == {"a": 9, "b": 3, "split records": 1}
    assert sum(rep.spf_per_sender.values()) == rep.spf_total == total


def test_split_moves_bare_a_and_mx_as_explicit_names() -> None:
    """In an included record a bare `a` checks the included name (RFC 7208 §5.2),
    so a term moved into _spf1.<domain> must name the domain itself."""
    zone = {("example.com", "A"): ("192.0.2.80",), ("example.com", "MX"): ("10 mx.example.com.",)}
    text = f"senders:\n  - name: a\n    ip4: [{FARM}]\n    a: true\n    mx: true\n"
    result, rep = _report(text, lock_of(SPREAD), zone)
    chained = spf_at(result, "_spf1.example.com")
    terms = chained.split()[1:]
    assert "a:example.com" in terms and "mx:example.com" in terms
    assert "a" not in terms and "mx" not in terms
    tree = analyze("example.com", _published(result, zone))
    assert tree.void_total == 0  # the moved terms find example.com's A and MX
    assert rep.spf_per_sender == {"a": 2, "split records": 1}
    assert sum(rep.spf_per_sender.values()) == tree.total


def test_the_published_record_is_analysed_as_published_not_as_drafted() -> None:
    """The step reuses the draft's analysis only where it is the published
    record's.  Publishing at a name makes the name exist: an `a` term there that
    found NXDOMAIN in the draft finds no data once the record is in place, and
    the findings must say what receivers will see."""
    zone = {("example.com", "A"): ("192.0.2.80",)}
    text = "senders:\n  - {name: relay, a: true, return_path: bounce.example.com}\n"
    result = compile_text(text, lock_of({}), zone)
    assert spf_at(result, "bounce.example.com") == "v=spf1 a -all"
    independent = analyze("bounce.example.com", _published(result, zone))
    (expected,) = independent.all_notes()
    assert "bounce.example.com has no A/AAAA records" in expected  # not NXDOMAIN
    notes = [f.message for f in result.findings if f.code == "spf-note"]
    assert notes == [expected]
    # The apex's record is the draft too and asks nothing of its own name: its
    # analysis is reused, and matches an independent one all the same.
    apex = result.details.spf
    assert isinstance(apex, LookupTree)
    again = analyze("example.com", _published(result, zone))
    assert (apex.record, apex.total, apex.all_notes()) == (
        again.record,
        again.total,
        again.all_notes(),
    )
