"""`dkim keygen|rotate|export`, `spf refresh` and the example GitHub workflow,
through the real `octodns-mailauth` entry point on a copy of zones/."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import cli
from conftest import ROOT
from example_rotation import replay_example_rotation
from pdns_fixture import txt_content

BIN = Path(sys.executable).parent
CONFIG = "zones/config.yaml"


def own_selectors() -> list[tuple[str, str]]:
    """(domain, selector) of every fixed DKIM key the example's policies hold."""
    out = []
    for path in sorted(Path("zones/mail").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        for sender in data.get("senders") or []:
            keys = sender.get("dkim") or []
            for key in [keys] if isinstance(keys, dict) else keys:
                if key.get("selector") and not key.get("public_key"):
                    out.append((path.name[: -len(".yaml")], key["selector"]))
    return out


# --- dkim ----------------------------------------------------------------------------------


def test_dkim_keygen_generates_once(example: Path) -> None:
    wanted = own_selectors()
    assert wanted  # the example holds own keys
    proc = cli("dkim", "keygen", "--config", CONFIG)
    assert proc.returncode == 0, proc.stderr
    for domain, selector in wanted:
        assert f"{domain}: selector {selector}: generated" in proc.stdout
        assert list((example / "zones/.dkim" / domain).glob(f"{selector}.*"))
    again = cli("dkim", "keygen", "--config", CONFIG)
    assert again.returncode == 0
    assert "generated" not in again.stdout
    assert again.stdout.count(": exists") == len(wanted)
    # With the keys there, `records` shows the real p= (no placeholder note).
    records = cli("records", "example.com", "--config", CONFIG)
    assert records.returncode == 0 and "placeholder" not in records.stderr


def test_dkim_keygen_one_domain(example: Path) -> None:
    proc = cli("dkim", "keygen", "shop.example", "--config", CONFIG)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and all(
        line.startswith("shop.example:") for line in proc.stdout.splitlines()
    )
    # example.net's keys rotate: `dkim rotate` makes them, keygen has nothing to do.
    proc = cli("dkim", "keygen", "example.net", "--config", CONFIG)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_dkim_export_and_rotate_name_the_keys_the_example_does_not_hold(example: Path) -> None:
    """The committed rotation's private keys are on the signing host, not in the
    repository: both commands refuse, naming each missing key, and write nothing."""
    assert cli("dkim", "keygen", "--config", CONFIG).returncode == 0
    state = Path("zones/dkim-state.yaml").read_bytes()
    export = cli("dkim", "export", "--config", CONFIG, "-o", "signer")
    assert export.returncode == 1 and not Path("signer").exists()
    rotate = cli("dkim", "rotate", "--config", CONFIG, "--assume-published")
    assert rotate.returncode == 1
    for selector in ("billing-20260820-ed", "billing-20260820-rsa"):
        assert f"no DKIM key at zones/.dkim/example.net/{selector}.pem" in export.stdout
        assert f"no private key for active selector {selector} of example.net" in (
            rotate.stdout + rotate.stderr
        )
    assert Path("zones/dkim-state.yaml").read_bytes() == state


def test_dkim_export_lists_active_keys(example: Path) -> None:
    assert cli("dkim", "keygen", "--config", CONFIG).returncode == 0
    state = replay_example_rotation()  # as on the host that signs example.net's mail
    proc = cli("dkim", "export", "--config", CONFIG)
    assert proc.returncode == 0, proc.stderr
    keytable = proc.stdout.split("# SigningTable")[0]
    assert own_selectors()
    active = [(k.domain, k.selector) for k in state.keys if k.status.value == "active"]
    assert len(active) == 2  # the rotating pair that signs now, not the one published ahead
    for domain, selector in own_selectors() + active:
        assert selector in keytable and domain in keytable
    assert "billing-20261118" not in keytable
    out = example / "signer"
    proc = cli("dkim", "export", "--config", CONFIG, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "KeyTable").is_file() and (out / "SigningTable").is_file()


def test_dkim_export_without_keystore_is_exit_2(example: Path) -> None:
    proc = cli("dkim", "export", "--config", CONFIG)
    assert proc.returncode == 2
    assert "zones/.dkim does not exist" in proc.stderr and "dkim keygen" in proc.stderr


def test_dkim_rotate_dry_run_writes_nothing(example: Path) -> None:
    proc = cli("dkim", "rotate", "--config", CONFIG, "--dry-run")
    assert proc.returncode == 2 and "dkim keygen" in proc.stderr  # no keystore yet
    assert cli("dkim", "keygen", "--config", CONFIG).returncode == 0
    replay_example_rotation()
    before = sorted(p.relative_to(example) for p in example.rglob("*"))
    state = Path("zones/dkim-state.yaml").read_bytes()
    # Never the system resolver in a test: publication is asserted.
    proc = cli("dkim", "rotate", "--config", CONFIG, "--dry-run", "--assume-published")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dry run: nothing written" in proc.stderr
    # The example's rotation is due: the dry run says what would happen.
    assert "example.net: activate billing-20261118-ed" in proc.stdout, proc.stdout
    assert Path("zones/dkim-state.yaml").read_bytes() == state
    assert sorted(p.relative_to(example) for p in example.rglob("*")) == before


def test_dkim_rotate_bad_time_is_exit_2(example: Path) -> None:
    proc = cli("dkim", "rotate", "--config", CONFIG, "--dry-run", "--now", "yesterday")
    assert proc.returncode == 2 and "--now yesterday" in proc.stderr


# --- spf refresh ---------------------------------------------------------------------------

ZONE = "clirefresh.test"
POLICY = f"""\
senders:
  - name: crm
    include: [spf.{ZONE}]
spf:
  all: fail
dmarc:
  policy: none
  rua: [mailto:dmarc@mailer.example]
"""


def set_txt(pdns: Any, name: str, value: str) -> None:
    pdns.set_rrsets(ZONE, [(name, "TXT", [txt_content(value)])])


@pytest.fixture
def vendor(pdns: Any) -> Iterator[Any]:
    """A third-party SPF setup (include -> nested include) on the loopback server."""
    if f"{ZONE}." in pdns.zone_names():
        pdns.delete_zone(ZONE)
    pdns.create_zone(ZONE)
    set_txt(pdns, f"spf.{ZONE}", f"v=spf1 ip4:192.0.2.0/24 include:_n.{ZONE} -all")
    set_txt(pdns, f"_n.{ZONE}", "v=spf1 ip4:198.51.100.0/24 -all")
    yield pdns
    pdns.delete_zone(ZONE)


@pytest.mark.pdns
def test_spf_refresh_writes_the_lock_and_shows_changes(
    vendor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("mail").mkdir()
    Path("mail/mailer.example.yaml").write_text(POLICY)
    ns = f"{vendor.host}:{vendor.dns_port}"
    proc = cli("spf", "refresh", "--policies", "mail", "--nameserver", ns)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"+ spf.{ZONE} (new)" in proc.stdout and f"+ _n.{ZONE} (new)" in proc.stdout
    lock = json.loads(Path("mail/spf-lock.json").read_text())
    assert lock["answers"][f"_n.{ZONE}"]["TXT"] == ["v=spf1 ip4:198.51.100.0/24 -all"]

    # Offline now: explain follows the nested include from the lock.
    explain = cli("explain", "mailer.example", "--policies", "mail")
    assert explain.returncode == 0, explain.stdout + explain.stderr
    tree = explain.stdout.split("DMARC alignment")[0]
    assert f"include:spf.{ZONE}  2 lookups" in tree and f"include:_n.{ZONE}" in tree
    assert "crm 2" in tree

    # The vendor adds a range: refresh shows exactly that.
    set_txt(vendor, f"_n.{ZONE}", "v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/24 -all")
    proc = cli("spf", "refresh", "--policies", "mail", "--nameserver", ns)
    assert proc.returncode == 0, proc.stderr
    assert f"~ _n.{ZONE}" in proc.stdout and "+ ip4:203.0.113.0/24" in proc.stdout
    assert f"spf.{ZONE}" not in proc.stdout.replace(f"_n.{ZONE}", "")


def test_spf_refresh_dns_down_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("mail").mkdir()
    Path("mail/mailer.example.yaml").write_text(POLICY)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        ns = f"127.0.0.1:{silent.getsockname()[1]}"
        proc = cli("spf", "refresh", "--policies", "mail", "--nameserver", ns, "--timeout", "0.3")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "lookup(s) failed" in proc.stderr and ns in proc.stderr


def test_unreadable_lock_is_exit_2(example: Path) -> None:
    Path("zones/mail/spf-lock.json").write_text("{not json")
    proc = cli("validate", "--config", CONFIG)
    assert proc.returncode == 2
    assert "zones/mail/spf-lock.json:1: the SPF lock file is not valid JSON" in proc.stderr
    config = yaml.safe_load(Path(CONFIG).read_text())
    config["processors"]["mailauth"]["spf_lock"] = "./zones/nowhere.json"
    Path(CONFIG).write_text(yaml.safe_dump(config))
    proc = cli("explain", "example.com", "--config", CONFIG)
    assert proc.returncode == 2 and "zones/nowhere.json does not exist" in proc.stderr


# --- the example GitHub workflow -----------------------------------------------------------


def test_example_workflow_pr_and_merge_jobs() -> None:
    workflow = yaml.safe_load((ROOT / "docs/github-workflow.yml").read_text())
    on = workflow.get("on", workflow.get(True))
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    plan = " ".join(step.get("run", "") for step in workflow["jobs"]["plan"]["steps"])
    apply = " ".join(step.get("run", "") for step in workflow["jobs"]["apply"]["steps"])
    assert "octodns-mailauth validate" in plan and "GITHUB_STEP_SUMMARY" in plan
    assert "octodns-sync" in plan and "--doit" not in plan
    assert "octodns-sync" in apply and "--doit" in apply


def test_example_workflow_summary_step_writes_the_report(example: Path) -> None:
    """Run the workflow's own report step, as the runner would, on the example."""
    workflow = yaml.safe_load((ROOT / "docs/github-workflow.yml").read_text())
    (step,) = [
        s for s in workflow["jobs"]["plan"]["steps"] if s.get("name") == "mail policy report"
    ]
    summary = example / "summary.md"
    env = dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        OCTODNS_CONFIG=workflow["env"]["OCTODNS_CONFIG"],
        GITHUB_STEP_SUMMARY=str(summary),
    )
    subprocess.run(["bash", "-e", "-c", step["run"]], check=True, env=env, timeout=120)
    text = summary.read_text()
    assert text.startswith("## ") and "### example.com" in text
    assert "**SPF lookup budget:**" in text and "**DMARC alignment**" in text


def test_dkim_rotate_publishes_a_rotating_selector(example: Path) -> None:
    com = Path("zones/mail/example.com.yaml")
    text = com.read_text()
    anchor = "      - {selector: relay2026r, algorithm: rsa}\n"
    assert anchor in text
    com.write_text(
        text.replace(anchor, anchor + "      - {rotate: 90d, prefix: relay, algorithm: ed25519}\n")
    )
    # Before the first rotation there is no key to publish: a policy error.
    assert cli("validate", "--config", CONFIG).returncode == 1
    # Only example.com's rotation: example.net's keys (the committed rotation) are on
    # another signing host, and carried over untouched.
    state = Path("zones/dkim-state.yaml")
    net_keys = [ln for ln in state.read_text().splitlines() if "billing-" in ln]
    proc = cli(
        "dkim", "rotate", "example.com", "--config", CONFIG, "--now", "2026-12-01T00:00:00Z"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "example.com: publish" in proc.stdout and "example.net" not in proc.stdout
    assert state.is_file() and "wrote zones/dkim-state.yaml" in proc.stderr
    assert [ln for ln in state.read_text().splitlines() if "billing-" in ln] == net_keys
    assert cli("validate", "--config", CONFIG).returncode == 0
    records = cli("records", "example.com", "--config", CONFIG, "--format", "json")
    names = [r["name"] for r in json.loads(records.stdout)]
    rotating = [n for n in names if n.startswith("relay-")]
    assert len(rotating) == 1 and rotating[0].endswith("._domainkey.example.com")
    assert rotating[0].split(".")[0] in state.read_text()


# --- mta-sts ---------------------------------------------------------------------------------


def mta_sts_domains() -> list[str]:
    return [
        p.name[: -len(".yaml")]
        for p in sorted(Path("zones/mail").glob("*.yaml"))
        if "mta_sts" in (yaml.safe_load(p.read_text()) or {})
    ]


def test_mta_sts_policy_prints_and_writes(example: Path) -> None:
    domains = mta_sts_domains()
    assert domains, "the example has a domain with MTA-STS"
    domain = domains[0]
    settings = yaml.safe_load(Path(f"zones/mail/{domain}.yaml").read_text())["mta_sts"]
    proc = cli("mta-sts", "policy", domain, "--config", CONFIG)
    assert proc.returncode == 0, proc.stderr
    # RFC 8461 §3.2: key: value lines; version first.
    fields = [line.split(": ", 1) for line in proc.stdout.splitlines()]
    assert fields[0] == ["version", "STSv1"]
    assert ["mode", settings["mode"]] in fields
    assert [v for k, v in fields if k == "mx"] == settings["mx"]
    out = example / "www"
    written = cli("mta-sts", "policy", "--config", CONFIG, "--output", str(out))
    assert written.returncode == 0
    assert (out / domain / ".well-known/mta-sts.txt").read_text() == proc.stdout
    # A domain without MTA-STS: a usage error, not an empty file.
    assert cli("mta-sts", "policy", "example.com", "--config", CONFIG).returncode == 2


def test_broken_dkim_state_file_points_at_its_line(example: Path) -> None:
    Path("zones/dkim-state.yaml").write_text("keys: [\n")
    proc = cli("validate", "--config", CONFIG)
    assert proc.returncode == 1
    assert proc.stdout.startswith("zones/dkim-state.yaml:2: error: ")
