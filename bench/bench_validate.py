"""How fast `octodns-mailauth validate` starts and runs, where users feel it (pre-commit).

Measures, in one run on this machine:
  1. `python -c "import octodns"` (the baseline the issue names) and `octodns-validate`
     on the example, for context;
  2. `octodns-mailauth validate --config zones/config.yaml` on the example
     (goal: at most 1.5x the baseline);
  3. validation of 1,000 generated policy files in one process, with a warm SPF lock
     (the example's lock beside them; goal: well under 5 s).
Each figure is the median of --runs runs.  Prints figures and ratios, writes nothing
outside a temp folder.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def timed(cmd: list[str], cwd: Path, runs: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    times = []
    proc = None
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
    assert proc is not None
    return statistics.median(times), proc


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
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--policies", type=int, default=1000)
    args = parser.parse_args()

    base, _ = timed([sys.executable, "-c", "import octodns"], ROOT, args.runs)
    manager, _ = timed([sys.executable, "-c", "import octodns.manager"], ROOT, args.runs)
    octo, _ = timed(
        [str(BIN / "octodns-validate"), "--config-file", "zones/config.yaml"], ROOT, args.runs
    )
    ours, proc = timed([str(CLI), "validate", "--config", "zones/config.yaml"], ROOT, args.runs)
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
    print(f"python -c 'import octodns'            {base:6.3f} s")
    print(f"python -c 'import octodns.manager'    {manager:6.3f} s")
    print(f"octodns-validate zones/config.yaml    {octo:6.3f} s")
    print(
        f"octodns-mailauth validate (zones/)    {ours:6.3f} s  = {ours / base:.1f}x import "
        f"octodns (goal <= 1.5x), {ours / octo:.2f}x octodns-validate"
    )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mail"
        generate(folder, args.policies)
        runs = max(1, args.runs // 2)
        many, proc = timed(
            [str(CLI), "validate", "--policies", str(folder), "--format", "json"], ROOT, runs
        )
        import json

        data = json.loads(proc.stdout) if proc.stdout else {}
        print(
            f"validate {args.policies} policy files          {many:6.3f} s  "
            f"({len(data.get('policies', []))} compiled, {data.get('errors', '?')} errors, "
            f"{1000 * many / args.policies:.2f} ms per policy; goal well under 5 s)"
        )
        if data.get("errors"):
            first = next(f for f in data["findings"] if f["severity"] == "error")
            print(f"  first error: {first['text']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
