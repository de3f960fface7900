"""DKIM key generation: octodns-mailauth vs `opendkim-genkey`, in one run.

For each algorithm, keys per second for:
  ours      -- generate, serialise PKCS#8 PEM, build the key record (in process)
  keystore  -- the same through Keystore.ensure (temp file, fsync, link, flock)
  reference -- `opendkim-genkey` (Debian package opendkim-tools) for RSA-2048; it
               has no Ed25519 option (it shells out to `openssl genrsa`), so the
               Ed25519 reference is `openssl genpkey -algorithm ed25519` plus
               `openssl pkey -pubout`, which is what people run for OpenDKIM 2.11
               and Rspamd Ed25519 keys.
The ratio is ours / reference.  Skips with a message when a tool is missing
(`apt-get install opendkim-tools`).  Not run in CI.

    .venv/bin/python bench/bench_dkim.py [--rsa 20] [--ed25519 200] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from report import Report, add_arguments

from octodns_mailauth.dkim.keys import generate_private_key, private_key_to_pem, public_key_b64
from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.records.dkim import dkim_txt_value


def rate(n: int, make: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for i in range(n):
        make(i)
    return n / (time.perf_counter() - start)


def ours(algorithm: str) -> Callable[[int], None]:
    def make(_i: int) -> None:
        key = generate_private_key(algorithm, 2048)  # type: ignore[arg-type]
        private_key_to_pem(key, None)
        dkim_txt_value(algorithm, public_key_b64(key))  # type: ignore[arg-type]

    return make


def keystore(algorithm: str, root: Path) -> Callable[[int], None]:
    store = Keystore(root / f"ks-{algorithm}")

    def make(i: int) -> None:
        store.ensure("bench.example", f"s{i}", algorithm, 2048)  # type: ignore[arg-type]

    return make


def opendkim(root: Path) -> Callable[[int], None]:
    def make(i: int) -> None:
        out = root / f"odk{i}"
        out.mkdir()
        subprocess.run(
            ["opendkim-genkey", "-b", "2048", "-d", "bench.example", "-s", "s", "-D", str(out)],
            check=True,
            capture_output=True,
        )

    return make


def openssl_ed25519(root: Path) -> Callable[[int], None]:
    def make(i: int) -> None:
        key = root / f"ed{i}.pem"
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(key) + ".pub"],
            check=True,
            capture_output=True,
        )

    return make


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rsa", type=int, help="RSA-2048 keys per contender (default 20)")
    parser.add_argument("--ed25519", type=int, help="Ed25519 keys per contender (default 200)")
    add_arguments(parser)
    args = parser.parse_args()
    args.rsa = args.rsa or (5 if args.quick else 20)
    args.ed25519 = args.ed25519 or (50 if args.quick else 200)
    report = Report("dkim", args)
    if shutil.which("opendkim-genkey") is None or shutil.which("openssl") is None:
        print("skipped: opendkim-genkey or openssl not found (apt-get install opendkim-tools)")
        return 0
    os.environ.pop("OCTODNS_MAILAUTH_KEY_PASSPHRASE", None)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        for algorithm, n, reference, ref_name in (
            ("rsa", args.rsa, opendkim(root), "opendkim-genkey -b 2048"),
            ("ed25519", args.ed25519, openssl_ed25519(root), "openssl genpkey ed25519"),
        ):
            ref_n = n if algorithm == "rsa" else max(10, n // 4)
            ours_rate = rate(n, ours(algorithm))
            store_rate = rate(n, keystore(algorithm, root))
            ref_rate = rate(ref_n, reference)
            rows.append((algorithm, n, ours_rate, store_rate, ref_name, ref_n, ref_rate))
    print(f"{'algorithm':10} {'ours k/s':>10} {'keystore k/s':>13} {'reference k/s':>14}  ratio")
    for algorithm, n, o, s, ref_name, ref_n, r in rows:
        name = "RSA-2048" if algorithm == "rsa" else "Ed25519"
        print(
            f"{name:10} {o:10.1f} {s:13.1f} {r:14.1f}  {o / r:5.1f}x "
            f"(keystore {s / r:.1f}x; n={n}, reference n={ref_n}: {ref_name})"
        )
        report.figure(f"{name} keys/s: ours / {ref_name.split()[0]}", f"{o / r:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
