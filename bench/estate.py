"""A synthetic estate for the benchmarks: N domains, each with a mail policy (a
catalog provider, an ESP and own servers with a DKIM key) and its private key.

Keys are written straight into the keystore layout (`<keys>/<domain>/<selector>.pem`,
0700/0600): `Keystore.ensure` fsyncs every key and directory, which on this disk
costs ~20 ms a key, and key generation is not what the benchmarks measure.
"""

from __future__ import annotations

import os
from pathlib import Path

from octodns_mailauth.dkim.keys import generate_private_key, private_key_to_pem

SELECTOR = "relay2026a"

POLICY = """\
senders:
  - name: office
    provider: microsoft365
    tenant: tenant{i}
    dkim_targets: legacy
  - name: newsletters
    provider: sendgrid
    account: u{i}
    link: wl{i}
  - name: relay
    ip4: [203.0.113.{octet}, 198.51.100.0/28]
    dkim: {{selector: {selector}, algorithm: ed25519}}
spf: {{all: fail}}
dmarc: {{policy: quarantine, rua: [mailto:dmarc@d{i}.example]}}
"""


def domain(i: int) -> str:
    return f"d{i}.example"


def make(root: Path, count: int) -> tuple[Path, Path]:
    """Write `count` policies to <root>/mail and their keys to <root>/keys; returns both."""
    policies, keys = root / "mail", root / "keys"
    policies.mkdir(mode=0o700)
    keys.mkdir(mode=0o700)
    for i in range(count):
        name = domain(i)
        text = POLICY.format(i=i, octet=i % 250 + 1, selector=SELECTOR)
        (policies / f"{name}.yaml").write_text(text)
        folder = keys / name
        folder.mkdir(mode=0o700)
        pem = private_key_to_pem(generate_private_key("ed25519"), None)
        fd = os.open(folder / f"{SELECTOR}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    return policies, keys


def rss_kib() -> tuple[int, int]:
    """(current, peak) resident set size of this process in KiB, from /proc."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak_rss() -> bool:
    """Start the peak (VmHWM) again from the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
