"""End to end with an independent verifier: octoDNS's Manager syncs the example
(fixed keys and a dual-algorithm rotation walked across simulated dates), then
every private key in the keystore signs a message with dkimpy, and dkimpy
verifies it against the exact TXT the zone file holds.  The revoked selector
must fail, as RFC 6376 §3.6.1 says."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dkim
import dns.rdatatype
import dns.zone
import pytest
import yaml
from dkimpy_key import dkimpy_private_key
from example_rotation import replay_example_rotation
from octodns.manager import Manager

from octodns_mailauth.dkim.keys import algorithm_of, generate_private_key, public_key_b64
from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.dkim.rotate import advance_rotation
from octodns_mailauth.dkim.statefile import load_state
from octodns_mailauth.errors import MailAuthProcessorError
from octodns_mailauth.policy.loader import load_policy_dir

ENV = "OCTODNS_MAILAUTH_KEY_PASSPHRASE"
CONFIG = "zones/config.yaml"
STATE = "zones/dkim-state.yaml"
MESSAGE = (
    b"From: Relay <noreply@example.com>\r\nTo: someone@example.org\r\n"
    b"Subject: rotation\r\nMessage-ID: <1@example.com>\r\n\r\nHello, DKIM.\r\n"
)


def txt_records(zone: str) -> dict[str, bytes]:
    """name -> joined TXT strings, as a resolver hands them to a verifier."""
    z = dns.zone.from_file(f"zones/output/{zone}.zone", zone, relativize=False, check_origin=False)
    out = {}
    for name, _ttl, rdata in z.iterate_rdatas("TXT"):
        out[name.to_text().rstrip(".").lower()] = b"".join(rdata.strings)
    return out


def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes | None:
    text = (name.decode() if isinstance(name, bytes) else name).rstrip(".").lower()
    domain = text.split("._domainkey.", 1)[1]
    # Each policy's zone is its domain in the example; a subdomain policy would
    # live in its parent's zone file.
    for zone in (domain, domain.split(".", 1)[1]):
        if Path(f"zones/output/{zone}.zone").exists():
            return txt_records(zone).get(text)
    return None


def add_rotating_sender() -> None:
    path = Path("zones/mail/example.com.yaml")
    data = yaml.safe_load(path.read_text())
    data["senders"].append(
        {
            "name": "bulk",
            "ip4": ["192.0.2.25"],
            "dkim": {"rotate": "20d", "prefix": "bulk", "algorithms": ["ed25519", "rsa"]},
        }
    )
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def walk_rotation(days: int) -> None:
    """Run the rotate command for example.com once a day for `days` days, ending
    today (example.net's rotation is the example's committed one)."""
    store = Keystore("zones/.dkim")
    policies = [lp for lp in load_policy_dir("zones/mail") if lp.domain == "example.com"]
    start = datetime.now(timezone.utc) - timedelta(days=days)
    for day in range(days + 1):
        advance_rotation(policies, STATE, store, start + timedelta(days=day))


def sign(store: Keystore, domain: str, selector: str) -> bytes:
    key = store.load(domain, selector)
    algorithm = b"ed25519-sha256" if algorithm_of(key) == "ed25519" else b"rsa-sha256"
    header = dkim.sign(
        MESSAGE,
        selector.encode(),
        domain.encode(),
        dkimpy_private_key(key),
        signature_algorithm=algorithm,
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    return header + MESSAGE


@pytest.mark.parametrize("passphrase", [None, "correct horse battery staple"])
def test_stored_keys_verify_against_the_synced_zone(
    example: Path, monkeypatch: pytest.MonkeyPatch, passphrase: str | None
) -> None:
    if passphrase:
        monkeypatch.setenv(ENV, passphrase)
    else:
        monkeypatch.delenv(ENV, raising=False)
    replay_example_rotation()  # example.net's, with the keys its signing host holds
    add_rotating_sender()
    # 32 days: key A published day 0, active day 2, retired day 22 when B takes
    # over, revoked day 29: today A is revoked and B active.
    walk_rotation(32)
    Manager(CONFIG).sync(dry_run=False)

    store = Keystore("zones/.dkim")
    state = {k.selector: k.status.value for k in load_state(STATE, "zones/mail").keys}
    bulk = sorted(v for s, v in state.items() if s.startswith("bulk-"))
    assert bulk == ["active", "active", "revoked", "revoked"]
    # example.net's: the active pair and the one published ahead of it.
    assert sorted(v for s, v in state.items() if s.startswith("billing-")) == [
        "active",
        "active",
        "published",
        "published",
    ]
    signed = 0
    domains = sorted(p.name for p in store.root.iterdir() if p.is_dir())
    assert {"example.com", "example.net", "shop.example"} <= set(domains)
    for domain in domains:
        for selector in store.selectors(domain):
            pem = (store.root / domain / f"{selector}.pem").read_bytes()
            assert (b"ENCRYPTED" in pem) == bool(passphrase)
            ok = dkim.verify(sign(store, domain, selector), dnsfunc=dnsfunc)
            expected = state.get(selector, "fixed") != "revoked"
            assert ok is expected, (domain, selector, state.get(selector))
            signed += 1
    # Every fixed selector of every policy, plus the four rotating keys of each domain.
    fixed = [
        key.selector
        for lp in load_policy_dir("zones/mail")
        for sender in lp.policy.senders
        for key in sender.dkim
        if key.selector is not None and not key.public_key
    ]
    assert len(fixed) >= 3 and signed == len(fixed) + 4 + 4
    records = txt_records("example.com")
    for selector, status in ((s, v) for s, v in state.items() if s.startswith("bulk-")):
        value = records[f"{selector}._domainkey.example.com"].decode()
        assert ("p=;" in value or value.endswith("p=")) == (status == "revoked"), value


def test_pipeline_publishes_without_private_keys(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state file and `public_key:` are enough: no keystore, same zone."""
    monkeypatch.delenv(ENV, raising=False)
    add_rotating_sender()
    walk_rotation(3)
    assert Manager(CONFIG).sync(dry_run=False) > 0
    before = txt_records("example.com")
    store = Keystore("zones/.dkim")
    for path in Path("zones/mail").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        domain = data.get("domain", path.name.removesuffix(".yaml"))
        for sender in data.get("senders", []):
            entries = sender.get("dkim", [])
            for key in [entries] if isinstance(entries, dict) else entries:
                if "selector" in key and "public_key" not in key:
                    key["public_key"] = public_key_b64(store.load(domain, key["selector"]))
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.move("zones/.dkim", "elsewhere")
    config = yaml.safe_load(Path(CONFIG).read_text())
    del config["processors"]["mailauth"]["keys"]
    config["processors"]["mailauth"]["generate_keys"] = False
    Path(CONFIG).write_text(yaml.safe_dump(config))
    assert Manager(CONFIG).sync(dry_run=False) == 0
    assert txt_records("example.com") == before
    assert not Path("zones/.dkim").exists()


def test_state_not_matching_the_keystore_fails_at_construction(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    add_rotating_sender()
    walk_rotation(3)
    text = Path(STATE).read_text()
    state = load_state(STATE, "zones/mail")
    ed = next(k for k in state.keys if k.algorithm == "ed25519" and k.domain == "example.com")
    forged = public_key_b64(generate_private_key("ed25519"))
    Path(STATE).write_text(text.replace(ed.p, forged))
    with pytest.raises(MailAuthProcessorError) as info:
        Manager(CONFIG)
    message = str(info.value)
    assert "does not match the private key" in message
    assert f"zones/dkim-state.yaml:{ed.line}" in message
    assert "PRIVATE" not in message
