"""Crash safety, proven: `dkim keygen`, `dkim rotate` and `octodns-sync --doit`
(their real entry points, each in a forked child) are killed with SIGKILL at
random points (tests/crash.py: at a random file-system call or after a random
delay), 50 times each.  After every kill the keystore
holds only complete keys (0600, parsable), the state file is the old or a new
whole file consistent with the keystore, no published DKIM key lacks its
private key, and a rerun completes.  Slow (hundreds of process starts)."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dns.zone
import pytest
from crash import Outcome, torture

from octodns_mailauth.dkim.keys import private_key_from_pem, public_key_b64
from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.dkim.statefile import load_state

pytestmark = pytest.mark.slow

# Issue 17 asks for at least 50 kills per command; a run killed by delay may finish first.
KILLS = int(os.environ.get("CRASH_KILLS", "50"))
RUNS = 3 * KILLS  # at most; each test stops at KILLS kills
KEYS = Path("zones/.dkim")
STATE = Path("zones/dkim-state.yaml")


def complete_keys() -> dict[str, str]:
    """Every *.pem under the keystore is a whole key, mode 0600: {path: p=}."""
    out = {}
    for pem in sorted(KEYS.rglob("*.pem")) if KEYS.exists() else []:
        assert not pem.is_symlink()
        assert pem.stat().st_mode & 0o777 == 0o600, pem
        key = private_key_from_pem(pem.read_bytes(), None)  # raises on a partial file
        out[str(pem.relative_to(KEYS))] = public_key_b64(key)
    return out


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCTODNS_MAILAUTH_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("OCTODNS_MAILAUTH_ACKNOWLEDGE", raising=False)


def cli(*args: str):  # type: ignore[no-untyped-def]
    from octodns_mailauth.cli import main

    return lambda: main(list(args))


def octodns_sync(*args: str):  # type: ignore[no-untyped-def]
    def go() -> int:
        from octodns.cmds.sync import main

        sys.argv = ["octodns-sync", *args]
        main()
        return 0

    return go


def report(name: str, stats: object) -> None:
    print(f"\n{name}: {stats}")  # the counts, for the record (pytest -s)


def test_keygen_killed_at_random_points(example: Path) -> None:
    def reset() -> None:
        shutil.rmtree(KEYS, ignore_errors=True)

    def check(outcome: Outcome) -> None:
        complete_keys()

    stats = torture(
        cli("dkim", "keygen", "--config", "zones/config.yaml"),
        runs=RUNS,
        kills=KILLS,
        reset=reset,
        check=check,
        cwd=example,
    )
    report("dkim keygen", stats)
    assert stats.killed >= KILLS, stats
    assert len(complete_keys()) == len(OWN_SELECTORS)  # the last rerun made every key


def test_rotate_killed_at_random_points(example: Path) -> None:
    com = Path("zones/mail/example.com.yaml")
    anchor = "      - {selector: relay2026r, algorithm: rsa}\n"
    rotating = "      - {rotate: 90d, prefix: relay, algorithms: [ed25519, rsa]}\n"
    com.write_text(com.read_text().replace(anchor, anchor + rotating))
    from octodns_mailauth.cli import main

    now = datetime.now(timezone.utc)
    t0 = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    t1 = (now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Only example.com: the example's committed example.net rotation names private keys a
    # fresh checkout does not hold, so rotating every domain refuses (as it should).
    config = ["example.com", "--config", "zones/config.yaml", "--assume-published"]
    assert main(["dkim", "rotate", *config, "--now", t0]) == 0  # publish
    assert main(["dkim", "rotate", *config, "--now", t1]) == 0  # activate
    snapshot = example / "before"
    shutil.copytree(KEYS, snapshot / "keys")
    old_state = STATE.read_text()
    # A period (90d) after the activation, less publish_ahead: new keys are published
    # (generated into the keystore) and the state rewritten.
    later = (now + timedelta(days=3 + 89)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def reset() -> None:
        shutil.rmtree(KEYS, ignore_errors=True)
        shutil.copytree(snapshot / "keys", KEYS)
        STATE.write_text(old_state)

    def check(outcome: Outcome) -> None:
        keys = complete_keys()
        text = STATE.read_text()
        if text == old_state:
            return
        state = load_state(STATE, "zones/mail")  # a whole new file: parses, trailer and all
        mine = [key for key in state.keys if key.domain == "example.com"]
        assert mine
        for key in mine:  # and every key it names is stored, the same key
            assert keys[f"{key.domain}/{key.selector}.pem"] == key.p

    stats = torture(
        cli("dkim", "rotate", *config, "--now", later),
        runs=RUNS,
        kills=KILLS,
        reset=reset,
        check=check,
        cwd=example,
    )
    report("dkim rotate", stats)
    assert stats.killed >= KILLS, stats
    assert STATE.read_text() != old_state
    assert Keystore(KEYS).selectors("example.com")


def published_keys() -> dict[str, str]:
    """name -> p= of every DKIM TXT record in the written zone files."""
    out = {}
    for path in Path("zones/output").glob("*.zone") if Path("zones/output").exists() else []:
        zone = path.name[: -len(".zone")]
        try:
            z = dns.zone.from_file(str(path), zone, relativize=False, check_origin=False)
        except dns.exception.DNSException:
            continue  # a zone file half written by the target: not ours to make atomic
        for name, _ttl, rdata in z.iterate_rdatas("TXT"):
            text = b"".join(rdata.strings).decode()
            p = text.split("p=", 1)[1].strip() if "p=" in text else ""
            if "._domainkey." in name.to_text() and p:  # not the parked domain's revoked *
                out[name.to_text().rstrip(".")] = p
    return out


# Keys the processor generates: not example.net's pasted provider key, nor its rotating
# keys (published from the committed zones/dkim-state.yaml; their private keys are elsewhere).
OWN_SELECTORS = {
    "relay2026a._domainkey.example.com",
    "relay2026r._domainkey.example.com",
    "mx2026._domainkey.shop.example",
    "mx2026r._domainkey.shop.example",
}


def test_octodns_sync_doit_killed_at_random_points(example: Path) -> None:
    def reset() -> None:
        shutil.rmtree(KEYS, ignore_errors=True)
        shutil.rmtree("zones/output", ignore_errors=True)
        os.makedirs("zones/output")

    def check(outcome: Outcome) -> None:
        keys = complete_keys()
        # Never a published key without its private key: keys are written before apply.
        for name, p in published_keys().items():
            if name not in OWN_SELECTORS:
                continue
            selector, _, domain = name.partition("._domainkey.")
            assert keys.get(f"{domain}/{selector}.pem") == p, name

    stats = torture(
        octodns_sync("--config-file", "zones/config.yaml", "--doit"),
        runs=RUNS,
        kills=KILLS,
        reset=reset,
        check=check,
        cwd=example,
    )
    report("octodns-sync --doit", stats)
    assert stats.killed >= KILLS, stats
    assert OWN_SELECTORS <= set(published_keys()) and len(complete_keys()) == len(OWN_SELECTORS)
