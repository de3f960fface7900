"""Size rules: the §3.4 split, and that no string over 255 octets reaches the
wire unsplit when octoDNS publishes a long SPF record (checked on PowerDNS)."""

from __future__ import annotations

from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import pytest
from octodns.record import Record
from octodns.zone import Zone

from octodns_mailauth.records.base import escape_txt
from octodns_mailauth.records.spf import parse
from octodns_mailauth.spf.size import SIZE_GUIDELINE, answer_size, split_record

TERMS = [f"ip4:198.51.{i}.0/24" for i in range(60)]


def test_short_record_is_not_split() -> None:
    split = split_record("example.com", TERMS[:3], "-all")
    assert split.records == [("example.com", "v=spf1 " + " ".join(TERMS[:3]) + " -all")]
    assert split.extra_lookups == 0


def test_split_fits_every_name_and_keeps_every_term_in_order() -> None:
    split = split_record("example.com", TERMS, "~all", others_size=100)
    names = [n for n, _ in split.records]
    assert names == ["example.com"] + [f"_spf{i}.example.com" for i in range(1, len(names))]
    for i, (name, value) in enumerate(split.records):
        budget = SIZE_GUIDELINE - (100 if i == 0 else 0)
        assert answer_size(name, [value]) <= budget
        parse(value)  # each one is a valid record
        if i + 1 < len(names):
            assert f"include:{names[i + 1]}" in value
    assert split.records[0][1].endswith(" ~all")
    assert not any(v.endswith("all") for _, v in split.records[1:])  # chain links: no all
    listed = [str(m) for _, v in split.records for m in parse(v).mechanisms if m.name == "ip4"]
    assert listed == TERMS


@pytest.mark.pdns
def test_long_txt_is_split_into_255_octet_strings_on_the_wire(pdns: Any) -> None:
    name = "long-spf.test."
    pdns.create_zone(name)
    value = "v=spf1 " + " ".join(TERMS[:25]) + " -all"
    assert len(value) > 255
    provider = pdns.octodns_provider()
    zone = Zone(name, [])
    zone.add_record(
        Record.new(zone, "", {"type": "TXT", "ttl": 60, "values": [escape_txt(value)]})
    )
    plan = provider.plan(zone)
    assert plan is not None
    provider.apply(plan)
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    answer = dns.query.tcp(query, pdns.host, port=pdns.dns_port, timeout=3)
    (rrset,) = answer.answer
    (rdata,) = list(rrset)
    assert len(rdata.strings) >= 2
    assert all(len(s) <= 255 for s in rdata.strings)
    assert b"".join(rdata.strings).decode() == value  # joined without spaces (§3.3)


def test_anchored_names_the_domain_only_for_bare_a_mx_ptr() -> None:
    from octodns_mailauth.spf.size import anchored

    assert anchored("a", "example.com") == "a:example.com"
    assert anchored("-mx/24//64", "example.com") == "-mx:example.com/24//64"
    assert anchored("~ptr", "example.com") == "~ptr:example.com"
    for kept in ("a:mail.example.net", "include:x.example", "ip4:192.0.2.1", "exists:%{i}.x"):
        assert anchored(kept, "example.com") == kept
