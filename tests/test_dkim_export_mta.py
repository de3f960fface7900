"""The DKIM exports loaded the way each MTA loads them: OpenDKIM's own
`opendkim-testkey` reads our KeyTable and checks its (RSA) keys against the
record the loopback PowerDNS serves (through libunbound, forwarded to that
server); Rspamd's `rspamadm configtest` parses our dkim_signing.conf inside a
copy of the distribution's configuration, and `configdump` shows every active
selector of each dual-signing domain.  Tools from script/install-mta-tools
(Debian's opendkim-tools and rspamd); without them these tests skip."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_run import cli
from example_rotation import replay_example_rotation
from pdns_fixture import pdns_of_the_module  # noqa: F401  (`pdns`: a server of its own)
from test_e2e_pdns import octodns_sync, published  # noqa: F401

pytestmark = pytest.mark.pdns

CONFIG = "zones/config.yaml"
TESTKEY = shutil.which("opendkim-testkey") or "/usr/sbin/opendkim-testkey"
RSPAMADM = shutil.which("rspamadm") or "/usr/bin/rspamadm"
# The example's dual-signing domains (example.net's pair rotates).
DUAL = ("example.com", "example.net", "shop.example")


def need(tool: str) -> None:
    if not Path(tool).exists():
        pytest.skip(f"{tool} is not installed: run script/install-mta-tools as root")


def export(folder: Path) -> dict[str, list[str]]:
    """`dkim export --format all` into `folder`; domain -> selectors in the KeyTable."""
    proc = cli("dkim", "export", "--config", CONFIG, "--format", "all", "-o", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out: dict[str, list[str]] = {}
    for line in (folder / "KeyTable").read_text().splitlines():
        if line and not line.startswith("#"):
            domain, selector, _path = line.split()[1].split(":", 2)
            out.setdefault(domain, []).append(selector)
    return out


def test_opendkim_testkey_accepts_every_exported_key(published: Any, tmp_path: Path) -> None:  # noqa: F811
    need(TESTKEY)
    replay_example_rotation()  # example.net's rotating keys, as its signing host holds them
    assert octodns_sync(published, "--doit").returncode == 0  # generates and publishes keys
    selectors = export(tmp_path / "mta")
    for domain in DUAL:
        assert len(selectors[domain]) == 2, selectors  # Ed25519 and RSA both exported
    unbound = tmp_path / "unbound.conf"
    unbound.write_text(
        "server:\n  do-not-query-localhost: no\n"
        f'forward-zone:\n  name: "."\n  forward-addr: {published.host}@{published.dns_port}\n'
    )
    # opendkim-testkey (OpenDKIM 2.11) checks RSA keys only ("expecting an rsa
    # key" for Ed25519), so it gets the KeyTable's RSA entries: one per dual-signing
    # domain at least.  The Ed25519 keys are verified through the same server by
    # dkimpy (tests/test_e2e_pdns.py).
    keytable = (tmp_path / "mta" / "KeyTable").read_text().splitlines()
    entries = [ln for ln in keytable if ln and not ln.startswith("#")]
    rsa = [ln for ln in entries if _algorithm(ln) == "rsa"]
    assert {ln.split()[1].split(":")[0] for ln in rsa} >= set(DUAL), rsa
    table = tmp_path / "RsaKeyTable"
    table.write_text("\n".join(rsa) + "\n")
    conf = tmp_path / "opendkim.conf"
    conf.write_text(f"KeyTable file:{table}\nResolverConfiguration {unbound}\n")
    proc = subprocess.run(
        [TESTKEY, "-x", str(conf), "-vvv"], capture_output=True, text=True, timeout=120
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    # One verdict per entry: the served key matches the private key.
    assert f"{len(rsa)} keys checked; {len(rsa)} pass, 0 fail" in text, text
    # ... and it can fail: a private key that is not the one served.
    first, second = rsa[0].split(), rsa[1].split()
    swapped = first[1].rsplit(":", 1)[0] + ":" + second[1].rsplit(":", 1)[1]
    table.write_text(f"{first[0]} {swapped}\n")
    proc = subprocess.run(
        [TESTKEY, "-x", str(conf), "-vvv"], capture_output=True, text=True, timeout=120
    )
    # (with -x it reports the failure but exits 0, so the text is what counts)
    text = proc.stdout + proc.stderr
    assert "keys do not match" in text and "1 key checked; 0 pass, 1 fail" in text, text


def _algorithm(entry: str) -> str:
    from octodns_mailauth.dkim.keys import algorithm_of, private_key_from_pem

    path = Path(entry.split()[1].split(":", 2)[2])
    return algorithm_of(private_key_from_pem(path.read_bytes(), None))


def test_rspamd_loads_every_active_selector(example: Path, tmp_path: Path) -> None:
    need(RSPAMADM)
    keygen = cli("dkim", "keygen", "--config", CONFIG)
    assert keygen.returncode == 0, keygen.stderr
    replay_example_rotation()
    selectors = export(tmp_path / "mta")
    conf = tmp_path / "rspamd"
    shutil.copytree("/etc/rspamd", conf)
    shutil.copy(tmp_path / "mta" / "dkim_signing.conf", conf / "local.d" / "dkim_signing.conf")
    # The stock fuzzy_check module resolves rspamd.com at load: no network in tests.
    (conf / "override.d" / "fuzzy_check.conf").write_text("enabled = false;\n")
    base = [RSPAMADM, f"--var=CONFDIR={conf}", f"--var=LOCAL_CONFDIR={conf}"]
    test = subprocess.run(
        [*base, "configtest", "-c", str(conf / "rspamd.conf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert test.returncode == 0 and "syntax OK" in test.stdout, test.stdout + test.stderr
    dump = subprocess.run(
        [*base, "configdump", "-c", str(conf / "rspamd.conf"), "-j", "dkim_signing"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dump.returncode == 0, dump.stderr
    loaded = json.loads(dump.stdout)["domain"]
    for domain, wanted in selectors.items():
        got = sorted(s["selector"] for s in loaded[domain]["selectors"])
        assert got == sorted(wanted), (domain, got, wanted)
    for domain in DUAL:
        assert len(loaded[domain]["selectors"]) == 2
    # A broken file is caught: the check can fail.
    (conf / "local.d" / "dkim_signing.conf").write_text("domain { broken\n")
    test = subprocess.run(
        [*base, "configtest", "-c", str(conf / "rspamd.conf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert test.returncode != 0
