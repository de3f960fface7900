"""`spf refresh` against bad resolvers (issue 17): a vendor include on the loopback
PowerDNS, then a filtering resolver that answers NXDOMAIN (or nothing) for every
name, a vendor record that vanishes or widens to half the Internet, a lock that
is cut short or not UTF-8, a deadline for the whole command, and SIGKILL at
random points."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_run import cli
from crash import torture
from fake_dns import FakeDnsServer
from pdns_fixture import txt_content
from static_resolver import StaticResolver

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.cli import main
from octodns_mailauth.compile import walk_dns
from octodns_mailauth.dns.live import LiveResolver
from octodns_mailauth.dns.lockfile import SpfLock
from octodns_mailauth.dns.resolver import DnsError, Resolver
from octodns_mailauth.policy.loader import parse_policy
from octodns_mailauth.spf.refresh import refresh_lock

ZONE = "refresh-vendor.test"
SPF = f"spf.{ZONE}"
NESTED = f"_n.{ZONE}"
POLICY = f"""\
senders:
  - name: crm
    include: [{SPF}]
spf:
  all: fail
dmarc:
  policy: none
  rua: [mailto:dmarc@mailer.example]
"""
LOCK = Path("mail/spf-lock.json")


def set_txt(pdns: Any, name: str, *values: str) -> None:
    """Replace the TXT RRset at `name`; no values deletes it."""
    pdns.set_rrsets(ZONE, [(name, "TXT", [txt_content(v) for v in values] or None)])


@pytest.fixture
def vendor(pdns: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A vendor include (with a nested include) served by PowerDNS, a policy using it,
    and a first, clean refresh: yields the server's address."""
    if f"{ZONE}." in pdns.zone_names():
        pdns.delete_zone(ZONE)
    pdns.create_zone(ZONE)
    set_txt(pdns, SPF, f"v=spf1 ip4:192.0.2.0/24 include:{NESTED} -all")
    set_txt(pdns, NESTED, "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/48 -all")
    monkeypatch.chdir(tmp_path)
    Path("mail").mkdir()
    Path("mail/mailer.example.yaml").write_text(POLICY)
    ns = f"{pdns.host}:{pdns.dns_port}"
    first = cli("spf", "refresh", "--policies", "mail", "--nameserver", ns)
    assert first.returncode == 0, first.stdout + first.stderr
    assert set(json.loads(LOCK.read_text())["answers"]) == {SPF, NESTED}
    yield ns
    pdns.delete_zone(ZONE)


def refresh(ns: str, *flags: str) -> Any:
    return cli("spf", "refresh", "--policies", "mail", "--nameserver", ns, *flags)


# --- a resolver that filters -----------------------------------------------------------------


@pytest.mark.pdns
@pytest.mark.parametrize(("mode", "now"), [("nxdomain", "NXDOMAIN"), ("nodata", "no SPF record")])
def test_filtering_resolver_keeps_the_lock_and_fails(vendor: str, mode: str, now: str) -> None:
    before = LOCK.read_bytes()
    with FakeDnsServer(mode) as captive:
        proc = refresh(captive.address)
        assert captive.received >= 1
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert LOCK.read_bytes() == before  # not one byte rewritten
    assert f"{SPF} TXT: answered before, now {now}; kept the old answer" in proc.stdout
    assert "--accept-gone" in proc.stdout and "left unchanged" in proc.stdout
    assert "1 name(s) that answered before did not" in proc.stderr
    # The nested include was never asked (its parent did not answer): kept too.
    assert NESTED in proc.stdout

    # Told that the vendor is really gone, the refresh records it.
    with FakeDnsServer(mode) as captive:
        proc = refresh(captive.address, "--accept-gone")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answers = json.loads(LOCK.read_text())["answers"]
    assert set(answers) == {SPF}
    assert (
        answers[SPF].get("nxdomain") is True if mode == "nxdomain" else answers[SPF]["TXT"] == []
    )


@pytest.mark.pdns
def test_one_vanished_name_keeps_its_old_answer_the_rest_is_updated(
    vendor: str, pdns: Any
) -> None:
    old = SpfLock.load(LOCK)
    set_txt(pdns, SPF, f"v=spf1 ip4:192.0.2.0/25 include:{NESTED} -all")
    set_txt(pdns, NESTED, "google-site-verification=abc")  # no SPF record any more
    proc = refresh(vendor)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{NESTED} TXT: answered before, now no SPF record" in proc.stdout
    lock = SpfLock.load(LOCK)
    assert lock.entries[SPF].answers["TXT"] == [f"v=spf1 ip4:192.0.2.0/25 include:{NESTED} -all"]
    assert lock.entries[NESTED].answers == old.entries[NESTED].answers
    assert lock.entries[NESTED].resolved == old.entries[NESTED].resolved
    assert lock.refreshed == old.refreshed  # the refresh was not complete

    set_txt(pdns, NESTED)  # now the name does not exist at all
    proc = refresh(vendor)
    assert proc.returncode == 2 and f"{NESTED} TXT: answered before, now NXDOMAIN" in proc.stdout
    assert SpfLock.load(LOCK).entries[NESTED].answers == old.entries[NESTED].answers


# --- a delegated DKIM target whose key vanishes: the same guard --------------------------------

K2, K3 = f"k2.dkim.{ZONE}", f"k3.dkim.{ZONE}"
DKIM_POLICY = POLICY.replace(
    "spf:\n",
    f"  - name: campaigns\n    provider: mailchimp\n    dkim1_target: {K2}\n"
    f"    dkim2_target: {K3}\nspf:\n",
    1,
)


@pytest.fixture
def dkim_vendor(vendor: str, pdns: Any) -> str:
    """The vendor also holds the keys behind two DKIM CNAMEs of the policy; a clean
    refresh records them."""
    from octodns_mailauth.dkim.keys import generate_private_key, public_key_b64
    from octodns_mailauth.records.dkim import dkim_txt_value

    for target in (K2, K3):
        key = public_key_b64(generate_private_key("ed25519"))
        set_txt(pdns, target, dkim_txt_value("ed25519", key))
    Path("mail/mailer.example.yaml").write_text(DKIM_POLICY)
    proc = refresh(vendor)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answers = json.loads(LOCK.read_text())["answers"]
    assert set(answers) == {SPF, NESTED, K2, K3}
    assert all(answers[t]["TXT"][0].startswith("v=DKIM1; k=ed25519; p=") for t in (K2, K3))
    return vendor


@pytest.mark.pdns
def test_a_vanished_dkim_key_keeps_its_old_answer_until_accepted(
    dkim_vendor: str, pdns: Any
) -> None:
    old = SpfLock.load(LOCK)
    set_txt(pdns, K2)  # the vendor's key record is gone: NXDOMAIN
    set_txt(pdns, K3, "unrelated=text")  # a TXT that is no DKIM key record
    proc = refresh(dkim_vendor)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{K2} TXT: answered before, now NXDOMAIN; kept the old answer" in proc.stdout
    assert f"{K3} TXT: answered before, now no DKIM key record; kept the old answer" in proc.stdout
    assert "--accept-gone" in proc.stdout
    assert "2 name(s) that answered before did not" in proc.stderr
    lock = SpfLock.load(LOCK)
    for target in (K2, K3):  # the old keys, with their old time
        assert lock.entries[target].answers == old.entries[target].answers
        assert lock.entries[target].resolved == old.entries[target].resolved
    assert lock.refreshed == old.refreshed
    assert cli("validate", "--policies", "mail").returncode == 0
    assert "no DKIM key" not in cli("validate", "--policies", "mail").stdout

    # Told that the keys are really gone, the refresh records it, and validate
    # then says the selectors sign nothing that passes.
    proc = refresh(dkim_vendor, "--accept-gone")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lock = SpfLock.load(LOCK)
    assert lock.entries[K2].nxdomain and lock.entries[K3].answers["TXT"] == ["unrelated=text"]
    out = cli("validate", "--policies", "mail").stdout
    assert f"points at {K2}, which has no DKIM key (NXDOMAIN)" in out, out
    assert f"points at {K3}, which has no DKIM key" in out, out


@pytest.mark.pdns
def test_a_revoked_dkim_key_is_an_answer_not_a_gone_name(dkim_vendor: str, pdns: Any) -> None:
    """`p=` empty is the vendor saying the key is revoked (RFC 6376 §3.6.1), not
    what filtering DNS makes up: recorded, and validate warns."""
    set_txt(pdns, K2, "v=DKIM1; k=ed25519; p=")
    proc = refresh(dkim_vendor)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"~ {K2}" in proc.stdout
    assert SpfLock.load(LOCK).entries[K2].answers["TXT"] == ["v=DKIM1; k=ed25519; p="]
    out = cli("validate", "--policies", "mail").stdout
    assert f"points at {K2}, which has no DKIM key" in out and "revoked" in out, out


@pytest.mark.pdns
@pytest.mark.parametrize("mode", ["nxdomain", "nodata"])
def test_a_filtering_resolver_loses_no_dkim_key(dkim_vendor: str, mode: str) -> None:
    before = LOCK.read_bytes()
    with FakeDnsServer(mode) as captive:
        proc = refresh(captive.address)
        assert captive.received >= 3  # the include and both targets were asked
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert LOCK.read_bytes() == before
    now = "NXDOMAIN" if mode == "nxdomain" else "no DKIM key record"
    for target in (K2, K3):
        assert f"{target} TXT: answered before, now {now}; kept the old answer" in proc.stdout
    assert "3 name(s) that answered before did not" in proc.stderr


# --- a vendor that widens --------------------------------------------------------------------


@pytest.mark.pdns
def test_widening_is_held_for_review_until_acknowledged(vendor: str, pdns: Any) -> None:
    before = LOCK.read_bytes()
    set_txt(pdns, NESTED, "v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 ip6:2001:db8::/48 -all")
    proc = refresh(vendor)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert LOCK.read_bytes() == before
    assert f"{NESTED}: flattened, it would now authorise 4,294,967,296 IPv4" in proc.stdout
    assert f"{SPF}: flattened" in proc.stdout  # the include that leads there too
    assert "held for review" in proc.stdout and "--accept-widening" in proc.stderr
    assert "+ ip4:0.0.0.0/1" in proc.stdout  # the diff is shown for the review

    proc = refresh(vendor, "--accept-widening")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ip4:0.0.0.0/1" in SpfLock.load(LOCK).entries[NESTED].answers["TXT"][0]


def test_ordinary_growth_is_not_held(tmp_path: Path) -> None:
    """A vendor adding a /20 to a few /24s passes; a jump to a /8 does not."""
    walk = functools.partial(
        walk_dns,
        [parse_policy(POLICY, "mail/mailer.example.yaml", "mailer.example")],
        load_catalog([]),
    )
    path = tmp_path / "spf-lock.json"

    def upstream(nested: str) -> StaticResolver:
        return StaticResolver(
            {(SPF, "TXT"): [f"v=spf1 include:{NESTED} -all"], (NESTED, "TXT"): [nested]}
        )

    refresh_lock(walk, path, upstream("v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 -all"))
    grown = "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 ip4:203.0.112.0/20 -all"
    diff = refresh_lock(walk, path, upstream(grown))
    assert diff.written and not diff.widened
    diff = refresh_lock(walk, path, upstream(grown.replace("-all", "ip4:10.0.0.0/8 -all")))
    assert not diff.written and len(diff.widened) == 2


# --- a lock that cannot be read --------------------------------------------------------------

BROKEN = {
    "cut short": lambda good: good[: len(good) // 2],
    "not UTF-8": lambda good: good.replace(b"v=spf1", b"v=spf1 \xff\xfe"),
    "empty": lambda good: b"",
    "not a lock": lambda good: b"[1, 2, 3]\n",
    "a newer version": lambda good: good.replace(b'"version": 2', b'"version": 3', 1),
}


@pytest.mark.pdns
@pytest.mark.parametrize("damage", sorted(BROKEN))
def test_a_broken_lock_is_a_clear_error_and_can_be_rebuilt(vendor: str, damage: str) -> None:
    LOCK.write_bytes(BROKEN[damage](LOCK.read_bytes()))
    broken = LOCK.read_bytes()
    for args in (("validate", "--policies", "mail"), ("spf", "refresh", "--policies", "mail")):
        proc = cli(*args, "--nameserver", vendor) if "refresh" in args else cli(*args)
        assert proc.returncode == 2, (args, proc.stdout + proc.stderr)
        assert "mail/spf-lock.json" in proc.stderr
        # The fix it names is one that works: refresh itself refuses without --rebuild.
        assert "`octodns-mailauth lock refresh --rebuild`" in proc.stderr, proc.stderr
        assert LOCK.read_bytes() == broken
    proc = refresh(vendor, "--rebuild")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rebuilt from DNS; the old file was unreadable" in proc.stdout
    assert set(SpfLock.load(LOCK).entries) == {SPF, NESTED}
    assert cli("validate", "--policies", "mail").returncode == 0


# --- a deadline for the whole command, policies concurrently -----------------------------


def test_the_deadline_bounds_every_query() -> None:
    with FakeDnsServer("silent") as dead:
        resolver = LiveResolver([dead.address], timeout=5, deadline=time.monotonic() - 1)
        with pytest.raises(DnsError) as info:
            resolver.query("vendor.example", "TXT")
        assert info.value.kind == "timeout" and "deadline passed" in str(info.value)
        assert resolver.queries_sent == 0 and dead.received == 0


def test_policies_are_walked_concurrently() -> None:
    """Each policy's first query waits until every policy has asked one: walked one
    after another, the first would wait alone and the barrier would break."""
    policies = [
        parse_policy(
            f"senders:\n  - {{name: v, include: [spf.vendor{i}.example]}}\n",
            f"mail/d{i}.example.yaml",
            f"d{i}.example",
        )
        for i in range(6)
    ]
    barrier = threading.Barrier(len(policies), timeout=30)

    class Meeting(Resolver):
        def query(self, name: str, rdtype: str) -> list[str]:
            barrier.wait()
            return ["v=spf1 -all"]

    own = walk_dns(policies, load_catalog([]), Meeting())
    assert own == {f"d{i}.example" for i in range(6)} and not barrier.broken


@pytest.mark.pdns
def test_refresh_against_a_dead_server_stops_at_the_deadline(vendor: str) -> None:
    """Twelve policies with their own vendors behind a server that never answers:
    every lookup fails as a timeout within the one deadline, and the lock is kept."""
    for i in range(12):
        Path(f"mail/d{i}.example.yaml").write_text(
            f"senders:\n  - {{name: v, include: [spf.vendor{i}.example]}}\n"
        )
    before = LOCK.read_bytes()
    with FakeDnsServer("silent") as dead:
        proc = refresh(dead.address, "--timeout", "1")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "13 lookup(s) failed" in proc.stderr and "deadline 1 s" in proc.stderr
    assert LOCK.read_bytes() == before


# --- crash safety ----------------------------------------------------------------------------


@pytest.mark.pdns
def test_refresh_killed_at_random_points_leaves_old_or_new_lock(vendor: str, pdns: Any) -> None:
    """SIGKILL during `spf refresh` (forked, at random file-system calls and random
    times): the lock is always the old or the new content, never partial, and a
    rerun completes."""
    old_bytes = LOCK.read_bytes()
    old = SpfLock.load(LOCK)
    set_txt(pdns, NESTED, "v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/24 -all")
    args = ["spf", "refresh", "--policies", "mail", "--nameserver", vendor]
    news: list[dict[str, Any]] = []

    def answers(lock: SpfLock) -> dict[str, Any]:
        return {n: (e.nxdomain, e.answers) for n, e in lock.entries.items()}

    def check(_outcome: Any) -> None:
        lock = SpfLock.load(LOCK)  # whole and parsable, or this raises
        got = answers(lock)
        assert got in (answers(old), *news), got
        if got != answers(old):
            assert "ip4:203.0.113.0/24" in lock.entries[NESTED].answers["TXT"][0]

    def ok(outcome: Any) -> None:
        assert outcome.returncode == 0, outcome.stdout
        news.append(answers(SpfLock.load(LOCK)))

    stats = torture(
        lambda: main(args),
        runs=150,
        kills=50,  # stop at 50 kills: a delay kill under load often lands after the end
        reset=lambda: LOCK.write_bytes(old_bytes),
        check=check,
        ok=ok,
        cwd=Path.cwd(),
    )
    assert stats.killed >= 50, stats
    assert stats.by_io_call >= 25 and stats.by_delay >= 5, stats  # both kinds of kill
    assert len({json.dumps(n, sort_keys=True) for n in news}) == 1  # one new content
