"""Our DMARC parser against two independent ones, and every record we emit
against both.

Vectors: tests/data/dmarc (see NOTICE.md).  Verdicts are compared, not
messages; where a verdict differs the difference is listed below with the RFC
section that decides it, and a test pins each difference against the live
library so a change on either side is noticed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import checkdmarc.dmarc as cd
import dmarc as dmarc_pkg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octodns_mailauth.findings import Severity
from octodns_mailauth.policy.dmarc import DmarcPolicySettings
from octodns_mailauth.records.dmarc import dmarc_value, parse_dmarc

DATA = Path(__file__).parent / "data" / "dmarc"
PKG = json.loads((DATA / "dmarc-pkg-test-vectors.json").read_text())
CHECKDMARC = json.loads((DATA / "checkdmarc-test-vectors.json").read_text())


# --- the dmarc package's vectors ---------------------------------------------------------


def _pkg_invalid() -> list[tuple[str, str]]:
    out = []
    for test in PKG["tests"]:
        out += [(v["record"], v["error"]) for v in test.get("invalid_records", [])]
    return out


def _pkg_valid() -> list[str]:
    """Records of tests that parse successfully.  The extractor also put the
    assertion strings of the rejection tests (and a stray "DMARC1") in `records`;
    those tests' real inputs are in invalid_records."""
    out = []
    for test in PKG["tests"]:
        if test.get("invalid_records") or test["test"] == "test_parse_record_not_strict":
            continue
        out += [r for r in test["records"] if r.startswith("v=")]
    return sorted(set(out))


@pytest.mark.parametrize("record, error", _pkg_invalid())
def test_dmarc_pkg_rejections_are_rejected(record: str, error: str) -> None:
    parsed = parse_dmarc(record)
    assert not parsed.valid, parsed
    # Same class of rejection: the package's RecordSyntaxError texts vs its
    # RecordValueError texts ("'x' is not a valid DMARC<Enum>").
    kind = "value" if "is not a valid DMARC" in error else "syntax"
    assert {p.code for p in parsed.errors} == {kind}, parsed.errors
    if kind == "value":
        bad = error.split("'")[1]
        assert any(repr(bad) in p.message for p in parsed.errors)
    # The library itself still says so (the vectors are not stale).
    with pytest.raises((dmarc_pkg.RecordSyntaxError, dmarc_pkg.RecordValueError)) as info:
        dmarc_pkg.Policy("DMARC1", "example.com").parse_record(record)
    assert str(info.value) == error


@pytest.mark.parametrize("record", _pkg_valid())
def test_dmarc_pkg_valid_records_are_valid(record: str) -> None:
    dmarc_pkg.Policy("DMARC1", "example.com").parse_record(record)
    parsed = parse_dmarc(record)
    assert parsed.valid, parsed.errors


def test_dmarc_pkg_non_strict_record_is_an_error_here() -> None:
    # The package accepts it only with strict=False, discarding the bad values
    # (as RFC 9989 §4.8 tells receivers to); for the author these are errors.
    record = next(
        r
        for t in PKG["tests"]
        if t["test"] == "test_parse_record_not_strict"
        for r in t["records"]
        if r.startswith("v=")
    )
    with pytest.raises(dmarc_pkg.RecordValueError):
        dmarc_pkg.Policy("DMARC1", "example.com").parse_record(record, strict=True)
    bad = {p.message.split("=")[0] for p in parse_dmarc(record).errors}
    assert bad == {"sp", "adkim", "aspf", "t"}  # pct is a removed tag: a warning only


# --- checkdmarc's vectors ----------------------------------------------------------------

# Tests about DNS answers, not record text (several records at one name, TXT noise at
# _dmarc, a record at the apex, the tree walk): RFC 9989 §4.10, outside a parser.
_DNS_LEVEL = {
    "_query_dmarc_record",
    "query_dmarc_record",
    "check_wildcard_dmarc_report_authorization",
}
# Authorization records (RFC 9990): `v=DMARC1` alone is complete there.
_AUTHORIZATION = {
    "testWildcardFound",
    "testUnrelatedRecordRaises",
    "testUnrelatedRecordIgnored",
    "testSpecificAuthorizationRecordFound",
    "testUnrelatedRecordsBecomeUnverifiedDestination",
}


def _checkdmarc_cases() -> list[Any]:
    cases = []
    for test in CHECKDMARC["modules"]["tests/test_dmarc.py"]:
        name = test["test"]
        raised = {e["function"] for e in test["expects_exception"]}
        calls = set(test["checkdmarc_calls"])
        for record in test["records"]:
            if record.endswith(("rua=", "ruf=")):
                continue  # the test builds the URI list at run time; the extractor lost it
            if name in _AUTHORIZATION:
                cases.append(pytest.param(record, "valid", False, id=f"{name}"))
            elif name == "testDMARCRecordStartsWithWhitespace":
                # checkdmarc raises while querying; the text is not a DMARC record (§4.8).
                cases.append(pytest.param(record, "invalid", True, id=name))
            elif raised & _DNS_LEVEL or (
                not raised and calls <= {f"dmarc.{f}" for f in _DNS_LEVEL}
            ):
                continue
            elif raised or name == "testDMARCCheckDmarcParseError":
                cases.append(pytest.param(record, "invalid", True, id=f"{name}-{record}"))
            else:
                cases.append(pytest.param(record, "valid", True, id=f"{name}-{record}"))
    return cases


@pytest.mark.parametrize("record, verdict, policy_record", _checkdmarc_cases())
def test_checkdmarc_vectors_same_verdict(record: str, verdict: str, policy_record: bool) -> None:
    parsed = parse_dmarc(record, policy_record=policy_record)
    assert ("valid" if parsed.valid else "invalid") == verdict, parsed.problems


def test_checkdmarc_vectors_are_all_classified() -> None:
    # Guard against the filter above silently dropping most of the file.
    assert len(_checkdmarc_cases()) >= 40


@pytest.mark.parametrize(
    "record, code",
    [
        ("v=DMARC1; p=reject; pct=100", "removed-tag"),
        ("v=DMARC1; p=reject; rf=afrf", "removed-tag"),
        ("v=DMARC1; p=reject; ri=abc", "removed-tag"),
        ("v=DMARC1; rua=mailto:dmarc@example.com", "p-missing"),
        ("v=DMARC1; p=reject; xyz=foo", "unknown-tag"),
        ("v=DMARC1; p=reject; fo=0:1", "fo-redundant"),
        ("v=DMARC1; sp=none; p=reject", "p-not-second"),
        ("v=DMARC1; p=reject; rua=mailto:dmarc@example.com!10m", "size-obsolete"),
    ],
)
def test_checkdmarc_warnings_are_warnings_here(record: str, code: str) -> None:
    parsed = parse_dmarc(record)
    assert parsed.valid
    assert code in {p.code for p in parsed.warnings}


# --- documented differences --------------------------------------------------------------


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """checkdmarc checks report destinations in DNS; record the calls instead."""
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        cd, "verify_dmarc_report_destination", lambda s, d, **kw: calls.append((s, d))
    )
    monkeypatch.setattr(cd, "get_mx_records", lambda d, **kw: [{"hostname": f"mx.{d}"}])
    return calls


def test_difference_invalid_alignment_mode(no_dns: list[tuple[str, str]]) -> None:
    """adkim=none: checkdmarc warns and uses r (receiver view, RFC 9989 §4.8: an
    invalid value is discarded for the default); the dmarc package and we reject
    it, since the author asked for something receivers will not do (§4.7)."""
    record = "v=DMARC1; p=none; adkim=none"
    result = cd.parse_dmarc_record(record, "example.com")
    assert result["tags"]["adkim"]["value"] == "r"
    assert not parse_dmarc(record).valid
    with pytest.raises(dmarc_pkg.RecordValueError):
        dmarc_pkg.Policy("DMARC1", "example.com").parse_record(record)


def test_difference_missing_p_without_rua(no_dns: list[tuple[str, str]]) -> None:
    """No p= and no rua=: checkdmarc reads p=none with a warning; RFC 9989 §4.10.1
    says DMARC is then not applied at all, so it is an error here (and the dmarc
    package, following RFC 7489 §6.3, rejects it too)."""
    record = "v=DMARC1; sp=none"
    cd.parse_dmarc_record(record, "example.com")
    assert not parse_dmarc(record).valid
    with pytest.raises(dmarc_pkg.RecordSyntaxError):
        dmarc_pkg.Policy("DMARC1", "example.com").parse_record(record)


def test_difference_missing_p_with_rua() -> None:
    """With a valid rua= the record counts as p=none (RFC 9989 §4.10.1): valid here
    with a warning, as in checkdmarc; the dmarc package (RFC 7489) rejects it."""
    record = "v=DMARC1; rua=mailto:dmarc@example.com"
    assert parse_dmarc(record).valid
    with pytest.raises(dmarc_pkg.RecordSyntaxError):
        dmarc_pkg.Policy("DMARC1", "example.com").parse_record(record)


def test_difference_non_mailto_uri(no_dns: list[tuple[str, str]]) -> None:
    """https: report URIs: any URI is valid syntax (RFC 9989 §4.7) and checkdmarc
    keeps it with a warning; receivers are only required to support mailto:, so a
    record that relies on another scheme gets no reports: an error here."""
    record = "v=DMARC1; p=none; rua=https://reports.example.com/dmarc"
    cd.parse_dmarc_record(record, "example.com")
    assert not parse_dmarc(record).valid


# --- every record we emit ----------------------------------------------------------------

POLICIES = st.sampled_from(["none", "quarantine", "reject"])
MAYBE = st.none() | POLICIES
URIS = st.lists(
    st.sampled_from(
        [
            "mailto:dmarc@example.com",
            "mailto:agg+x@reports.example.net",
            "mailto:dmarc@example.com!10m",
            "MAILTO:Reports@Example.ORG",
        ]
    ),
    max_size=2,
    unique=True,
)
SETTINGS = st.fixed_dictionaries(
    {
        "stage": st.sampled_from(["monitor", "quarantine", "reject"]),
        "subdomain_policy": MAYBE,
        "nonexistent_policy": MAYBE,
        "public_suffix_domain": st.none() | st.booleans(),
        "testing": st.booleans(),
        "dkim_alignment": st.sampled_from(["relaxed", "strict"]),
        "spf_alignment": st.sampled_from(["relaxed", "strict"]),
        "rua": URIS,
        "ruf": URIS,
        "failure_options": st.sampled_from([[], ["any_fail"], ["dkim_fail", "spf_fail"], ["0"]]),
        "legacy": st.none()
        | st.fixed_dictionaries(
            {"pct": st.integers(0, 100), "rf": st.just(["afrf"]), "ri": st.just(86400)}
        ),
    }
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=SETTINGS)
def test_every_emitted_record_parses_everywhere(
    data: dict[str, Any], no_dns: list[tuple[str, str]]
) -> None:
    value = dmarc_value(DmarcPolicySettings.model_validate(data))
    ours = parse_dmarc(value)
    assert ours.valid, (value, ours.errors)
    # Only the warnings the settings ask for: legacy tags and !size.
    allowed = {"removed-tag", "size-obsolete"}
    assert {p.code for p in ours.warnings} <= allowed, ours.warnings
    result = cd.parse_dmarc_record(value, "example.com")
    assert result["tags"]["p"]["value"] == value.split("; ")[1][2:]
    policy = dmarc_pkg.Policy("DMARC1", "example.com")
    policy.parse_record(value)  # strict: raises on any invalid value
    assert value.startswith("v=DMARC1; p=")


def test_report_uri_rules() -> None:
    from octodns_mailauth.dmarc.uri import ReportUriError, parse_report_uri

    assert parse_report_uri("mailto:a@b.example!10m").size == "10m"
    assert parse_report_uri("MAILTO:Dmarc@Example.COM").host == "example.com"
    for bad in ("a@b.example", "mailto:a,b@c.example", "mailto:@c.example", "mailto:a@c"):
        with pytest.raises(ReportUriError):
            parse_report_uri(bad)


def test_problems_carry_rfc_sections() -> None:
    parsed = parse_dmarc("v=DMARC1; p=maybe")
    assert parsed.errors[0].severity is Severity.ERROR
    assert parsed.errors[0].rfc == "RFC 9989 §4.7"
