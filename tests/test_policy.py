"""The policy loader: valid files load; every kind of bad input names file,
line and key path, and says how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from octodns_mailauth.errors import PolicyError
from octodns_mailauth.policy.loader import load_policy_dir, load_policy_file, parse_policy

ROOT = Path(__file__).resolve().parent.parent


def error_of(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "mail/example.com.yaml", "example.com")
    return str(info.value)


def test_example_policies_load() -> None:
    loaded = load_policy_dir(ROOT / "zones" / "mail")
    assert [lp.domain for lp in loaded] == [
        "example.com",
        "example.net",
        "parked.example",
        "shop.example",
    ]
    office = loaded[0].policy.senders[0]
    assert office.provider == "microsoft365"
    assert office.params == {
        "tenant": "contoso",
        "selector1_target": "selector1-example-com._domainkey.contoso.n-v1.dkim.mail.microsoft",
        "selector2_target": "selector2-example-com._domainkey.contoso.n-v1.dkim.mail.microsoft",
    }


def test_domain_comes_from_file_name_or_key(tmp_path: Path) -> None:
    path = tmp_path / "Example.ORG.yaml"
    path.write_text("senders: []\n")
    assert load_policy_file(path).domain == "example.org"
    # A file named after one domain whose domain: names another: records
    # would land in the other zone, so it is an error naming both.
    path.write_text("domain: mail.example.org\n")
    with pytest.raises(PolicyError, match="named after example.org but domain: says mail"):
        load_policy_file(path)
    other = tmp_path / "mail-policy.yaml"
    other.write_text("domain: mail.example.org\nparked: true\n")
    assert load_policy_file(other).domain == "mail.example.org"


@pytest.mark.parametrize(
    "text, expected",
    [
        # broken YAML: line of the problem
        ("senders:\n  - name: a\n    ip4: [1.2.3.4\n", ["mail/example.com.yaml:4", "YAML syntax"]),
        ("senders: []\nsenders: []\n", [":2:", "duplicate key 'senders' (first at line 1)"]),
        # unknown key, with a suggestion
        (
            "dmarc:\n  policy: none\n  polciy: none\n",
            [":3:", "unknown key 'polciy'", "dmarc.polciy"],
        ),
        ("spff: {}\n", ["did you mean 'spf'"]),
        # malformed IP / CIDR
        (
            "senders:\n  - name: relay\n    ip4: [203.0.113.500]\n",
            [":3:", "senders[0].ip4", "'203.0.113.500' is not an IP address"],
        ),
        ("senders:\n  - name: r\n    ip4: 198.51.100.1/28\n", ["host bits", "198.51.100.0/28"]),
        ("senders:\n  - name: r\n    ip6: [2001:db8::/200]\n", ["senders[0].ip6"]),
        # DMARC value that does not exist
        ("dmarc:\n  policy: rejected\n", [":2:", "'rejected' is not allowed", "dmarc.policy"]),
        ("dmarc:\n  rua: [mailto:a@example.com]\n", ["missing required key 'policy'"]),
        ("dmarc: {policy: none, rua: [dmarc@example.com]}\n", ["mailto:reports@example.com"]),
        # selector that is not a DNS label
        (
            "senders:\n  - name: r\n    dkim:\n      selector: bad_selector!\n",
            [":4:", "senders[0].dkim.selector", "not a valid DKIM selector", "RFC 6376"],
        ),
        ("senders:\n  - name: r\n    dkim: {selector: -x}\n", ["not a valid DKIM selector"]),
        ("senders:\n  - name: r\n    dkim: {selector: a, algorithm: dsa}\n", ["'dsa'"]),
        ("senders:\n  - name: r\n    dkim: {selector: a, bits: 1024}\n", ["RFC 8301", "1024"]),
        (
            "senders:\n  - name: r\n    include: [notaname]\n",
            ["SPF include target 'notaname' is a single label"],
        ),
        ("- just\n- a list\n", ["must be a YAML mapping"]),
        ("ttl: 5\n", ["ttl", "greater than or equal to 60"]),
    ],
)
def test_bad_input_is_one_clear_message(text: str, expected: list[str]) -> None:
    message = error_of(text)
    for part in expected:
        assert part in message, message
    assert "Traceback" not in message
    assert "pydantic" not in message.lower()


def test_every_file_is_reported_before_raising(tmp_path: Path) -> None:
    (tmp_path / "a.example.yaml").write_text("dmarc: {policy: nope}\n")
    (tmp_path / "b.example.yaml").write_text("bogus: 1\n")
    (tmp_path / "c.example.yaml").write_text("senders: []\n")
    with pytest.raises(PolicyError) as info:
        load_policy_dir(tmp_path)
    text = str(info.value)
    assert "2 mail policy errors" in text
    assert "a.example.yaml:1" in text and "b.example.yaml:1" in text


def test_missing_folder_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy_dir(tmp_path / "nope")
    bad = tmp_path / "x.example.yaml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy_file(bad)


def test_unicode_and_non_dict_inputs_are_rejected_cleanly() -> None:
    # A U-label is written in its A-label form; a label mixing scripts is refused.
    assert "xn--exmple-cua.com" in error_of("domain: exämple.com\n")
    assert "mixes scripts" in error_of("domain: exаmple.com\n")
    assert "sender" in error_of("senders:\n  - 42\n")
