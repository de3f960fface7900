"""The README's "your own domain, locally" walk-through works as copied: its
config, its zone file and its commands, run in an empty folder."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

BIN = Path(sys.executable).parent


def walkthrough() -> tuple[str, str, list[str]]:
    text = (ROOT / "README.md").read_text()
    start = text.index("Try it on your own domain, locally")
    blocks = re.findall(r"```(yaml|sh)\n(.*?)```", text[start:], re.DOTALL)
    (k1, config), (k2, zone), (k3, commands) = blocks[:3]
    assert (k1, k2, k3) == ("yaml", "yaml", "sh")
    lines = [ln.split("#")[0].strip() for ln in commands.splitlines()]
    return config, zone, [ln for ln in lines if ln]


def test_readme_walkthrough_runs_as_copied(tmp_path: Path) -> None:
    config, zone, commands = walkthrough()
    assert len(commands) == 4
    os.umask(0o022)
    (tmp_path / "config.yaml").write_text(config)
    zone_dir = tmp_path / "zones" / "config"
    zone_dir.mkdir(parents=True)
    (zone_dir / "myshop.test.yaml").write_text(zone)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    outputs = []
    for command in commands:
        proc = subprocess.run(
            shlex.split(command),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    assert "octodns-mailauth init myshop.test --config config.yaml" in outputs[0]
    assert "wrote zones/mail/myshop.test.yaml" in outputs[1]
    assert "octodns-sync will accept the zone with this policy" in outputs[1]
    assert "No changes were planned" in outputs[3]
    published = (tmp_path / "zones" / "output" / "myshop.test.zone").read_text()
    assert '"v=spf1 ip4:198.51.100.7 include:_spf.google.com ~all"' in published
    assert "google-site-verification=abc123" in published
    assert "v=DMARC1" in published and "rua=mailto:dmarc@myshop.test" in published
    # The hand-written SPF and DMARC values left the zone file; the rest stayed.
    left = (zone_dir / "myshop.test.yaml").read_text()
    assert "v=spf1" not in left and "DMARC1" not in left
    assert "aspmx.l.google.com." in left and "google-site-verification=abc123" in left
