"""The real-world SPF data set (tests/data/realworld, CC BY-SA 4.0, see NOTICE.txt)
served from a PowerDNS server, and both analysers run over it.

Shared by tests/test_spf_realworld.py and bench/bench_spf.py.  Both resolve it
live as `octodns-mailauth lock refresh` does, over `policies()`.

What is served: the 483 surveyed domains' TXT (SPF) records and the 309 include
targets' records, as published on 2023-10-04.  The survey has no address data, so
every surveyed domain gets a synthetic `A 192.0.2.1` and its real MX host names
(with synthetic `A 192.0.2.2` each): stated here so nobody takes them for real.
Names under a TLD zone that the data does not list are NXDOMAIN, as on the internet.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.resolver
from pdns_fixture import txt_content

DATA = Path(__file__).parent / "data" / "realworld"
RECORDS = DATA / "fortune20-2023-10-04-records.jsonl"
TARGETS = DATA / "fortune20-2023-10-04-spf-include-targets.json"
SYNTHETIC_A = "192.0.2.1"
SYNTHETIC_MX_A = "192.0.2.2"


def surveyed() -> list[dict[str, Any]]:
    """The 483 surveyed domains that publish an SPF record."""
    rows = [json.loads(line) for line in RECORDS.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["spf_record"]]


def rrsets() -> dict[tuple[str, str], list[str]]:
    """(name, type) -> values in plain text, everything the server will hold."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in surveyed():
        name = row["domain"].lower()
        out[(name, "TXT")].append(row["spf_record"])
        out[(name, "A")] = [SYNTHETIC_A]
        for i, host in enumerate(row["mx_hosts"] or []):
            out[(name, "MX")].append(f"{10 + i} {host.lower().rstrip('.')}.")
            out[(host.lower().rstrip("."), "A")] = [SYNTHETIC_MX_A]
    for rec in json.loads(TARGETS.read_text())["records"]:
        key = (rec["domain"].lower(), "TXT")
        if rec["record"] not in out[key]:
            out[key].append(rec["record"])
    return dict(out)


def serve_rrsets(pdns: Any, data: dict[tuple[str, str], list[str]]) -> set[str]:
    """Load (name, type) -> values into one zone per top-level domain; returns
    the zone names."""
    by_tld: dict[str, list[tuple[str, str, list[str] | None]]] = defaultdict(list)
    for (name, rtype), values in data.items():
        tld = name.rsplit(".", 1)[-1] + "."
        content = [txt_content(v) if rtype == "TXT" else v for v in values]
        by_tld[tld].append((name, rtype, content))
    existing = set(pdns.zone_names())
    for tld, sets in by_tld.items():
        if tld not in existing:
            pdns.create_zone(tld)
        pdns.set_rrsets(tld, sets, ttl=300)
    return set(by_tld)


def serve(pdns: Any) -> set[str]:
    """Everything of the survey, as `serve_rrsets` loads it."""
    return serve_rrsets(pdns, rrsets())


def server_queries(pdns: Any) -> int:
    """Queries the server answered so far (its own counters)."""
    stats = {s["name"]: s["value"] for s in pdns.api("GET", "statistics")}
    return int(stats.get("udp-queries", 0)) + int(stats.get("tcp-queries", 0))


@dataclass
class Verdict:
    domain: str
    verdict: str  # "none" (no SPF record), "permerror", "temperror" or "ok"
    lookups: int | None  # None: the analyser gave no count
    void: int | None
    error: str | None = None


def our_verdict(domain: str, tree: Any) -> Verdict:
    errors = tree.permerrors()
    temp = tree.all_temp_errors()
    if errors:
        verdict = "permerror"
    elif tree.record is None and not temp:
        verdict = "none"
    elif temp:
        verdict = "temperror"
    else:
        verdict = "ok"
    return Verdict(domain, verdict, tree.total, tree.void_total, "; ".join(errors + temp) or None)


def ours(domains: Iterable[str], resolver: Any) -> dict[str, Verdict]:
    """Each domain's published record analysed through `resolver`, one after the
    other, sharing include subtrees (the answers are the same throughout)."""
    from octodns_mailauth.spf.lookups import SubtreeMemo, analyze

    memo = SubtreeMemo()
    return {d: our_verdict(d, analyze(d, resolver, memo=memo)) for d in domains}


POLICY_ZONE = "policies.example"


def policies(domains: Iterable[str]) -> list[Any]:
    """One policy per surveyed domain, whose one sender includes that domain, so
    `lock refresh` over them walks each surveyed record's whole tree, below a
    record of its own (`v=spf1 include:<domain> -all`).  The policies' domains
    (p<n>.policies.example) are their own: never asked, never in the lock."""
    from octodns_mailauth.policy.loader import parse_policy

    return [
        parse_policy(
            f"senders:\n  - {{name: surveyed, include: [{domain}]}}\n",
            f"mail/p{i}.{POLICY_ZONE}.yaml",
            f"p{i}.{POLICY_ZONE}",
        )
        for i, domain in enumerate(domains)
    ]


class CountingResolver(dns.resolver.Resolver):
    """A dnspython resolver that counts the queries it is asked to make."""

    count = 0

    def resolve(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        CountingResolver.count += 1
        return super().resolve(*args, **kwargs)


def counting_resolver(pdns: Any) -> CountingResolver:
    res = CountingResolver(configure=False)
    res.nameservers = [pdns.host]
    res.port = pdns.dns_port
    res.timeout = res.lifetime = 3.0
    res.use_edns(0, 0, 1232)
    res.cache = None
    return res


def checkdmarc_run(domains: Iterable[str], resolver: dns.resolver.Resolver) -> dict[str, Verdict]:
    import checkdmarc.spf
    import checkdmarc.utils

    checkdmarc.utils.DNS_CACHE.clear()  # each run starts cold, as ours does
    out = {}
    for domain in domains:
        result = checkdmarc.spf.check_spf(domain, resolver=resolver, timeout=3.0, retries=0)
        error = result.get("error")
        if result["valid"]:
            verdict = "ok"
        elif error and error.startswith("An SPF record does not exist"):
            verdict = "none"  # checkdmarc's SPFRecordNotFound
        elif error and ("timed out" in error.lower() or "temporary" in error.lower()):
            verdict = "temperror"
        else:
            verdict = "permerror"
        out[domain] = Verdict(
            domain, verdict, result.get("dns_lookups"), result.get("void_dns_lookups"), error
        )
    return out


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start
