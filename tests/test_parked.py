"""Parked domains (M3AAWG BCP) and null MX (RFC 7505)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dns.rdatatype
import dns.resolver
import dns.zone
import pytest
import yaml
from checkdmarc.dmarc import parse_dmarc_record
from checkdmarc.spf import parse_spf_record
from octodns.manager import Manager

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.errors import MailAuthProcessorError
from octodns_mailauth.findings import Severity
from octodns_mailauth.mtasts import policy_id, write_policy_files
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import load_policy_dir, parse_policy

PATH = "mail/example.com.yaml"
ZoneDict = dict[tuple[str, str], tuple[str, ...]]
WEB_ONLY: ZoneDict = {
    ("example.com", "A"): ("192.0.2.1",),
    ("shop.example.com", "A"): ("192.0.2.2",),
}


class NoKeys:
    def public_key(self, domain: str, key: DkimKey) -> str:
        raise AssertionError("no DKIM keys in these policies")


def compile_text(text: str, zone: ZoneDict | None = None) -> CompileResult:
    lp = parse_policy(text, PATH, "example.com")
    return compile_policy(lp, load_catalog(), NoKeys(), None, zone)


def published(result: CompileResult) -> dict[tuple[str, str], tuple[str, ...]]:
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for r in result.records:
        assert (r.name, r.type) not in out, f"two records at {r.name} {r.type}"
        out[(r.name, r.type)] = r.values
    return out


def codes(result: CompileResult, severity: Severity) -> set[str]:
    return {str(f.code) for f in result.findings if f.severity is severity}


def test_parked_publishes_the_m3aawg_records() -> None:
    result = compile_text("parked: true\n", WEB_ONLY)
    assert result.errors == []
    assert published(result) == {
        ("example.com", "TXT"): ("v=spf1 -all",),
        ("example.com", "MX"): ("0 .",),
        ("_dmarc.example.com", "TXT"): ("v=DMARC1; p=reject; sp=reject; np=reject",),
        # Each host of the zone, not a wildcard that would shadow _mta-sts & co.
        ("shop.example.com", "TXT"): ("v=spf1 -all",),
        ("*._domainkey.example.com", "TXT"): ("v=DKIM1; p=",),
    }
    assert result.details.parked is True
    # Advice meant for domains that send mail is not given for a parked one.
    assert not {"dmarc-missing", "dmarc-no-senders"} & {str(f.code) for f in result.findings}
    assert all(r.owner == "parked" for r in result.records)


def test_parked_records_parse_with_checkdmarc() -> None:
    records = published(compile_text("parked: true\n"))
    spf = parse_spf_record(records[("example.com", "TXT")][0], "example.com")
    assert spf["parsed"]["all"] == "fail"
    dmarc = parse_dmarc_record(
        records[("_dmarc.example.com", "TXT")][0], "example.com", include_tag_descriptions=False
    )
    tags = dmarc["tags"]
    assert (tags["p"]["value"], tags["sp"]["value"]) == ("reject", "reject")


def test_parked_keeps_report_destinations() -> None:
    result = compile_text("parked: true\ndmarc: {policy: reject, rua: mailto:d@example.com}\n")
    assert result.errors == []
    assert published(result)[("_dmarc.example.com", "TXT")] == (
        "v=DMARC1; p=reject; sp=reject; np=reject; rua=mailto:d@example.com",
    )


def test_parked_with_senders_is_an_error() -> None:
    text = "parked: true\nsenders:\n  - {name: relay, ip4: [192.0.2.5]}\n"
    result = compile_text(text)
    (error,) = [e for e in result.errors if e.code == "parked-has-senders"]
    assert "'relay'" in error.message
    assert error.location is not None and error.location.line == 2


def test_parked_with_other_mx_is_an_error() -> None:
    zone = dict(WEB_ONLY)
    zone[("example.com", "MX")] = ("10 mx1.example.com.",)
    result = compile_text("parked: true\n", zone)
    (error,) = [e for e in result.errors if e.code == "null-mx-conflict"]
    assert "10 mx1.example.com." in error.message and error.rfc == "RFC 7505 §3"
    assert error.location is not None and error.location.key_path == "parked"
    assert ("example.com", "MX") not in published(result)
    # a null MX already in the zone is no conflict
    zone[("example.com", "MX")] = ("0 .",)
    assert compile_text("parked: true\n", zone).errors == []


@pytest.mark.parametrize(
    "extra, code",
    [
        ("dmarc: {policy: quarantine}\n", "parked-dmarc-conflict"),
        ("dmarc: {policy: reject, subdomain_policy: none}\n", "parked-dmarc-conflict"),
        ("spf: {all: softfail}\n", "parked-spf-conflict"),
        ("mta_sts: {mode: enforce, mx: [mx.example.com]}\n", "mta-sts-no-mx"),
        ("bimi: {logo: 'https://example.com/l.svg'}\n", "bimi-parked"),
    ],
)
def test_parked_contradictions_are_errors(extra: str, code: str) -> None:
    assert code in codes(compile_text("parked: true\n" + extra), Severity.ERROR)


def test_wildcards_step_aside_for_the_zones_own_records() -> None:
    zone = dict(WEB_ONLY)
    zone[("*.example.com", "TXT")] = ("v=spf1 include:_spf.example.net -all",)
    zone[("*._domainkey.example.com", "CNAME")] = ("keys.example.net.",)
    result = compile_text("parked: true\n", zone)
    assert result.errors == []
    names = {r.name for r in result.records}
    assert "*.example.com" not in names and "*._domainkey.example.com" not in names
    warned = [f for f in result.warnings if f.code == "parked-wildcard-skipped"]
    assert len(warned) == 1 and "*._domainkey" in warned[0].message


def test_parked_never_publishes_a_wildcard_spf() -> None:
    """A wildcard TXT would answer `_mta-sts`, `_smtp._tls`, `<sel>._bimi` and
    `_dmarc.<sub>` too (RFC 7208 §3.5 discourages it): each host gets its own."""
    zone = {
        **WEB_ONLY,
        ("*.example.com", "A"): ("192.0.2.9",),  # the zone's own wildcard: not a host name
        ("_sip._tcp.example.com", "SRV"): ("10 5 5060 sip.example.com.",),
        ("mail.example.com", "AAAA"): ("2001:db8::25",),
        ("own.example.com", "A"): ("192.0.2.3",),
        ("own.example.com", "TXT"): ("v=spf1 ip4:192.0.2.3 -all",),
    }
    records = published(compile_text("parked: true\n", zone))
    spf_names = sorted(
        n for (n, t), v in records.items() if t == "TXT" and v[0].startswith("v=spf1")
    )
    assert spf_names == ["example.com", "mail.example.com", "shop.example.com"]


def test_null_mx_alone() -> None:
    text = "null_mx: true\nsenders:\n  - {name: relay, ip4: [192.0.2.5], mx: true}\n"
    result = compile_text(text, WEB_ONLY)
    records = published(result)
    assert records[("example.com", "MX")] == ("0 .",)
    # SPF and DMARC stay the normal steps' business
    assert records[("example.com", "TXT")][0].startswith("v=spf1 ip4:192.0.2.5")
    assert not result.details.parked
    (warning,) = [f for f in result.warnings if f.code == "null-mx-spf-mx"]
    assert warning.location is not None and warning.location.key_path == "senders[0].mx"


def test_null_mx_with_other_mx_is_an_error() -> None:
    zone = {("example.com", "MX"): ("10 mx1.example.com.", "0 .")}
    result = compile_text("null_mx: true\n", zone)
    (error,) = [e for e in result.errors if e.code == "null-mx-conflict"]
    assert "null MX" in error.message and "10 mx1.example.com." in error.message
    assert error.location is not None and error.location.key_path == "null_mx"


# --- through octoDNS, over a copy of zones/ -------------------------------------------------


def served(zone: str) -> dict[tuple[str, str], list[str]]:
    z = dns.zone.from_file(f"zones/output/{zone}.zone", zone, relativize=False, check_origin=False)
    out: dict[tuple[str, str], list[str]] = {}
    for name, _ttl, rdata in z.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        text = b"".join(rdata.strings).decode() if rtype == "TXT" else rdata.to_text()
        out.setdefault((name.to_text().rstrip("."), rtype), []).append(text)
    return out


def test_example_parked_domain_publishes_and_second_sync_plans_nothing(example: Path) -> None:
    assert Manager("zones/config.yaml").sync(dry_run=False) > 0
    parked = served("parked.example")
    assert parked[("parked.example", "MX")] == ["0 ."]
    assert parked[("parked.example", "TXT")] == ["v=spf1 -all"]
    assert parked[("_dmarc.parked.example", "TXT")] == ["v=DMARC1; p=reject; sp=reject; np=reject"]
    assert ("*.parked.example", "TXT") not in parked
    assert parked[("*._domainkey.parked.example", "TXT")] == ["v=DKIM1; p="]
    # the zone's own records are kept
    assert parked[("parked.example", "A")] == ["192.0.2.40"]
    assert parked[("www.parked.example", "CNAME")] == ["parked.example."]
    assert Manager("zones/config.yaml").sync(dry_run=False) == 0


def test_parked_domain_whose_zone_has_mx_fails_the_sync(example: Path) -> None:
    path = Path("zones/config/parked.example.yaml")
    path.write_text(
        path.read_text()
        .replace(
            "  value: 192.0.2.40\n",
            "  value: 192.0.2.40\n"
            "- type: MX\n  values:\n  - {exchange: mx.example.net., preference: 10}\n",
        )
        .replace("'':\n  type: A", "'':\n- type: A")
    )
    with pytest.raises(MailAuthProcessorError) as info:
        Manager("zones/config.yaml").sync(dry_run=False)
    text = str(info.value)
    assert "zones/mail/parked.example.yaml:3" in text
    assert "10 mx.example.net." in text and "RFC 7505 §3" in text
    assert not Path("zones/output/parked.example.zone").exists()


def test_hand_written_wildcard_spf_is_left_alone(example: Path) -> None:
    path = Path("zones/config/parked.example.yaml")
    path.write_text(
        path.read_text().replace(
            "shop:", "'*':\n  type: TXT\n  value: v=spf1 include:_spf.example.net -all\nshop:"
        )
    )
    assert Manager("zones/config.yaml").sync(dry_run=False) > 0
    parked = served("parked.example")
    assert parked[("*.parked.example", "TXT")] == ["v=spf1 include:_spf.example.net -all"]
    assert parked[("parked.example", "TXT")] == ["v=spf1 -all"]


@pytest.mark.pdns
def test_served_by_powerdns_and_read_by_independent_checkers(example: Path, pdns: Any) -> None:
    """Through a real server: checkdmarc finds the MTA-STS, TLS-RPT, BIMI and
    DMARC records, reports no error on the parked domain (nothing answers where
    it looks for MTA-STS, TLS-RPT or BIMI but their absence), and pyspf fails
    any sender for the parked domain and its hosts (other names under it are
    DMARC np=reject, RFC 9989)."""
    import checkdmarc.bimi
    import checkdmarc.dmarc
    import checkdmarc.mta_sts
    import checkdmarc.smtp_tls_reporting
    import spf

    config = "zones/config-powerdns.yaml"
    for zone in yaml.safe_load(Path(config).read_text())["zones"]:
        if zone in pdns.zone_names():
            pdns.delete_zone(zone.rstrip("."))
        pdns.create_zone(zone.rstrip("."))
    env = dict(
        os.environ, PDNS_HOST=pdns.host, PDNS_PORT=str(pdns.api_port), PDNS_API_KEY=pdns.api_key
    )
    run = subprocess.run(
        [str(Path(sys.executable).parent / "octodns-sync"), "--config-file", config, "--doit"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    resolver = pdns.resolver()

    sts = checkdmarc.mta_sts.query_mta_sts_record("shop.example", resolver=resolver)
    (policy_file,) = write_policy_files(load_policy_dir("zones/mail"), "www")
    assert sts["record"] == f"v=STSv1; id={policy_id(policy_file.read_text())}"
    tls = checkdmarc.smtp_tls_reporting.query_smtp_tls_reporting_record(
        "shop.example", resolver=resolver
    )
    assert tls["record"] == "v=TLSRPTv1; rua=mailto:tls-reports@shop.example"
    bimi = checkdmarc.bimi.query_bimi_record("shop.example", resolver=resolver)
    assert bimi["record"] == "v=BIMI1; l=https://shop.example/bimi/logo.svg"
    assert [r.to_text() for r in resolver.resolve("mta-sts.shop.example", "A")] == ["192.0.2.30"]

    dmarc = checkdmarc.dmarc.check_dmarc("parked.example", resolver=resolver)
    assert dmarc.get("valid") is True, dmarc
    assert dmarc["tags"]["p"]["value"] == "reject" and dmarc["tags"]["sp"]["value"] == "reject"
    assert [r.to_text() for r in resolver.resolve("parked.example", "MX")] == ["0 ."]
    dkim = resolver.resolve("anyselector._domainkey.parked.example", "TXT")
    assert [b"".join(r.strings) for r in dkim] == [b"v=DKIM1; p="]

    def lookup(name: str, qtype: str, tcpfallback: bool = True, timeout: int = 30) -> list:  # type: ignore[type-arg]
        try:
            rrset = resolver.resolve(name, qtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        if qtype == "TXT":
            return [((name, qtype), r.strings) for r in rrset]
        return [((name, qtype), r.to_text()) for r in rrset]

    original = spf.DNSLookup
    spf.DNSLookup = lookup
    try:
        for sender in ("x@parked.example", "x@www.parked.example", "x@shop.parked.example"):
            result = spf.check2(i="192.0.2.99", s=sender, h="mail.example.org")
            assert result[0] == "fail", (sender, result)
        # No wildcard: a name that does not exist has no SPF record...
        result = spf.check2(i="192.0.2.99", s="x@invoices.parked.example", h="mail.example.org")
        assert result[0] == "none", result
    finally:
        spf.DNSLookup = original
    # checkdmarc over the whole parked domain: no error but "does not exist"
    # where a parked domain rightly has nothing.
    absent = {
        "mta_sts": "does not exist",
        "smtp_tls_reporting": "does not exist",
        "bimi": "does not exist",
    }
    for domain in ("parked.example",):
        report = checkdmarc.check_domains([domain], parked=True, resolver=resolver, skip_tls=True)
        assert report["spf"]["valid"] and report["spf"]["parsed"]["all"] == "fail", report
        assert report["dmarc"]["valid"] and "error" not in report["dmarc"], report["dmarc"]
        assert report["dmarc"]["tags"]["p"]["value"] == "reject"
        assert "error" not in report["mx"] and report["mx"]["hosts"] == []
        for section, words in absent.items():
            error = report[section].get("error", "")
            assert words in error and "SPF" not in error, (domain, section, report[section])
