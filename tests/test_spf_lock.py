"""The SPF lock file: format, offline answers, open_lock, refresh and its diff."""

from __future__ import annotations

import functools
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from static_resolver import StaticResolver

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.cli.spf import diff_lines
from octodns_mailauth.compile import _NoKeys, compile_policy, walk_dns
from octodns_mailauth.dns.lockfile import (
    LOCK_VERSION,
    LockEntry,
    LockError,
    LockResolver,
    RecordingResolver,
    SpfLock,
    open_lock,
)
from octodns_mailauth.dns.resolver import DnsError
from octodns_mailauth.errors import MailAuthError
from octodns_mailauth.policy.loader import load_policy_dir, parse_policy
from octodns_mailauth.spf.refresh import Walk, refresh_lock

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


def walk(text: str = POLICY) -> Walk:
    """The policy walked as `spf refresh` walks it."""
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    return functools.partial(walk_dns, [lp], load_catalog([]))


def policies() -> Walk:
    return walk(POLICY)


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
    assert data["version"] == LOCK_VERSION == 2 and data["refreshed"] == "2026-01-01T00:00:00Z"
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
    rendered = "\n".join(diff_lines(second))
    assert "~ leaf.esp.example" in rendered and "+ ip6:2001:db8::/32" in rendered

    third = refresh_lock(
        policies(), path, upstream("v=spf1 ip4:198.51.100.0/24 ~all", "unused"), now=T2
    )
    names = {c.name: c for c in third.changes}
    assert names["leaf.esp.example"].after is None  # no longer needed
    assert names["esp.example"].added == ["ip4:198.51.100.0/24"]
    assert "leaf.esp.example" not in SpfLock.load(path).entries


def test_a_refresh_removes_the_temp_file_a_killed_one_left(tmp_path: Path) -> None:
    path = tmp_path / "spf-lock.json"
    stale = tmp_path / ".spf-lock.json.0123456789abcdef.tmp"  # as atomic_write names it
    stale.write_text('{"version": 2, "answ')
    other = tmp_path / ".dkim-state.yaml.0123456789abcdef.tmp"  # another file's: not ours
    other.write_text("x")
    answers = upstream("v=spf1 include:leaf.esp.example ~all", "v=spf1 ip4:192.0.2.0/24 ~all")
    assert refresh_lock(policies(), path, answers, now=T1).written
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, path.name]
    assert SpfLock.load(path).refreshed == T1


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


def test_a_lock_written_by_hand_reads_types_in_any_case(tmp_path: Path) -> None:
    """Types are upper-cased as read; `nxdomain` is a flag (true or false), never a type."""
    path = tmp_path / "l.json"
    answers = {
        "a.example": {"resolved": "2026-01-01T00:00:00Z", "txt": ["v=spf1 -all"], "Mx": []},
        "b.example": {"resolved": "2026-01-01T00:00:00Z", "nxdomain": False, "A": []},
        "C.Example.": {"nxdomain": True, "resolved": "2026-01-01T00:00:00Z"},
    }
    path.write_text(json.dumps({"version": 2, "answers": answers}))
    entries = SpfLock.load(path).entries
    assert entries == {
        "a.example": LockEntry(T1, False, {"TXT": ["v=spf1 -all"], "MX": []}),
        "b.example": LockEntry(T1, False, {"A": []}),
        "c.example": LockEntry(T1, True, {}),
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", ["l.json:1", "not valid JSON", "lock refresh"]),
        ('{"answers": {}}', ["l.json: not an SPF lock file", "found None", "--rebuild"]),
        ('{"version": "2"}', ["not an SPF lock file", "found '2'", "--rebuild"]),
        ('{"version": 0}', ["not an SPF lock file", "from 1 to 2, found 0"]),
        ('{"version": 1, "answers": {"x.example": {"TXT": []}}}', ["answers.x.example"]),
        (
            '{"version": 1, "answers": {"x.example": {"resolved": "soon"}}}',
            ["'soon' is not an ISO 8601 time"],
        ),
        (
            '{"version": 1, "answers": {"x.example": {"resolved": "2026-01-01T00:00:00Z",'
            ' "txt": [], "A": ["192.0.2.1", 7]}}}',
            ["answers.x.example.A: expected a list of strings"],
        ),
        (
            '{"version": 1, "answers": {"x.example": {"resolved": "2026-01-01T00:00:00Z",'
            ' "TXT": "v=spf1 -all"}}}',
            ["answers.x.example.TXT: expected a list of strings"],
        ),
        ('{"version": 1, "answers": {"x.example": []}}', ["answers.x.example: expected an"]),
        (
            '{"version": 1, "answers": {"x.example": {"resolved": "2026-01-01T00:00:00Z",'
            ' "nxdomain": "yes"}}}',
            ["answers.x.example.nxdomain: expected true or false"],
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
    from octodns_mailauth.spf.lookups import LookupTree

    lock = open_lock(None, ROOT / "zones" / "mail")
    assert isinstance(lock, LockResolver)
    policies = load_policy_dir(ROOT / "zones" / "mail")
    followed = 0
    for lp in policies:
        result = compile_policy(lp, load_catalog([]), NoKeys(), lock)
        assert not [f for f in result.findings if f.code == "spf-lock-missing"], lp.domain
        tree = result.details.spf
        if result.details.parked:
            continue  # a parked domain publishes v=spf1 -all, nothing to follow
        assert isinstance(tree, LookupTree)
        for node in tree.walk():
            if node.via and node.via.startswith("include:"):
                assert node.record is not None, node.via
                followed += 1
    assert len(policies) >= 3 and followed >= 5  # the example really has includes to follow
    assert not lock.missing
    assert os.path.basename(lock.path) == "spf-lock.json"


# --- a refresh that partly fails -------------------------------------------------------------

NESTED = """\
senders:
  - {name: esp, include: [esp.example]}
  - {name: crm, include: [crm.example]}
"""
HEALTHY = {
    ("esp.example", "TXT"): ["v=spf1 include:leaf.esp.example a:mx.esp.example ~all"],
    ("leaf.esp.example", "TXT"): ["v=spf1 include:gone.esp.example ip4:192.0.2.0/24 ~all"],
    ("mx.esp.example", "A"): ["192.0.2.25"],
    ("crm.example", "TXT"): ["v=spf1 ip4:198.51.100.0/24 ~all"],
}


class FailsFor(StaticResolver):
    """Upstream DNS where some (name, type) pairs time out; counts what it was asked."""

    def __init__(self, data: dict, failing: set[tuple[str, str]]) -> None:
        super().__init__(data)
        self.failing = failing
        self.asked: list[tuple[str, str]] = []

    def query(self, name: str, rdtype: str) -> list[str]:
        self.asked.append((name, rdtype))
        if (name, rdtype) in self.failing:
            raise DnsError(name, rdtype, "timeout", "test")
        return super().query(name, rdtype)


def nested_policies() -> Walk:
    return walk(NESTED)


def test_failed_include_keeps_the_whole_old_subtree_below_it(tmp_path: Path) -> None:
    path = tmp_path / "spf-lock.json"
    refresh_lock(nested_policies(), path, FailsFor(HEALTHY, set()), now=T1)
    first = SpfLock.load(path)
    # gone.esp.example is NXDOMAIN: recorded, and kept below the failure too.
    assert first.entries["gone.esp.example"].nxdomain
    assert set(first.entries) == {
        "esp.example",
        "leaf.esp.example",
        "gone.esp.example",
        "mx.esp.example",
        "crm.example",
    }

    # crm changes upstream and answers; esp.example times out.
    changed = {**HEALTHY, ("crm.example", "TXT"): ["v=spf1 ip4:203.0.113.0/24 ~all"]}
    upstream = FailsFor(changed, {("esp.example", "TXT")})
    diff = refresh_lock(nested_policies(), path, upstream, now=T2)
    # The names only reachable through esp.example were never asked this time...
    assert ("leaf.esp.example", "TXT") not in upstream.asked
    lock = SpfLock.load(path)
    # ...and yet every old entry under it is still there, with its old time.
    for name in ("esp.example", "leaf.esp.example", "gone.esp.example", "mx.esp.example"):
        assert name in lock.entries, name
        assert lock.entries[name].resolved == T1, name
        assert lock.entries[name].answers == first.entries[name].answers
        assert lock.entries[name].nxdomain == first.entries[name].nxdomain
    # What did answer is current.
    assert lock.entries["crm.example"].resolved == T2
    assert lock.entries["crm.example"].answers["TXT"] == ["v=spf1 ip4:203.0.113.0/24 ~all"]
    # The refresh was partial: `refreshed` stays where the last complete one left it.
    assert lock.refreshed == T1 and diff.refreshed == T1
    # The diff shows the real upstream change and no invented removals.
    assert [c.name for c in diff.changes] == ["crm.example"]
    assert diff.kept == ["gone.esp.example", "leaf.esp.example", "mx.esp.example"]
    text = "\n".join(diff_lines(diff))
    assert "esp.example failed: timeout" in text and "keeping the old answer" in text
    assert "leaf.esp.example" in text and "not advanced" in text
    # Offline, the kept lock still answers the whole tree: nothing is missing.
    resolver = LockResolver(lock)
    from octodns_mailauth.spf.lookups import analyze

    tree = analyze("esp.example", resolver)
    assert not resolver.missing and tree.total == 3


def test_failed_address_lookup_keeps_only_that_type(tmp_path: Path) -> None:
    path = tmp_path / "spf-lock.json"
    refresh_lock(nested_policies(), path, FailsFor(HEALTHY, set()), now=T1)
    diff = refresh_lock(
        nested_policies(), path, FailsFor(HEALTHY, {("mx.esp.example", "A")}), now=T2
    )
    lock = SpfLock.load(path)
    assert lock.entries["mx.esp.example"].answers["A"] == ["192.0.2.25"]
    assert lock.entries["mx.esp.example"].resolved == T1
    assert lock.entries["esp.example"].resolved == T2  # answered this time
    assert diff.kept == [] and lock.refreshed == T1


def test_refresh_with_every_lookup_failing_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "spf-lock.json"
    refresh_lock(nested_policies(), path, FailsFor(HEALTHY, set()), now=T1)
    before = path.read_bytes()
    down = {(n, t) for n, t in HEALTHY} | {("gone.esp.example", "TXT")}
    diff = refresh_lock(nested_policies(), path, FailsFor(HEALTHY, down), now=T2)
    assert path.read_bytes() == before
    assert not diff.written and diff.refreshed == T1 and not diff.changes
    assert len(diff.failures) == 2  # esp.example and crm.example; nothing below was asked
    assert "left unchanged" in "\n".join(diff_lines(diff))
    # With no lock yet, nothing is created either.
    fresh = tmp_path / "new" / "spf-lock.json"
    fresh.parent.mkdir()
    diff = refresh_lock(nested_policies(), fresh, FailsFor(HEALTHY, down), now=T2)
    assert not fresh.exists() and not diff.written
    assert "the lock had no answer for it" in diff.failures[0]


def test_cli_refresh_against_a_dead_nameserver_keeps_the_lock(example: Path) -> None:
    """The reviewer's repro: nothing answers on the named port."""
    import socket
    import subprocess
    import sys

    lock = example / "zones/mail/spf-lock.json"
    before = lock.read_bytes()
    assert "_netblocks.google.com" in json.loads(before)["answers"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never read: every query times out
        ns = f"127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.run(
            [
                str(Path(sys.executable).parent / "octodns-mailauth"),
                *("spf", "refresh", "--config", "zones/config.yaml"),
                *("--nameserver", ns, "--timeout", "0.3"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "lookup(s) failed" in proc.stderr and ns in proc.stderr
    assert lock.read_bytes() == before  # not one byte rewritten
    assert "left unchanged" in proc.stdout
    for name in ("_netblocks.google.com", "_netblocks2.google.com", "ab.sendgrid.net"):
        assert name in proc.stdout  # named as kept


# --- versions ---------------------------------------------------------------------------------

V1_LOCK = {
    "version": 1,
    "about": "written before the lock format had a version 2",
    "refreshed": "2026-01-01T00:00:00Z",
    "answers": {
        "esp.example": {
            "resolved": "2026-01-01T00:00:00Z",
            "TXT": ["v=spf1 include:leaf.esp.example ~all"],
        },
        "leaf.esp.example": {
            "resolved": "2026-01-01T00:00:00Z",
            "TXT": ["v=spf1 ip4:192.0.2.0/24 ~all"],
        },
        "gone.example": {"resolved": "2026-01-01T00:00:00Z", "nxdomain": True},
    },
}


def test_a_version_1_lock_is_read_and_the_next_refresh_writes_version_2(tmp_path: Path) -> None:
    path = tmp_path / "spf-lock.json"
    path.write_text(json.dumps(V1_LOCK, indent=1))
    lock = SpfLock.load(path)
    assert lock.refreshed == T1
    assert set(lock.entries) == {"esp.example", "leaf.esp.example", "gone.example"}
    res = LockResolver(lock)
    assert res.query("leaf.esp.example", "TXT") == ["v=spf1 ip4:192.0.2.0/24 ~all"]
    with pytest.raises(DnsError) as nx:
        res.query("gone.example", "TXT")
    assert nx.value.kind == "nxdomain"
    # Reading migrates in memory only: the file is the user's until a refresh.
    assert json.loads(path.read_text())["version"] == 1

    # Upstream unchanged: the refresh keeps every answer (only the name no policy
    # asks for goes) and writes version 2.
    diff = refresh_lock(
        policies(),
        path,
        upstream("v=spf1 include:leaf.esp.example ~all", "v=spf1 ip4:192.0.2.0/24 ~all"),
        now=T2,
    )
    assert diff.written and [c.name for c in diff.changes] == ["gone.example"], diff_lines(diff)
    data = json.loads(path.read_text())
    assert data["version"] == 2
    assert data["answers"]["leaf.esp.example"]["TXT"] == ["v=spf1 ip4:192.0.2.0/24 ~all"]
    again = SpfLock.load(path)
    assert again.refreshed == T2


def test_a_version_1_lock_that_lacks_dkim_targets_reads_them_as_unverified(
    tmp_path: Path,
) -> None:
    """Version 1 locks from before DKIM targets were recorded: the target is
    "missing" (unverified, refresh), never "no key"."""
    from test_spf_step import NoKeys

    from octodns_mailauth.compile import compile_policy

    path = tmp_path / "spf-lock.json"
    path.write_text(json.dumps(V1_LOCK))
    text = "senders:\n  - {name: news, provider: sendgrid, account: u1, link: wl2}\n"
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    result = compile_policy(lp, load_catalog([]), NoKeys(), LockResolver(SpfLock.load(path)))
    codes = {f.code for f in result.findings}
    assert "dkim-target-unverified" in codes and "dkim-target-no-key" not in codes


@pytest.mark.parametrize("version", [3, 17])
def test_a_lock_from_a_newer_release_is_refused_with_what_to_do(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "spf-lock.json"
    content = json.dumps({**V1_LOCK, "version": version, "answers": {}, "new": {"x": 1}})
    path.write_text(content)
    with pytest.raises(LockError) as info:
        SpfLock.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: lock file version {version} was written by a newer")
    assert "reads versions 1 to 2" in message
    assert "Upgrade octodns-mailauth" in message and "lock refresh --rebuild" in message
    # Nobody rewrites it behind the user's back: a refresh refuses too...
    with pytest.raises(LockError):
        refresh_lock(policies(), path, upstream("v=spf1 ~all", ""), now=T2)
    assert path.read_text() == content
    # ...unless told to rebuild it.
    diff = refresh_lock(policies(), path, upstream("v=spf1 ~all", ""), now=T2, rebuild=True)
    assert diff.rebuilt and f"version {version}" in diff.rebuilt
    assert json.loads(path.read_text())["version"] == 2


def test_the_cli_names_the_newer_lock_and_exits_without_a_traceback(tmp_path: Path) -> None:
    from cli_run import cli

    mail = tmp_path / "mail"
    mail.mkdir()
    (mail / "example.com.yaml").write_text(POLICY)
    (mail / "spf-lock.json").write_text('{"version": 3, "answers": {}}')
    for args in (["validate"], ["explain", "example.com"]):
        proc = cli(*args, "--policies", str(mail))
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out
        assert "Traceback" not in out
        assert f"{mail / 'spf-lock.json'}: lock file version 3 was written by a newer" in out


def test_the_walk_asks_what_whole_compiles_ask() -> None:
    """walk_dns runs the compile steps up to the last that asks DNS and shares SPF
    subtrees between policies: it must still ask what compiling each whole policy
    alone asks, or the lock would lack answers the compile needs."""
    policies = load_policy_dir(ROOT / "zones/mail")
    catalog = load_catalog([])
    lock = SpfLock.load(ROOT / "zones/mail/spf-lock.json")
    whole, walked = RecordingResolver(LockResolver(lock)), RecordingResolver(LockResolver(lock))
    for lp in policies:
        compile_policy(lp, catalog, _NoKeys(), whole)
    assert walk_dns(policies, catalog, walked) == {lp.domain for lp in policies}
    assert walked.asked == whole.asked
    assert {name for name, _ in whole.asked} >= {"spf.protection.outlook.com", "sendgrid.net"}
