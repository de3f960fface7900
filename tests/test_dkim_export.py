"""MTA exports for the active selectors: OpenDKIM KeyTable/SigningTable and
Rspamd dkim_signing, parsed back and checked against the keystore and state."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from octodns_mailauth.dkim.export import (
    active_signing_keys,
    render_opendkim_keytable,
    render_opendkim_signingtable,
    render_rspamd_signing,
    write_exports,
)
from octodns_mailauth.dkim.keys import private_key_from_pem, public_key_b64
from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.dkim.rotate import advance_rotation, keygen
from octodns_mailauth.dkim.statefile import load_state
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.policy.loader import parse_policy

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
POLICY = """\
senders:
  - name: relay
    ip4: [203.0.113.5]
    dkim: {rotate: 30d, prefix: relay, algorithms: [ed25519, rsa]}
  - name: billing
    a: [billing.example.com]
    dkim: {selector: billing2026, algorithm: ed25519}
"""


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("OCTODNS_MAILAUTH_KEY_PASSPHRASE", raising=False)
    lp = parse_policy(POLICY, "mail/example.com.yaml", "example.com")
    store = Keystore(tmp_path / "keys")
    state_path = tmp_path / "dkim-state.yaml"
    keygen([lp], store)
    # Two rotations: the first pair retired, the second pair active, a third published.
    for day in (0, 2, 30, 32, 60):
        advance_rotation([lp], state_path, store, T0 + timedelta(days=day))
    return lp, store, load_state(state_path, tmp_path)


def parse_keytable(text: str) -> dict[str, tuple[str, str, str]]:
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, spec = line.split()
            domain, selector, path = spec.split(":", 2)
            out[name] = (domain, selector, path)
    return out


def test_only_active_selectors_are_exported(setup) -> None:  # type: ignore[no-untyped-def]
    lp, store, state = setup
    statuses = {k.selector: k.status.value for k in state.keys}
    active = {s for s, v in statuses.items() if v == "active"}
    assert len(active) == 2 and "published" in statuses.values()
    keys = active_signing_keys([lp], state, store)
    assert {k.selector for k in keys} == active | {"billing2026"}
    table = parse_keytable(render_opendkim_keytable(keys))
    assert set(table) == {f"{s}._domainkey.example.com" for s in active | {"billing2026"}}
    for _name, (domain, selector, path) in table.items():
        assert domain == "example.com"
        # The key file is the keystore's key for that selector, and its public
        # half is what DNS publishes (state p= or the fixed key).
        key = private_key_from_pem(Path(path).read_bytes(), None)
        expected = next((k.p for k in state.keys if k.selector == selector), None)
        if expected is not None:
            assert public_key_b64(key) == expected
    signing = [
        line.split()
        for line in render_opendkim_signingtable(keys).splitlines()
        if line and not line.startswith("#")
    ]
    assert sorted(name for _pattern, name in signing) == sorted(table)
    assert {pattern for pattern, _name in signing} == {"*@example.com"}


def test_rspamd_config_parses(setup) -> None:  # type: ignore[no-untyped-def]
    lp, store, state = setup
    keys = active_signing_keys([lp], state, store)
    text = render_rspamd_signing(keys)
    assert text.count("{") == text.count("}") and text.count("[") == text.count("]")
    entries = re.findall(r'\{ selector = "([^"]+)"; path = "([^"]+)"; \}', text)
    assert sorted(entries) == sorted((k.selector, str(k.key_path)) for k in keys)
    assert re.search(r'^  "example\.com" \{$', text, re.M)
    # Every active selector of the dual-signing domain, not one per domain.
    assert len(entries) == len(keys) >= 2


def test_write_exports_and_warns_about_encrypted_keys(
    setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    lp, store, state = setup
    keys = active_signing_keys([lp], state, store)
    files, warnings = write_exports(keys, tmp_path / "mta")
    assert sorted(p.name for p in files) == [
        "KeyTable",
        "SigningTable",
        "dkim_signing.conf",
    ]
    assert warnings == []
    assert parse_keytable((tmp_path / "mta" / "KeyTable").read_text())
    # An encrypted key is flagged: the MTA cannot read it.
    monkeypatch.setenv("OCTODNS_MAILAUTH_KEY_PASSPHRASE", "pw")
    enc = Keystore(tmp_path / "enc")
    keygen([lp], enc)
    # The active rotating keys live in the other keystore: export checks every key it
    # names, as the processor does, and refuses rather than point the MTA at nothing.
    with pytest.raises(PolicyError, match="no DKIM key at .*relay-"):
        active_signing_keys([lp], state, enc)
    for rk in state.keys:
        enc.import_key(rk.domain, rk.selector, store.load(rk.domain, rk.selector))
    keys = active_signing_keys([lp], state, enc)
    _files, warnings = write_exports(keys, tmp_path / "mta2")
    encrypted = [w for w in warnings if "is encrypted" in w]
    assert len(encrypted) == 3 and any("billing2026.pem" in w for w in encrypted)
    assert not [w for w in warnings if "not readable here" in w]
