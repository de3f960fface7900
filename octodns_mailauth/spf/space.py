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
from ..names import normalize
from ..records.spf import SpfSyntaxError, has_macro, parse, select_records

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_EVERYONE = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}
_MAX_DEPTH = 10


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


def address_space(name: str, record: str, resolver: Resolver | None = None) -> AddressSpace:
    """Every range `record` (published at `name`) lets pass, following pass
    includes and redirects through `resolver` when one is given."""
    nets: list[Network] = []
    out = AddressSpace()
    _walk(name, record, resolver, nets, out, (), 0)
    out.written = {v: sum(1 for n in nets if n.version == v) for v in (4, 6)}
    out.v4, out.counted[4] = _disjoint(n for n in nets if n.version == 4)  # type: ignore[assignment]
    out.v6, out.counted[6] = _disjoint(n for n in nets if n.version == 6)  # type: ignore[assignment]
    return out


def _disjoint(nets: Iterable[Network]) -> tuple[list[Network], int]:
    """The ranges not inside another, sorted, and the addresses in them (their
    sizes add up to the union's).  CIDR ranges nest or lie apart, so one pass in
    address order does it (ipaddress.collapse_addresses also joins neighbours,
    at several times the cost)."""
    out: list[Network] = []
    total = 0
    last = -1  # the last address of the previous range kept
    for net in sorted(nets, key=lambda n: (int(n.network_address), n.prefixlen)):
        start = int(net.network_address)
        if start > last:
            out.append(net)
            size = 1 << (net.max_prefixlen - net.prefixlen)  # num_addresses, less its cost
            total += size
            last = start + size - 1
    return out, total


def _walk(
    name: str,
    text: str,
    resolver: Resolver | None,
    nets: list[Network],
    out: AddressSpace,
    path: tuple[str, ...],
    depth: int,
) -> None:
    try:
        record = parse(text)
    except SpfSyntaxError:
        return  # a permerror lets nobody pass; the parser's own check reports it
    for mech in record.effective_mechanisms:
        if mech.qualifier != "+":
            continue  # fail/softfail/neutral terms never make mail pass
        if mech.name == "all":
            out.pass_all = out.pass_all or (name or "the record")
        elif mech.name in ("ip4", "ip6") and mech.network is not None:
            nets.append(mech.network)
        elif mech.name in ("a", "mx"):
            # `a/0` passes every IPv4 host whatever the A record holds.
            if mech.cidr4 == 0:
                nets.append(_EVERYONE[4])
            if mech.cidr6 == 0:
                nets.append(_EVERYONE[6])
        elif mech.name == "include" and mech.domain_spec:
            _follow(mech.domain_spec, resolver, nets, out, (*path, name), depth)
    if record.effective_redirect:
        _follow(record.effective_redirect, resolver, nets, out, (*path, name), depth)


def _follow(
    target: str,
    resolver: Resolver | None,
    nets: list[Network],
    out: AddressSpace,
    path: tuple[str, ...],
    depth: int,
) -> None:
    target = normalize(target)
    if resolver is None or has_macro(target) or target in path or depth >= _MAX_DEPTH:
        return
    try:
        text = select_records(resolver.query(target, "TXT"))
    except (DnsError, SpfSyntaxError):
        return
    if text is not None:
        _walk(target, text, resolver, nets, out, path, depth + 1)
