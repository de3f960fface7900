"""How fast `octodns-mailauth validate` starts and runs, where users feel it (pre-commit).

Measures, in one run on this machine, taking turns:
  1. `python -c "import octodns.manager"` (the baseline: what any octoDNS command
     pays before it starts) and `octodns-validate` on the example, for context;
  2. `octodns-mailauth validate --config zones/config.yaml` on the example
     (goal: at most 2x the baseline);
  3. validation of 1,000 generated policy files in one process, with a warm SPF lock
     (the example's lock beside them; goal: under 5 s).
Each figure is the median of --runs runs.  Prints figures and ratios, writes nothing
outside a temp folder.

Every command runs as an installed package runs: with its bytecode cached (pip
compiles it at install; an editable install caches it on first import).  An
inherited PYTHONDONTWRITEBYTECODE would make every run compile this package from
source while octoDNS's own bytecode is already there, so the commands run with
the cache in a temp folder (PYTHONPYCACHEPREFIX, the same for all of them) and
one untimed run each first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from report import Report, add_arguments, interleaved

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = BIN / "octodns-mailauth"

# The shapes of the example's policies: catalog providers, own servers, DKIM keys
# (ed25519 placeholders: no keystore), DMARC at each stage.
TEMPLATES = [
    """\
senders:
  - name: office
    provider: microsoft365
    tenant: t{n}
    dkim_targets: legacy
  - name: newsletters
    provider: sendgrid
    account: u{n}
    link: wl{n}
  - name: relay
    ip4: [203.0.113.{octet}]
    dkim: {{selector: relay{n}, algorithm: ed25519}}
spf:
  all: fail
dmarc:
  policy: quarantine
  rua: [mailto:dmarc@d{n}.example]
""",
    """\
senders:
  - name: staff
    provider: google
  - name: shop
    provider: amazonses
    region: eu-west-1
    mail_from: bounce
    dkim_tokens: ["{tok_a}", "{tok_b}"]
  - name: invoices
    ip4: [198.51.100.{octet}]
    dkim: {{selector: billing{n}, algorithm: ed25519}}
spf:
  all: softfail
dmarc:
  policy: none
  rua: [mailto:dmarc-reports@d{n}.example]
""",
]


ENV = dict(os.environ)


def run(cmd: list[str], cwd: Path) -> Callable[[], subprocess.CompletedProcess[str]]:
    return lambda: subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=ENV)


def cache_bytecode(folder: Path) -> None:
    """Bytecode cached for every command alike, in `folder` (see the docstring)."""
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(folder)


def generate(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for n in range(count):
        tok_a, tok_b = (f"{c}{n:06d}".ljust(32, "q") for c in "ab")
        text = TEMPLATES[n % len(TEMPLATES)].format(
            n=n, octet=n % 250 + 1, tok_a=tok_a, tok_b=tok_b
        )
        (folder / f"d{n}.example.yaml").write_text(text)
    lock = ROOT / "zones" / "mail" / "spf-lock.json"
    if lock.exists():
        shutil.copy(lock, folder / "spf-lock.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="runs of each command (median kept)")
    parser.add_argument("--policies", type=int, default=1000)
    add_arguments(parser)
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 11)
    report = Report("validate", args)
    pycache = tempfile.TemporaryDirectory()
    cache_bytecode(Path(pycache.name))

    contenders = {
        "import octodns.manager": run([sys.executable, "-c", "import octodns.manager"], ROOT),
        "octodns-validate": run(
            [str(BIN / "octodns-validate"), "--config-file", "zones/config.yaml"], ROOT
        ),
        "validate": run([str(CLI), "validate", "--config", "zones/config.yaml"], ROOT),
    }
    interleaved(contenders, 1)  # fills the bytecode cache
    times, last = interleaved(contenders, runs, pick="median")
    proc = last["validate"]
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        raise SystemExit("octodns-mailauth validate failed on the example")
    base, octo = times["import octodns.manager"], times["octodns-validate"]
    ours = times["validate"]
    print(f"median of {runs} runs, taken in turns")
    print(f"python -c 'import octodns.manager'    {base:6.3f} s")
    print(f"octodns-validate zones/config.yaml    {octo:6.3f} s")
    print(f"octodns-mailauth validate (zones/)    {ours:6.3f} s")
    report.at_most("validate zones/ / import octodns.manager", ours / base, 2)
    report.figure("validate zones/ / octodns-validate", f"{ours / octo:.2f}x")

    with pycache, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mail"
        generate(folder, args.policies)
        times, last = interleaved(
            {
                "many": run(
                    [str(CLI), "validate", "--policies", str(folder), "--format", "json"], ROOT
                )
            },
            max(1, runs // 4),
            pick="median",
        )
        many, proc = times["many"], last["many"]
        data = json.loads(proc.stdout) if proc.stdout else {}
        compiled = len(data.get("policies", []))
        print(
            f"validate {args.policies} policy files          {many:6.3f} s  "
            f"({compiled} compiled, {data.get('errors', '?')} errors, "
            f"{1000 * many / args.policies:.2f} ms per policy)"
        )
        if data.get("errors") or compiled != args.policies:
            first = next(
                (f for f in data.get("findings", []) if f["severity"] == "error"), proc.stderr
            )
            raise SystemExit(f"validate of generated policies failed: {first}")
        report.at_most(f"validate {args.policies} policy files", many, 5, "s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
