"""Policies for 1,000 and 10,000 synthetic domains processed into records.

Measures what `octodns-sync` spends in the processor: loading and validating
every policy (the processor's __init__) plus `process_source_zone` for every
zone.  DKIM keys are pre-generated (Ed25519), so key generation is not in the
figure.  Reports the time per domain and the 10k/1k ratio, which should stay
close to 10 (linear).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from octodns.zone import Zone

from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.processor import MailAuthProcessor

POLICY = """\
senders:
  - name: office
    provider: microsoft365
    tenant: tenant{i}
  - name: newsletters
    provider: sendgrid
    account: u{i}
    link: wl{i}
  - name: relay
    ip4: [203.0.113.{octet}, 198.51.100.0/28]
    dkim: {{selector: relay2026a, algorithm: ed25519}}
spf: {{all: fail}}
dmarc: {{policy: quarantine, rua: [mailto:dmarc@d{i}.example]}}
"""


def make(root: Path, count: int, store: Keystore) -> None:
    policies = root / "mail"
    policies.mkdir()
    for i in range(count):
        domain = f"d{i}.example"
        (policies / f"{domain}.yaml").write_text(POLICY.format(i=i, octet=i % 250 + 1))
        store.ensure(domain, "relay2026a", "ed25519")


def run(count: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Keystore(root / "keys")
        make(root, count, store)
        start = time.perf_counter()
        proc = MailAuthProcessor("mailauth", policies=str(root / "mail"), keys=str(root / "keys"))
        records = 0
        for i in range(count):
            zone = Zone(f"d{i}.example.", [])
            proc.process_source_zone(zone, sources=[])
            records += len(zone.records)
        return time.perf_counter() - start, records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    args = parser.parse_args()
    os.umask(0o077)
    results = {}
    for count in (args.small, args.large):
        seconds, records = run(count)
        results[count] = seconds
        print(
            f"{count:>6} domains: {seconds:7.2f} s, {seconds / count * 1000:6.2f} ms/domain, "
            f"{records} records"
        )
    ratio = results[args.large] / results[args.small]
    print(f"ratio {args.large}/{args.small}: {ratio:.1f} (linear = {args.large / args.small:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
