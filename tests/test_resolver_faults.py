"""DNS failures as users meet them: the live resolver against a real
PowerDNS (NXDOMAIN, include loops, several SPF records, a CNAME chain to
nowhere) and against a loopback server that answers SERVFAIL or nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fake_dns import FakeDnsServer
from pdns_fixture import txt_content

from octodns_mailauth.dns.live import LiveResolver
from octodns_mailauth.dns.resolver import DnsError
from octodns_mailauth.findings import Location
from octodns_mailauth.spf.lookups import analyze

ZONE = "faults.example"


def messages(tree: Any) -> str:
    return "\n".join(f.format() for f in tree.findings(Location("mail/x.yaml", 3, "senders")))


@pytest.fixture(scope="module")
def served(pdns: Any) -> Iterator[LiveResolver]:
    if f"{ZONE}." in pdns.zone_names():
        pdns.delete_zone(ZONE)
    pdns.create_zone(ZONE)

    def txt(name: str, *values: str) -> tuple[str, str, list[str]]:
        return (f"{name}.{ZONE}", "TXT", [txt_content(v) for v in values])

    def cname(name: str, target: str) -> tuple[str, str, list[str]]:
        return (f"{name}.{ZONE}", "CNAME", [f"{target}.{ZONE}."])

    rrsets = [
        txt("loop-a", f"v=spf1 include:loop-b.{ZONE} -all"),
        txt("loop-b", f"v=spf1 include:loop-a.{ZONE} -all"),
        txt("two", "v=spf1 ip4:192.0.2.1 -all", "v=spf1 ip4:192.0.2.2 -all"),
        txt("uses-two", f"v=spf1 include:two.{ZONE} -all"),
        txt("uses-missing", f"v=spf1 include:missing.{ZONE} -all"),
        cname("chain", "chain2"),
        cname("chain2", "nowhere"),
        txt("uses-chain", f"v=spf1 include:chain.{ZONE} -all"),
        txt("voids", f"v=spf1 a:n1.{ZONE} a:n2.{ZONE} a:n3.{ZONE} -all"),
    ]
    pdns.set_rrsets(ZONE, rrsets)
    with LiveResolver([f"{pdns.host}:{pdns.dns_port}"], timeout=1.0, retries=1) as resolver:
        yield resolver


pytestmark = pytest.mark.pdns


def test_nxdomain_include(served: LiveResolver) -> None:
    tree = analyze(f"uses-missing.{ZONE}", served)
    assert tree.permerrors()
    text = messages(tree)
    assert f"include:missing.{ZONE}" in text and "RFC 7208" in text
    with pytest.raises(DnsError, match="nxdomain"):
        served.query(f"missing.{ZONE}", "TXT")


def test_include_loop(served: LiveResolver) -> None:
    tree = analyze(f"loop-a.{ZONE}", served)
    assert tree.permerrors()
    assert "loop" in messages(tree).lower()


def test_several_spf_records_at_one_name(served: LiveResolver) -> None:
    tree = analyze(f"uses-two.{ZONE}", served)
    assert tree.permerrors()
    text = messages(tree)
    assert "RFC 7208 §4.5" in text, text


def test_cname_chain_to_nowhere(served: LiveResolver) -> None:
    with pytest.raises(DnsError) as info:
        served.query(f"chain.{ZONE}", "TXT")
    assert info.value.kind == "nxdomain"
    tree = analyze(f"uses-chain.{ZONE}", served)
    assert tree.permerrors()
    assert f"chain.{ZONE}" in messages(tree)


def test_void_lookup_limit(served: LiveResolver) -> None:
    tree = analyze(f"voids.{ZONE}", served)
    assert tree.void_exceeded
    assert "void lookups" in messages(tree)


@pytest.mark.parametrize("mode, kind", [("servfail", "servfail"), ("silent", "timeout")])
def test_failing_server(mode: str, kind: str) -> None:
    with (
        FakeDnsServer(mode) as server,
        LiveResolver([f"127.0.0.1:{server.port}"], timeout=0.3, retries=1) as resolver,
    ):
        with pytest.raises(DnsError) as info:
            resolver.query("vendor.example", "TXT")
        assert info.value.kind == kind
        assert "vendor.example" in str(info.value) and kind in str(info.value)
        # Asked once plus one retry, then the answer is remembered for the run.
        assert resolver.queries_sent == 2
        with pytest.raises(DnsError):
            resolver.query("vendor.example", "TXT")
        assert resolver.queries_sent == 2
        # An include that cannot be resolved is a temporary error the user is told about.
        tree = analyze("example.test", resolver, record="v=spf1 include:vendor.example -all")
        assert not tree.permerrors()
        text = messages(tree)
        assert "vendor.example" in text and kind in text, text


def test_refused_is_not_asked_again() -> None:
    with (
        FakeDnsServer("refused") as server,
        LiveResolver([server.address], timeout=0.3, retries=2) as resolver,
    ):
        with pytest.raises(DnsError) as info:
            resolver.query("vendor.example", "TXT")
        assert info.value.kind == "refused" and "REFUSED" in str(info.value)
        assert resolver.queries_sent == 1 and server.received == 1


@pytest.mark.pdns
@pytest.mark.parametrize("mode", ["servfail", "refused", "silent"])
def test_the_next_nameserver_answers_when_the_first_fails(
    pdns: Any, served: LiveResolver, mode: str
) -> None:
    # `served` puts this module's zone in PowerDNS: with none there, no SOA to ask.
    pdns_address = f"{pdns.host}:{pdns.dns_port}"
    before = set(threading.enumerate())  # other tests' resolvers may run in this process
    with (
        FakeDnsServer(mode) as bad,
        # 3 s an attempt: a loaded machine must not turn PowerDNS's answer into a timeout.
        LiveResolver([bad.address, pdns_address], timeout=3.0, retries=0) as resolver,
    ):
        assert resolver.query(ZONE, "SOA")  # the zone's own SOA, from the second server
        assert bad.received == 1 and resolver.queries_sent == 2
    left = [t for t in set(threading.enumerate()) - before if t.name.startswith("dns")]
    assert not left  # nothing of this resolver's left running


def _ends(resolver: LiveResolver, name: str) -> BaseException | None:
    """What `resolver.query(name, "TXT")` raised, asked on a thread that must end
    within seconds (a query nobody finishes would hang the whole refresh)."""
    raised: list[BaseException | None] = []

    def ask() -> None:
        try:
            resolver.query(name, "TXT")
            raised.append(None)
        except BaseException as err:
            raised.append(err)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"query({name!r}) never returned"
    return raised[0]


def test_a_name_dns_cannot_carry_fails_the_query_not_the_resolver() -> None:
    with (
        FakeDnsServer("nodata") as server,
        LiveResolver([server.address], timeout=0.5, retries=0) as resolver,
    ):
        err = _ends(resolver, "x\\999.example")  # an escape past 255: no wire form
        assert isinstance(err, DnsError) and "cannot ask" in str(err), err
        assert server.received == 0
        # The resolver goes on answering other names.
        assert _ends(resolver, "vendor.example") is None and server.received == 1


def test_a_truncated_answer_whose_tcp_connection_closes_fails_the_query() -> None:
    with (
        FakeDnsServer("truncate") as server,
        LiveResolver([server.address], timeout=0.5, retries=0) as resolver,
    ):
        err = _ends(resolver, "vendor.example")
        assert isinstance(err, DnsError) and err.kind == "servfail", err
        assert server.received == 1 and server.tcp_accepted == 1  # asked again over TCP


def test_a_cached_failure_raised_again_keeps_no_frames() -> None:
    """The second ask of a failed name is answered from the cache with a fresh
    error: re-raising the cached one would grow its traceback on every ask and
    keep every frame it passed through (and the callers' state) alive."""

    def depth(err: BaseException) -> int:
        n, tb = 0, err.__traceback__
        while tb is not None:
            n, tb = n + 1, tb.tb_next
        return n

    with (
        FakeDnsServer("nxdomain") as server,
        LiveResolver([server.address], timeout=0.3, retries=0) as resolver,
    ):
        errors = []
        for _ in range(5):
            with pytest.raises(DnsError) as info:
                resolver.query("gone.example", "TXT")
            errors.append(info.value)
        assert server.received == 1  # asked once, then from the cache
    assert len({id(e) for e in errors}) == 5
    assert depth(errors[-1]) <= depth(errors[1])
    assert all(e.kind == "nxdomain" for e in errors)
