"""`octodns-mailauth coverage --config`: every zone of the config, with its
mail records and what to do, on four kinds of zone: one with a policy, one
with MX and no policy, a parked candidate, and an alias."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_run import cli

from octodns_mailauth.cli.render import md_cell

CONFIG = "zones/config.yaml"


@pytest.fixture
def four_kinds(example: Path) -> Path:
    """example.com (policy), receives.example (MX and SPF, no policy), idle.example
    (no MX, no SPF: parked candidate), mirror.example (alias of example.com)."""
    Path("zones/config/receives.example.yaml").write_text(
        "---\n'':\n  - type: MX\n    value:\n      exchange: mx.receives.example.\n"
        "      preference: 10\n  - type: TXT\n    value: v=spf1 mx -all\n"
        "_dmarc:\n  type: TXT\n  value: v=DMARC1\\; p=none\n"
    )
    Path("zones/config/idle.example.yaml").write_text("---\n'':\n  type: A\n  value: 192.0.2.9\n")
    config = yaml.safe_load(Path(CONFIG).read_text())
    zones = {
        "example.com.": config["zones"]["example.com."],
        "receives.example.": {"sources": ["config"], "processors": ["mailauth"], "targets": []},
        "idle.example.": {"sources": ["config"], "targets": []},
        "mirror.example.": {"alias": "example.com."},
    }
    config["zones"] = zones
    Path(CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    for other in ("example.net", "shop.example", "parked.example"):
        Path(f"zones/mail/{other}.yaml").unlink()
    return example


def test_coverage_lists_every_zone_with_a_suggestion(four_kinds: Path) -> None:
    proc = cli("coverage", "--config", CONFIG)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert set(rows) >= {"example.com", "receives.example", "idle.example", "mirror.example"}
    assert rows["example.com"].split()[:5] == [
        "example.com",
        "example.com",
        "yes",
        "policy",
        "policy",
    ]
    assert "covered" in rows["example.com"]
    assert rows["receives.example"].split()[:5] == [
        "receives.example",
        "none",
        "yes",
        "yes",
        "p=none",
    ]
    assert (
        "octodns-mailauth init receives.example --config zones/config.yaml"
        in (rows["receives.example"])
    )
    assert rows["idle.example"].split()[:5] == ["idle.example", "none", "no", "no", "no"]
    assert "parked: true in zones/mail/idle.example.yaml" in rows["idle.example"]
    # idle.example does not run the processor: the suggestion says to add it.
    assert "add `processors: [mailauth]`" in rows["idle.example"]
    assert "alias of example.com" in rows["mirror.example"]
    assert "4 zones: 2 with a policy or an alias, 2 without" in proc.stdout


def test_coverage_markdown_for_a_pr_summary(four_kinds: Path) -> None:
    proc = cli("coverage", "--config", CONFIG, "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "| zone | policy | MX | SPF | DMARC | suggestion |"
    assert lines[1] == "|---|---|---|---|---|---|"
    body = lines[2:]
    assert len(body) == 4
    # Every row has exactly the header's columns (no unescaped pipes).
    for line in body:
        cells = line.replace("\\|", "").split("|")
        assert len(cells) == 8, line
    assert any(
        "`octodns-mailauth init receives.example --config zones/config.yaml`" in ln for ln in body
    )


def test_markdown_cells_escape_table_syntax() -> None:
    assert md_cell("a|b") == "a\\|b"
    assert md_cell("line\nbreak") == "line break"
    assert md_cell("back\\slash|") == "back\\\\slash\\|"


def test_coverage_needs_a_config(example: Path) -> None:
    proc = cli("coverage", "--policies", "zones/mail")
    assert proc.returncode == 2
    assert "--config FILE" in proc.stderr
