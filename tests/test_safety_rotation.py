"""Rotation cannot strand a signer: `dkim rotate` activates a key only once DNS
serves that exact key (asked like `check` asks, here the loopback PowerDNS),
and a lost, emptied or truncated state file is an error, never a fresh start."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from octodns.manager import Manager

from octodns_mailauth.acknowledge import ACK_ENV
from octodns_mailauth.cli import main

CONFIG = "zones/config-pdns.yaml"
STATE = Path("zones/dkim-state.yaml")
LATER = (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_rotating_key() -> None:
    com = Path("zones/mail/example.com.yaml")
    anchor = "      - {selector: relay2026r, algorithm: rsa}\n"
    text = com.read_text()
    assert anchor in text
    com.write_text(
        text.replace(anchor, anchor + "      - {rotate: 90d, prefix: relay, algorithm: ed25519}\n")
    )
    for other in ("example.net", "shop.example", "parked.example"):
        os.remove(f"zones/mail/{other}.yaml")
    STATE.unlink()  # the example's committed rotation is example.net's, gone with its policy


def pdns_config(pdns: Any) -> None:
    config = yaml.safe_load(Path("zones/config.yaml").read_text())
    config["providers"]["pdns"] = {
        "class": "octodns_powerdns.PowerDnsProvider",
        **pdns.octodns_provider_config(),
    }
    config["zones"] = {"example.com.": {**config["zones"]["example.com."], "targets": ["pdns"]}}
    Path(CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    if "example.com." in pdns.zone_names():
        pdns.delete_zone("example.com")
    pdns.create_zone("example.com")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def status(selector_prefix: str = "relay-") -> list[str]:
    data = yaml.safe_load(STATE.read_text())
    return [k["status"] for k in data["keys"] if k["selector"].startswith(selector_prefix)]


@pytest.fixture
def rotating(example: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(ACK_ENV, raising=False)
    add_rotating_key()
    return example


@pytest.mark.pdns
def test_rotate_activates_only_a_key_dns_serves(
    rotating: Path, pdns: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pdns_config(pdns)
    server = ["--nameserver", f"{pdns.host}:{pdns.dns_port}", "--timeout", "2"]
    assert cli(capsys, "dkim", "keygen", "--config", CONFIG)[0] == 0
    code, out = cli(capsys, "dkim", "rotate", "--config", CONFIG, *server)
    assert code == 0 and "example.com: publish" in out, out
    # The pipeline has not synced yet: the new selector is not in DNS.
    code, out = cli(capsys, "dkim", "rotate", "--config", CONFIG, "--now", LATER, *server)
    assert code == 1, out
    assert "NOT activating relay-" in out and "serves no DKIM key at relay-" in out
    assert "the MTA keeps its current key" in out
    assert status() == ["published"]
    assert "MTA must now sign" not in out
    # Published by octoDNS, then the same command activates it.
    Manager(CONFIG).sync(dry_run=False)
    code, out = cli(capsys, "dkim", "rotate", "--config", CONFIG, "--now", LATER, *server)
    assert code == 0, out
    assert "MTA must now sign with selector relay-" in out
    assert status() == ["active"]


def test_rotate_without_dns_needs_the_explicit_flag(
    rotating: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "zones/config.yaml"
    assert cli(capsys, "dkim", "keygen", "--config", config)[0] == 0
    assert cli(capsys, "dkim", "rotate", "--config", config)[0] == 0
    # A server that answers nothing (a closed port): held, with the reason.
    code, out = cli(
        capsys,
        "dkim",
        "rotate",
        "--config",
        config,
        "--now",
        LATER,
        "--nameserver",
        "127.0.0.1:9",
        "--timeout",
        "0.5",
    )
    assert code == 1 and "cannot confirm it is published" in out, out
    assert status() == ["published"]
    code, out = cli(
        capsys, "dkim", "rotate", "--config", config, "--now", LATER, "--assume-published"
    )
    assert code == 0 and "MTA must now sign with selector relay-" in out
    assert status() == ["active"]


def _rotated(capsys: pytest.CaptureFixture[str]) -> str:
    config = "zones/config.yaml"
    assert cli(capsys, "dkim", "keygen", "--config", config)[0] == 0
    assert cli(capsys, "dkim", "rotate", "--config", config)[0] == 0
    code, _ = cli(
        capsys, "dkim", "rotate", "--config", config, "--now", LATER, "--assume-published"
    )
    assert code == 0 and status() == ["active"]
    return STATE.read_text()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda text: "", "the file is empty"),
        (lambda text: "# DKIM rotation state\n", "the file is empty"),
        (lambda text: "\n".join(text.splitlines()[:-1]) + "\n", "it is truncated"),
        (lambda text: None, "the keystore holds rotated keys for it (relay-"),
    ],
    ids=["emptied", "comments-only", "truncated", "deleted"],
)
def test_lost_state_is_an_error_not_a_fresh_start(
    rotating: Path, capsys: pytest.CaptureFixture[str], damage: Any, message: str
) -> None:
    good = _rotated(capsys)
    keys_before = sorted(p.name for p in Path("zones/.dkim").rglob("*.pem"))
    broken = damage(good)
    if broken is None:
        STATE.unlink()
    else:
        STATE.write_text(broken)
    code, out = cli(
        capsys, "dkim", "rotate", "--config", "zones/config.yaml", "--assume-published"
    )
    assert code == 1, out
    assert message in out and "restore" in out
    # Nothing was generated or written.
    assert sorted(p.name for p in Path("zones/.dkim").rglob("*.pem")) == keys_before
    assert (STATE.read_text() if STATE.exists() else None) == broken
    # The sync refuses too (it would drop the signing selector), unless the file is restored.
    if broken is not None:
        code, out = cli(capsys, "validate", "--config", "zones/config.yaml")
        assert code != 0 and message in out, out
    STATE.write_text(good)
    code, out = cli(
        capsys, "dkim", "rotate", "--config", "zones/config.yaml", "--assume-published"
    )
    assert code == 0, out


def test_first_rotation_without_state_still_starts(
    rotating: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree("zones/.dkim", ignore_errors=True)
    assert not STATE.exists()
    code, out = cli(capsys, "dkim", "rotate", "--config", "zones/config.yaml")
    assert code == 0 and "example.com: publish" in out
    assert STATE.read_text().rstrip().endswith("# end of state: 1 key")
