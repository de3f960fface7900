"""`spf: {flatten: auto}` finds a plan whenever `flatten: always` has one.

Every combination of the catalog vendors whose SPF include the real-world
corpus holds (tests/data/realworld, 2023-10-04, CC BY-SA 4.0: see NOTICE.txt),
alone and beside an own-server sender with many addresses (which pushes the
record into a size split), is compiled with `flatten: always` and with
`flatten: auto` against a lock refreshed from the loopback PowerDNS serving
that corpus.  Wherever `always` fits the 10-lookup limit, `auto` must too,
with no more split records; every published record is re-analysed here from
the records themselves, independently of what the compile step says.
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import spf_realworld as rw
from pdns_fixture import pdns_of_the_module  # noqa: F401  (`pdns`: a server of its own)

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.cli.render import spf_tree_lines
from octodns_mailauth.compile import compile_policy, walk_dns
from octodns_mailauth.context import CompileResult
from octodns_mailauth.dns.live import LiveResolver
from octodns_mailauth.dns.lockfile import LockResolver, SpfLock
from octodns_mailauth.dns.resolver import Resolver
from octodns_mailauth.errors import KeyUnavailable
from octodns_mailauth.policy.loader import LoadedPolicy, parse_policy
from octodns_mailauth.spf.lookups import analyze
from octodns_mailauth.spf.refresh import refresh_lock

pytestmark = pytest.mark.pdns

CATALOG = load_catalog([])
NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)
DOMAIN = "flatten-test.example"
DASHED = DOMAIN.replace(".", "-")
# Parameters the catalog requires for these vendors (none touch SPF).
PARAMS: dict[str, dict[str, Any]] = {
    "microsoft365": {
        "tenant": "contoso",
        "selector1_target": f"selector1-{DASHED}._domainkey.contoso.n-v1.dkim.mail.microsoft",
        "selector2_target": f"selector2-{DASHED}._domainkey.contoso.n-v1.dkim.mail.microsoft",
    },
}
OWN_SERVERS = [f"198.51.100.{i}" for i in range(1, 25)]


class NoKeys:
    def public_key(self, domain: str, key: object) -> str:
        raise KeyUnavailable("no keys in these tests")


def corpus_vendors() -> list[str]:
    """Catalog entries whose SPF include the corpus serves."""
    served = {name for name, rtype in rw.rrsets() if rtype == "TXT"}
    return [i for i in CATALOG.ids() if (CATALOG.get(i).spf_include or "") in served]


def policy(vendors: tuple[str, ...], own: bool, mode: str) -> LoadedPolicy:
    lines = ["senders:"]
    for vid in vendors:
        lines.append(f"  - name: {vid}\n    provider: {vid}")
        for key, value in PARAMS.get(vid, {}).items():
            lines.append(f"    {key}: {value}")
    if own:
        lines.append("  - name: own\n    ip4: [" + ", ".join(OWN_SERVERS) + "]")
    lines.append(f"spf:\n  flatten: {mode}\n  all: fail")
    text = "\n".join(lines) + "\n"
    return parse_policy(text, f"mail/{DOMAIN}.yaml", DOMAIN)


@functools.cache
def compiled(vendors: tuple[str, ...], own: bool, mode: str, lock: LockResolver) -> CompileResult:
    """The policy compiled against the lock: once, for both tests that compare plans."""
    return compile_policy(policy(vendors, own, mode), CATALOG, NoKeys(), lock, now=NOW)


def published(result: CompileResult) -> dict[tuple[str, str], list[str]]:
    return {(r.name, "TXT"): [r.values[0]] for r in result.records if r.kind == "spf"}


class Served(Resolver):
    """What a receiver would see: our published records, the rest from the lock."""

    def __init__(self, ours: dict[tuple[str, str], list[str]], lock: LockResolver) -> None:
        self.ours, self.lock = ours, lock

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (name.rstrip(".").lower(), rdtype.upper())
        return list(self.ours[key]) if key in self.ours else self.lock.query(name, rdtype)


@pytest.fixture(scope="module")
def lock(pdns: Any, tmp_path_factory: pytest.TempPathFactory) -> LockResolver:
    rw.serve(pdns)
    vendors = corpus_vendors()
    everything = [
        policy(tuple(vendors), own, mode) for own in (False, True) for mode in ("always", "auto")
    ]
    path = Path(tmp_path_factory.mktemp("flatten")) / "spf-lock.json"
    with LiveResolver([f"{pdns.host}:{pdns.dns_port}"]) as live:
        diff = refresh_lock(functools.partial(walk_dns, everything, CATALOG), path, live, now=NOW)
    # Only SPF is served here: the vendors' DKIM targets (refused or NXDOMAIN,
    # by what else the session's server holds) are not this test's business.
    spf_failures = [f for f in diff.failures if "domainkey" not in f and ".dkim." not in f]
    assert not spf_failures, spf_failures
    return LockResolver(SpfLock.load(path))


def too_many(result: CompileResult) -> bool:
    return any(f.code == "spf-too-many-lookups" for f in result.errors)


def test_auto_succeeds_whenever_always_does(lock: LockResolver) -> None:
    vendors = corpus_vendors()
    assert len(vendors) >= 7, vendors  # 2^7 - 1 combinations, twice
    cases = [
        (combo, own)
        for k in range(1, len(vendors) + 1)
        for combo in combinations(vendors, k)
        for own in (False, True)
    ]
    compared = needed = split_cases = 0
    for combo, own in cases:
        always = compiled(combo, own, "always", lock)
        auto = compiled(combo, own, "auto", lock)
        never = compiled(combo, own, "never", lock)
        auto_tree = analyze(DOMAIN, Served(published(auto), lock))
        # The step's verdict is the receiver's verdict.
        assert too_many(auto) == auto_tree.exceeded, (combo, own, spf_tree_lines(auto_tree))
        if too_many(always):
            continue
        compared += 1
        assert not too_many(auto), (combo, own, [f.format() for f in auto.errors])
        assert auto_tree.total <= 10 and not auto_tree.permerrors(), (combo, own)
        # The fewest split records: never more than flattening everything needs.
        assert len(published(auto)) <= len(published(always)), (combo, own)
        if too_many(never):
            needed += 1  # auto had to flatten something to fit
        if len(published(auto)) > 1:
            split_cases += 1
    print(
        f"{len(cases)} cases, {compared} where always fits, {needed} needed flattening, "
        f"{split_cases} with a split"
    )
    assert compared >= 100, compared
    assert needed >= 20, needed  # the interesting cases are there
    assert split_cases >= 1, split_cases  # and some plans need a size split


def test_auto_counts_its_own_split_records(lock: LockResolver) -> None:
    """Plans that fit only with a size split: the `include:_spfN` links are
    in the count, as a receiver walking the published records sees it."""
    vendors = corpus_vendors()
    found = 0
    for k in range(2, len(vendors) + 1):
        for combo in combinations(vendors, k):
            never = compiled(combo, True, "never", lock)
            auto = compiled(combo, True, "auto", lock)
            if too_many(never) and not too_many(auto) and len(published(auto)) > 1:
                tree = analyze(DOMAIN, Served(published(auto), lock))
                links = [c for c in tree.children if c.domain.startswith("_spf")]
                assert links and tree.total <= 10, spf_tree_lines(tree)
                found += 1
    assert found >= 1, "no combination needed a split while flattening"


def test_hint_names_what_remains_when_nothing_fits() -> None:
    """When no plan fits (a `-ip4` term makes an include unflattenable), the hint
    lists the lookups left, not a guess."""
    from static_resolver import StaticResolver

    data = {
        (f"h{i}.vendor.example", "TXT"): [f"v=spf1 -ip4:192.0.2.9 a:h{i}.vendor.example ~all"]
        for i in range(6)
    }
    data.update({(f"h{i}.vendor.example", "A"): ["192.0.2.1"] for i in range(6)})
    text = (
        "senders:\n  - name: v\n    include: ["
        + ", ".join(f"h{i}.vendor.example" for i in range(6))
        + "]\nspf:\n  flatten: auto\n"
    )
    lp = parse_policy(text, f"mail/{DOMAIN}.yaml", DOMAIN)
    result = compile_policy(lp, CATALOG, NoKeys(), StaticResolver(data), now=NOW)
    (err,) = [f for f in result.errors if f.code == "spf-too-many-lookups"]
    assert err.hint is not None
    assert "needs 12 lookups" in err.hint, err.hint
    assert "includes not flattened: include:h0.vendor.example (2)" in err.hint, err.hint
