"""`init` over the real-world SPF corpus (tests/data/realworld, 2023-10-04,
CC BY-SA 4.0: see NOTICE.txt): 483 published SPF records (with their DMARC
records and MX hosts) adopted as policies.

For every record the tool can express, the policy init writes (rendered,
loaded and compiled by the same code as the CLI, against a lock holding the
corpus's third-party records) compiles to SPF records that authorise the same
addresses: pyspf evaluates the published record and the compiled one, over
the same in-memory DNS built from the corpus (no network), for sample
addresses of every mechanism (each ip4/ip6 range's first and last address and
the one just past it, the a/mx hosts, the ranges of included records) plus
addresses nobody lists.  Every other record gets a reason.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import spf
import spf_realworld as rw

from octodns_mailauth.adopt import adopt, dns_term_order_changed
from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.cli.init import Published, _compile_clean
from octodns_mailauth.cli.settings import Settings
from octodns_mailauth.dns.lockfile import SpfLock
from octodns_mailauth.records.spf import SpfSyntaxError, parse

CATALOG = load_catalog([])
OUTSIDE = ["203.0.113.250", "2001:db8:ffff::1"]
MAX_SAMPLES = 40
ERRORS = {"permerror", "temperror"}


def world() -> dict[tuple[str, str], list[str]]:
    return {k: list(v) for k, v in rw.rrsets().items()}


def write_lock(path: Path, data: dict[tuple[str, str], list[str]]) -> None:
    """The lock `spf refresh` would write against this world: every answer, and
    every name an SPF term points at that does not exist, as NXDOMAIN."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    answers: dict[str, dict[str, Any]] = {}
    for (name, rtype), values in data.items():
        answers.setdefault(name, {"resolved": now})[rtype] = values
    for (_name, rtype), values in list(data.items()):
        for text in values if rtype == "TXT" else []:
            try:
                terms = parse(text).terms
            except SpfSyntaxError:
                continue
            for term in terms:
                target = getattr(term, "domain_spec", None) or getattr(term, "value", None)
                if target and "%" not in target:
                    answers.setdefault(
                        target.rstrip(".").lower(), {"resolved": now, "nxdomain": True}
                    )
    path.write_text(
        json.dumps({"version": 1, "refreshed": now, "answers": answers}, indent=1),
        encoding="utf-8",
    )


def lookup_in(data: dict[tuple[str, str], list[str]]) -> Any:
    """A pyspf DNSLookup answering from `data`; absent names are NXDOMAIN."""

    def lookup(name: str, qtype: str, tcpfallback: bool = True, timeout: int = 30) -> list[Any]:
        key = (name.rstrip(".").lower(), qtype)
        out = []
        for value in data.get(key, []):
            if qtype == "TXT":
                raw = value.encode()
                out.append(((name, qtype), [raw[i : i + 255] for i in range(0, len(raw), 255)]))
            elif qtype == "MX":
                pref, host = value.split()
                out.append(((name, qtype), (int(pref), host.rstrip("."))))
            else:
                out.append(((name, qtype), value))
        return out

    return lookup


def samples(record: str, data: dict[tuple[str, str], list[str]], depth: int = 0) -> Iterator[str]:
    """Addresses that exercise each mechanism of `record` (and of what it includes)."""
    try:
        parsed = parse(record)
    except SpfSyntaxError:
        return
    for mech in parsed.mechanisms:
        if mech.network is not None:
            net = mech.network
            yield str(net.network_address)
            yield str(net.broadcast_address)
            past = int(net.broadcast_address) + 1
            if past < (1 << net.max_prefixlen):
                yield str(
                    ipaddress.ip_address(past) if net.version == 4 else ipaddress.IPv6Address(past)
                )
        elif mech.name in ("a", "mx"):
            yield rw.SYNTHETIC_A
            yield rw.SYNTHETIC_MX_A
        elif mech.name == "include" and mech.domain_spec and depth < 3:
            for text in data.get((mech.domain_spec.rstrip(".").lower(), "TXT"), []):
                if text.lower().startswith("v=spf1"):
                    yield from samples(text, data, depth + 1)


def evaluate(data: dict[tuple[str, str], list[str]], domain: str, ips: list[str]) -> list[str]:
    original = spf.DNSLookup
    spf.DNSLookup = lookup_in(data)
    try:
        return [
            spf.check2(i=ip, s=f"postmaster@{domain}", h="mail.example.org", querytime=0)[0]
            for ip in ips
        ]
    finally:
        spf.DNSLookup = original


@pytest.fixture(scope="module")
def lock_read_once() -> Iterator[None]:
    """`init` adopts one domain per run, reading the SPF lock each time; here 483 runs
    read one lock that never changes (compiling only reads it): it is parsed once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SpfLock, "load", staticmethod(functools.cache(SpfLock.load)))
        yield


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory, lock_read_once: None) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("roundtrip")
    data = world()
    policies = base / "mail"
    policies.mkdir()
    lock = base / "spf-lock.json"
    write_lock(lock, data)
    settings = Settings(policies=policies, spf_lock=lock)
    expressible: dict[str, tuple[list[str], list[str], list[str]]] = {}
    reasons: dict[str, list[str]] = {}
    for row in rw.surveyed():
        domain = row["domain"].lower()
        view: dict[tuple[str, str], tuple[str, ...]] = {(domain, "TXT"): (row["spf_record"],)}
        if row["mx_hosts"]:
            view[(domain, "MX")] = tuple(
                f"{10 + i} {h.lower().rstrip('.')}." for i, h in enumerate(row["mx_hosts"])
            )
        if row.get("dmarc_record") and row.get("dmarc_location") == row["domain"]:
            view[(f"_dmarc.{domain}", "TXT")] = (row["dmarc_record"],)
        adoption = adopt(domain, view, CATALOG)
        if not adoption.spf_expressible:
            reasons[domain] = [f"{u.what}: {u.reason}" for u in adoption.blocked("spf")]
            continue
        target = policies / f"{domain}.yaml"
        published = Published(view, "the corpus")
        _text, result, _ack = _compile_clean(settings, domain, adoption, target, published)
        if result.errors:
            reasons[domain] = [f.format() for f in result.errors]
            continue
        compiled = {r.name: list(r.values) for r in result.records if r.kind == "spf"}
        assert domain in compiled, (domain, result.records)
        after = dict(data)
        for name, values in compiled.items():
            others = [v for v in data.get((name, "TXT"), []) if not v.lower().startswith("v=spf1")]
            after[(name, "TXT")] = others + values
        ips = list(dict.fromkeys([*samples(row["spf_record"], data), *OUTSIDE]))[:MAX_SAMPLES]
        expressible[domain] = (
            ips,
            evaluate(data, domain, ips),
            evaluate(after, domain, ips),
            row["spf_record"],
            compiled[domain][0],
        )
    return {"expressible": expressible, "reasons": reasons, "total": len(rw.surveyed())}


def test_every_record_is_adopted_or_has_a_reason(outcome: dict[str, Any]) -> None:
    expressible, reasons = outcome["expressible"], outcome["reasons"]
    assert outcome["total"] == 483
    assert len(expressible) + len(reasons) == 483
    assert set(expressible).isdisjoint(reasons)
    assert all(r and all(text.strip() for text in r) for r in reasons.values())
    # Most real records are expressible; the corpus also has real ptr, exists,
    # macro, redirect and over-the-limit records, which must land in `reasons`.
    assert len(expressible) >= 300, (len(expressible), len(reasons))
    joined = " ".join(" ".join(r) for r in reasons.values())
    for why in ("redirect=", "ptr"):
        assert why in joined
    from collections import Counter

    kinds = Counter(
        re.sub(r"'[^']*'|\d+", "N", re.sub(r"^\S+:\d+: error: ", "", r[0]))[:60]
        for r in reasons.values()
    )
    print(f"\ninit round trip: {len(expressible)} expressible, {len(reasons)} with a reason")
    for why, count in kinds.most_common():
        print(f"  {count:4d}  {why}")


def test_compiled_policy_authorises_the_same_addresses(outcome: dict[str, Any]) -> None:
    """Same result for every sample address.  The one allowed difference: the
    compiled record evaluates DNS terms in its own order (ip4/ip6, a, mx,
    include), so where a lookup fails during evaluation (void lookups: here
    the corpus's MX hosts have A but no AAAA records, as many real ones) a
    receiver may stop at another term.  init says so for those records
    (dns_term_order_changed), and the difference must then be an error on
    one side, never pass against fail."""
    differ = {}
    order_dependent = set()
    evaluated = 0
    for domain, (ips, before, after, published, compiled) in outcome["expressible"].items():
        evaluated += len(ips)
        for ip, b, a in zip(ips, before, after, strict=True):
            if b == a:
                continue
            if dns_term_order_changed(published, compiled) and {b, a} & ERRORS:
                order_dependent.add(domain)
                continue
            differ.setdefault(domain, []).append((ip, b, a))
    assert differ == {}
    same = len(outcome["expressible"]) - len(order_dependent)
    print(
        f"\ninit round trip: {same} identical for every sample, {len(order_dependent)} differ "
        f"only where evaluation errors (term order; init notes it): {sorted(order_dependent)}"
    )
    assert len(order_dependent) <= 10
    # The loop ran over real samples, passes among them.
    assert evaluated >= 5 * len(outcome["expressible"])
    passes = sum(
        r == "pass" for _ips, before, *_ in outcome["expressible"].values() for r in before
    )
    assert passes >= len(outcome["expressible"])
