"""The `mailauth-validate` pre-commit hook, run by pre-commit itself.

`pre-commit try-repo` installs this project from a git repository into its own
virtualenv (from PyPI, like a user's machine) and runs the hook in a temp user
repo holding one good and one bad policy.  The project is copied into a temp
git repository first, so the main checkout's git state is never touched.
Slow (a virtualenv from the package index): runs with OCTODNS_MAILAUTH_SLOW_TESTS=1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_run import cli
from conftest import ROOT

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".venv-demo", "__pycache__", "*.egg-info", ".dkim", "output", ".pytest_cache",
    ".ruff_cache", ".hypothesis", "results", "build", "dist",
)  # fmt: skip

GOOD = """\
senders:
  - name: relay
    ip4: [192.0.2.25]
spf:
  all: fail
dmarc:
  policy: none
  rua: [mailto:dmarc@good.example]
"""

BAD = """\
senders:
  - name: relay
    ip4: [192.0.2.25]
dmarc:
  policy: reject
  rua: [dmarc@bad.example]
"""


def git(cwd: Path, *args: str) -> None:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
    )
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree, committed into a throw-away repository."""
    if not PRE_COMMIT.exists():
        pytest.fail(f"{PRE_COMMIT} is missing: pip install pre-commit (a test dependency)")
    repo = tmp_path_factory.mktemp("hookrepo") / "octodns-mailauth"
    shutil.copytree(ROOT, repo, ignore=IGNORE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "snapshot for pre-commit try-repo")
    return repo


def try_repo(hook_repo: Path, user: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), PRE_COMMIT_COLOR="never")
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(hook_repo), "mailauth-validate", "--all-files"],
        cwd=user,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


@pytest.mark.slow
def test_pre_commit_hook_passes_good_and_flags_bad(hook_repo: Path, tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "dns" / "mail").mkdir(parents=True)
    (user / "dns" / "mail" / "good.example.yaml").write_text(GOOD)
    (user / "dns" / "mail" / "bad.example.yaml").write_text(BAD)
    # Not a policy: outside mail/, so the hook's `files:` pattern must skip it.
    (user / "dns" / "config.yaml").write_text("providers: {}\n")
    git(user, "init", "-q", "-b", "main")
    git(user, "add", "-A")
    home = tmp_path / "pre-commit-home"

    proc = try_repo(hook_repo, user, home)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "mail policy (octodns-mailauth validate)" in out and "Failed" in out
    # The finding in the editor format, at the line of the bad value.
    assert "dns/mail/bad.example.yaml:6: error: " in out, out
    assert (
        "good.example.yaml"
        not in out.split("Failed", 1)[1].replace("dns/mail/good.example.yaml", "")
        or "good.example.yaml:" not in out
    )
    assert "config.yaml" not in out
    assert "Traceback" not in out

    (user / "dns" / "mail" / "bad.example.yaml").write_text(GOOD.replace("good", "bad"))
    git(user, "add", "-A")
    proc = try_repo(hook_repo, user, home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout


def test_hook_definition_runs_validate_on_policy_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What pre-commit does with .pre-commit-hooks.yaml, without installing: select the
    files by the hook's `files:` pattern and run its entry on them (in-process)."""
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"] == "octodns-mailauth validate" and hook["pass_filenames"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dns" / "mail").mkdir(parents=True)
    (tmp_path / "dns" / "mail" / "good.example.yaml").write_text(GOOD)
    (tmp_path / "dns" / "mail" / "bad.example.yaml").write_text(BAD)
    (tmp_path / "dns" / "config.yaml").write_text("providers: {}\n")
    every = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.yaml"))
    chosen = [f for f in every if re.search(hook["files"], f)]
    assert chosen == ["dns/mail/bad.example.yaml", "dns/mail/good.example.yaml"]

    proc = cli(*hook["entry"].split()[1:], *chosen)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "dns/mail/bad.example.yaml:6: error: " in proc.stdout + proc.stderr
    assert "good.example.yaml:2: error" not in proc.stdout + proc.stderr  # a warning at most

    (tmp_path / "dns" / "mail" / "bad.example.yaml").write_text(GOOD.replace("good", "bad"))
    assert cli(*hook["entry"].split()[1:], *chosen).returncode == 0
