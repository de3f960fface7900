"""Inside octoDNS: `octodns-sync` planning 1,000 zones with the processor, against
the same plan with the same records written statically in the zone files.

Setup (not timed): 1,000 domains (bench/estate.py: policy, DKIM key, and an A, an
MX and a www CNAME in each zone file).  `octodns-sync --doit` with the processor
writes every zone, mail records included, to a YamlProvider directory: those files
are the static zone files.  Then, taking turns, each config is planned (no --doit)
against the same empty YamlProvider target:
  processor -- zone files without mail records, MailAuthProcessor adds them;
  static    -- the processor's output as zone files, no processor.
Both plans must be the same (checked: the plan's change lines); the goal is the
processor's plan taking at most 1.2x the static one.

    .venv/bin/python bench/bench_octodns.py [--zones 1000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import estate
from report import Report, add_arguments, interleaved

BIN = Path(sys.executable).parent

ZONE = """\
---
'':
  - type: A
    value: 192.0.2.{octet}
  - type: MX
    value: {{exchange: mx.{name}., preference: 10}}
www:
  type: CNAME
  value: {name}.
"""


def config(
    root: Path, name: str, source: Path, target: Path, processor: bool, zones: int, workers: int
) -> Path:
    lines = [
        "manager:",
        f"  max_workers: {workers}",
        "providers:",
        "  source:",
        "    class: octodns.provider.yaml.YamlProvider",
        f"    directory: {source}",
        "    default_ttl: 3600",
        "  target:",
        "    class: octodns.provider.yaml.YamlProvider",
        f"    directory: {target}",
    ]
    path = root / f"{name}.yaml"
    if processor:
        lines += [
            "processors:",
            "  mailauth:",
            "    class: octodns_mailauth.MailAuthProcessor",
            # As the example does: octodns-validate then checks each zone too.
            f"    config_file: {path}",
            f"    policies: {root / 'mail'}",
            f"    keys: {root / 'keys'}",
        ]
    lines.append("zones:")
    for i in range(zones):
        lines += [f"  {estate.domain(i)}.:", "    sources: [source]", "    targets: [target]"]
        if processor:
            lines.append("    processors: [mailauth]")
    path.write_text("\n".join(lines) + "\n")
    return path


def sync(config_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / "octodns-sync"), "--config-file", str(config_file), *extra],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"octodns-sync {config_file.name} failed:\n{proc.stderr[-3000:]}")
    return proc


# "*   Create <TxtRecord TXT 3600, ...> (mailauth)": the source in brackets differs.
_PLAN_LINE = re.compile(r"^\*\s+((?:Create|Update|Delete) .*?)(?: \(\w+\))?$", re.M)


def changes(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The plan's change lines without their source, whichever stream octoDNS used."""
    return sorted(m.group(1) for m in _PLAN_LINE.finditer(proc.stdout + proc.stderr))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=1000)
    parser.add_argument("--repeat", type=int, help="plans of each config (best kept)")
    parser.add_argument("--workers", type=int, default=1, help="octoDNS manager max_workers")
    add_arguments(parser)
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    report = Report("octodns", args)
    os.umask(0o077)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        estate.make(root, args.zones)
        zones_dir, static_dir, target = root / "zones", root / "static", root / "target"
        for folder in (zones_dir, static_dir, target):
            folder.mkdir()
        for i in range(args.zones):
            name = estate.domain(i)
            (zones_dir / f"{name}.yaml").write_text(ZONE.format(name=name, octet=i % 250 + 1))
        n, workers = args.zones, args.workers
        # The static zone files: exactly what the processor makes, written by octoDNS.
        sync(config(root, "writer", zones_dir, static_dir, True, n, workers), "--doit")
        files = len(list(static_dir.glob("*.yaml")))
        if files != n:
            raise SystemExit(f"expected {n} static zone files, found {files}")
        with_proc = config(root, "processor", zones_dir, target, True, n, workers)
        static = config(root, "static", static_dir, target, False, n, workers)

        def plan(path: Path) -> Callable[[], subprocess.CompletedProcess[str]]:
            return lambda: sync(path)

        times, last = interleaved({"processor": plan(with_proc), "static": plan(static)}, repeat)
    ours, theirs = changes(last["processor"]), changes(last["static"])
    if not ours or ours != theirs:
        raise SystemExit(
            f"the plans differ: {len(ours)} changes with the processor, {len(theirs)} static"
        )
    print(
        f"{args.zones} zones, {len(ours)} record changes planned, max_workers {args.workers}, "
        f"best of {repeat}, taken in turns"
    )
    print(f"octodns-sync plan, processor:     {times['processor']:7.2f} s")
    print(f"octodns-sync plan, static files:  {times['static']:7.2f} s")
    report.at_most(
        f"octodns-sync plan {args.zones} zones: processor / static",
        times["processor"] / times["static"],
        1.2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
