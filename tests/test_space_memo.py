"""The address-space check shares finished include targets between records
(SpaceMemo, as walk_dns's compiles do): every record's space must be the one a
walk of that record alone finds, whatever was walked before it -- loops, the
depth limit and names under a policy's own domain included."""

from __future__ import annotations

import random

import spf_realworld as rw
from static_resolver import StaticResolver

from octodns_mailauth.dns.resolver import DnsError
from octodns_mailauth.records.spf import select_records
from octodns_mailauth.spf.space import _MAX_DEPTH, SpaceMemo, address_space


def txt(records: dict[str, str]) -> StaticResolver:
    return StaticResolver({(n, "TXT"): [t] for n, t in records.items()})


def test_real_world_records_share_targets_and_match_fresh_walks() -> None:
    resolver = StaticResolver(rw.rrsets())
    memo = SpaceMemo()
    checked = 0
    for survey in rw.surveyed():
        domain = survey["domain"]
        try:
            record = select_records(resolver.query(domain, "TXT"))
        except DnsError:
            continue
        if record is None:
            continue
        alone = address_space(domain, record, resolver)
        assert address_space(domain, record, resolver, memo=memo) == alone, domain
        checked += 1
    assert checked > 400
    assert len(memo) > 100  # shared for real


def test_a_loop_is_cut_where_each_walk_meets_it() -> None:
    records = {
        "a.example": "v=spf1 ip4:192.0.2.1 include:b.example -all",
        "b.example": "v=spf1 ip4:192.0.2.2 include:c.example include:a.example -all",
        "c.example": "v=spf1 ip4:192.0.2.3 +all",
    }
    resolver = txt(records)
    memo = SpaceMemo()
    for start in ("a.example", "b.example", "c.example", "a.example"):
        record = f"v=spf1 include:{start} -all"
        alone = address_space("p.example", record, resolver)
        assert address_space("p.example", record, resolver, memo=memo) == alone, start
        # From inside the loop: the record's own name is on the path.
        alone = address_space(start, records[start], resolver)
        assert address_space(start, records[start], resolver, memo=memo) == alone, start
    assert "c.example" in memo and "a.example" not in memo  # a's walk met the loop


def test_a_shared_target_that_leads_back_to_the_record_is_cut_there() -> None:
    """A record about to be published at x.example (not what DNS holds there) that
    includes y.example: the walk comes back to x.example through y and stops,
    though y's shared part, walked from elsewhere, went on into x's published record."""
    resolver = txt({"y.example": "v=spf1 include:x.example -all", "x.example": "v=spf1 +all"})
    memo = SpaceMemo()
    assert address_space("p.example", "v=spf1 include:y.example", resolver, memo=memo).everyone()
    assert "y.example" in memo
    draft = "v=spf1 include:y.example -all"
    alone = address_space("x.example", draft, resolver)
    assert not alone.everyone()
    assert address_space("x.example", draft, resolver, memo=memo) == alone


def test_the_depth_limit_cuts_a_shared_target_where_a_fresh_walk_would() -> None:
    n = _MAX_DEPTH + 3
    records = {
        f"l{i}.example": f"v=spf1 ip4:10.0.{i}.0/24 include:l{i + 1}.example" for i in range(n)
    }
    records[f"l{n}.example"] = "v=spf1 ip4:10.1.0.0/16"
    resolver = txt(records)
    memo = SpaceMemo()
    # Deep first, then shallow, then deep again: each must match its fresh walk.
    for start in [n - 2, 5, 0, 3, n, 1, 0]:
        record = f"v=spf1 include:l{start}.example -all"
        alone = address_space("p.example", record, resolver)
        got = address_space("p.example", record, resolver, memo=memo)
        assert got == alone, start
    assert any(
        address_space("p.example", f"v=spf1 include:l{s}.example", resolver).written[4]
        != n + 1 - s  # l{s}..l{n - 1}'s /24s and l{n}'s /16, uncut
        for s in range(n)
    )  # the limit did cut some walks


def test_a_target_that_asked_under_an_own_domain_is_not_shared() -> None:
    records = {
        "vendor.example": "v=spf1 include:spf.own.example include:leaf.example -all",
        "spf.own.example": "v=spf1 ip4:192.0.2.0/24 -all",
        "leaf.example": "v=spf1 ip4:198.51.100.0/24 -all",
        "new.example": "v=spf1 +all",
    }

    class Owning(StaticResolver):
        """Answers own.example's names from its zone, as its compile does."""

        def query(self, name: str, rdtype: str) -> list[str]:
            if name == "spf.own.example" and rdtype == "TXT":
                return ["v=spf1 include:new.example -all"]
            return super().query(name, rdtype)

    shared = txt(records)
    owning = Owning({(n, "TXT"): [t] for n, t in records.items()})
    record = "v=spf1 include:vendor.example -all"
    alone = address_space("own.example", record, owning)
    assert alone.everyone()
    memo = SpaceMemo(own_zones={"own.example"})
    assert not address_space("other.example", record, shared, memo=memo).everyone()
    assert "vendor.example" not in memo and "leaf.example" in memo
    assert address_space("own.example", record, owning, memo=memo) == alone
    # Without own_zones the other compile's answer would be shared, wrongly.
    unaware = SpaceMemo()
    address_space("other.example", record, shared, memo=unaware)
    assert address_space("own.example", record, owning, memo=unaware) != alone


def test_generated_include_graphs_match_fresh_walks() -> None:
    """Random include graphs with loops, chains past the depth limit, +all,
    redirects, missing names and macros, walked from every name in random orders."""
    rng = random.Random(7208)
    cases = stored = 0
    for _ in range(300):
        names = [f"n{i}.example" for i in range(rng.randint(2, 16))]
        records: dict[str, str] = {}
        for i, name in enumerate(names):
            if rng.random() < 0.1:
                continue  # NXDOMAIN
            terms = [f"ip4:10.{i}.{rng.randint(0, 255)}.0/{rng.choice([8, 16, 24, 32])}"]
            if rng.random() < 0.3:
                terms.append(f"ip6:2001:db8:{i:x}::/{rng.choice([32, 48, 64])}")
            for _ in range(rng.choice([0, 1, 1, 2, 3])):
                target = (
                    names[min(len(names) - 1, i + 1)] if rng.random() < 0.6 else rng.choice(names)
                )
                terms.append(f"{rng.choice(['', '', '~', '-'])}include:{target}")
            if rng.random() < 0.05:
                terms.append("include:%{d}.example")
            if rng.random() < 0.05:
                terms.append("+all")
            elif rng.random() < 0.15:
                terms.append(f"redirect={rng.choice(names)}")
            else:
                terms.append("-all")
            records[name] = "v=spf1 " + " ".join(terms)
        resolver = txt(records)
        memo = SpaceMemo()
        for _ in range(2):
            for start in rng.sample(names, len(names)):
                record = f"v=spf1 include:{start} ~all"
                alone = address_space("p.example", record, resolver)
                assert address_space("p.example", record, resolver, memo=memo) == alone
                if start in records:
                    alone = address_space(start, records[start], resolver)
                    assert address_space(start, records[start], resolver, memo=memo) == alone
                cases += 1
        stored += len(memo)
    assert cases > 3000
    assert stored > 1000  # the memo was used, not bypassed
