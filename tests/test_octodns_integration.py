"""The processor inside octoDNS's Manager and the CLI agree: escaped and dynamic
records, strict settings, secrets never echoed, one finding per conflict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_run import Result, cli
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from octodns.manager import Manager

from octodns_mailauth.errors import MailAuthProcessorError, PolicyError
from octodns_mailauth.policy.loader import parse_policy

CONFIG = "zones/config.yaml"
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str] | Result:
    """octoDNS's commands in a subprocess; ours in-process (tests/cli_run.py)."""
    if args[0] == "octodns-mailauth":
        return cli(*args[1:])
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120
    )


def edit(path: str, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(Path(path).read_text())
    change(data)
    if "/config/" in path:
        data = dict(sorted(data.items()))
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def test_dmarc_written_with_a_decimal_escape_is_recognised(example: Path) -> None:
    # `\059` is ';' (RFC 1035 §5.1): this is a hand-written DMARC record, and two
    # DMARC records at one name make receivers apply none (RFC 7489 §6.6.3).
    edit(
        "zones/config/example.net.yaml",
        lambda d: d.update({"_dmarc": {"type": "TXT", "value": "v=DMARC1\\059 p=reject"}}),
    )
    with pytest.raises(
        MailAuthProcessorError, match="hand-written dmarc value 'v=DMARC1; p=reject'"
    ):
        Manager(CONFIG).sync(dry_run=True)


def test_dynamic_zones_work(example: Path) -> None:
    def dynamic(d):  # type: ignore[no-untyped-def]
        d["zones"] = {
            "*": {"sources": ["config"], "processors": ["mailauth"], "targets": ["local"]}
        }

    edit(CONFIG, dynamic)
    assert Manager(CONFIG).sync(dry_run=False) > 0
    assert "v=spf1" in Path("zones/output/example.com.zone").read_text()
    assert Manager(CONFIG).sync(dry_run=True) == 0
    result = run("octodns-mailauth", "validate", "--config", CONFIG)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_generate_keys_must_be_a_boolean(example: Path) -> None:
    edit(CONFIG, lambda d: d["processors"]["mailauth"].update(generate_keys="false"))
    result = run("octodns-validate", "--config-file", CONFIG)
    assert result.returncode != 0
    assert "generate_keys must be true or false, not 'false'" in result.stderr
    assert not Path("zones/.dkim").exists()
    cli = run("octodns-mailauth", "validate", "--config", CONFIG)
    assert cli.returncode == 2 and "generate_keys must be true or false" in cli.stderr


def test_cli_validate_agrees_with_the_processor_on_missing_keys(example: Path) -> None:
    edit(CONFIG, lambda d: d["processors"]["mailauth"].pop("generate_keys"))
    sync = run("octodns-validate", "--config-file", CONFIG)
    cli = run("octodns-mailauth", "validate", "--config", CONFIG)
    assert sync.returncode != 0 and "no DKIM key for selector relay2026a" in sync.stderr
    assert cli.returncode == 1
    assert "no DKIM key for selector relay2026a" in cli.stdout + cli.stderr


@pytest.mark.parametrize(
    "text, key",
    [
        ("parked: yes\n", "parked"),
        ("null_mx: off\n", "null_mx"),
        ("ttl: 1:00:00\n", "ttl"),
        ("ttl: 0xE10\n", "ttl"),
        ("spf: {takeover: on}\n", "spf.takeover"),
    ],
)
def test_yaml_1_1_values_are_not_guessed(text: str, key: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml", "example.com")
    assert key in str(info.value)


def test_pasted_private_key_body_is_never_echoed(tmp_path: Path) -> None:
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    body = "".join(pem.splitlines()[1:-1])
    line = pem.splitlines()[1]
    (tmp_path / "a.example.yaml").write_text(
        f"senders:\n  - name: '{body}'\n    ip4: [192.0.2.1]\n"
        f"dmarc: {{policy: reject, rua: ['mailto:{body[:200]}@a.example']}}\n"
        f"{body[:300]}: 1\n"
    )
    (tmp_path / "b.example.yaml").write_text(
        f"senders:\n  - name: x\n    dkim: {{selector: '{line}', algorithm: ed25519}}\n"
    )
    for fmt in ("text", "json", "markdown"):
        result = run("octodns-mailauth", "validate", "--policies", str(tmp_path), "--format", fmt)
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        for i in range(0, len(body) - 24, 24):
            assert body[i : i + 24] not in out, fmt
        assert line not in out


def test_two_policies_wanting_one_record_fail_octodns_validate(example: Path) -> None:
    Path("zones/mail/bounce.example.net.yaml").write_text("parked: true\n")
    result = run("octodns-validate", "--config-file", CONFIG)
    assert result.returncode != 0
    assert "also publishes" in result.stderr and "bounce.example.net" in result.stderr


def test_records_refuses_a_policy_whose_zone_does_not_run_the_processor(example: Path) -> None:
    edit(CONFIG, lambda d: d["zones"]["example.net."].pop("processors"))
    result = run("octodns-mailauth", "records", "example.net", "--config", CONFIG)
    assert result.returncode == 1
    assert "does not run the processor 'mailauth'" in result.stderr
    assert "v=spf1" not in result.stdout


def test_cli_reads_env_values_like_octodns(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(CONFIG, lambda d: d["processors"]["mailauth"].update(policies="env/MAILAUTH_POLICIES"))
    result = run("octodns-mailauth", "validate", "--config", CONFIG)
    assert result.returncode == 2
    # octoDNS's own env/ handler, and its message
    assert "missing env var MAILAUTH_POLICIES" in result.stderr
    monkeypatch.setenv("MAILAUTH_POLICIES", "zones/mail")
    result = run("octodns-mailauth", "validate", "--config", CONFIG)
    assert result.returncode == 0, result.stderr
