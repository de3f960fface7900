"""The CLI with `--config`: load errors shown (not "no policy"), bad config
values as messages, zone-dependent checks from the config's YAML sources (so
`validate` fails where `octodns-sync` fails), placeholders marked in every
records format, and `dkim export` writing only the chosen format with absolute
key paths.  All through the real entry point, on a copy of zones/."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
import yaml
from cli_run import cli
from example_rotation import replay_example_rotation
from octodns.manager import Manager

CONFIG = "zones/config.yaml"
NET = "zones/mail/example.net.yaml"


def sync() -> int:
    """`octodns-sync --doit` (octodns/cmds/sync.py: `Manager(config).sync()`), in this
    process, as the independent judge of what a config does: its exit status."""
    try:
        Manager(CONFIG).sync(dry_run=False)
    except Exception:  # the command's last words, a traceback: exit status 1
        return 1
    return 0


def line_of(path: str, needle: str) -> int:
    for number, text in enumerate(Path(path).read_text().splitlines(), 1):
        if needle in text:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def edit(path: str, old: str, new: str) -> None:
    text = Path(path).read_text()
    assert old in text, (old, path)
    Path(path).write_text(text.replace(old, new, 1))


# --- 1. a policy that fails to load: its errors, exit 1 --------------------------------------


@pytest.mark.parametrize(
    "old, new, needle",
    [
        (
            "    a: [billing.example.net]\n",
            '    a: [billing.example.net]\n    include: ["not a domain"]\n',
            "not a domain",
        ),
        ("    a: [billing.example.net]\n", "    a: [billing]\n", "billing]"),
        ("  all: softfail\n", "  all: pass\n", "all: pass"),
    ],
)
@pytest.mark.parametrize("command", ["records", "explain"])
def test_load_errors_are_shown_not_no_policy(
    example: Path, command: str, old: str, new: str, needle: str
) -> None:
    edit(NET, old, new)
    line = line_of(NET, needle)
    proc = cli(command, "example.net", "--config", CONFIG)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"{NET}:{line}: error: " in out, out
    assert "(policies: " not in out  # not the bare "no policy ... (policies: ...)" of exit 2


def test_unknown_domain_without_load_errors_is_still_exit_2(example: Path) -> None:
    proc = cli("records", "example.org", "--config", CONFIG)
    assert proc.returncode == 2 and "no policy for example.org" in proc.stderr


# --- 2. bad values in the processor's config --------------------------------------------------


@pytest.mark.parametrize(
    "key, value",
    [
        ("keys", [1, 2]),
        ("policies", 5),
        ("spf_lock", {"a": 1}),
        ("dkim_state", True),
        ("passphrase_env", 3),
        ("catalog", [1]),
        ("catalog", 7),
    ],
)
def test_bad_processor_values_are_messages(example: Path, key: str, value: object) -> None:
    config = yaml.safe_load(Path(CONFIG).read_text())
    config["processors"]["mailauth"][key] = value
    Path("bad.yaml").write_text(yaml.safe_dump(config))
    for command in (["validate"], ["records", "example.com"], ["dkim", "export"]):
        proc = cli(*command, "--config", "bad.yaml")
        assert proc.returncode == 2, (command, proc.stdout + proc.stderr)
        assert "bad.yaml" in proc.stderr and f"processors.mailauth.{key}" in proc.stderr, (
            proc.stderr
        )


# --- 3. dkim export ---------------------------------------------------------------------------

OPENDKIM = {"KeyTable", "SigningTable"}
RSPAMD = {"dkim_signing.conf"}


@pytest.mark.parametrize(
    "fmt, files", [("opendkim", OPENDKIM), ("rspamd", RSPAMD), ("all", OPENDKIM | RSPAMD)]
)
def test_export_writes_only_the_chosen_format(example: Path, fmt: str, files: set[str]) -> None:
    assert cli("dkim", "keygen", "--config", CONFIG).returncode == 0
    replay_example_rotation()  # the signing host's keys of the committed rotation
    out = example / f"signer-{fmt}"
    proc = cli("dkim", "export", "--config", CONFIG, "--format", fmt, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == files


def test_export_key_paths_are_absolute(example: Path, tmp_path: Path) -> None:
    assert cli("dkim", "keygen", "--config", CONFIG).returncode == 0
    replay_example_rotation()
    proc = cli("dkim", "export", "--config", CONFIG, "--format", "all", "-o", "signer")
    assert proc.returncode == 0, proc.stderr
    elsewhere = tmp_path / "mta-cwd"
    elsewhere.mkdir()
    keytable = (example / "signer/KeyTable").read_text().splitlines()
    paths = [Path(ln.split(":", 2)[2]) for ln in keytable if ln and not ln.startswith("#")]
    rspamd = (example / "signer/dkim_signing.conf").read_text()
    paths += [Path(p) for p in re.findall(r'path = "([^"]+)"', rspamd)]
    assert paths
    os.chdir(elsewhere)  # as an MTA started in another folder would see them
    for path in paths:
        assert path.is_absolute() and path.is_file(), path
        assert "PRIVATE KEY-----" in path.read_text().splitlines()[0]


# --- 4. validate/records --config read the zone from the YAML sources -----------------------


def test_validate_catches_a_hand_written_spf_like_sync(example: Path) -> None:
    edit(
        "zones/config/example.com.yaml",
        "      - MS=ms12345678\n",
        "      - MS=ms12345678\n      - v=spf1 include:old.example -all\n",
    )
    proc = cli("validate", "--config", CONFIG)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    com = "zones/mail/example.com.yaml"
    (error,) = [ln for ln in proc.stdout.splitlines() if ": error: " in ln]
    assert error.startswith(f"{com}:{line_of(com, 'spf:')}: error: ")
    assert "v=spf1 include:old.example -all" in error and "takeover" in error
    assert sync() != 0  # octodns-sync rejects it too
    # The same zone without the stray record: both agree it is fine.
    edit("zones/config/example.com.yaml", "      - v=spf1 include:old.example -all\n", "")
    assert cli("validate", "--config", CONFIG).returncode == 0
    assert sync() == 0


def test_validate_on_the_example_says_each_warning_once(example: Path) -> None:
    """One finding per cause: the stale lock once per domain, example.net's due
    rotation once for both its algorithms (one `dkim rotate` steps both)."""
    proc = cli("validate", "--config", CONFIG, "--format", "json")
    warnings = [f for f in json.loads(proc.stdout)["findings"] if f["severity"] == "warning"]
    causes = [(f["file"], f["code"]) for f in warnings]
    assert len(causes) == len(set(causes)), causes
    com = "zones/mail/example.com.yaml"
    assert {(NET, "spf-lock-stale"), (com, "spf-lock-stale"), (NET, "dkim-rotation-due")} <= set(
        causes
    )
    [due] = [f for f in warnings if f["code"] == "dkim-rotation-due"]
    assert "billing-20261118-ed" in due["message"] and "billing-20261118-rsa" in due["message"]


def test_validate_catches_cname_conflict(example: Path) -> None:
    # enforce_order: _dmarc sorts between the apex and billing.
    edit(
        "zones/config/example.net.yaml",
        "\nbilling:\n",
        "\n_dmarc:\n  type: CNAME\n  value: dmarc.elsewhere.example.\nbilling:\n",
    )
    proc = cli("validate", "--config", CONFIG)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert any(
        ln.startswith(f"{NET}:") and "CNAME" in ln and "_dmarc.example.net" in ln
        for ln in proc.stdout.splitlines()
    ), proc.stdout
    assert sync() != 0


def test_validate_checks_zone_mx_for_mta_sts_and_parked(example: Path) -> None:
    edit("zones/config/shop.example.yaml", "mx1.shop.example.", "mail.other.example.")
    Path("zones/config/parked.example.yaml").write_text(
        "---\n'':\n  - type: A\n    value: 192.0.2.40\n  - type: MX\n"
        "    value: {exchange: mx.parked.example., preference: 10}\n"
    )
    proc = cli("validate", "--config", CONFIG)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stdout.splitlines() if ": error: " in ln]
    assert any(
        e.startswith("zones/mail/shop.example.yaml:") and "mail.other.example" in e for e in errors
    ), errors
    assert any(e.startswith("zones/mail/parked.example.yaml:") and "MX" in e for e in errors), (
        errors
    )
    # Without --config there is no zone to compare against: as before, no error.
    assert cli("validate", "--policies", "zones/mail").returncode == 0
    assert sync() != 0


def _served(zone_file: str, origin: str) -> dict[tuple[str, str], list[str]]:
    zone = dns.zone.from_text(
        Path(zone_file).read_text(), origin=origin, relativize=False, check_origin=False
    )
    out: dict[tuple[str, str], list[str]] = {}
    for name, _ttl, rdata in zone.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        text = b"".join(rdata.strings).decode() if rtype == "TXT" else rdata.to_text()
        out.setdefault((name.to_text().rstrip("."), rtype), []).append(text)
    return out


def test_records_show_the_spf_split_sync_publishes(example: Path) -> None:
    # A long verification value at the apex leaves the SPF record too little
    # of the 450-octet budget: the processor moves includes to _spf1.
    edit(
        "zones/config/example.com.yaml",
        "      - MS=ms12345678\n",
        "      - MS=ms12345678\n      - verification=" + "x" * 240 + "\n",
    )
    proc = cli("records", "example.com", "--config", CONFIG, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    shown = {(r["name"], r["type"]): r for r in json.loads(proc.stdout)}
    assert ("_spf1.example.com", "TXT") in shown
    # Without the zone (no --config) there is nothing to share the budget with.
    bare = cli("records", "example.com", "--policies", "zones/mail", "--format", "json")
    assert ("_spf1.example.com", "TXT") not in {
        (r["name"], r["type"]) for r in json.loads(bare.stdout)
    }
    assert cli("validate", "--config", CONFIG).returncode == 0
    assert sync() == 0, "octodns-sync failed"
    served = _served("zones/output/example.com.zone", "example.com.")
    for key, record in shown.items():
        if record["placeholder"]:
            continue  # the real key is generated by the sync
        for value in record["values"]:
            assert value in served[key], (key, value, served.get(key))


def test_validate_zone_without_the_processor_like_sync(example: Path) -> None:
    config = yaml.safe_load(Path(CONFIG).read_text())
    config["zones"]["example.net."]["processors"] = []
    Path(CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    proc = cli("validate", "--config", CONFIG)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{NET}:1: error: policy for example.net but its zone example.net." in proc.stdout
    assert "does not run the processor 'mailauth'" in proc.stdout
    assert sync() != 0


def test_validate_notes_sources_it_did_not_read(example: Path) -> None:
    config = yaml.safe_load(Path(CONFIG).read_text())
    config["providers"]["other"] = {"class": "octodns_powerdns.PowerDnsProvider", "host": "x"}
    config["zones"]["example.net."]["sources"] = ["config", "other"]
    Path("mixed.yaml").write_text(yaml.safe_dump(config))
    proc = cli("validate", "--config", "mixed.yaml", "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "zone example.net: sources other are not YamlProvider sources" in proc.stdout


# --- placeholders are labelled in every format ------------------------------------------------


def test_placeholders_marked_in_every_format(example: Path) -> None:
    name = "relay2026a._domainkey.example.com"
    table = cli("records", "example.com", "--config", CONFIG).stdout
    (row,) = [ln for ln in table.splitlines() if ln.startswith(name)]
    assert "PLACEHOLDER" in row
    assert "NOTE" in table.splitlines()[0]
    bind = cli("records", "example.com", "--config", CONFIG, "--format", "bind").stdout
    assert any(ln.startswith(f"; {name} TXT: placeholder") for ln in bind.splitlines()), bind
    octo = cli("records", "example.com", "--config", CONFIG, "--format", "octodns").stdout
    assert f"# {name} TXT: placeholder" in octo
    data = json.loads(cli("records", "example.com", "--config", CONFIG, "--format", "json").stdout)
    flags = {r["name"]: r["placeholder"] for r in data if r["type"] == "TXT"}
    assert flags[name] is True and flags["example.com"] is False
    # With the keys generated, nothing is a placeholder any more.
    assert cli("dkim", "keygen", "--config", CONFIG).returncode == 0
    table = cli("records", "example.com", "--config", CONFIG).stdout
    assert "PLACEHOLDER" not in table
    bind = cli("records", "example.com", "--config", CONFIG, "--format", "bind").stdout
    assert "placeholder" not in bind
