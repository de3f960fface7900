"""Delegated DKIM selectors (a CNAME to a key the vendor holds) count as
"pass via DKIM" only when a usable key answers at the target: through the lock
offline, or live in `check`.  The lock refresh records those keys."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from pathlib import Path

import pytest
from static_resolver import StaticResolver
from vendor_keys import KEY_RECORD

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.cli import report
from octodns_mailauth.compile import compile_policy, walk_dns
from octodns_mailauth.context import CompileResult
from octodns_mailauth.dkim.delegation import check_target
from octodns_mailauth.dns.lockfile import NO_LOCK, REFRESH_COMMAND, LockResolver, SpfLock
from octodns_mailauth.dns.resolver import DnsError, Resolver
from octodns_mailauth.keysource import placeholder_public_key
from octodns_mailauth.outcome import TargetStatus, Verdict
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import parse_policy
from octodns_mailauth.spf.refresh import refresh_lock

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)
MS1 = "selector1-example-com._domainkey.contoso.n-v1.dkim.mail.microsoft"
MS2 = MS1.replace("selector1", "selector2")
SG1 = "s1.domainkey.u1234567.wl123.sendgrid.net"
SG2 = "s2.domainkey.u1234567.wl123.sendgrid.net"
POLICY = f"""\
senders:
  - name: office
    provider: microsoft365
    tenant: contoso
    selector1_target: {MS1}
    selector2_target: {MS2}
  - name: newsletters
    provider: sendgrid
    account: u1234567
    link: wl123
dmarc: {{stage: reject, rua: mailto:d@example.com}}
"""


class Keys:
    def public_key(self, domain: str, key: DkimKey) -> str:
        return placeholder_public_key(key.algorithm, key.bits)


def compile_text(text: str, resolver: Resolver | None) -> CompileResult:
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    return compile_policy(lp, load_catalog(), Keys(), resolver, now=NOW)


def rows(result: CompileResult) -> dict[str, object]:
    return {r.sender: r for r in result.details.alignment}


def test_a_key_at_the_target_passes_and_none_is_unverified() -> None:
    # Microsoft publishes both keys; SendGrid has not enabled signing (NXDOMAIN).
    resolver = StaticResolver({(MS1, "TXT"): [KEY_RECORD], (MS2, "TXT"): [KEY_RECORD]})
    result = compile_text(POLICY, resolver)
    office, newsletters = rows(result)["office"], rows(result)["newsletters"]
    assert office.verdict is Verdict.DKIM
    assert newsletters.verdict is Verdict.UNVERIFIED
    no_key = [f for f in result.findings if f.code == "dkim-target-no-key"]
    assert sorted(f.message.split(" points at ")[1].split(",")[0] for f in no_key) == [SG1, SG2]
    assert all("NXDOMAIN" in f.message and f.location.line == 7 for f in no_key)  # type: ignore[union-attr]
    assert all("console" in (f.hint or "") for f in no_key)
    (align,) = [f for f in result.findings if f.code == "align-dkim-unverified"]
    assert "'newsletters'" in align.message and "not at all" in align.message
    # explain: "pass via DKIM" only for the verified one; "unverified" otherwise.
    lp = parse_policy(POLICY, "mail/example.com.yaml", "example.com")
    text = report.text(report.build(lp, result))
    table = text.split("DMARC alignment")[1].split("DMARC stage")[0]
    (office_line,) = [ln for ln in table.splitlines() if ln.strip().startswith("office")]
    (news_line,) = [ln for ln in table.splitlines() if ln.strip().startswith("newsletters")]
    assert office_line.rstrip().endswith("pass via DKIM")
    assert news_line.rstrip().endswith("unverified") and "pass via DKIM" not in news_line
    # At reject the stage is not "fully enforced" while a sender is unverified.
    stage = text.split("DMARC stage:")[1]
    assert "fully enforced" not in stage and "newsletters" in stage
    # Once SendGrid publishes its keys, everything passes and nothing warns.
    both = StaticResolver({(n, "TXT"): [KEY_RECORD] for n in (MS1, MS2, SG1, SG2)})
    result = compile_text(POLICY, both)
    assert {r.verdict for r in rows(result).values()} == {Verdict.DKIM}
    assert not [
        f for f in result.findings if f.code.startswith(("dkim-target", "align-dkim-unverified"))
    ]


@pytest.mark.parametrize(
    "answers, status, detail",
    [
        ([], TargetStatus.NO_KEY, "no TXT record"),
        (["v=spf1 -all"], TargetStatus.NO_KEY, "no usable DKIM key record"),
        (["v=DKIM1; k=rsa; p="], TargetStatus.NO_KEY, "revoked"),
        ([KEY_RECORD], TargetStatus.VERIFIED, "rsa key"),
    ],
)
def test_what_counts_as_a_key(answers: list[str], status: TargetStatus, detail: str) -> None:
    resolver = StaticResolver({("t.example", "TXT"): answers}, nodata_names=["t.example"])
    got, text, _ = check_target(resolver, "t.example", "the vendor")
    assert got is status and detail in text


class Failing(Resolver):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def query(self, name: str, rdtype: str) -> list[str]:
        raise DnsError(name, rdtype, self.kind)


@pytest.mark.parametrize("kind", ["servfail", "timeout", "missing"])
def test_unknown_is_unverified_never_no_key(kind: str) -> None:
    status, _, _ = check_target(Failing(kind), "t.example", "the vendor")
    assert status is TargetStatus.UNKNOWN


def test_without_a_lock_every_target_is_unverified() -> None:
    result = compile_text(POLICY, None)
    assert {r.verdict for r in rows(result).values()} == {Verdict.UNVERIFIED}
    unverified = [f for f in result.findings if f.code == "dkim-target-unverified"]
    assert len(unverified) == 4 and all("no lock file" in f.message for f in unverified)
    assert {f.cause for f in unverified} == {NO_LOCK}  # the processor says it once per run
    assert all("refresh" in (f.hint or "") for f in unverified)


def test_own_keys_beside_a_provider_are_verified_by_themselves() -> None:
    text = POLICY.replace(
        "    link: wl123\n",
        "    link: wl123\n    dkim: {selector: news2026, algorithm: rsa}\n",
    )
    result = compile_text(text, StaticResolver({(n, "TXT"): [KEY_RECORD] for n in (MS1, MS2)}))
    assert rows(result)["newsletters"].verdict is Verdict.DKIM
    # ... the CNAMEs that lead nowhere are still reported.
    assert len([f for f in result.findings if f.code == "dkim-target-no-key"]) == 2


def test_lock_refresh_records_the_key_each_target_reaches(tmp_path: Path) -> None:
    lp = parse_policy(POLICY, "mail/example.com.yaml", "example.com")
    live = StaticResolver(
        {
            (MS1, "TXT"): [KEY_RECORD],
            (MS2, "TXT"): [KEY_RECORD],
            ("spf.protection.outlook.com", "TXT"): ["v=spf1 ip4:40.92.0.0/15 -all"],
            ("sendgrid.net", "TXT"): ["v=spf1 ip4:167.89.0.0/17 ~all"],
        }
    )
    path = tmp_path / "spf-lock.json"
    walk = functools.partial(walk_dns, [lp], load_catalog())
    diff = refresh_lock(walk, path, live, now=NOW)
    assert not diff.failures, diff.failures
    lock = SpfLock.load(path)
    assert lock.entries[MS1].answers["TXT"] == [KEY_RECORD]
    assert lock.entries[SG1].nxdomain and lock.entries[SG2].nxdomain
    # Offline from that lock, the verdicts are the live ones.
    result = compile_text(POLICY, LockResolver(lock))
    assert rows(result)["office"].verdict is Verdict.DKIM
    assert rows(result)["newsletters"].verdict is Verdict.UNVERIFIED
    # A lock from before DKIM targets were recorded: unverified, "refresh".
    del lock.entries[MS1]
    result = compile_text(POLICY, LockResolver(lock))
    (f,) = [f for f in result.findings if f.code == "dkim-target-unverified"]
    assert MS1 in f.message and "refresh" in (f.hint or "")
    assert f.cause is None  # this lock lacks the name: a fact of this policy's
    assert rows(result)["office"].verdict is Verdict.DKIM  # selector2 still verifies


ED_ONLY = """\
senders:
  - name: outbound
    ip4: [192.0.2.31]
    dkim: {selector: mx2026, algorithm: ed25519}
dmarc: {policy: POLICY, rua: mailto:d@example.com}
"""


@pytest.mark.parametrize(
    "policy, warned", [("reject", True), ("quarantine", True), ("none", False)]
)
def test_ed25519_only_at_enforcement_warns_with_the_fix(policy: str, warned: bool) -> None:
    result = compile_text(ED_ONLY.replace("POLICY", policy), StaticResolver({}))
    found = [f for f in result.findings if f.code == "align-ed25519-only"]
    assert bool(found) is warned
    if warned:
        (f,) = found
        assert f.severity.value == "warning" and "'outbound'" in f.message
        assert "algorithm: rsa" in (f.hint or "") and "senders[0].dkim" in (f.hint or "")


@pytest.mark.parametrize(
    "dkim",
    [
        "[{selector: mx2026, algorithm: ed25519}, {selector: mx2026r, algorithm: rsa}]",
        "{rotate: 90d, prefix: mx, algorithms: [ed25519, rsa]}",
    ],
)
def test_dual_signing_is_not_warned(dkim: str) -> None:
    text = ED_ONLY.replace("POLICY", "reject").replace(
        "{selector: mx2026, algorithm: ed25519}", dkim
    )
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    result = compile_policy(lp, load_catalog(), Keys(), StaticResolver({}), now=NOW)
    assert "align-ed25519-only" not in {f.code for f in result.findings}


def test_lock_refresh_is_the_name_and_spf_refresh_its_alias() -> None:
    from octodns_mailauth.cli import build_parser

    parser = build_parser()
    for name in ("lock", "spf"):
        args = parser.parse_args([name, "refresh", "--nameserver", "127.0.0.1:53"])
        assert args.spf_command == "refresh" and args.nameserver == "127.0.0.1:53"
    assert "lock refresh" in REFRESH_COMMAND


HOUSE = """\
id: house
name: House Mailer
docs: https://house.example/dns
params:
  key_id:
    type: token
    required: true
    pattern: '^[a-z0-9]+$'
    help: the key id the mailer shows under Settings
spf_include: spf.house.example
dkim:
  d: '{domain}'
  default_d: house.example
  records:
    - {name: house._domainkey, type: CNAME, value: '{key_id}.keys.{domain}.'}
return_path:
  default: bounces.house.example
"""


def test_a_target_under_the_domain_is_answered_by_the_zone(tmp_path: Path) -> None:
    """A delegated selector whose target is in our own zone: the zone answers it,
    never the lock (which holds third-party names only; this one has a key there)."""
    (tmp_path / "house.yaml").write_text(HOUSE)
    text = "senders:\n  - {name: crm, provider: house, key_id: k42}\ndmarc: {stage: monitor}\n"
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    target = "k42.keys.example.com"
    lock = StaticResolver({(target, "TXT"): [KEY_RECORD]})

    def verdict(zone: dict[tuple[str, str], tuple[str, ...]]) -> tuple[object, list[str]]:
        result = compile_policy(lp, load_catalog([tmp_path]), Keys(), lock, zone)
        codes = [f.code for f in result.findings if f.code.startswith("dkim-target")]
        return rows(result)["crm"].verdict, codes  # type: ignore[attr-defined]

    apex = {("example.com", "NS"): ("ns1.example.com.",)}
    assert verdict({**apex, (target, "TXT"): (KEY_RECORD,)}) == (Verdict.DKIM, [])
    assert verdict(apex) == (Verdict.UNVERIFIED, ["dkim-target-no-key"])  # NXDOMAIN
    assert verdict({}) == (Verdict.UNVERIFIED, ["dkim-target-unverified"])  # zone not known
    # Without a lock file too: what it waits for is the zone, not the lock.
    alone = compile_policy(lp, load_catalog([tmp_path]), Keys(), None, {})
    (f,) = [f for f in alone.findings if f.code == "dkim-target-unverified"]
    assert f.cause is None and "no lock file" not in f.message
    # The hint points at the zone: a lock refresh never records a name under the domain.
    assert "lock refresh" not in (f.hint or "") and "config_file" in (f.hint or "")


def test_a_senders_target_outside_the_domain_is_the_locks_beside_one_in_the_zone(
    tmp_path: Path,
) -> None:
    """A sender with one target under the domain and one outside it: the zone
    answers the first, the lock the second (not the zone, and "no lock file" only
    when there is none)."""
    two = "    - {name: house2._domainkey, type: CNAME, value: '{key_id}.keys.house.example.'}\n"
    (tmp_path / "house.yaml").write_text(HOUSE.replace("return_path:", two + "return_path:"))
    text = "senders:\n  - {name: crm, provider: house, key_id: k42}\ndmarc: {stage: monitor}\n"
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    zone = {("example.com", "NS"): ("ns1.example.com.",)}
    zone[("k42.keys.example.com", "TXT")] = (KEY_RECORD,)
    outside = "k42.keys.house.example"

    def targets(resolver: Resolver | None) -> list[tuple[str, str | None]]:
        result = compile_policy(lp, load_catalog([tmp_path]), Keys(), resolver, zone)
        assert rows(result)["crm"].verdict is Verdict.DKIM  # type: ignore[attr-defined]
        return [(f.message, f.cause) for f in result.findings if f.code.startswith("dkim-t")]

    assert targets(StaticResolver({(outside, "TXT"): [KEY_RECORD]})) == []  # the lock's key
    (unanswered,) = targets(Failing("missing"))
    assert (
        f"{outside} (for house2._domainkey.example.com) is unverified: no answer in DNS"
        in (unanswered[0])
    )
    assert unanswered[1] is None
    (no_lock,) = targets(None)
    hints = [
        f.hint
        for f in compile_policy(lp, load_catalog([tmp_path]), Keys(), None, zone).findings
        if f.code == "dkim-target-unverified"
    ]
    assert len(hints) == 1 and "lock refresh" in (hints[0] or "")  # the outside target's
    assert no_lock[0].endswith("is unverified: no lock file") and outside in no_lock[0]
    assert no_lock[1] == NO_LOCK  # said once per run by the processor
