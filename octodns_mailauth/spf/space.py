"""The address space an SPF record authorises: the union of every range it
lets pass, written or reached through includes (RFC 7208 §5).

A single `ip4:0.0.0.0/0` is easy to spot; the same effect written as 256 /8
ranges, two /1 ranges or a vendor answer that flattens to them is not, so the
check is on the union, per address family.  `+all` and `a/0`/`mx/0` count as
everyone too.  Pure: DNS comes through the Resolver given (the SPF lock, or the
zone being built), and a name it cannot answer adds nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..dns.resolver import DnsError, Resolver
from ..names import normalize, zone_of
from ..records.spf import SpfSyntaxError, has_macro, parse, select_records

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_EVERYONE = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}
_MAX_DEPTH = 10
_Span = tuple[int, int, int, Network]  # (version, first address, prefix length, range)


@dataclass
class AddressSpace:
    """Pass ranges per family, none inside another; `pass_all` says where `+all` was met."""

    v4: list[ipaddress.IPv4Network] = field(default_factory=list)
    v6: list[ipaddress.IPv6Network] = field(default_factory=list)
    pass_all: str | None = None
    written: dict[int, int] = field(default_factory=lambda: {4: 0, 6: 0})  # ranges before union
    counted: dict[int, int] = field(default_factory=lambda: {4: 0, 6: 0})  # addresses in v4, v6

    def addresses(self, version: int) -> int:
        return self.counted[version]

    def share(self, version: int) -> float:
        return self.addresses(version) / _EVERYONE[version].num_addresses

    def everyone(self) -> str | None:
        """Why this record lets every host pass, or None."""
        if self.pass_all:
            return f"{self.pass_all} ends in '+all'"
        for version in (4, 6):
            if self.share(version) >= 1:
                count = self.written[version]
                how = "one range" if count == 1 else f"{count} ranges"
                return f"its pass terms cover all of IPv{version} ({how} in all)"
        return None

    def wider_than(self, version: int, prefix: int) -> bool:
        """More addresses than one /prefix of that family."""
        return self.addresses(version) > 2 ** ((32 if version == 4 else 128) - prefix)


@dataclass(frozen=True)
class _Reach:
    """What one include/redirect target adds, walked with nothing cut short."""

    nets: tuple[_Span, ...]  # its pass ranges, in walk order
    pass_all: str | None  # the first record in it ending in '+all'
    domains: frozenset[str]  # the records in it, to see a loop through it
    height: int  # the levels of records in it, to see the depth limit cut it


class SpaceMemo(dict[str, _Reach]):
    """Finished include/redirect targets' address spaces: vendor records recur in
    most policies, so address_space calls over one source of answers walk each
    once.  `own_zones` as SubtreeMemo's (spf/lookups.py): a target whose walk
    asked a name under one is answered differently per policy, so not stored."""

    def __init__(self, own_zones: Iterable[str] = ()) -> None:
        super().__init__()
        self.own_zones = frozenset(map(normalize, own_zones))


class _Walk:
    """One address_space call: the ranges met, and what makes a target's part
    depend on where it was reached from (a loop or the depth limit cut it, a
    name under an own zone asked), so the memo stores only the parts that do not."""

    def __init__(self, resolver: Resolver | None, memo: SpaceMemo | None) -> None:
        self.resolver = resolver
        self.memo = memo
        self.nets: list[_Span] = []
        self.pass_all: str | None = None
        self.cut = 0  # loops and depth limits met so far
        self.owned = 0  # names under memo.own_zones asked so far
        self.domains: list[str] = []  # records walked, in order
        self.height = 0  # the deepest record reached so far, in levels below the root


def address_space(
    name: str, record: str, resolver: Resolver | None = None, *, memo: SpaceMemo | None = None
) -> AddressSpace:
    """Every range `record` (published at `name`) lets pass, following pass
    includes and redirects through `resolver` when one is given.  `memo` shares
    finished targets between calls whose resolvers give the same answers
    throughout, except under its `own_zones`."""
    walk = _Walk(resolver, memo)
    _walk(name, record, walk, (), 0)
    out = AddressSpace(pass_all=walk.pass_all)
    v4 = sorted(s[1:] for s in walk.nets if s[0] == 4)
    v6 = sorted(s[1:] for s in walk.nets if s[0] == 6)
    out.written = {4: len(v4), 6: len(v6)}
    out.v4, out.counted[4] = _disjoint(v4, 32)  # type: ignore[assignment]
    out.v6, out.counted[6] = _disjoint(v6, 128)  # type: ignore[assignment]
    return out


def _span(net: Network) -> _Span:
    """A range with its family, first address and prefix length read once: the
    union sorts by them, and ipaddress computes each on every access."""
    return net.version, int(net.network_address), net.prefixlen, net


_SPAN_EVERYONE = {v: _span(n) for v, n in _EVERYONE.items()}


def _disjoint(spans: list[tuple[int, int, Network]], bits: int) -> tuple[list[Network], int]:
    """The ranges not inside another, sorted, and the addresses in them (their
    sizes add up to the union's).  CIDR ranges nest or lie apart, so one pass in
    address order does it (ipaddress.collapse_addresses also joins neighbours,
    at several times the cost)."""
    out: list[Network] = []
    total = 0
    last = -1  # the last address of the previous range kept
    for start, prefixlen, net in spans:  # sorted: by address, the wider range first
        if start > last:
            out.append(net)
            size = 1 << (bits - prefixlen)  # num_addresses, less its cost
            total += size
            last = start + size - 1
    return out, total


def _walk(name: str, text: str, walk: _Walk, path: tuple[str, ...], depth: int) -> None:
    try:
        record = parse(text)
    except SpfSyntaxError:
        return  # a permerror lets nobody pass; the parser's own check reports it
    for mech in record.effective_mechanisms:
        if mech.qualifier != "+":
            continue  # fail/softfail/neutral terms never make mail pass
        if mech.name == "all":
            walk.pass_all = walk.pass_all or (name or "the record")
        elif mech.name in ("ip4", "ip6") and mech.network is not None:
            walk.nets.append(_span(mech.network))
        elif mech.name in ("a", "mx"):
            # `a/0` passes every IPv4 host whatever the A record holds.
            if mech.cidr4 == 0:
                walk.nets.append(_SPAN_EVERYONE[4])
            if mech.cidr6 == 0:
                walk.nets.append(_SPAN_EVERYONE[6])
        elif mech.name == "include" and mech.domain_spec:
            _follow(mech.domain_spec, walk, (*path, name), depth)
    if record.effective_redirect:
        _follow(record.effective_redirect, walk, (*path, name), depth)


def _follow(target: str, walk: _Walk, path: tuple[str, ...], depth: int) -> None:
    target = normalize(target)
    if walk.resolver is None or has_macro(target):
        return
    if target in path or depth >= _MAX_DEPTH:
        walk.cut += 1
        return
    memo = walk.memo
    hit = memo.get(target) if memo is not None else None
    # What a fresh walk from here would add: no loop back into this path, and
    # the depth limit not reached inside it.
    if hit is not None and hit.domains.isdisjoint(path) and depth + hit.height <= _MAX_DEPTH:
        walk.nets.extend(hit.nets)
        walk.pass_all = walk.pass_all or hit.pass_all
        walk.domains.extend(hit.domains)
        walk.height = max(walk.height, depth + hit.height)
        return
    nets, pass_all, domains = len(walk.nets), walk.pass_all, len(walk.domains)
    cut, owned, height = walk.cut, walk.owned, walk.height
    if memo is not None and memo.own_zones and zone_of(target, memo.own_zones) is not None:
        walk.owned += 1
    walk.pass_all = None  # this target's own first '+all', restored below
    walk.domains.append(target)
    walk.height = depth + 1
    try:
        text = select_records(walk.resolver.query(target, "TXT"))
    except (DnsError, SpfSyntaxError):
        text = None
    if text is not None:
        _walk(target, text, walk, path, depth + 1)
    if memo is not None and walk.cut == cut and walk.owned == owned:
        memo[target] = _Reach(
            tuple(walk.nets[nets:]),
            walk.pass_all,
            frozenset(walk.domains[domains:]),
            walk.height - depth,
        )
    walk.pass_all = pass_all or walk.pass_all
    walk.height = max(height, walk.height)
