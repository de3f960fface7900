"""Keystore safety: no symbolic link followed anywhere under the root, `dkim
export` applies the processor's checks, and a wrong passphrase is caught
before any key is generated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from octodns_mailauth.cli import main
from octodns_mailauth.dkim.keys import generate_private_key, private_key_to_pem
from octodns_mailauth.dkim.keystore import Keystore, KeystoreError

CONFIG = "zones/config.yaml"
PASS_ENV = "OCTODNS_MAILAUTH_KEY_PASSPHRASE"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def pems(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.pem"))


@pytest.fixture
def store(example: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(PASS_ENV, raising=False)
    return example


# --- symbolic links -------------------------------------------------------------------------


def test_keystore_root_through_a_symlink_is_refused(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = store / "elsewhere"
    outside.mkdir(mode=0o700)
    os.symlink(outside, "zones/.dkim")
    code, out = cli(capsys, "dkim", "keygen", "--config", CONFIG)
    assert code != 0 and "zones/.dkim is a symbolic link" in out, out
    assert pems(outside) == []
    with pytest.raises(KeystoreError, match="is a symbolic link"):
        Keystore("zones/.dkim")


def test_domain_folder_through_a_symlink_is_refused(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = store / "elsewhere"
    outside.mkdir(mode=0o700)
    Path("zones/.dkim").mkdir(mode=0o700)
    os.symlink(outside, "zones/.dkim/example.com")
    code, out = cli(capsys, "dkim", "keygen", "--config", CONFIG)
    assert code == 1 and "zones/.dkim/example.com is a symbolic link" in out, out
    assert pems(outside) == []
    # The processor refuses it the same way, generating nothing.
    from octodns.manager import Manager

    with pytest.raises(Exception, match="is a symbolic link"):
        Manager(CONFIG).sync(dry_run=False)
    assert pems(outside) == []


def test_key_file_symlink_is_neither_read_nor_exported(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "dkim", "keygen", "--config", CONFIG)[0] == 0
    key = Path("zones/.dkim/example.com/relay2026a.pem")
    real = store / "real.pem"
    real.write_bytes(key.read_bytes())
    real.chmod(0o600)
    key.unlink()
    os.symlink(real, key)
    code, out = cli(capsys, "dkim", "export", "--config", CONFIG)
    assert code == 1 and "relay2026a.pem is a symlink" in out, out
    assert str(real) not in out


# --- export applies the processor's checks --------------------------------------------------


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda p: p.chmod(0o644), "is accessible to other users (mode 0644)"),
        (lambda p: p.write_bytes(b"not a key\n"), "not a valid PEM private key"),
        (
            lambda p: p.write_bytes(private_key_to_pem(generate_private_key("rsa", 2048), None)),
            "holds an rsa key, not ed25519 as the policy declares",
        ),
    ],
    ids=["mode-0644", "not-a-key", "wrong-algorithm"],
)
def test_export_refuses_what_the_processor_refuses(
    store: Path, capsys: pytest.CaptureFixture[str], spoil, message: str
) -> None:  # type: ignore[no-untyped-def]
    assert cli(capsys, "dkim", "keygen", "--config", CONFIG)[0] == 0
    spoil(Path("zones/.dkim/example.com/relay2026a.pem"))
    out_dir = store / "mta"
    code, out = cli(capsys, "dkim", "export", "--config", CONFIG, "-o", str(out_dir))
    assert code == 1 and message in out, out
    assert not out_dir.exists()
    # The processor refuses the same file.
    code, out = cli(capsys, "records", "example.com", "--config", CONFIG)
    assert code != 0


# --- passphrase -----------------------------------------------------------------------------


def test_wrong_passphrase_is_caught_before_any_key_is_made(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASS_ENV, "the right one")
    assert cli(capsys, "dkim", "keygen", "--config", CONFIG)[0] == 0
    Path("zones/.dkim/example.com/relay2026r.pem").unlink()  # one key missing
    before = pems(Path("zones/.dkim"))
    monkeypatch.setenv(PASS_ENV, "a wrong one")
    code, out = cli(capsys, "dkim", "keygen", "--config", CONFIG)
    assert code == 1 and "does not open" in out and "nothing was generated" in out, out
    assert pems(Path("zones/.dkim")) == before
    # Unset while the store is encrypted: new keys would be plaintext beside them.
    monkeypatch.delenv(PASS_ENV)
    code, out = cli(capsys, "dkim", "keygen", "--config", CONFIG)
    assert code == 1 and f"{PASS_ENV} is not set" in out, out
    assert pems(Path("zones/.dkim")) == before
    # The processor (generate_keys: true) refuses before generating as well.
    from octodns.manager import Manager

    monkeypatch.setenv(PASS_ENV, "a wrong one")
    with pytest.raises(Exception, match="does not open|cannot load"):
        Manager(CONFIG).sync(dry_run=False)
    assert pems(Path("zones/.dkim")) == before
    monkeypatch.setenv(PASS_ENV, "the right one")
    code, out = cli(capsys, "dkim", "keygen", "--config", CONFIG)
    assert code == 0 and "relay2026r: generated" in out
