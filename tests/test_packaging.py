"""The package as pip builds it from pyproject.toml: the metadata it declares,
built without setuptools' deprecation warnings.

Slow (pip fetches the build backend from the package index), so marked `slow`;
it runs in CI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_the_package_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, checkout / name)
    shutil.copytree(
        ROOT / "octodns_mailauth",
        checkout / "octodns_mailauth",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    # Not --quiet: pip then shows what the build backend printed.
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(checkout)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "BuildBackendWarning" not in out, out
    [wheel] = tmp_path.glob("octodns_mailauth-*.whl")
    with zipfile.ZipFile(wheel) as built:
        [metadata] = [n for n in built.namelist() if n.endswith(".dist-info/METADATA")]
        lines = built.read(metadata).decode().splitlines()
        # The licence's text travels with the wheel, not only its name.
        licences = [n for n in built.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert "License-Expression: MIT" in lines
    assert "License-File: LICENSE" in lines
    assert len(licences) == 1
