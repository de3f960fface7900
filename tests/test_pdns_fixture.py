"""Prove the loopback PowerDNS fixture works end to end with octoDNS.

The ``pdns`` fixture comes from tests/conftest.py (``from pdns_fixture import
pdns``); it is session-scoped, so every test uses its own zone name.
"""

from __future__ import annotations

import socket
from pathlib import Path

import dns.rdatatype
import pytest
from octodns.record import Record
from octodns.zone import Zone
from octodns_powerdns import PowerDnsProvider
from pdns_fixture import PdnsServer, require_pdns

pytestmark = pytest.mark.pdns


def _dkim_like_value(length: int) -> str:
    """An octoDNS TXT value (``;`` escaped as ``\\;``) of ``length`` characters."""
    head = "v=DKIM1\\; k=rsa\\; p="
    # Deterministic, non-repeating-looking body so a misplaced chunk boundary
    # or a dropped/duplicated slice changes the joined result.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = "".join(alphabet[(i * 7 + i // 64) % 64] for i in range(length - len(head)))
    return head + body


def test_api_and_dns_answer(pdns: PdnsServer) -> None:
    server = pdns.api("GET", "")
    assert server["daemon_type"] == "authoritative"
    assert pdns.url == f"http://127.0.0.1:{pdns.api_port}"

    zone = pdns.create_zone("fixture-smoke.test")
    assert zone == "fixture-smoke.test."
    assert zone in pdns.zone_names()

    resolver = pdns.resolver()
    soa = resolver.resolve(zone, "SOA")
    assert soa.rrset is not None
    assert soa.rrset[0].mname.to_text() == f"ns1.{zone}"
    ns = resolver.resolve(zone, "NS")
    assert ns.rrset is not None
    assert [r.target.to_text() for r in ns.rrset] == [f"ns1.{zone}"]


def test_octodns_push_long_txt_and_mx(pdns: PdnsServer) -> None:
    zone_name = pdns.create_zone("fixture-octodns.test")
    provider = PowerDnsProvider("pdns", **pdns.octodns_provider_config())

    value = _dkim_like_value(410)
    assert len(value) == 410
    desired = Zone(zone_name, [])
    desired.add_record(
        Record.new(desired, "sel._domainkey", {"type": "TXT", "ttl": 300, "value": value})
    )
    desired.add_record(
        Record.new(
            desired,
            "",
            {
                "type": "MX",
                "ttl": 300,
                "values": [
                    {"preference": 10, "exchange": "mx1.example.net."},
                    {"preference": 20, "exchange": "mx2.example.net."},
                ],
            },
        )
    )

    plan = provider.plan(desired)
    assert plan is not None
    assert sorted(c.record._type for c in plan.changes) == ["MX", "TXT"]
    provider.apply(plan)

    resolver = pdns.resolver()
    txt = resolver.resolve(f"sel._domainkey.{zone_name}", "TXT")
    assert txt.rrset is not None and len(txt.rrset) == 1
    strings = txt.rrset[0].strings
    # One 410-char value cannot be a single character-string: the server
    # must split it, and every piece must fit the 255-octet limit.
    assert len(strings) >= 2
    assert all(len(s) <= 255 for s in strings)
    # On the wire the octoDNS escape `\;` is just `;`.
    assert b"".join(strings).decode() == value.replace("\\;", ";")

    mx = resolver.resolve(zone_name, "MX")
    assert mx.rrset is not None
    assert sorted((r.preference, r.exchange.to_text()) for r in mx.rrset) == [
        (10, "mx1.example.net."),
        (20, "mx2.example.net."),
    ]

    # Reading the zone back through the API must round-trip exactly, or
    # every octodns-sync would rewrite the record.
    assert provider.plan(desired) is None


def test_standalone_server_lifecycle(tmp_path: Path) -> None:
    # The class must work without pytest (benchmarks) and release its ports.
    require_pdns()
    with PdnsServer(tmp_path / "pdns") as server:
        assert server.running
        assert server.startup_seconds is not None
        dns_port = server.dns_port
        answer = server.resolver().resolve(server.create_zone("standalone.test"), "SOA")
        assert answer.rrset is not None
        assert answer.rrset.rdtype == dns.rdatatype.SOA
    assert not server.running
    # Caller-owned workdir is kept (log for debugging), ports are free again.
    assert (tmp_path / "pdns" / "pdns.log").is_file()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", dns_port))
