"""DKIM policy entries: record tags (RFC 6376 §3.6.1) and bad input.  Each bad
input is one clear message with file, line and key path, and nothing is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.dkim.keys import generate_private_key, private_key_to_pem, public_key_b64
from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.keysource import KeystoreKeys
from octodns_mailauth.policy.loader import parse_policy
from octodns_mailauth.records.dkim import parse_dkim_txt, parse_key_record

ENV = "OCTODNS_MAILAUTH_KEY_PASSPHRASE"


@pytest.fixture(autouse=True)
def no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def load(dkim: str):  # type: ignore[no-untyped-def]
    text = f"senders:\n  - name: relay\n    ip4: [203.0.113.5]\n    dkim: {dkim}\n"
    return parse_policy(text, "mail/example.com.yaml", "example.com")


def error_of(dkim: str) -> str:
    with pytest.raises(PolicyError) as info:
        load(dkim)
    return str(info.value)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_record_tags_from_the_policy() -> None:
    pub = public_key_b64(generate_private_key("ed25519"))
    lp = load(
        f"{{selector: s1, algorithm: ed25519, public_key: '{pub}', testing: true, "
        "hash_algorithms: [sha256], service: [email, tlsrpt], notes: 'ops; rotate yearly'}"
    )
    result = compile_policy(lp, load_catalog([]), KeystoreKeys(None))
    [record] = [r for r in result.records if r.kind == "dkim"]
    tags = parse_dkim_txt(record.values[0])
    assert list(tags) == ["v", "h", "k", "n", "p", "s", "t"]
    assert tags["h"] == "sha256" and tags["s"] == "email:tlsrpt" and tags["t"] == "y"
    assert tags["n"] == "ops=3B rotate yearly"  # qp-section: ';' encoded (§3.6.1, §2.11)
    parsed = parse_key_record(record.values[0])
    assert parsed.testing and parsed.services == ("email", "tlsrpt")
    assert public_key_b64(parsed.public_key) == pub  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "dkim, needles",
    [
        ("{selector: bad_sel}", ["'bad_sel' is not a valid DKIM selector", "RFC 6376 §3.1"]),
        ("{selector: -bad}", ["is not a valid DKIM selector"]),
        ("{selector: s1, bits: 1024}", ["RSA key size 1024 is too small", "RFC 8301"]),
        ("{selector: s1, bits: 8192}", ["RSA key size 8192 is too large"]),
        ("{selector: s1, hash_algorithms: [sha1]}", ["hash_algorithms"]),
        ("{selector: s1, service: [web]}", ["service"]),
        ("{rotate: 90d}", ["needs `prefix:`"]),
        ("{rotate: soon, prefix: relay}", ["'soon' is not a duration"]),
        ("{selector: s1, rotate: 90d, prefix: r}", ["no fixed `selector:`"]),
        ("{prefix: relay}", ["needs a `selector:`"]),
        ("{rotate: 90d, prefix: 're lay'}", ["not a valid selector prefix"]),
    ],
)
def test_bad_dkim_entries(dkim: str, needles: list[str]) -> None:
    text = error_of(dkim)
    for needle in needles:
        assert needle in text, text
    assert "mail/example.com.yaml:4" in text and "senders[0].dkim" in text, text
    assert "Traceback" not in text and "pydantic" not in text


def _stored(tmp_path: Path, data: bytes, selector: str = "s1") -> Path:
    store = Keystore(tmp_path / "keys")
    directory = store.path_for("example.com", selector).parent
    directory.mkdir(mode=0o700)
    path = directory / f"{selector}.pem"
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return tmp_path / "keys"


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", "corrupt"),
        (b"", "not a valid PEM private key"),
    ],
)
def test_corrupt_key_file_is_a_clear_error(tmp_path: Path, data: bytes, needle: str) -> None:
    root = _stored(tmp_path, data)
    before = snapshot(root)
    result = compile_policy(
        load("{selector: s1, algorithm: ed25519}"), load_catalog([]), KeystoreKeys(root)
    )
    [error] = result.errors
    assert needle in error.message and "keys/example.com/s1.pem" in error.message
    assert "mail/example.com.yaml:4" in error.format()
    assert snapshot(root) == before  # not replaced by a fresh key


def test_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    # We run as root in CI, where mode 000 does not stop reads; a directory in the
    # key's place is unreadable as a key for everyone.
    root = _stored(tmp_path, b"x")
    path = root / "example.com" / "s1.pem"
    path.unlink()
    path.mkdir(mode=0o700)
    result = compile_policy(
        load("{selector: s1, algorithm: ed25519}"), load_catalog([]), KeystoreKeys(root)
    )
    [error] = result.errors
    assert "s1.pem" in error.message and "not a regular file" in error.message
    assert path.is_dir()


def test_wrong_or_missing_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_private_key("ed25519")
    root = _stored(tmp_path, private_key_to_pem(key, b"right horse battery"))
    lp = load("{selector: s1, algorithm: ed25519}")
    before = snapshot(root)
    result = compile_policy(lp, load_catalog([]), KeystoreKeys(root))
    assert f"set {ENV}" in result.errors[0].message
    monkeypatch.setenv(ENV, "wrong staple")
    result = compile_policy(lp, load_catalog([]), KeystoreKeys(root))
    message = result.errors[0].message
    assert "wrong passphrase" in message and ENV in message
    assert "wrong staple" not in message and "PRIVATE" not in message
    monkeypatch.setenv(ENV, "right horse battery")
    result = compile_policy(lp, load_catalog([]), KeystoreKeys(root))
    assert not result.errors
    assert snapshot(root) == before


def test_published_p_not_matching_stored_key(tmp_path: Path) -> None:
    root = _stored(tmp_path, private_key_to_pem(generate_private_key("ed25519"), None))
    other = public_key_b64(generate_private_key("ed25519"))
    result = compile_policy(
        load(f"{{selector: s1, algorithm: ed25519, public_key: '{other}'}}"),
        load_catalog([]),
        KeystoreKeys(root),
    )
    [error] = result.errors
    assert "does not match the private key" in error.message
    assert other not in error.message
    assert not [r for r in result.records if r.kind == "dkim"]
