"""MTA-STS (RFC 8461): the TXT record, the policy file, the host record, and
the mx patterns checked against the zone's MX records."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
from checkdmarc.mta_sts import (
    mx_in_mta_sts_patterns,
    parse_mta_sts_policy,
    parse_mta_sts_record,
)
from checkdmarc.smtp_tls_reporting import parse_smtp_tls_reporting_record
from octodns.manager import Manager

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.errors import MailAuthProcessorError, PolicyError
from octodns_mailauth.findings import Severity
from octodns_mailauth.mtasts import (
    pattern_matches,
    policy_id,
    render_policy,
    write_policy_files,
)
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import load_policy_dir, parse_policy

PATH = "mail/example.com.yaml"
ZONE_MX = {
    ("example.com", "MX"): ("10 mx1.example.com.", "20 mx2.example.com."),
    ("example.com", "A"): ("192.0.2.1",),
}


class NoKeys:
    def public_key(self, domain: str, key: DkimKey) -> str:
        raise AssertionError("no DKIM keys in these policies")


def compile_text(
    text: str, zone: dict[tuple[str, str], tuple[str, ...]] | None = None
) -> CompileResult:
    lp = parse_policy(text, PATH, "example.com")
    return compile_policy(lp, load_catalog(), NoKeys(), None, zone)


def records(result: CompileResult) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(r.name, r.type): r.values for r in result.records}


def codes(result: CompileResult, severity: Severity | None = None) -> list[str]:
    return [str(f.code) for f in result.findings if severity in (None, f.severity)]


ENFORCE = "mta_sts:\n  mode: enforce\n  mx: ['*.example.com']\n  max_age: 1209600\n"


def test_txt_record_and_policy_file_are_accepted_by_checkdmarc() -> None:
    result = compile_text(ENFORCE, ZONE_MX)
    assert result.errors == []
    (txt,) = records(result)[("_mta-sts.example.com", "TXT")]
    parsed = parse_mta_sts_record(txt)
    assert parsed["warnings"] == []
    detail = result.details.mta_sts
    assert detail is not None
    assert parsed["tags"]["id"] == detail.id
    policy = parse_mta_sts_policy(detail.policy)
    assert policy["warnings"] == []
    assert policy["policy"] == {
        "version": "STSv1",
        "mode": "enforce",
        "max_age": 1209600,
        "mx": ["*.example.com"],
    }


@pytest.mark.parametrize(
    "text",
    [
        "mta_sts: {mode: none}\n",
        "mta_sts: {mode: testing, mx: [mx1.example.com, mx2.example.com], max_age: 0}\n",
        "mta_sts: {mode: enforce, mx: ['*.example.com'], max_age: 31557600}\n",
    ],
)
def test_every_mode_renders_a_policy_checkdmarc_accepts(text: str) -> None:
    lp = parse_policy(text, PATH, "example.com")
    assert lp.policy.mta_sts is not None
    rendered = render_policy(lp.policy.mta_sts)
    assert parse_mta_sts_policy(rendered)["policy"]["mode"] == lp.policy.mta_sts.mode.value
    assert parse_mta_sts_record(f"v=STSv1; id={policy_id(rendered)}")["tags"]["v"] == "STSv1"


def test_id_changes_exactly_when_the_policy_changes() -> None:
    def the_id(text: str) -> str:
        (value,) = records(compile_text(text, ZONE_MX))[("_mta-sts.example.com", "TXT")]
        return value.split("id=")[1]

    first = the_id(ENFORCE)
    assert first == the_id(ENFORCE)  # deterministic
    assert first == the_id(ENFORCE + "ttl: 600\n")  # unrelated settings do not matter
    assert the_id(ENFORCE.replace("1209600", "1209601")) != first
    assert the_id(ENFORCE.replace("enforce", "testing")) != first
    assert 1 <= len(first) <= 32 and first.isalnum() and first.isascii()


@pytest.mark.parametrize(
    "pattern, host, expected",
    [
        ("*.example.com", "mx1.example.com", True),
        ("*.example.com", "MX1.Example.COM.", True),
        ("*.example.com", "example.com", False),  # the wildcard needs a label
        ("*.example.com", "a.b.example.com", False),  # exactly one label
        ("*.example.com", "mx1.example.net", False),
        ("mx1.example.com", "mx1.example.com", True),
        ("mx1.example.com", "mx2.example.com", False),
    ],
)
def test_wildcard_matches_one_leftmost_label(pattern: str, host: str, expected: bool) -> None:
    assert pattern_matches(pattern, host) is expected
    # checkdmarc's matcher agrees (it expects hosts without the trailing dot)
    assert mx_in_mta_sts_patterns(host.rstrip(".").lower(), [pattern]) is expected


@pytest.mark.parametrize("mode, severity", [("enforce", "error"), ("testing", "warning")])
def test_pattern_covering_no_mx_is_error_in_enforce_warning_in_testing(
    mode: str, severity: str
) -> None:
    text = f"mta_sts:\n  mode: {mode}\n  mx:\n    - '*.example.com'\n    - mail.example.org\n"
    result = compile_text(text, ZONE_MX)
    found = [f for f in result.findings if f.code == "mta-sts-mx-mismatch"]
    assert len(found) == 1
    assert found[0].severity.value == severity
    assert "mail.example.org matches none" in found[0].message
    assert found[0].location is not None
    assert (found[0].location.line, found[0].location.key_path) == (5, "mta_sts.mx[1]")
    assert found[0].rfc == "RFC 8461 §4.1"


@pytest.mark.parametrize("mode, severity", [("enforce", "error"), ("testing", "warning")])
def test_mx_not_covered_is_error_in_enforce_warning_in_testing(mode: str, severity: str) -> None:
    text = f"mta_sts: {{mode: {mode}, mx: [mx1.example.com]}}\n"
    result = compile_text(text, ZONE_MX)
    found = [f for f in result.findings if f.code == "mta-sts-mx-mismatch"]
    assert [f.severity.value for f in found] == [severity]
    assert "MX host mx2.example.com is not covered" in found[0].message
    assert "mx2.example.com" in str(found[0].hint)


def test_no_mx_in_a_known_zone_is_an_error_and_unknown_zone_is_not_checked() -> None:
    result = compile_text(ENFORCE, {("example.com", "A"): ("192.0.2.1",)})
    assert "mta-sts-mx-mismatch" in codes(result, Severity.ERROR)
    assert "has no MX records" in result.errors[0].message
    # At validate time the processor has no zone yet: no MX check, no error.
    assert compile_text(ENFORCE).errors == []


def test_mode_none_skips_the_mx_check() -> None:
    result = compile_text("mta_sts: {mode: none}\n", {("example.com", "A"): ("1.2.3.4",)})
    assert not [f for f in result.findings if f.code == "mta-sts-mx-mismatch"]
    assert "_mta-sts.example.com" in {r.name for r in result.records}


def test_host_record_cname_or_addresses() -> None:
    cname = compile_text(
        "mta_sts: {mode: none, host: {cname: mta-sts.hosting.example.net}}\n", ZONE_MX
    )
    assert records(cname)[("mta-sts.example.com", "CNAME")] == ("mta-sts.hosting.example.net.",)
    addr = compile_text(
        "mta_sts: {mode: none, host: {ip4: 192.0.2.7, ip6: ['2001:db8::7']}}\n", ZONE_MX
    )
    assert records(addr)[("mta-sts.example.com", "A")] == ("192.0.2.7",)
    assert records(addr)[("mta-sts.example.com", "AAAA")] == ("2001:db8::7",)


def test_missing_host_warns_only_when_the_zone_lacks_it() -> None:
    assert "mta-sts-no-host" in codes(compile_text(ENFORCE, ZONE_MX), Severity.WARNING)
    zone = dict(ZONE_MX)
    zone[("mta-sts.example.com", "CNAME")] = ("mta-sts.hosting.example.net.",)
    assert "mta-sts-no-host" not in codes(compile_text(ENFORCE, zone))


def test_short_max_age_in_enforce_warns() -> None:
    result = compile_text(ENFORCE.replace("1209600", "3600"), ZONE_MX)
    assert "mta-sts-short-max-age" in codes(result, Severity.WARNING)
    assert result.errors == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mta_sts: {mode: enforce}\n", "needs at least one mx pattern"),
        ("mta_sts: {mode: strict, mx: [a.example.com]}\n", "'strict' is not allowed"),
        ("mta_sts: {mode: enforce, mx: ['*']}\n", "MTA-STS mx pattern"),
        ("mta_sts: {mode: enforce, mx: ['a.*.example.com']}\n", "is not a DNS name"),
        ("mta_sts: {mode: enforce, mx: [a.example.com], max_age: 31557601}\n", "31557600"),
        ("mta_sts: {mode: enforce, mx: [a.example.com], max_age: -1}\n", "max_age"),
        ("mta_sts: {mode: none, host: {}}\n", "give cname, or ip4"),
        ("mta_sts: {mode: none, host: {cname: a.example.net, ip4: [1.2.3.4]}}\n", "not both"),
        ("mta_sts: {mode: none, host: {ip4: [1.2.3.999]}}\n", "mta_sts.host.ip4"),
        ("mta_sts: {mode: enforce, mx: [a.example.com, A.example.com.]}\n", "listed twice"),
    ],
)
def test_bad_settings_are_one_clear_message(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, PATH, "example.com")
    message = str(info.value)
    assert expected in message and PATH in message
    assert "pydantic" not in message.lower()


def test_parked_or_null_mx_domain_with_mta_sts_is_refused() -> None:
    for flag in ("parked", "null_mx"):
        result = compile_text(f"{flag}: true\n{ENFORCE}")
        assert "mta-sts-no-mx" in codes(result, Severity.ERROR), flag
    # mode none (withdrawing the policy) is allowed
    assert "mta-sts-no-mx" not in codes(compile_text("null_mx: true\nmta_sts: {mode: none}\n"))


def test_write_policy_files_is_atomic_and_readable(tmp_path: Path) -> None:
    result = compile_text(ENFORCE, ZONE_MX)
    lp = parse_policy(
        "mta_sts: {mode: testing, mx: [mx.example.org]}\n", "mail/example.org.yaml", "example.org"
    )
    other = compile_text("dmarc: {policy: none}\n")  # no MTA-STS: nothing written
    written = write_policy_files([result, lp, other], tmp_path / "out")
    assert written == [
        tmp_path / "out/example.com/.well-known/mta-sts.txt",
        tmp_path / "out/example.org/.well-known/mta-sts.txt",
    ]
    text = written[0].read_text()
    assert text == result.details.mta_sts.policy  # type: ignore[union-attr]
    assert parse_mta_sts_policy(written[1].read_text())["policy"]["mx"] == ["mx.example.org"]
    assert stat.S_IMODE(written[0].stat().st_mode) == 0o644
    # rewriting replaces in place and leaves no temporary files behind
    write_policy_files([result], tmp_path / "out")
    assert sorted(os.listdir(written[0].parent)) == ["mta-sts.txt"]


# --- through octoDNS, over a copy of zones/ -------------------------------------------------


def served(zone: str) -> dict[tuple[str, str], list[str]]:
    z = dns.zone.from_file(f"zones/output/{zone}.zone", zone, relativize=False, check_origin=False)
    out: dict[tuple[str, str], list[str]] = {}
    for name, _ttl, rdata in z.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        text = b"".join(rdata.strings).decode() if rtype == "TXT" else rdata.to_text()
        out.setdefault((name.to_text().rstrip("."), rtype), []).append(text)
    return out


def test_example_shop_publishes_mta_sts_tls_rpt_bimi(example: Path) -> None:
    assert Manager("zones/config.yaml").sync(dry_run=False) > 0
    shop = served("shop.example")
    written = write_policy_files(load_policy_dir("zones/mail"), "zones/output/mta-sts")
    assert written == [Path("zones/output/mta-sts/shop.example/.well-known/mta-sts.txt")]
    policy_text = written[0].read_text()
    assert parse_mta_sts_policy(policy_text)["policy"]["mx"] == ["*.shop.example"]
    # the published id is the one of the file we render
    (sts,) = shop[("_mta-sts.shop.example", "TXT")]
    assert sts == f"v=STSv1; id={policy_id(policy_text)}"
    assert parse_mta_sts_record(sts)["warnings"] == []
    assert shop[("mta-sts.shop.example", "A")] == ["192.0.2.30"]
    (tls,) = shop[("_smtp._tls.shop.example", "TXT")]
    assert parse_smtp_tls_reporting_record(tls)["tags"]["rua"]["value"] == [
        "mailto:tls-reports@shop.example"
    ]
    assert shop[("default._bimi.shop.example", "TXT")] == [
        "v=BIMI1; l=https://shop.example/bimi/logo.svg"
    ]
    assert shop[("_dmarc.shop.example", "TXT")][0].startswith("v=DMARC1; p=reject")
    assert shop[("shop.example", "MX")] == ["10 mx1.shop.example.", "20 mx2.shop.example."]
    assert Manager("zones/config.yaml").sync(dry_run=False) == 0


def test_zone_mx_outside_the_patterns_fails_the_sync(example: Path) -> None:
    path = Path("zones/config/shop.example.yaml")
    path.write_text(path.read_text().replace("mx2.shop.example.", "mx.mailhost.example.net."))
    with pytest.raises(MailAuthProcessorError) as info:
        Manager("zones/config.yaml").sync()
    text = str(info.value)
    assert "zones/mail/shop.example.yaml:14" in text
    assert "MX host mx.mailhost.example.net is not covered" in text
    assert "RFC 8461 §4.1" in text
    assert not Path("zones/output/shop.example.zone").exists()


def test_mx_published_by_the_policy_itself_counts() -> None:
    """An MX another step adds at the domain (a catalog entry) is checked too."""
    from datetime import datetime, timezone

    from octodns_mailauth.context import CompileContext
    from octodns_mailauth.mtasts import mta_sts_step
    from octodns_mailauth.records.base import DesiredRecord
    from octodns_mailauth.zoneview import ZoneReads

    lp = parse_policy("mta_sts: {mode: enforce, mx: [mx1.example.com]}\n", PATH, "example.com")
    result = CompileResult("example.com")
    result.records.append(
        DesiredRecord("example.com", "MX", 3600, ("10 inbound.example.net.",), "sender x")
    )
    ctx = CompileContext(
        lp,
        load_catalog(),
        NoKeys(),
        None,
        ZoneReads(ZONE_MX),
        result,
        now=datetime.now(timezone.utc),
    )
    mta_sts_step(ctx)
    messages = [f.message for f in result.errors]
    assert any("MX host inbound.example.net is not covered" in m for m in messages), messages
    assert any("MX host mx2.example.com is not covered" in m for m in messages), messages
