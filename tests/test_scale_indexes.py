"""What keeps a run over thousands of zones linear: a zone's plan finds its own
pending DKIM keys and acknowledgements by its name (keysource.pending_under,
MailAuthProcessor.acknowledged_under), never by scanning every one."""

from __future__ import annotations

from pathlib import Path

from octodns_mailauth.keysource import KeystoreKeys
from octodns_mailauth.names import at_and_above
from octodns_mailauth.policy.models import DkimKey
from octodns_mailauth.processor import MailAuthProcessor


def test_at_and_above() -> None:
    assert at_and_above("A.b.Example.") == ["a.b.example", "b.example", "example"]


def test_pending_keys_are_found_by_zone_and_leave_when_written(tmp_path: Path) -> None:
    keys = KeystoreKeys(tmp_path / "keys", generate=True)
    domains = ["example.com", "sub.example.com", "example.net", "other-example.com"]
    for domain in domains:
        keys.public_key(domain, DkimKey(selector="s1", algorithm="ed25519"))
    assert sorted(keys.pending) == sorted((d, "s1") for d in domains)
    assert sorted(keys.pending_under("example.com.")) == [
        ("example.com", "s1"),
        ("sub.example.com", "s1"),
    ]
    assert keys.pending_under("sub.example.com") == [("sub.example.com", "s1")]
    assert keys.pending_under("example.org") == []
    # Written (the plan applied): no longer pending, under any name.
    assert keys.commit({("sub.example.com", "s1")}) == [("sub.example.com", "s1")]
    assert (tmp_path / "keys" / "sub.example.com" / "s1.pem").is_file()
    assert keys.pending_under("example.com") == [("example.com", "s1")]
    assert keys.pending_under("sub.example.com") == []
    assert ("sub.example.com", "s1") not in keys.pending and len(keys.pending) == 3


def test_acknowledgements_are_found_by_zone(tmp_path: Path) -> None:
    mail = tmp_path / "mail"
    mail.mkdir()
    (mail / "example.com.yaml").write_text(
        "senders:\n  - {name: relay, ip4: [192.0.2.7]}\n"
        "dmarc: {policy: none}\n"
        'acknowledge: ["dmarc-weaken _dmarc", "dkim-delete old._domainkey"]\n'
    )
    (mail / "sub.example.com.yaml").write_text(
        'senders:\n  - {name: relay, ip4: [192.0.2.7]}\nacknowledge: ["dmarc-delete _dmarc"]\n'
    )
    proc = MailAuthProcessor("mail", policies=str(mail))
    assert len(proc.acknowledged) == 3
    assert proc.acknowledged_under("example.com.") == proc.acknowledged
    assert proc.acknowledged_under("sub.example.com.") == {
        ("dmarc-delete", "_dmarc.sub.example.com")
    }
    assert proc.acknowledged_under("example.net.") == frozenset()
