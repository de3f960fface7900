"""Delegated DKIM (provider CNAMEs) beside our own keys: a CNAME and a TXT at
one selector, or two senders claiming one selector, is an error that names
both owners and the policy line; never a silent merge."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.dkim.keys import generate_private_key, public_key_b64
from octodns_mailauth.dkim.rotation import KeyStatus, RotatedKey, RotationState
from octodns_mailauth.keysource import KeystoreKeys
from octodns_mailauth.policy.loader import parse_policy

ED = public_key_b64(generate_private_key("ed25519"))


def compile_text(text: str, state: RotationState | None = None):  # type: ignore[no-untyped-def]
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    return compile_policy(lp, load_catalog([]), KeystoreKeys(None), dkim_state=state)


def test_cname_and_txt_at_one_selector_is_an_error() -> None:
    result = compile_text(
        "senders:\n"
        "  - name: office\n"
        "    provider: microsoft365\n"
        "    tenant: contoso\n"
        "    dkim_targets: legacy\n"
        "  - name: relay\n"
        "    ip4: [203.0.113.5]\n"
        f"    dkim: {{selector: selector1, algorithm: ed25519, public_key: '{ED}'}}\n"
    )
    conflicts = [f for f in result.errors if f.code == "record-conflict"]
    assert len(conflicts) == 1, [f.format() for f in result.findings]
    text = conflicts[0].format()
    assert "selector1._domainkey.example.com" in text
    assert "sender office" in text and "sender relay" in text
    assert "CNAME" in text and "RFC 1034 §3.6.2" in text
    assert "mail/example.com.yaml:8" in text  # the relay's dkim entry


def test_two_senders_claiming_one_selector_is_an_error() -> None:
    result = compile_text(
        "senders:\n"
        "  - name: relay\n"
        "    ip4: [203.0.113.5]\n"
        f"    dkim: {{selector: shared, algorithm: ed25519, public_key: '{ED}'}}\n"
        "  - name: billing\n"
        "    a: [billing.example.com]\n"
        f"    dkim: {{selector: shared, algorithm: ed25519, public_key: '{ED}'}}\n"
    )
    conflicts = [f for f in result.errors if f.code == "record-conflict"]
    assert len(conflicts) == 1
    text = conflicts[0].format()
    assert "both sender relay" in text and "sender billing" in text
    assert "shared._domainkey.example.com" in text
    assert "mail/example.com.yaml:7" in text


def test_rotating_selector_colliding_with_a_fixed_one_is_an_error() -> None:
    selector = "relay-20260101-ed"
    state = RotationState(
        "zones/dkim-state.yaml",
        (
            RotatedKey(
                "example.com",
                "relay",
                selector,
                "ed25519",
                KeyStatus.ACTIVE,
                ED,
                datetime(2026, 1, 1, tzinfo=timezone.utc),
                activated=datetime(2026, 1, 3, tzinfo=timezone.utc),
            ),
        ),
    )
    result = compile_text(
        "senders:\n"
        "  - name: relay\n"
        "    dkim: {rotate: 90d, prefix: relay, algorithm: ed25519}\n"
        "  - name: other\n"
        f"    dkim: {{selector: {selector}, algorithm: ed25519, public_key: '{ED}'}}\n",
        state,
    )
    assert [f.code for f in result.errors] == ["record-conflict"]


@pytest.mark.parametrize("provider_selector", ["selector1", "selector2"])
def test_provider_cnames_alone_are_fine(provider_selector: str) -> None:
    result = compile_text(
        "senders:\n  - name: office\n    provider: microsoft365\n    tenant: contoso\n"
        "    dkim_targets: legacy\n"
    )
    assert not result.errors
    names = {r.name: r for r in result.records if r.type == "CNAME"}
    record = names[f"{provider_selector}._domainkey.example.com"]
    assert record.values == (
        f"{provider_selector}-example-com._domainkey.contoso.onmicrosoft.com.",
    )
