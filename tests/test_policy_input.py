"""Input handling of the policy loader and the steps that read user input:
hostile YAML, oversized or special files, pasted private keys, strict types,
and messages that say what to write instead."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from octodns_mailauth._fs import read_regular
from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.findings import Finding
from octodns_mailauth.keysource import KeystoreKeys
from octodns_mailauth.policy.loader import load_policy_dir, load_policy_file, parse_policy

CATALOG = load_catalog()
NO_KEYS = KeystoreKeys(None)
LOGO_URL = "https://example.com/bimi/logo.svg"
LOGO = Path(__file__).resolve().parent / "data" / "bimi" / "logo.svg"


def findings_of(text: str, path: str = "mail/example.com.yaml") -> list[Finding]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, path, "example.com")
    return info.value.findings


def one_finding(text: str) -> Finding:
    (finding,) = findings_of(text)
    return finding


def compile_text(text: str) -> CompileResult:
    return compile_policy(
        parse_policy(text, "mail/example.com.yaml", "example.com"), CATALOG, NO_KEYS
    )


# --- 1. hostile YAML ------------------------------------------------------------------------


def _bomb(levels: int = 9) -> str:
    # The "billion laughs": each level lists the previous one nine times.
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        ref = f"*l{i - 1}"
        lines.append(f"l{i}: &l{i} [{', '.join([ref] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text, line",
    [
        ("senders: &a [*a]\n", 1),  # a cycle: RecursionError before
        ("dmarc: {policy: reject}\nspf: &s {all: fail}\n", 2),  # an unused anchor
        ("senders:\n  - &o {name: a, ip4: [203.0.113.5]}\n  - *o\n", 2),
        (_bomb(), 1),
    ],
)
def test_anchors_and_aliases_are_refused_with_a_line(text: str, line: int) -> None:
    assert len(text.encode()) < 700
    started = time.monotonic()
    finding = one_finding(text)
    assert time.monotonic() - started < 2
    assert "YAML anchors and aliases are not allowed in policy files" in finding.message
    assert finding.location is not None and finding.location.line == line
    assert finding.location.file == "mail/example.com.yaml"
    assert finding.hint and "&name" in finding.hint


def test_ampersand_and_star_in_quoted_text_are_fine() -> None:
    lp = parse_policy(
        "senders:\n  - {name: 'R&D *relay*', ip4: [203.0.113.5]}\n",
        "mail/example.com.yaml",
        "example.com",
    )
    assert lp.policy.senders[0].name == "R&D *relay*"


def test_oversized_policy_text_and_file_are_refused(tmp_path: Path) -> None:
    text = "senders: []\n" + "# padding\n" * 110_000
    assert "larger than 1024 KiB" in one_finding(text).message
    path = tmp_path / "example.com.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy_file(path)
    (finding,) = info.value.findings
    assert "larger than 1024 KiB" in finding.message and finding.hint


def test_deep_nesting_is_a_finding_not_a_recursion_error() -> None:
    text = "senders:\n" + "".join("  " * i + "- \n" for i in range(1, 60))
    finding = one_finding(text)
    assert "nested more than" in finding.message


def test_a_folder_named_like_a_policy_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "good.example.yaml").write_text("dmarc: {policy: reject}\n")
    (tmp_path / "x.example.yaml").mkdir()
    with pytest.raises(PolicyError) as info:
        load_policy_dir(tmp_path)
    (finding,) = info.value.findings
    assert "x.example.yaml is named like a policy file but is not a regular file" in (
        finding.message
    )
    assert finding.location is not None and finding.location.file.endswith("x.example.yaml")


def test_a_pipe_or_dangling_link_named_like_a_policy_is_an_error(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.example.yaml")  # opened, it would wait for a writer
    (tmp_path / "gone.example.yaml").symlink_to(tmp_path / "nowhere")
    with pytest.raises(PolicyError) as info:
        load_policy_dir(tmp_path)
    gone, pipe = info.value.findings
    assert "pipe.example.yaml is named like a policy file but is not a regular file" in (
        pipe.message
    )
    assert gone.message == "cannot read policy file: No such file or directory", gone


def test_a_policy_file_is_read_in_one_read_unless_it_grew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    real_read = os.read

    def counted(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", counted)
    path = tmp_path / "example.com.yaml"
    path.write_text("dmarc: {policy: reject}\n")
    assert load_policy_file(path).policy.dmarc.policy == "reject"
    # open, fstat, read, close: one read, of a page (not the size cap's 1 MiB buffer),
    # and no second read to see the end.
    assert reads == [4096], reads
    # A file longer than its fstat size (it grew meanwhile) is read to its end.
    fd = os.open(path, os.O_RDONLY)
    try:
        reads.clear()
        assert read_regular(fd, 3) == path.read_bytes() and len(reads) == 1
        os.lseek(fd, 0, os.SEEK_SET)
        assert read_regular(fd, 3, 5) == path.read_bytes()[:5]
    finally:
        os.close(fd)
    big = b"x" * 10_000
    path.write_bytes(big)
    fd = os.open(path, os.O_RDONLY)
    try:
        reads.clear()
        assert read_regular(fd, 10) == big and len(reads) == 3, reads  # 4096 at a time
    finally:
        os.close(fd)


# --- 2. the BIMI logo file ------------------------------------------------------------------

ENFORCED = "dmarc: {policy: reject}\n"


def compile_file(folder: Path, text: str) -> CompileResult:
    path = folder / "example.com.yaml"
    path.write_text(text)
    return compile_policy(load_policy_file(path), CATALOG, NO_KEYS)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_logo_file_that_is_a_device_is_refused_without_reading(tmp_path: Path) -> None:
    started = time.monotonic()
    result = compile_file(
        tmp_path, f"{ENFORCED}bimi: {{logo: '{LOGO_URL}', logo_file: /dev/zero}}\n"
    )
    assert time.monotonic() - started < 5
    (error,) = result.errors
    assert error.code == "bimi-logo-unreadable" and "not a regular file" in error.message


def test_logo_file_that_is_a_fifo_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "logo.svg")
    result = compile_file(
        tmp_path, f"{ENFORCED}bimi: {{logo: '{LOGO_URL}', logo_file: logo.svg}}\n"
    )
    assert [e.code for e in result.errors] == ["bimi-logo-unreadable"]


def test_oversized_logo_is_an_error_and_read_only_up_to_the_limit(tmp_path: Path) -> None:
    # Sparse: 1 GiB on paper, nothing on disk; reading it whole would take the memory.
    with (tmp_path / "huge.svg").open("wb") as f:
        f.truncate(1 << 30)
    result = compile_file(
        tmp_path, f"{ENFORCED}bimi: {{logo: '{LOGO_URL}', logo_file: huge.svg}}\n"
    )
    (error,) = result.errors
    assert error.code == "bimi-logo-large" and "32 KiB" in error.message
    assert not [r for r in result.records if r.kind == "bimi"]


def test_logo_file_resolves_beside_the_policy_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = tmp_path / "mail"
    policies.mkdir()
    (policies / "logo.svg").write_bytes(LOGO.read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = compile_file(
        policies, f"{ENFORCED}bimi: {{logo: '{LOGO_URL}', logo_file: logo.svg}}\n"
    )
    assert result.errors == []


# --- 3. pasted private keys are never echoed ------------------------------------------------


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def _assert_no_key_material(findings: list[Finding], pem: str) -> None:
    assert findings
    text = "\n".join(f.format() + repr(f) for f in findings)
    for line in _body_lines(pem):
        # Any 16 characters of the key body would be a leak.
        for start in range(0, len(line) - 16, 16):
            assert line[start : start + 16] not in text, text
    assert "BEGIN PRIVATE KEY" not in text


def _quoted(pem: str, indent: int) -> str:
    pad = " " * indent
    return "|\n" + "".join(f"{pad}{line}\n" for line in pem.splitlines())


@pytest.mark.parametrize(
    "params, pasted",
    [
        ({"provider": "google"}, "dkim_record"),
        ({"provider": "zoho", "dkim_selector": "zmail"}, "dkim_record"),
        ({"provider": "microsoft365"}, "tenant"),
    ],
)
def test_pem_pasted_into_a_provider_param_is_not_echoed(
    pem: str, params: dict[str, str], pasted: str
) -> None:
    text = "senders:\n  - name: vendor\n"
    text += "".join(f"    {key}: {value}\n" for key, value in params.items())
    text += f"    {pasted}: " + _quoted(pem, 6)
    result = compile_text(text)
    _assert_no_key_material(result.errors, pem)


@pytest.mark.parametrize(
    "where",
    [
        "senders:\n  - name: relay\n    dkim:\n      selector: s1\n      public_key: {pem}",
        "senders:\n  - name: relay\n    dkim:\n      selector: {pem}",
        "senders:\n  - name: relay\n    ip4: {pem}",
        "dmarc:\n  policy: {pem}",
        "dmarc:\n  policy: reject\n  rua: {pem}",
        "ttl: {pem}",
        "senders:\n  - name: relay\n    unaligned_ok: true\n    bits: {pem}",
    ],
)
def test_pem_pasted_into_a_schema_field_is_not_echoed(pem: str, where: str) -> None:
    indent = len(where.rsplit("\n", 1)[-1]) - len(where.rsplit("\n", 1)[-1].lstrip()) + 2
    text = where.replace("{pem}", _quoted(pem, indent))
    _assert_no_key_material(findings_of(text), pem)


def test_private_key_as_public_key_says_so(pem: str) -> None:
    text = (
        "senders:\n  - name: relay\n    dkim:\n      selector: s1\n      public_key: "
        + _quoted(pem, 8)
    )
    finding = one_finding(text)
    assert "PRIVATE key (not shown)" in finding.message
    assert finding.location is not None and finding.location.key_path.endswith("public_key")


# --- 4. wrong refusals and acceptances ------------------------------------------------------


def test_two_providers_verification_txt_values_coexist() -> None:
    result = compile_text(
        "senders:\n"
        "  - {name: zoho, provider: zoho, verification: zb12345678}\n"
        f"  - {{name: proton, provider: proton, verification: '{'ab' * 20}'}}\n"
        "dmarc: {policy: none}\n"
    )
    assert [e for e in result.errors if e.code == "record-conflict"] == []
    apex = sorted(
        v for r in result.records if r.name == "example.com" and r.type == "TXT" for v in r.values
    )
    assert "zoho-verification=zb12345678.zmverify.zoho.com" in apex
    assert f"protonmail-verification={'ab' * 20}" in apex


def test_same_kind_claims_still_conflict() -> None:
    result = compile_text(
        "senders:\n"
        "  - {name: a, provider: google, dkim_selector: s1,"
        " dkim_record: 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo='}\n"
        "  - {name: b, provider: zoho, dkim_selector: s1,"
        " dkim_record: 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo='}\n"
    )
    assert "record-conflict" in {e.code for e in result.errors}


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("ip4", "0.0.0.0/0", "every one of the IPv4"),
        ("ip4", "0.0.0.0/1", "1/2 of the IPv4"),
        ("ip4", "128.0.0.0/7", "1/128 of the IPv4"),
        ("ip6", "'::/0'", "every one of the IPv6"),
        ("ip6", "'2000::/3'", "1/8 of the IPv6"),
    ],
)
def test_huge_ranges_are_refused_like_plus_all(field: str, value: str, words: str) -> None:
    finding = one_finding(f"senders:\n  - name: relay\n    {field}: [{value}]\n")
    assert words in finding.message and "+all" in finding.message
    assert finding.location is not None and finding.location.line == 3


def test_a_slash_8_is_still_a_network() -> None:
    parse_policy("senders:\n  - {name: r, ip4: [10.0.0.0/8]}\n", "x.yaml", "example.com")


def test_bimi_refused_with_legacy_pct_below_100() -> None:
    result = compile_text(
        f"dmarc:\n  policy: quarantine\n  legacy: {{pct: 50}}\nbimi: {{logo: '{LOGO_URL}'}}\n"
    )
    (error,) = [e for e in result.errors if e.code == "bimi-dmarc-not-enforced"]
    assert "pct is 50" in error.message and "pct: 100" in str(error.hint)
    assert error.location is not None and error.location.line == 3
    ok = compile_text(
        f"dmarc:\n  policy: quarantine\n  legacy: {{pct: 100}}\nbimi: {{logo: '{LOGO_URL}'}}\n"
    )
    assert not [e for e in ok.errors if e.code == "bimi-dmarc-not-enforced"]


@pytest.mark.parametrize(
    "text, key",
    [
        ('parked: "no"\n', "parked"),
        ("parked: 1\n", "parked"),
        ("null_mx: 'yes'\n", "null_mx"),
        ("ttl: true\n", "ttl"),
        ("ttl: '3600'\n", "ttl"),
        ("spf: {takeover: 1}\n", "takeover"),
        ("dmarc: {policy: reject, testing: 'false'}\n", "testing"),
        ("dmarc: {policy: reject, legacy: {pct: '50'}}\n", "pct"),
        ("senders:\n  - {name: r, ip4: [203.0.113.5], flatten: 'on'}\n", "flatten"),
        ("senders:\n  - {name: r, dkim: {selector: s, bits: '2048'}}\n", "bits"),
        ("bimi: {decline: 1}\n", "decline"),
        ("mta_sts: {mode: none, max_age: '60'}\n", "max_age"),
    ],
)
def test_booleans_and_numbers_are_not_coerced(text: str, key: str) -> None:
    findings = findings_of(text)
    assert any(key in f.message and f.hint for f in findings), findings


@pytest.mark.parametrize("value", ["true", "''", "'   '", "1", "[a]"])
def test_unaligned_ok_needs_a_reason(value: str) -> None:
    finding = one_finding(
        f"senders:\n  - {{name: r, ip4: [203.0.113.5], unaligned_ok: {value}}}\n"
    )
    assert "reason" in finding.message and "unaligned_ok:" in str(finding.hint)


def test_unaligned_ok_with_a_reason_loads() -> None:
    lp = parse_policy(
        "senders:\n  - {name: r, ip4: [203.0.113.5], unaligned_ok: ' vendor MAIL FROM '}\n",
        "x.yaml",
        "example.com",
    )
    assert lp.policy.senders[0].unaligned_ok == "vendor MAIL FROM"


# --- 5. every schema error says what to write -----------------------------------------------


@pytest.mark.parametrize(
    "text, message, hint",
    [
        (
            "senders:\n  - {name: r, ip6: [1.2.3.5]}\n",
            "1.2.3.5 is an IPv4 address, not IPv6: list it under ip4:",
            None,
        ),
        (
            "senders:\n  - {name: r, ip4: ['2001:db8::1']}\n",
            "is an IPv6 address, not IPv4: list it under ip6:",
            None,
        ),
        (
            "mta_sts: {mode: none, host: {ip4: ['2001:db8::1']}}\n",
            "ip4: '2001:db8::1' is not an IPv4 address",
            "ip4: [203.0.113.5",
        ),
        (
            "mta_sts: {mode: none, host: {ip6: [1.2.3.4]}}\n",
            "ip6: '1.2.3.4' is not an IPv6 address",
            "IPv6 under ip6:",
        ),
        (
            "senders:\n  - {name: r, dkim: {selector: s, bits: abc}}\n",
            "bits must be a whole number, not 'abc'",
            "bits: 2048",
        ),
        ("spf: null\n", "spf must be a mapping of settings, not None", "remove spf:"),
        ("dmarc: [reject]\n", "dmarc must be a mapping", "dmarc: {stage: monitor"),
        (
            "mta_sts: {mode: none, max_age: 99999999}\n",
            "max_age is 99999999: it must be less than or equal to 31557600",
            "max_age: 604800",
        ),
        ("ttl: 5\n", "ttl is 5: it must be greater than or equal to 60", "ttl: 3600"),
        ("ttl: 9999999\n", "ttl is 9999999: it must be less than or equal to 604800", "ttl: 3600"),
        ("parked: maybe\n", "parked must be true or false, not 'maybe'", "parked: true"),
        ("senders: {name: r}\n", "senders must be a list", "senders: [{name:"),
        ("domain: 5\n", "domain must be text, not 5", None),
    ],
)
def test_schema_errors_have_a_message_and_a_hint(
    text: str, message: str, hint: str | None
) -> None:
    findings = findings_of(text)
    match = [f for f in findings if message in f.message]
    assert match, [f.message for f in findings]
    assert match[0].hint, match[0]
    if hint is not None:
        assert hint in match[0].hint, match[0].hint
    assert "Input should be" not in match[0].message and "Input is not" not in match[0].message


# --- 6, 7. hints that point at the right setting --------------------------------------------


def test_bimi_with_testing_says_remove_testing() -> None:
    result = compile_text(
        f"dmarc:\n  policy: quarantine\n  testing: true\nbimi: {{logo: '{LOGO_URL}'}}\n"
    )
    (error,) = [e for e in result.errors if e.code == "bimi-dmarc-not-enforced"]
    assert "remove testing: true" in str(error.hint)
    assert "set dmarc: {policy: quarantine}" not in str(error.hint)


def test_short_publish_ahead_names_publish_ahead() -> None:
    from datetime import timedelta

    from octodns_mailauth.dkim.rotation import RotationConfig

    config = RotationConfig(
        "example.com", "relay", ("ed25519",), 2048, timedelta(days=30), timedelta(hours=1),
        timedelta(days=7), timedelta(days=7), 3600,
    )  # fmt: skip
    (problem,) = config.problems()
    assert "set publish_ahead: 2h or more" in problem


def test_subdomain_without_dmarc_is_told_the_parents_rua_applies() -> None:
    lp = parse_policy("senders: []\n", "mail/sub.example.com.yaml", "sub.example.com")
    result = compile_policy(lp, CATALOG, NO_KEYS)
    (missing,) = [f for f in result.findings if f.code == "dmarc-missing"]
    assert "you get no reports" not in missing.message
    assert "example.com's record" in missing.message and "rua=" in missing.message


@pytest.mark.parametrize("key", ["a", "mx"])
def test_union_of_bool_and_list_is_one_message(key: str) -> None:
    finding = one_finding(f"senders:\n  - {{name: r, {key}: 'no'}}\n")
    assert f"{key} must be true, false or a list of host names, not 'no'" in finding.message
    assert finding.hint and f"{key}: true" in finding.hint
