"""Flattening: an include replaced by the ip4/ip6 ranges it resolves to.

Exact only when every term the include reaches is a pass (`+`) term, since an
include matches exactly when its record evaluates to pass (RFC 7208 §5.2).  So a
`-ip4:` or `~a` inside, an `+all`, or a macro naming `%{d}` (which means the
included domain there and ours here, §7.2) stops flattening of that include and
says why.  `exists`, `a`, `mx`, `ptr` and macros are kept as terms, with their
domain made explicit, as the issue asks: they still cost their lookups.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

from ..dns.resolver import DnsError, Resolver
from ..names import normalize
from ..records.spf import Mechanism, SpfSyntaxError, has_macro, parse, select_records

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_DEPTH = 10  # deeper than the lookup limit allows anyway


@dataclass
class Flattened:
    target: str
    networks: list[Network] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # terms kept as written, domain explicit
    problems: list[str] = field(default_factory=list)  # why it cannot be flattened
    names: list[str] = field(default_factory=list)  # every record read, in order
    resolved: datetime | None = None  # oldest lock time among `names`

    @property
    def ok(self) -> bool:
        return not self.problems


def flatten_include(target: str, resolver: Resolver) -> Flattened:
    result = Flattened(target)
    _visit(target, resolver, result, (), 0)
    if result.ok:
        result.networks = collapse(result.networks)
        result.kept = list(dict.fromkeys(result.kept))
    when = [t for t in (resolver.resolved_at(n) for n in result.names) if t is not None]
    result.resolved = min(when) if when else None
    return result


def _visit(
    name: str, resolver: Resolver, out: Flattened, path: tuple[str, ...], depth: int
) -> None:
    if name in path or depth > MAX_DEPTH:
        out.problems.append(f"{name} loops back or nests too deep")
        return
    out.names.append(name)
    try:
        text = select_records(resolver.query(name, "TXT"))
    except DnsError as err:
        out.problems.append(f"no SPF lock entry for {name}" if err.kind == "missing" else str(err))
        return
    except SpfSyntaxError as err:
        out.problems.append(str(err))
        return
    if text is None:
        out.problems.append(f"{name} has no SPF record")
        return
    try:
        record = parse(text)
    except SpfSyntaxError as err:
        out.problems.append(f"{name}: {err}")
        return
    for mech in record.effective_mechanisms:
        if mech.name == "all":
            if mech.qualifier == "+":
                out.problems.append(f"{name} ends in '+all' (anyone passes)")
            return  # any non-pass `all` just means "no match": nothing to add
        if mech.qualifier != "+":
            out.problems.append(f"{name} has the non-pass term '{mech}'")
            return
        if mech.name in ("ip4", "ip6"):
            assert mech.network is not None
            out.networks.append(mech.network)
        elif mech.name == "include":
            _visit(normalize(mech.domain_spec or ""), resolver, out, (*path, name), depth + 1)
        else:
            kept = _explicit(mech, name)
            if kept is None:
                out.problems.append(
                    f"{name}: '{mech}' uses %{{d}}, which would name our domain once moved"
                )
                return
            out.kept.append(kept)
    if record.effective_redirect:
        target = record.effective_redirect
        if has_macro(target):
            out.problems.append(f"{name}: redirect={target} needs a sender to expand")
            return
        _visit(normalize(target), resolver, out, (*path, name), depth + 1)


def _explicit(mech: Mechanism, domain: str) -> str | None:
    """`a`, `mx`, `ptr`, `exists` with the domain written out (it defaults to the
    include target's own domain, which would become ours after moving)."""
    spec = mech.domain_spec
    if spec is not None and ("%{d" in spec.lower()):
        return None
    if spec is None:
        mech = Mechanism("+", mech.name, domain, mech.cidr4, mech.cidr6)
    return str(mech)


def collapse(networks: list[Network]) -> list[Network]:
    """Adjacent and overlapping ranges merged, per family, v4 first."""
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    out: list[Network] = []
    out.extend(ipaddress.collapse_addresses(v4))  # type: ignore[arg-type]
    out.extend(ipaddress.collapse_addresses(v6))  # type: ignore[arg-type]
    return out


def network_term(net: Network) -> str:
    """`ip4:192.0.2.1` for a single address, `ip4:192.0.2.0/24` otherwise."""
    family = "ip4" if net.version == 4 else "ip6"
    if net.prefixlen == net.max_prefixlen:
        return f"{family}:{net.network_address}"
    return f"{family}:{net}"
