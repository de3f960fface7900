"""ZoneReads: a compile's result is reused for another zone view only when that
view answers every read the compile made as the first one did."""

from __future__ import annotations

from octodns_mailauth.zoneview import ZoneReads

A = ("www.example.com", "A")
TXT = ("example.com", "TXT")
VIEW = {A: ("192.0.2.1",), TXT: ("v=spf1 -all",), ("mail.example.com", "MX"): ("10 mx.",)}


def test_nothing_read_agrees_with_any_view() -> None:
    reads = ZoneReads(VIEW)
    assert reads.agrees(VIEW) and reads.agrees({}) and reads.agrees(None)


def test_a_point_read_holds_its_value_and_its_absence() -> None:
    reads = ZoneReads(VIEW)
    assert reads.get(A) == ("192.0.2.1",)
    assert (("nope.example.com", "A") in reads) is False
    assert reads.agrees({**VIEW, ("other.example.com", "A"): ("192.0.2.9",)})
    assert not reads.agrees({**VIEW, A: ("192.0.2.2",)})  # another value
    assert not reads.agrees({TXT: VIEW[TXT]})  # the record is gone
    assert not reads.agrees({**VIEW, ("nope.example.com", "A"): ("192.0.2.3",)})  # now there


def test_emptiness_is_a_read() -> None:
    reads = ZoneReads({})
    assert not reads  # "compiled without the zone" paths ask this
    assert reads.agrees(None) and reads.agrees({})
    assert not reads.agrees(VIEW)


def test_at_and_under_hold_what_they_listed() -> None:
    reads = ZoneReads(VIEW)
    assert reads.at("www.example.com") == {"A": ("192.0.2.1",)}
    assert reads.under("example.com", "TXT") == {"example.com": ("v=spf1 -all",)}
    unrelated = {**VIEW, ("www.example.net", "TXT"): ("x",), ("mail.example.com", "A"): ("1",)}
    assert reads.agrees(unrelated)
    assert not reads.agrees({**VIEW, ("www.example.com", "AAAA"): ("2001:db8::1",)})
    assert not reads.agrees({**VIEW, ("sub.example.com", "TXT"): ("v=spf1 -all",)})


def test_iterating_reads_the_whole_view() -> None:
    reads = ZoneReads(VIEW)
    assert sorted(reads) == sorted(VIEW)
    assert reads.agrees(dict(VIEW))
    assert not reads.agrees({**VIEW, ("x.example.org", "A"): ("1",)})
