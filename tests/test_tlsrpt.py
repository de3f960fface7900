"""TLS-RPT (RFC 8460): the `_smtp._tls` record and its report destinations."""

from __future__ import annotations

import pytest
from checkdmarc.smtp_tls_reporting import parse_smtp_tls_reporting_record

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import parse_policy

PATH = "mail/example.com.yaml"


class NoKeys:
    def public_key(self, domain: str, key: DkimKey) -> str:
        raise AssertionError("no DKIM keys in these policies")


def compile_text(text: str) -> CompileResult:
    return compile_policy(parse_policy(text, PATH, "example.com"), load_catalog(), NoKeys())


def tlsrpt(result: CompileResult) -> str:
    (record,) = [r for r in result.records if r.name == "_smtp._tls.example.com"]
    assert (record.type, record.kind, record.owner) == ("TXT", "tlsrpt", "tls-rpt")
    (value,) = record.values
    return value


@pytest.mark.parametrize(
    "rua, uris",
    [
        ("mailto:tls@example.com", ["mailto:tls@example.com"]),
        ("[https://reports.example.net/tlsrpt]", ["https://reports.example.net/tlsrpt"]),
        (
            "[mailto:tls@example.com, 'https://r.example.net:8443/v1/tls?x=1%2C2']",
            ["mailto:tls@example.com", "https://r.example.net:8443/v1/tls?x=1%2C2"],
        ),
    ],
)
def test_record_is_accepted_by_checkdmarc(rua: str, uris: list[str]) -> None:
    value = tlsrpt(compile_text(f"tls_rpt:\n  rua: {rua}\n"))
    assert value == "v=TLSRPTv1; rua=" + ",".join(uris)
    parsed = parse_smtp_tls_reporting_record(value)
    assert parsed["warnings"] == []
    assert parsed["tags"]["rua"]["value"] == uris


@pytest.mark.parametrize(
    "rua, expected",
    [
        ("http://reports.example.net/tls", "or an https:// URL (RFC 8460 §3)"),
        ("ftp://reports.example.net/tls", "not a TLS-RPT destination"),
        ("tls@example.com", "not a TLS-RPT destination"),
        ("mailto:tls", "write mailto:tls-reports@example.com"),
        ("mailto:@example.com", "write mailto:tls-reports@example.com"),
        ("mailto:tls@localhost", "write mailto:tls-reports@example.com"),
        ("'mailto:a@example.com,mailto:b@example.com'", "percent-encoded"),
        ("'https://r.example.net/a;b'", "percent-encoded"),
        ("'https://r.example.net/a!10m'", "percent-encoded"),
        ("'https://r.example.net/a b'", "percent-encoded"),
        ("https://", "needs a host name"),
        ("'https://user:pw@r.example.net/'", "no user name or password"),
        ("[]", "at least one report destination"),
        ("'mailto:tlsé@example.com'", "percent-encoded"),
    ],
)
def test_bad_destinations_are_refused_with_the_line(rua: str, expected: str) -> None:
    text = f"ttl: 600\ntls_rpt:\n  rua: {rua}\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text, PATH, "example.com")
    message = str(info.value)
    assert expected in message, message
    assert f"{PATH}:3" in message and "tls_rpt.rua" in message


def test_missing_rua_is_refused() -> None:
    with pytest.raises(PolicyError, match="missing required key 'rua'"):
        parse_policy("tls_rpt: {}\n", PATH, "example.com")


def test_what_we_refuse_checkdmarc_refuses_too() -> None:
    """Our validation is not looser than an independent parser on the cases
    both judge (http: is valid URI syntax there but not a TLS-RPT scheme)."""
    from checkdmarc.smtp_tls_reporting import SMTPTLSReportingSyntaxError

    for bad in ("ftp://r.example.net/x", "mailto:a@example.com;x", "r.example.net"):
        with pytest.raises(SMTPTLSReportingSyntaxError):
            parse_smtp_tls_reporting_record(f"v=TLSRPTv1; rua={bad}")


def test_tls_rpt_on_a_domain_without_mail_warns() -> None:
    result = compile_text("null_mx: true\ntls_rpt: {rua: mailto:tls@example.com}\n")
    assert [f.code for f in result.warnings if f.code == "tls-rpt-no-mx"] == ["tls-rpt-no-mx"]
    assert tlsrpt(result).startswith("v=TLSRPTv1; ")
