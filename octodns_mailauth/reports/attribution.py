"""Which declared sender each reported source is, and who the others likely are.

A source (one row of evidence) belongs to a declared sender when its address
is in the sender's own ranges or in the ranges its SPF includes resolve to in
the SPF lock (`spf/flatten.py`), else when it carries a passing DKIM signature
with the sender's d= and selector (a vendor's own d= alone is enough), else
when SPF passed for the sender's own return-path domain.  What the compile
already knows is used as is: the identifiers of each sender (`SenderFacts`,
the alignment rows with a provider's default d=) and the catalog.

Sources that match nothing are undeclared.  Their likely catalog provider is
found from the organisation of their reverse-DNS name, SPF domain and DKIM
d= (`orgmap.py`) against the domains each catalog entry is known by.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..catalog import Catalog, CatalogError, Entry, render, resolve_params
from ..dmarc.orgdomain import organizational_domain
from ..names import is_subdomain, normalize
from ..spf.flatten import flatten_include
from .orgmap import base_domain, organisation
from .store import Evidence, EvidenceRow

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class DeclaredSender:
    """What identifies one declared sender's mail in a report."""

    name: str
    provider: str | None
    networks: list[Network] = field(default_factory=list)
    includes: dict[str, list[Network]] = field(default_factory=dict)  # SPF include -> ranges
    dkim: set[tuple[str, str]] = field(default_factory=set)  # (d=, selector)
    selector_prefixes: set[tuple[str, str]] = field(default_factory=set)  # rotating keys
    dkim_foreign: set[str] = field(default_factory=set)  # a vendor's own d=: enough alone
    return_paths: set[str] = field(default_factory=set)  # MAIL FROM domains of its own
    acknowledged: str | None = None  # unaligned_ok


@dataclass
class Tally:
    messages: int = 0
    passing: int = 0
    per_day: dict[str, list[int]] = field(default_factory=dict)  # day -> [pass, fail]

    @property
    def failing(self) -> int:
        return self.messages - self.passing

    def add(self, row: EvidenceRow) -> None:
        self.messages += row.messages
        ok = row.dmarc_pass
        self.passing += row.messages if ok else 0
        day = self.per_day.setdefault(row.day, [0, 0])
        day[0 if ok else 1] += row.messages


@dataclass
class SenderEvidence(Tally):
    name: str = ""
    provider: str | None = None
    acknowledged: str | None = None
    addresses: set[str] = field(default_factory=set)
    matched_by: Counter[str] = field(default_factory=Counter)


@dataclass
class UndeclaredSource(Tally):
    key: str = ""
    label: str = ""
    provider: str | None = None  # the catalog entry it most likely is
    provider_name: str | None = None
    org: str = ""
    org_type: str = ""
    addresses: set[str] = field(default_factory=set)
    reverse_dns: set[str] = field(default_factory=set)
    spf_domains: Counter[str] = field(default_factory=Counter)
    dkim_domains: Counter[str] = field(default_factory=Counter)
    why: str = ""  # what the provider guess rests on


@dataclass
class Attribution:
    domain: str
    since: str
    until: str
    reports: int
    days: list[str]
    total: Tally
    senders: dict[str, SenderEvidence]
    undeclared: list[UndeclaredSource]
    include_use: dict[tuple[str, str], int]  # (sender, include target) -> messages
    subdomains: Counter[str]  # header_from below the policy domain -> messages


# --- what identifies each declared sender ------------------------------------------------


def declared_senders(lp: Any, result: Any, resolver: Any) -> list[DeclaredSender]:
    """From the compile result: its sender facts and alignment rows, and the SPF
    lock (`resolver`) for the ranges behind each include."""
    domain = normalize(lp.domain)
    rows = {r.sender: r for r in result.details.alignment}
    out = []
    for facts in result.senders:
        sender = lp.policy.senders[facts.index]
        entry: Entry | None = facts.provider
        d = DeclaredSender(facts.name, entry.id if entry else None)
        d.acknowledged = sender.unaligned_ok
        d.networks = [*sender.ip4, *sender.ip6]
        targets = [normalize(t) for t in sender.include]
        if entry is not None and entry.spf_include:
            targets.append(normalize(entry.spf_include))
        for target in targets:
            nets: list[Network] = []
            if resolver is not None:
                nets = list(flatten_include(target, resolver).networks)
            d.includes[target] = nets
        for key in sender.dkim:
            if key.selector:
                d.dkim.add((domain, key.selector.lower()))
            elif key.prefix:
                d.selector_prefixes.add((domain, key.prefix.lower() + "-"))
        row = rows.get(facts.name)
        dkim_domains = list(row.dkim_domains) if row is not None else list(facts.dkim_domains)
        selectors = list(entry.dkim.selectors) if entry is not None and entry.dkim else []
        for dd in map(normalize, dkim_domains):
            if is_subdomain(dd, domain):
                d.dkim.update((dd, s.lower()) for s in selectors)
            else:
                d.dkim_foreign.add(dd)
        default_d = _default_d(entry, domain, sender.params)
        if default_d and not is_subdomain(default_d, domain):
            # Signed by the vendor's own d= while custom DKIM is not (yet) on.
            d.dkim_foreign.add(default_d)
        if facts.mail_from and normalize(facts.mail_from) != domain:
            d.return_paths.add(normalize(facts.mail_from))
        out.append(d)
    return out


def _default_d(entry: Entry | None, domain: str, params: dict[str, Any]) -> str | None:
    if entry is None or entry.dkim is None or not entry.dkim.default_d:
        return None
    values, _ = resolve_params(entry, domain, params)
    try:
        return normalize(render(entry.dkim.default_d, values))
    except CatalogError:
        return None


# --- the catalog's vendors, by domain and organisation ---------------------------------


@dataclass
class VendorIndex:
    by_domain: dict[str, str]  # base domain -> catalog id
    by_org: dict[str, str]  # organisation name (orgmap) -> catalog id
    names: dict[str, str]  # catalog id -> name


def vendor_index(catalog: Catalog) -> VendorIndex:
    by_domain: dict[str, str] = {}
    by_org: dict[str, str] = {}
    for entry_id in catalog.ids():
        entry = catalog.entries[entry_id]
        names = [entry.spf_include]
        if entry.return_path is not None:
            names.append(entry.return_path.default)
        if entry.dkim is not None:
            names.append(entry.dkim.default_d)
        for name in names:
            if not name or "{" in name:
                continue  # templated names ({domain}) are the customer's, not the vendor's
            base = base_domain(name)
            by_domain.setdefault(base, entry_id)
            org = organisation(name)
            if org is not None:
                by_org.setdefault(org.name, entry_id)
    return VendorIndex(by_domain, by_org, {i: catalog.entries[i].name for i in catalog.ids()})


# --- attribution -------------------------------------------------------------------------


def attribute(
    evidence: Evidence, declared: list[DeclaredSender], vendors: VendorIndex
) -> Attribution:
    domain = normalize(evidence.domain)
    org_domain = organizational_domain(domain)
    senders = {
        d.name: SenderEvidence(name=d.name, provider=d.provider, acknowledged=d.acknowledged)
        for d in declared
    }
    undeclared: dict[str, UndeclaredSource] = {}
    include_use: dict[tuple[str, str], int] = {
        (d.name, t): 0 for d in declared for t in d.includes
    }
    total = Tally()
    subdomains: Counter[str] = Counter()
    by_address: dict[str, DeclaredSender | None] = {}
    for row in evidence.rows:
        total.add(row)
        if row.header_from != domain and is_subdomain(row.header_from, domain):
            subdomains[row.header_from] += row.messages
        if row.source_ip not in by_address:
            by_address[row.source_ip] = _by_address(row.source_ip, declared)
        # An include is used when a source sends from its addresses, whichever
        # sender the source is attributed to (two senders may share a vendor).
        for d in declared:
            for target, nets in d.includes.items():
                if _contains(nets, row.source_ip):
                    include_use[(d.name, target)] += row.messages
        how = "address"
        sender = by_address[row.source_ip]
        if sender is None:
            sender, how = _by_identifier(row, declared)
        if sender is not None:
            ev = senders[sender.name]
            ev.add(row)
            ev.addresses.add(row.source_ip)
            ev.matched_by[how] += row.messages
            continue
        _undeclared(row, undeclared, vendors, org_domain).add(row)
    return Attribution(
        domain,
        evidence.since,
        evidence.until,
        evidence.reports,
        evidence.days,
        total,
        senders,
        sorted(undeclared.values(), key=lambda u: (-u.messages, u.key)),
        include_use,
        subdomains,
    )


def _contains(nets: list[Network], ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr.version == n.version and addr in n for n in nets)


def _by_address(ip: str, declared: list[DeclaredSender]) -> DeclaredSender | None:
    """The declared sender whose most specific range holds the address."""
    addr = ipaddress.ip_address(ip)
    best: DeclaredSender | None = None
    best_len = -1
    for d in declared:
        for net in d.networks + [n for nets in d.includes.values() for n in nets]:
            if net.version == addr.version and addr in net and net.prefixlen > best_len:
                best, best_len = d, net.prefixlen
    return best


def _by_identifier(
    row: EvidenceRow, declared: list[DeclaredSender]
) -> tuple[DeclaredSender | None, str]:
    # A d= in a failed signature, or a MAIL FROM that failed SPF, proves nothing.
    if row.dkim_result == "pass" and row.dkim_domain:
        pair = (row.dkim_domain, row.dkim_selector)
        for d in declared:
            if pair in d.dkim or any(
                row.dkim_domain == dd and row.dkim_selector.startswith(p)
                for dd, p in d.selector_prefixes
            ):
                return d, "DKIM d=/selector"
        for d in declared:
            if row.dkim_domain in d.dkim_foreign:
                return d, "DKIM d="
    if row.spf_result == "pass" and row.spf_domain:
        for d in declared:
            # Vendors bounce to hosts below their return-path domain (mail98.mcsv.net).
            if any(is_subdomain(row.spf_domain, rp) for rp in d.return_paths):
                return d, "return-path"
    return None, ""


def _undeclared(
    row: EvidenceRow,
    groups: dict[str, UndeclaredSource],
    vendors: VendorIndex,
    org_domain: str,
) -> UndeclaredSource:
    provider, why = _likely_provider(row, vendors, org_domain)
    org, org_type = row.org, row.org_type
    if not org:
        for name in (row.spf_domain, row.dkim_domain):
            if name and organizational_domain(name) != org_domain:
                found = organisation(name)
                if found is not None:
                    org, org_type = found.name, found.type
                    break
    if provider:
        key = f"provider:{provider}"
        label = vendors.names[provider]
    elif org:
        key, label = f"org:{org}", org
    else:
        key, label = f"ip:{row.source_ip}", row.source_ip
    group = groups.get(key)
    if group is None:
        group = groups[key] = UndeclaredSource(
            key=key,
            label=label,
            provider=provider,
            provider_name=vendors.names.get(provider) if provider else None,
            org=org,
            org_type=org_type,
            why=why,
        )
    group.addresses.add(row.source_ip)
    if row.reverse_dns:
        group.reverse_dns.add(row.reverse_dns)
    if row.spf_domain:
        group.spf_domains[row.spf_domain] += row.messages
    if row.dkim_domain:
        group.dkim_domains[row.dkim_domain] += row.messages
    return group


def _likely_provider(
    row: EvidenceRow, vendors: VendorIndex, org_domain: str
) -> tuple[str | None, str]:
    candidates = [
        ("reverse DNS", row.reverse_dns),
        ("DKIM d=", row.dkim_domain),
        ("SPF domain", row.spf_domain),
    ]
    for what, name in candidates:
        if not name:
            continue
        base = base_domain(name)
        if base == org_domain:
            continue  # our own domain names nobody
        if base in vendors.by_domain:
            return vendors.by_domain[base], f"{what} {name}"
        org = organisation(name)
        if org is not None and org.name in vendors.by_org:
            return vendors.by_org[org.name], f"{what} {name} ({org.name})"
    return None, ""
