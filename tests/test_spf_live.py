"""The live dnspython resolver against the loopback PowerDNS: answers, errors,
each (name, type) asked once, prefetch in parallel, and refresh end to end."""

from __future__ import annotations

import functools
import socket
from pathlib import Path

import dns.message
import pytest
from spf_realworld import server_queries

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import walk_dns
from octodns_mailauth.dns.live import EDNS_PAYLOAD, LiveResolver, parse_nameserver, query_wire
from octodns_mailauth.dns.lockfile import LockResolver, SpfLock
from octodns_mailauth.dns.resolver import DnsError
from octodns_mailauth.policy.loader import parse_policy
from octodns_mailauth.spf.lookups import analyze
from octodns_mailauth.spf.refresh import refresh_lock

ZONE = "live-spf.test."


@pytest.fixture(scope="module")
def served(pdns):  # type: ignore[no-untyped-def]
    if ZONE.rstrip(".") + "." not in pdns.zone_names():
        pdns.create_zone(ZONE)
    rrsets = [
        ("esp.live-spf.test.", "TXT", ['"v=spf1 include:leaf.live-spf.test. ~all"']),
        ("leaf.live-spf.test.", "TXT", ['"v=spf1 ip4:192.0.2.0/24 " "ip6:2001:db8::/32 ~all"']),
        ("host.live-spf.test.", "A", ["192.0.2.7"]),
        ("host.live-spf.test.", "MX", ["10 host.live-spf.test."]),
    ]
    pdns.set_rrsets(ZONE, rrsets)
    return pdns


def live(pdns, **kw) -> LiveResolver:  # type: ignore[no-untyped-def]
    return LiveResolver([f"{pdns.host}:{pdns.dns_port}"], **kw)


@pytest.mark.pdns
def test_answers_as_plain_text(served) -> None:  # type: ignore[no-untyped-def]
    res = live(served)
    # Two character-strings are joined without a space (RFC 7208 §3.3).
    assert res.query("leaf.live-spf.test", "TXT") == [
        "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all"
    ]
    assert res.query("HOST.live-spf.test.", "a") == ["192.0.2.7"]
    assert res.query("host.live-spf.test", "MX") == ["10 host.live-spf.test."]
    assert res.query("host.live-spf.test", "AAAA") == []  # NODATA
    with pytest.raises(DnsError) as nx:
        res.query("nope.live-spf.test", "TXT")
    assert nx.value.kind == "nxdomain"
    with pytest.raises(DnsError) as refused:
        res.query("outside-every-zone.invalid", "TXT")  # PowerDNS refuses: not authoritative
    assert refused.value.kind in ("refused", "servfail")


@pytest.mark.pdns
def test_each_pair_is_asked_once_and_prefetch_is_concurrent(served) -> None:  # type: ignore[no-untyped-def]
    res = live(served)
    before = server_queries(served)
    pairs = [
        ("esp.live-spf.test", "TXT"),
        ("leaf.live-spf.test", "TXT"),
        ("nope.live-spf.test", "TXT"),
    ]
    res.prefetch(pairs * 3)
    for _ in range(3):
        tree = analyze("esp.live-spf.test", res)
        assert tree.total == 1 and not tree.permerrors()
        with pytest.raises(DnsError):
            res.query("nope.live-spf.test", "TXT")  # negative answers are cached too
    assert res.queries_sent == 3
    assert server_queries(served) - before == 3  # counted by the server itself
    res.close()


@pytest.mark.pdns
def test_timeout_is_a_clear_dns_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never answers
        port = silent.getsockname()[1]
        res = LiveResolver([f"127.0.0.1:{port}"], timeout=0.2, retries=1)
        with pytest.raises(DnsError) as info:
            res.query("example.com", "TXT")
    assert info.value.kind == "timeout"
    assert res.queries_sent == 2  # one retry


def test_parse_nameserver() -> None:
    assert parse_nameserver("127.0.0.1:5300") == ("127.0.0.1", 5300)
    assert parse_nameserver("192.0.2.53") == ("192.0.2.53", 53)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("2001:db8::53") == ("2001:db8::53", 53)


@pytest.mark.pdns
def test_refresh_from_live_dns_then_offline(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lp = parse_policy(
        "senders:\n  - {name: esp, include: [esp.live-spf.test], flatten: true}\n",
        "mail/example.com.yaml",
        "example.com",
    )
    path = tmp_path / "spf-lock.json"
    diff = refresh_lock(functools.partial(walk_dns, [lp], load_catalog([])), path, live(served))
    assert {c.name for c in diff.changes} == {"esp.live-spf.test", "leaf.live-spf.test"}
    offline = LockResolver(SpfLock.load(path))
    tree = analyze("example.com", offline, "v=spf1 include:esp.live-spf.test -all")
    assert tree.total == 2 and not offline.missing


@pytest.mark.parametrize(
    "name, rdtype",
    [
        ("_spf.google.com", "TXT"),
        ("example.com", "MX"),
        ("mail.example.com", "A"),
        ("mail.example.com", "AAAA"),
        ("www.example.com", "CNAME"),
        ("spf.protection.outlook.com.", "TXT"),  # already absolute
        ("a\\032b.example", "TXT"),  # an escaped octet in a label
        ("bücher.example", "TXT"),  # IDNA, as dnspython encodes it
        ("x" * 63 + ".example", "TXT"),  # the longest label
    ],
)
def test_query_wire_is_what_dnspython_renders(name: str, rdtype: str) -> None:
    for qid in (0, 1, 0x1234, 0xFFFF):
        query = dns.message.make_query(name, rdtype, use_edns=0, payload=EDNS_PAYLOAD, id=qid)
        assert query_wire(qid, name, rdtype) == query.to_wire()
