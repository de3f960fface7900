"""The SPF lock file: format, offline answers, open_lock, refresh and its diff."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from octodns_mailauth.errors import MailAuthError
from octodns_mailauth.policy import load_policy_dir, parse_policy
from octodns_mailauth.resolver import DnsError, StaticResolver
from octodns_mailauth.spf.lock import (
    LockResolver,
    SpfLock,
    open_lock,
    refresh_lock,
)

ROOT = Path(__file__).resolve().parent.parent
T1 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T2 = datetime(2026, 2, 1, tzinfo=timezone.utc)

POLICY = "senders:\n  - {name: esp, include: [esp.example]}\n  - {name: own, a: true}\n"


def upstream(esp: str, leaf: str) -> StaticResolver:
    return StaticResolver(
        {
            ("esp.example", "TXT"): [esp],
            ("leaf.esp.example", "TXT"): [leaf],
            ("example.com", "A"): ["192.0.2.80"],
        }
    )


def policies() -> list:
    return [parse_policy(POLICY, "mail/example.com.yaml", "example.com")]


def test_refresh_writes_what_the_tree_needs_and_diffs_upstream(tmp_path: Path) -> None:
    path = tmp_path / "spf-lock.json"
    first = refresh_lock(
        policies(),
        path,
        upstream("v=spf1 include:leaf.esp.example ~all", "v=spf1 ip4:192.0.2.0/24 ~all"),
        now=T1,
    )
    assert {c.name for c in first.changes} == {"esp.example", "leaf.esp.example"}
    lock = SpfLock.load(path)
    assert set(lock.entries) == {"esp.example", "leaf.esp.example"}  # own names stay out
    assert lock.entries["leaf.esp.example"].resolved == T1
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["refreshed"] == "2026-01-01T00:00:00Z"
    assert not [p for p in tmp_path.iterdir() if p.name != "spf-lock.json"]  # no temp left
    assert oct(path.stat().st_mode & 0o777) == "0o644"

    second = refresh_lock(
        policies(),
        path,
        upstream(
            "v=spf1 include:leaf.esp.example ~all",
            "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
        ),
        now=T2,
    )
    (change,) = second.changes
    assert change.name == "leaf.esp.example"
    assert change.added == ["ip6:2001:db8::/32"] and change.removed == []
    rendered = "\n".join(second.render())
    assert "~ leaf.esp.example" in rendered and "+ ip6:2001:db8::/32" in rendered

    third = refresh_lock(
        policies(), path, upstream("v=spf1 ip4:198.51.100.0/24 ~all", "unused"), now=T2
    )
    names = {c.name: c for c in third.changes}
    assert names["leaf.esp.example"].after is None  # no longer needed
    assert names["esp.example"].added == ["ip4:198.51.100.0/24"]
    assert "leaf.esp.example" not in SpfLock.load(path).entries


def test_refresh_keeps_old_answers_when_dns_fails(tmp_path: Path) -> None:
    path = tmp_path / "spf-lock.json"
    refresh_lock(policies(), path, upstream("v=spf1 ip4:192.0.2.0/24 ~all", ""), now=T1)

    class Down(StaticResolver):
        def query(self, name: str, rdtype: str) -> list[str]:
            if name == "esp.example":
                raise DnsError(name, rdtype, "timeout")
            return super().query(name, rdtype)

    diff = refresh_lock(policies(), path, Down({}), now=T2)
    assert diff.failures and "timeout" in diff.failures[0]
    kept = SpfLock.load(path).entries["esp.example"]
    assert kept.resolved == T1 and kept.answers["TXT"] == ["v=spf1 ip4:192.0.2.0/24 ~all"]


def test_lock_resolver_answers_nodata_nxdomain_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "refreshed": "2026-01-01T00:00:00Z",
                "answers": {
                    "a.example": {
                        "resolved": "2026-01-01T00:00:00Z",
                        "TXT": [],
                        "A": ["192.0.2.1"],
                    },
                    "gone.example": {"resolved": "2026-01-01T00:00:00Z", "nxdomain": True},
                },
            }
        )
    )
    res = LockResolver(SpfLock.load(path))
    assert res.query("A.Example.", "a") == ["192.0.2.1"]
    assert res.query("a.example", "TXT") == []
    with pytest.raises(DnsError) as nx:
        res.query("gone.example", "TXT")
    assert nx.value.kind == "nxdomain"
    with pytest.raises(DnsError) as miss:
        res.query("a.example", "MX")
    assert miss.value.kind == "missing" and str(path) in str(miss.value)
    assert res.missing == {("a.example", "MX")}
    assert res.resolved_at("a.example") == T1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", ["l.json:1", "not valid JSON", "spf refresh"]),
        ('{"version": 9}', ["not an SPF lock file of version 1"]),
        ('{"version": 1, "answers": {"x.example": {"TXT": []}}}', ["answers.x.example"]),
        (
            '{"version": 1, "answers": {"x.example": {"resolved": "soon"}}}',
            ["'soon' is not an ISO 8601 time"],
        ),
    ],
)
def test_broken_lock_files_are_clear_errors(
    tmp_path: Path, content: str, expected: list[str]
) -> None:
    path = tmp_path / "l.json"
    path.write_text(content)
    with pytest.raises(MailAuthError) as info:
        SpfLock.load(path)
    for part in expected:
        assert part in str(info.value)


def test_open_lock_default_explicit_and_absent(tmp_path: Path) -> None:
    assert open_lock(None, tmp_path) is None  # no lock yet: not an error
    (tmp_path / "spf-lock.json").write_text('{"version": 1, "answers": {}}')
    default = open_lock(None, tmp_path)
    assert isinstance(default, LockResolver) and default.path == tmp_path / "spf-lock.json"
    with pytest.raises(MailAuthError) as info:
        open_lock(tmp_path / "elsewhere.json", tmp_path)
    assert "elsewhere.json does not exist" in str(info.value)


def test_example_lock_covers_the_example_offline() -> None:
    """zones/mail/spf-lock.json holds every include of the example policies, so
    their trees are analysed in full with no network."""
    from test_spf_step import NoKeys

    from octodns_mailauth.catalog import load_catalog
    from octodns_mailauth.compile import compile_policy
    from octodns_mailauth.spf import LookupTree

    lock = open_lock(None, ROOT / "zones" / "mail")
    assert isinstance(lock, LockResolver)
    for lp in load_policy_dir(ROOT / "zones" / "mail"):
        result = compile_policy(lp, load_catalog([]), NoKeys(), lock)
        assert not [f for f in result.findings if f.code == "spf-lock-missing"], lp.domain
        tree = result.details.get("spf")
        if result.details.get("parked"):
            continue  # a parked domain publishes v=spf1 -all, nothing to follow
        assert isinstance(tree, LookupTree)
        for node in tree.walk():
            if node.via and node.via.startswith("include:"):
                assert node.record is not None, node.via
    assert not lock.missing
    assert os.path.basename(lock.path) == "spf-lock.json"
