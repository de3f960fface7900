"""`octodns-mailauth check`: live DNS against the policy, on the loopback PowerDNS.

The example is published with octoDNS's own PowerDnsProvider (the processor
in the pipeline), then checked; then a record is changed or removed behind
octoDNS's back, and `check` must see the drift.  Servers that time out or
SERVFAIL must give exit 2 and a clear message, never "missing"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import cli
from fake_dns import FakeDnsServer
from octodns.manager import Manager

# Own zone names, so nothing else in the session's shared server is touched.
DOMAIN = "clicheck.test"
CONFIG = "pdns.yaml"


def rename_example(root: Path) -> None:
    """example.com -> clicheck.test everywhere in the copy; the other domains dropped."""
    for folder in ("config", "mail"):
        for other in (root / "zones" / folder).glob("*.yaml"):
            if other.name != "example.com.yaml":
                other.unlink()
        old = root / "zones" / folder / "example.com.yaml"
        new = root / "zones" / folder / f"{DOMAIN}.yaml"
        new.write_text(old.read_text().replace("example.com", DOMAIN))
        old.unlink()


@pytest.fixture
def published(example: Path, pdns: Any) -> Iterator[Any]:
    rename_example(example)
    if f"{DOMAIN}." in pdns.zone_names():
        pdns.delete_zone(DOMAIN)
    pdns.create_zone(DOMAIN)
    config = yaml.safe_load(Path("zones/config.yaml").read_text())
    config["providers"]["pdns"] = {
        "class": "octodns_powerdns.PowerDnsProvider",
        **pdns.octodns_provider_config(),
    }
    config["zones"] = {
        f"{DOMAIN}.": {"sources": ["config"], "processors": ["mailauth"], "targets": ["pdns"]}
    }
    config["processors"]["mailauth"]["config_file"] = CONFIG  # this file, not config.yaml
    Path(CONFIG).write_text(yaml.safe_dump(config))
    # `octodns-sync --doit`, in this process (octodns/cmds/sync.py): it publishes the zone.
    assert Manager(CONFIG).sync(dry_run=False) > 0
    yield pdns
    pdns.delete_zone(DOMAIN)


def nameserver(pdns: Any) -> str:
    return f"{pdns.host}:{pdns.dns_port}"


def patch_rrset(pdns: Any, name: str, rtype: str, contents: list[str] | None) -> None:
    pdns.set_rrsets(DOMAIN, [(name, rtype, contents)], ttl=3600)


@pytest.mark.pdns
def test_check_published_zone_has_no_drift(published: Any) -> None:
    proc = cli("check", DOMAIN, "--config", CONFIG, "--nameserver", nameserver(published))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no drift" in proc.stderr
    records, targets = proc.stdout.split("DKIM keys at the delegated selectors' targets")
    lines = records.splitlines()
    wanted = json.loads(cli("records", DOMAIN, "--config", CONFIG, "--format", "json").stdout)
    # One line per wanted record, each "ok" (keys are in the keystore: p= compared too).
    assert len(lines) == len(wanted)
    assert all(line.startswith("ok ") for line in lines), proc.stdout
    # Then one line per delegated selector: the vendors' zones are not on this
    # server (it refuses), so their keys are unverified, never "no key".
    delegated = targets.splitlines()[1:]
    assert len(delegated) == 4 and all(ln.startswith("  unverified ") for ln in delegated)
    assert all(ln.endswith("DNS refused") for ln in delegated), targets


@pytest.mark.pdns
def test_check_sees_changed_missing_and_extra_records(published: Any) -> None:
    ns = nameserver(published)
    # Someone edits the DMARC record by hand and deletes a DKIM CNAME.
    patch_rrset(published, f"_dmarc.{DOMAIN}", "TXT", ['"v=DMARC1; p=none"'])
    patch_rrset(published, f"selector2._domainkey.{DOMAIN}", "CNAME", None)
    proc = cli("check", DOMAIN, "--config", CONFIG, "--nameserver", ns, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    bad = {(r["name"], r["status"]) for r in data["records"] if r["status"] != "ok"}
    assert bad == {
        (f"_dmarc.{DOMAIN}", "different"),
        (f"selector2._domainkey.{DOMAIN}", "missing"),
    }
    assert data["drift"] == 2
    (dmarc,) = [r for r in data["records"] if r["name"] == f"_dmarc.{DOMAIN}"]
    assert dmarc["published"] == ["v=DMARC1; p=none"]
    # A second SPF record at the apex is extra; a non-SPF TXT there is not ours.
    answer = published.resolver().resolve(f"{DOMAIN}.", "TXT")
    values = [b"".join(r.strings).decode() for r in answer]
    values.append("v=spf1 ip4:192.0.2.99 -all")
    patch_rrset(published, DOMAIN, "TXT", [f'"{v}"' for v in values])
    text = cli("check", DOMAIN, "--config", CONFIG, "--nameserver", ns).stdout
    (spf,) = [ln for ln in text.splitlines() if ln.startswith("extra ")]
    assert "v=spf1 ip4:192.0.2.99 -all" in spf and "google-site-verification" not in spf


@pytest.mark.pdns
def test_check_with_placeholder_keys_is_unverified_not_ok(published: Any) -> None:
    import shutil

    shutil.rmtree("zones/.dkim")  # the private keys are elsewhere (another machine)
    proc = cli("check", DOMAIN, "--config", CONFIG, "--nameserver", nameserver(published))
    assert proc.returncode == 0, proc.stdout
    unverified = [ln for ln in proc.stdout.splitlines() if ln.startswith("unverified")]
    assert len(unverified) == 2 and all("_domainkey" in ln for ln in unverified)


# --- servers that do not answer ------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    with FakeDnsServer("silent") as server:
        yield server.address


@pytest.fixture
def servfail_server() -> Iterator[str]:
    with FakeDnsServer("servfail") as server:
        yield server.address


def test_check_timeout_is_exit_2(example: Path, silent_server: str) -> None:
    proc = cli(
        "check", "example.com", "--config", "zones/config.yaml",
        "--nameserver", silent_server, "--timeout", "0.5",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{silent_server} did not answer" in proc.stderr and "0.5 s" in proc.stderr
    assert proc.stdout == ""  # nothing reported as missing


def test_check_servfail_is_exit_2(example: Path, servfail_server: str) -> None:
    proc = cli(
        "check", "example.com", "--config", "zones/config.yaml",
        "--nameserver", servfail_server, "--timeout", "2",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "SERVFAIL" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("bad", ["127.0.0.1:notaport", "127.0.0.1:70000", "127.0.0.1:0"])
def test_check_bad_nameserver_is_exit_2(example: Path, bad: str) -> None:
    proc = cli("check", "example.com", "--config", "zones/config.yaml", "--nameserver", bad)
    assert proc.returncode == 2
    assert f"--nameserver {bad}" in proc.stderr


@pytest.mark.parametrize("timeout", ["0", "-1"])
def test_check_timeout_must_be_positive(example: Path, timeout: str) -> None:
    proc = cli("check", "example.com", "--config", "zones/config.yaml", "--timeout", timeout)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--timeout must be more than 0 seconds" in proc.stderr and proc.stdout == ""
