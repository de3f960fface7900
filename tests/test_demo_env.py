"""`script/demo` on a fresh checkout: it works, it installs only what it uses
(the package and octodns-bind: no test or lint tools, no DNS server), and its
screen holds results, not octoDNS's worker logs or a stale-lock warning.

Slow (it builds a virtualenv from the package index), so marked `slow`; it is
part of the suite and runs in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".venv-demo", "__pycache__", "*.egg-info", ".dkim", "output",
    ".pytest_cache", ".ruff_cache", ".hypothesis", "results", "build", "dist",
)  # fmt: skip

# Distributions of the `test` and `dev` extras (and their verifiers): none may be
# in the demo's environment.
TEST_TOOLS = {
    "pytest", "ruff", "pre-commit", "checkdmarc", "dkimpy", "pyspf", "hypothesis",
    "jsonschema", "octodns-powerdns", "dmarc",
}  # fmt: skip


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.slow
def test_fresh_demo_installs_only_what_it_uses(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=IGNORE)
    venv = tmp_path / "demo-venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["DEMO_VENV"] = str(venv)
    # The venv is built from the interpreter running the tests, not whatever
    # python3 is first on PATH.
    env["PYTHON"] = shutil.which("python3") or "python3"
    run = subprocess.run(
        ["script/demo"], cwd=checkout, env=env, capture_output=True, text=True, timeout=900
    )
    screen = run.stdout + run.stderr
    assert run.returncode == 0, screen

    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {_canonical(p["name"]) for p in json.loads(listed.stdout)}
    assert {"octodns-mailauth", "octodns", "octodns-bind"} <= installed
    assert installed & {_canonical(t) for t in TEST_TOOLS} == set()

    # The README's editor-schema line works from this (non-development) install.
    schema = checkout / "zones" / "mailauth-policy.schema.json"
    subprocess.run(
        [str(venv / "bin" / "octodns-mailauth"), "schema", "-o", str(schema)],
        check=True,
        capture_output=True,
    )
    assert json.loads(schema.read_text()) == json.loads(
        (checkout / "schema" / "mailauth-policy.schema.json").read_text()
    )

    # It published, and the second sync planned nothing.
    zones = sorted(p.name for p in (checkout / "zones" / "output").glob("*.zone"))
    assert zones == [
        "example.com.zone",
        "example.net.zone",
        "parked.example.zone",
        "shop.example.zone",
    ]
    assert "No changes were planned" in screen
    assert "Create <TxtRecord TXT 3600, _dmarc.example.com." in screen
    # The example's cross-zone DMARC report authorization and its committed rotation.
    assert "Create <TxtRecord TXT 3600, example.net._report._dmarc.example.com." in screen
    assert "Create <TxtRecord TXT 3600, billing-20261118-rsa._domainkey.example.net." in screen
    assert "example.net's DKIM rotation (zones/dkim-state.yaml) is due" in screen

    # Nothing a newcomer must decode: no log lines with timestamps and thread
    # ids, no "resolved 2023-10-04 (N days ago...)" lock warning, no pip noise.
    assert not re.search(r"\[\d{6,}\]", screen), screen
    assert "days ago" not in screen
    assert "WARNING" not in screen
    assert "the example's SPF lock holds vendors' SPF records" in screen

    # Never PowerDNS, never the development bootstrap.
    code = [
        line
        for line in (checkout / "script" / "demo").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    assert len(code) > 20
    assert not [line for line in code if "install-pdns" in line or "script/bootstrap" in line]
