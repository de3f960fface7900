"""The DMARC settings -> the `_dmarc` record and the findings about it."""

from __future__ import annotations

import pytest

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.dmarc.orgdomain import aligned, is_public_suffix, organizational_domain
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.findings import Finding, Severity
from octodns_mailauth.keysource import placeholder_public_key
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import parse_policy
from octodns_mailauth.records.dmarc import parse_dmarc

OWN = "senders:\n  - {name: relay, ip4: [192.0.2.1]}\n"


class Keys:
    def public_key(self, domain: str, key: DkimKey) -> str:
        return placeholder_public_key(key.algorithm, key.bits)


def compile_text(text: str, domain: str = "example.com") -> CompileResult:
    lp = parse_policy(text, f"mail/{domain}.yaml", domain)
    return compile_policy(lp, load_catalog(), Keys())


def dmarc_record(result: CompileResult) -> str:
    rec = next(r for r in result.records if r.name == f"_dmarc.{result.domain}")
    return rec.values[0]


def codes(result: CompileResult, severity: Severity | None = None) -> list[str]:
    return [f.code or "" for f in result.findings if severity is None or f.severity is severity]


def find(result: CompileResult, code: str) -> Finding:
    return next(f for f in result.findings if f.code == code)


def errors_of(text: str) -> list[Finding]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "mail/example.com.yaml", "example.com")
    return info.value.findings


@pytest.mark.parametrize(
    "dmarc, record",
    [
        ("{policy: reject}", "v=DMARC1; p=reject"),
        (
            "{stage: monitor, rua: mailto:d@example.com}",
            "v=DMARC1; p=none; rua=mailto:d@example.com",
        ),
        ("{stage: quarantine, policy: quarantine}", "v=DMARC1; p=quarantine"),
        (
            "{stage: reject, subdomain_policy: quarantine, nonexistent_policy: reject}",
            "v=DMARC1; p=reject; sp=quarantine; np=reject",
        ),
        (
            "{stage: reject, subdomain_policy: reject, nonexistent_policy: reject}",
            "v=DMARC1; p=reject",
        ),
        ("{stage: reject, testing: true}", "v=DMARC1; p=reject; t=y"),
        ("{stage: reject, public_suffix_domain: false}", "v=DMARC1; p=reject; psd=n"),
        (
            "{stage: reject, dkim_alignment: strict, spf_alignment: strict}",
            "v=DMARC1; p=reject; adkim=s; aspf=s",
        ),
        (
            "{stage: reject, rua: [mailto:a@example.com], ruf: mailto:f@example.com, "
            "failure_options: [dkim_fail, spf_fail]}",
            "v=DMARC1; p=reject; rua=mailto:a@example.com; ruf=mailto:f@example.com; fo=d:s",
        ),
    ],
)
def test_record_from_settings(dmarc: str, record: str) -> None:
    result = compile_text(f"{OWN}dmarc: {dmarc}\n")
    assert dmarc_record(result) == record
    assert parse_dmarc(record).valid
    assert not result.errors, result.errors


@pytest.mark.parametrize(
    "dmarc, expected",
    [
        ("{}", "missing required key 'policy': give `policy: none|quarantine|reject` or `stage"),
        ("{stage: reject, policy: none}", "stage reject means p=reject, but policy says none"),
        ("{stage: enforce}", "'enforce' is not allowed"),
        ("{stage: reject, rua: dmarc@example.com}", "needs a scheme"),
        ("{stage: reject, rua: 'https://r.example.com/x'}", "only required to support mailto"),
        ("{stage: reject, rua: 'mailto:a,b@example.com'}", "percent-encoded"),
        ("{stage: reject, failure_options: [sometimes]}", "not a failure report option"),
        ("{stage: reject, failure_options: [all_fail, any_fail]}", "contradict"),
        ("{stage: reject, legacy: {pct: 120}}", "less than or equal to 100"),
        ("{stage: reject, legacy: {rf: iodef2}}", "not a report format"),
        ("{stage: reject, pct: 50}", "unknown key 'pct'"),
    ],
)
def test_bad_settings_point_at_the_line(dmarc: str, expected: str) -> None:
    findings = errors_of(f"{OWN}dmarc: {dmarc}\n")
    text = " | ".join(f.format() for f in findings)
    assert expected in text
    assert all(f.location and f.location.line == 3 for f in findings), text


def test_legacy_tags_only_when_asked_and_flagged() -> None:
    plain = compile_text(f"{OWN}dmarc: {{stage: quarantine}}\n")
    assert "pct" not in dmarc_record(plain)
    assert "dmarc-legacy-tag" not in codes(plain)
    text = (
        f"{OWN}dmarc:\n  stage: quarantine\n  legacy:\n    pct: 50\n    rf: afrf\n    ri: 3600\n"
    )
    result = compile_text(text)
    record = dmarc_record(result)
    assert record == "v=DMARC1; p=quarantine; pct=50; rf=afrf; ri=3600"
    legacy = [f for f in result.findings if f.code == "dmarc-legacy-tag"]
    assert [f.location.key_path for f in legacy if f.location] == [
        "dmarc.legacy.pct",
        "dmarc.legacy.rf",
        "dmarc.legacy.ri",
    ]
    assert all(f.severity is Severity.WARNING and f.rfc == "RFC 9989 App. C.5.2" for f in legacy)
    assert "not 50%" in legacy[0].message and legacy[0].location.line == 6  # type: ignore[union-attr]
    # Both independent parsers accept it; ours flags the removed tags.
    assert {p.code for p in parse_dmarc(record).warnings} == {"removed-tag"}


def test_monitor_without_rua_is_a_warning() -> None:
    result = compile_text(f"{OWN}dmarc: {{stage: monitor}}\n")
    f = find(result, "dmarc-monitor-no-rua")
    assert f.severity is Severity.WARNING and "monitors nothing" in f.message
    with_rua = compile_text(f"{OWN}dmarc: {{stage: monitor, rua: mailto:d@example.com}}\n")
    assert "dmarc-monitor-no-rua" not in codes(with_rua)


def test_weaker_subdomain_policies_are_called_out() -> None:
    text = (
        f"{OWN}dmarc:\n  stage: reject\n  subdomain_policy: none\n"
        "  nonexistent_policy: quarantine\n"
    )
    result = compile_text(text)
    weaker = [f for f in result.findings if f.code == "dmarc-weaker-subdomain"]
    assert [f.message.split(" ")[0] for f in weaker] == ["sp=none", "np=quarantine"]
    assert [f.location.line for f in weaker if f.location] == [5, 6]
    stronger = compile_text(f"{OWN}dmarc: {{policy: none, subdomain_policy: reject}}\n")
    assert "dmarc-weaker-subdomain" not in codes(stronger)


def test_obsolete_size_suffix_warns() -> None:
    result = compile_text(f"{OWN}dmarc: {{stage: reject, rua: 'mailto:d@example.com!10m'}}\n")
    assert find(result, "dmarc-size-obsolete").rfc == "RFC 9989 §4.8"


def test_failure_options_without_ruf_are_not_published() -> None:
    result = compile_text(f"{OWN}dmarc: {{stage: reject, failure_options: [any_fail]}}\n")
    assert "fo=" not in dmarc_record(result)
    assert "dmarc-fo-without-ruf" in codes(result, Severity.WARNING)


def test_subdomain_policy_notes_inheritance() -> None:
    result = compile_text(f"{OWN}dmarc: {{stage: reject}}\n", "shop.example.co.uk")
    note = find(result, "dmarc-subdomain")
    assert note.severity is Severity.INFO
    assert "example.co.uk's sp=/np=" in note.message
    missing = compile_text(OWN, "shop.example.co.uk")
    assert "fall back to example.co.uk's record" in find(missing, "dmarc-missing").message


def test_domain_that_sends_nothing_is_pointed_at_parked() -> None:
    result = compile_text("dmarc: {stage: reject}\n")
    assert "parked" in find(result, "dmarc-no-senders").message


def test_psd_declared() -> None:
    wrong = compile_text(f"{OWN}dmarc: {{stage: reject, public_suffix_domain: true}}\n")
    assert find(wrong, "dmarc-psd").severity is Severity.WARNING
    own = compile_text(
        f"{OWN}dmarc: {{stage: reject, public_suffix_domain: false}}\n", "a.example.com"
    )
    assert "its own Organizational Domain" in find(own, "dmarc-psd").message


def test_organizational_domain_offline_psl() -> None:
    assert organizational_domain("news.example.com") == "example.com"
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organizational_domain("co.uk") == "co.uk"
    # Private-section suffixes count: each github.io site is its own organization.
    assert organizational_domain("x.octo.github.io") == "octo.github.io"
    assert is_public_suffix("github.io") and not is_public_suffix("example.com")
    # psd=n declared on a.example.com makes it the Organizational Domain (RFC 9989 §4.10.2).
    assert organizational_domain("x.a.example.com", ["a.example.com"]) == "a.example.com"
    # The dmarc package's alignment vectors, relaxed and strict, any case.
    assert aligned("news.example.com", "EXAMPLE.COM", strict=False)
    assert aligned("example.com", "news.example.com", strict=False)
    assert not aligned("news.example.com", "example.com", strict=True)
    assert not aligned("example.net", "example.com", strict=False)
    assert not aligned("mail.example.com", "example.com", False, ["mail.example.com"])


def test_public_suffix_list_by_name_matches_the_whole_list() -> None:
    """orgdomain parses only the rules that match a name: for the rules of a
    spread of TLDs (wildcards, exceptions, private sections and IDNs among them)
    and names at, above and below each rule, IDNs in both forms, the answers are
    the whole list's."""
    from publicsuffixlist import PSLFILE, PublicSuffixList

    from octodns_mailauth.dmarc.orgdomain import _list_for

    whole = PublicSuffixList()
    rules = [
        line.split()[0]
        for line in open(PSLFILE, encoding="utf-8").read().splitlines()
        if line.strip() and not line.startswith("//")
    ]
    tlds = sorted({r.rsplit(".", 1)[-1] for r in rules})
    # Every 16th TLD, and the ones with wildcards, exceptions, many private rules, IDNs.
    chosen = set(tlds[::16]) | {"com", "uk", "jp", "ck", "io", "app", "香港", "рф"}
    names: set[str] = {"example", "d1.example", "a.b.example.com", "localhost"}
    for rule in rules:
        if rule.rsplit(".", 1)[-1] not in chosen:
            continue
        base = rule.lstrip("!").replace("*", "wild")
        for name in (base, f"x.{base}", f"y.x.{base}"):
            names.add(name)
            if not name.isascii():
                names.add(name.encode("idna").decode("ascii"))
    for name in sorted(names):
        mine = _list_for(name)
        assert mine.privatesuffix(name) == whole.privatesuffix(name), name
        assert mine.publicsuffix(name) == whole.publicsuffix(name), name
    assert any(n.startswith("xn--") for n in names) and any("!" in r for r in rules)
    assert len(names) > 3000


def test_public_suffix_list_rules_are_whole_lines() -> None:
    """orgdomain looks rules up as whole lines of the shipped list: a rule is read up
    to the first whitespace of its line, so none may have whitespace after it (the
    list's own linter refuses it) and lines end with a bare LF."""
    from publicsuffixlist import PSLFILE

    lines = open(PSLFILE, "rb").read().split(b"\n")
    rules = [line for line in lines if line and not line.startswith(b"//")]
    assert len(rules) > 9000
    assert [r for r in rules if r.split() != [r] or r.lower() != r] == []
