"""The `octodns-mailauth` CLI through its real entry point, on a copy of zones/."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
import yaml
from cli_run import cli

BIN = Path(sys.executable).parent / "octodns-mailauth"
CONFIG = "zones/config.yaml"
COM = "zones/mail/example.com.yaml"


def policy_domains() -> list[str]:
    """The example's policies, by file name (the example grows; count, do not hard-code)."""
    return sorted(p.name[: -len(".yaml")] for p in Path("zones/mail").glob("*.yaml"))


def line_of(path: str, needle: str) -> int:
    for number, text in enumerate(Path(path).read_text().splitlines(), 1):
        if needle in text:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def records_json(domain: str) -> list[dict]:
    proc = cli("records", domain, "--config", CONFIG, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# --- validate ------------------------------------------------------------------------------


def test_validate_example_is_clean(example: Path) -> None:
    proc = cli("validate", "--config", CONFIG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(policy_domains())} policies: 0 errors" in proc.stderr
    assert ": error:" not in proc.stdout
    # Validating writes nothing: no keystore appears.
    assert not (example / "zones/.dkim").exists()


def test_validate_reports_file_line_severity_message(example: Path) -> None:
    text = (
        Path(COM).read_text().replace("    tenant: contoso", "    tenant: contoso\n    tenat: x")
    )
    Path(COM).write_text(text)
    line = line_of(COM, "tenat: x")
    proc = cli("validate", "--config", CONFIG)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stdout.splitlines() if ": error: " in ln]
    assert any(e.startswith(f"{COM}:{line}: error: ") and "'tenat'" in e for e in errors), errors
    assert all(e.startswith(f"{COM}:") for e in errors)
    # Informational findings only with --verbose.
    assert ": info: " not in proc.stdout
    assert ": info: " in cli("validate", "--config", CONFIG, "-v").stdout


def test_validate_paths_like_pre_commit(example: Path) -> None:
    bad = Path("zones/mail/broken.example.yaml")
    bad.write_text("senders:\n  - name: x\n    ip4: [300.1.1.1]\n")
    proc = cli("validate", COM, str(bad))
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"{bad}:3: error: ")
    assert "300.1.1.1" in proc.stdout
    assert cli("validate", COM).returncode == 0


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["mta-sts", "policy"],
        ["dkim", "keygen"],
        ["dkim", "export"],
        ["lock", "refresh"],
    ],
)
def test_a_policy_file_that_fails_to_load_is_a_policy_error(
    example: Path, command: list[str]
) -> None:
    """Every command over all policies stops at a broken file with its finding and
    exit 1 (README: 1 = policy errors), writing nothing."""
    bad = Path("zones/mail/broken.example.yaml")
    bad.write_text("senders:\n  - name: x\n    bogus: 1\n")
    before = sorted(str(p) for p in Path("zones").rglob("*") if p.is_file())
    proc = cli(*command, "--config", CONFIG)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    if command[0] == "mta-sts":  # its standard output is the policy document
        said = proc.stderr
        assert proc.stdout == ""
    else:
        said = proc.stdout
    assert f"{bad}:3: error: unknown key 'bogus'" in said
    assert sorted(str(p) for p in Path("zones").rglob("*") if p.is_file()) == before


def test_validate_json(example: Path) -> None:
    proc = cli("validate", "--config", CONFIG, "--format", "json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["ok"] is True and data["errors"] == 0
    assert sorted(p["domain"] for p in data["policies"]) == policy_domains()
    Path(COM).write_text(Path(COM).read_text().replace("policy: quarantine", "policy: block"))
    proc = cli("validate", "--config", CONFIG, "--format", "json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and data["ok"] is False and data["errors"] == 1
    (finding,) = [f for f in data["findings"] if f["severity"] == "error"]
    assert finding["file"] == COM
    assert finding["line"] == line_of(COM, "policy: block")
    assert finding["key_path"] == "dmarc.policy"


def test_validate_duplicate_domain_across_files(example: Path) -> None:
    Path("zones/mail/other.yaml").write_text("domain: example.com\nsenders: []\n")
    proc = cli("validate", "--policies", "zones/mail")
    assert proc.returncode == 1
    assert "a second policy for example.com" in proc.stdout


def test_validate_policy_outside_configured_zones(example: Path) -> None:
    Path("zones/mail/example.org.yaml").write_text("senders: []\n")
    proc = cli("validate", "--config", CONFIG)
    assert proc.returncode == 1
    assert "zones/mail/example.org.yaml:1: error: policy for example.org" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["validate", "--frob"], "unrecognized arguments: --frob"),
        (["validate", "no/such/policy.yaml"], "no/such/policy.yaml: no such file or folder"),
        (["validate"], "give --config FILE"),
        (["validate", "--config", "missing.yaml"], "missing.yaml: cannot read octoDNS config"),
        (["validate", "--policies", "nowhere"], "policy folder nowhere does not exist"),
        (["records", "example.org", "--config", CONFIG], "no policy for example.org"),
        (["records", "example.com", "--config", CONFIG, "--format", "xml"], "invalid choice"),
        (["dkim"], "required"),
    ],
)
def test_usage_errors_exit_2_with_a_message(example: Path, args: list[str], message: str) -> None:
    proc = cli(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr


def test_config_without_our_processor(example: Path) -> None:
    config = yaml.safe_load(Path(CONFIG).read_text())
    del config["processors"]
    Path("other.yaml").write_text(yaml.safe_dump(config))
    proc = cli("validate", "--config", "other.yaml")
    assert proc.returncode == 2
    assert "no processor of class octodns_mailauth.MailAuthProcessor" in proc.stderr


def test_broken_config_yaml(example: Path) -> None:
    Path("bad.yaml").write_text("processors:\n  a: [\n")
    proc = cli("validate", "--config", "bad.yaml")
    assert proc.returncode == 2
    assert "bad.yaml:" in proc.stderr and "not valid YAML" in proc.stderr


def test_help_on_every_command() -> None:
    for args in (
        [],
        ["validate"],
        ["records"],
        ["explain"],
        ["check"],
        ["schema"],
        ["dkim"],
        ["spf"],
        ["spf", "refresh"],
        ["dkim", "keygen"],
        ["dkim", "rotate"],
        ["dkim", "export"],
        ["mta-sts", "policy"],
    ):
        proc = cli(*args, "--help")
        assert proc.returncode == 0, args
        assert "exit codes:" in proc.stdout


# --- records -------------------------------------------------------------------------------


def test_records_table_names_each_record(example: Path) -> None:
    proc = cli("records", "example.com", "--config", CONFIG)
    assert proc.returncode == 0, proc.stderr
    records = records_json("example.com")
    assert len(records) >= 5
    for record in records:
        assert record["name"] in proc.stdout
    assert "include:spf.protection.outlook.com" in proc.stdout
    # No keystore in the copy: the DKIM values are placeholders, and it says so.
    assert "relay2026a" in proc.stderr and "placeholder" in proc.stderr
    assert not (example / "zones/.dkim").exists()


def test_records_bind_parses_and_splits_long_txt(example: Path) -> None:
    proc = cli("records", "example.com", "--config", CONFIG, "--format", "bind")
    assert proc.returncode == 0, proc.stderr
    # An independent parser: dnspython reads the lines as zone-file text.
    zone = dns.zone.from_text(
        proc.stdout, origin="example.com.", relativize=False, check_origin=False
    )
    seen = {}
    for name, _ttl, rdata in zone.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        if rtype == "TXT":
            assert all(len(s) <= 255 for s in rdata.strings)
            value = b"".join(rdata.strings).decode()
        else:
            value = rdata.to_text()
        seen.setdefault((name.to_text().rstrip("."), rtype), []).append(value)
    wanted = {(r["name"], r["type"]): r["values"] for r in records_json("example.com")}
    # Placeholders are made afresh per run: compare DKIM key records by shape only.
    rsa = seen[("relay2026r._domainkey.example.com", "TXT")][0]
    assert rsa.startswith("v=DKIM1; k=rsa; p=") and len(rsa) > 255
    for key in wanted:
        if "_domainkey" in key[0] and key[1] == "TXT":
            continue
        assert sorted(seen[key]) == sorted(wanted[key]), key
    assert set(seen) == set(wanted)


def test_records_octodns_yaml_loads_in_octodns(example: Path, tmp_path: Path) -> None:
    from octodns.provider.yaml import YamlProvider
    from octodns.zone import Zone

    proc = cli("records", "example.com", "--config", CONFIG, "--format", "octodns")
    assert proc.returncode == 0, proc.stderr
    assert "\\;" in proc.stdout  # octoDNS's escaping of ; in TXT
    out = tmp_path / "octo"
    out.mkdir()
    (out / "example.com.yaml").write_text(proc.stdout)
    zone = Zone("example.com.", [])
    YamlProvider("check", str(out), enforce_order=False, escaped_semicolons=True).populate(zone)
    loaded = {}
    for record in zone.records:
        name = f"{record.name}.example.com" if record.name else "example.com"
        values = getattr(record, "values", None) or [record.value]
        if record._type == "TXT":
            texts = [str(v).replace("\\;", ";") for v in values]
        elif record._type == "MX":
            texts = [f"{v.preference} {v.exchange}" for v in values]
        else:
            texts = [str(v) for v in values]
        loaded[(name, record._type)] = sorted(texts)
    wanted = {(r["name"], r["type"]): sorted(r["values"]) for r in records_json("example.com")}
    assert set(loaded) == set(wanted)
    for key, values in wanted.items():
        if "_domainkey" not in key[0] or key[1] != "TXT":
            assert loaded[key] == values, key


def test_records_use_real_keys_once_generated(example: Path) -> None:
    from octodns.manager import Manager

    Manager(CONFIG).sync(dry_run=False)  # the processor generates the DKIM keys
    proc = cli("records", "example.com", "--config", CONFIG, "--format", "json")
    assert proc.returncode == 0
    assert "placeholder" not in proc.stderr
    served = Path("zones/output/example.com.zone").read_text()
    (record,) = [
        r for r in json.loads(proc.stdout) if r["name"] == "relay2026a._domainkey.example.com"
    ]
    p = record["values"][0].split("p=")[1]
    assert p in served  # the very key octodns-sync published


# --- explain and markdown --------------------------------------------------------------


def test_explain_shows_budget_alignment_and_stage(example: Path) -> None:
    proc = cli("explain", "example.com", "--config", CONFIG)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "SPF lookups" in out and "lookup" in out
    for sender in ("office", "newsletters", "relay"):
        assert sender in out
    assert "DMARC stage: quarantine" in out
    assert "reject" in out.split("DMARC stage:")[1]  # the next stage, blocked or not


def test_explain_reports_an_unaligned_sender_as_blocking(example: Path) -> None:
    net = "zones/mail/example.net.yaml"
    text = (
        Path(net)
        .read_text()
        .replace(
            "spf:\n",
            "  - name: crm\n    include: [spf.crm.example]\n"
            "    return_path: bounce.crm.example\nspf:\n",
        )
    )
    Path(net).write_text(text)
    proc = cli("explain", "example.net", "--config", CONFIG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tree, alignment = proc.stdout.split("DMARC alignment")[0], proc.stdout.split("DMARC stage:")[0]
    # The lock has no answer for the crm include: no number that leaves it out.
    assert "not counted" in tree and "spf.crm.example" in tree and "crm 1" not in tree
    (row,) = [ln for ln in alignment.splitlines() if ln.strip().startswith("crm")]
    assert "bounce.crm.example" in row
    stage = proc.stdout.split("DMARC stage:")[1]
    assert "before quarantine" in stage and "crm" in stage, proc.stdout
    # Without the crm sender no declared sender blocks the next stage, but with no
    # report evidence the tool does not claim that nothing does.
    Path(net).write_text(text.replace("    return_path: bounce.crm.example\n", ""))
    stage = cli("explain", "example.net", "--config", CONFIG).stdout.split("DMARC stage:")[1]
    assert "no declared sender blocks quarantine" in stage
    assert "no report evidence: no reports database is configured" in stage
    assert "nothing blocks" not in stage


def test_explain_markdown(example: Path) -> None:
    proc = cli("explain", "example.net", "--config", CONFIG, "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("### example.net")
    assert "**SPF lookup budget:**" in proc.stdout and "| sender | MAIL FROM |" in proc.stdout


def test_validate_markdown_report(example: Path) -> None:
    proc = cli("validate", "--config", CONFIG, "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert md.startswith("## ")
    for domain in policy_domains():
        assert f"### {domain}" in md
    assert md.count("**SPF lookup budget:**") == len(policy_domains())
    assert md.count("| sender | MAIL FROM |") == len(policy_domains())
    # One alignment row per sender of example.net.
    net = md.split("### example.net")[1].split("\n### ")[0]
    alignment = net.split("**DMARC alignment**")[1].split("**DMARC stage")[0]
    rows = [ln for ln in alignment.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert [r.split("|")[1].split()[0] for r in rows[1:]] == ["staff", "shop", "invoices"]
    # Every record shows up in the records table.
    for record in records_json("example.net"):
        assert f"`{record['name']}`" in md


def test_markdown_lists_errors(example: Path) -> None:
    Path(COM).write_text(Path(COM).read_text().replace("provider: sendgrid", "provider: sendgird"))
    proc = cli("validate", "--config", CONFIG, "--format", "markdown")
    assert proc.returncode == 1
    assert ":x:" in proc.stdout and "unknown provider 'sendgird'" in proc.stdout


# --- schema --------------------------------------------------------------------------------


def test_schema_command_prints_the_shipped_file() -> None:
    from conftest import ROOT

    proc = cli("schema")
    assert proc.returncode == 0
    assert proc.stdout == (ROOT / "schema/mailauth-policy.schema.json").read_text()
