"""`spf refresh` as data: walk the policies through live DNS, record what they
depend on, rewrite the lock and return what changed upstream (a LockDiff; the
CLI renders it).

A refresh distrusts its resolver where a bad one would do harm:
- a failed lookup (SERVFAIL, timeout) keeps the old answer and everything the
  old answer led to, and does not advance `refreshed`;
- a name that answered before and now answers NXDOMAIN, nothing, or not the
  record it gave (what captive or filtering DNS does) is treated the same way
  unless `accept_gone`: an SPF include that has no SPF record any more, and a
  delegated DKIM target that has no DKIM key record any more, alike;
- an include that, flattened, would authorise far more addresses than before
  holds the whole refresh for review unless `accept_widening`;
- a lock that cannot be read is an error unless `rebuild`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..dkim.keys import DkimKeyError
from ..dns.lockfile import (
    LockEntry,
    LockError,
    LockResolver,
    RecordingResolver,
    SpfLock,
    lock_from_recording,
)
from ..dns.resolver import DnsError, Resolver
from ..names import normalize
from ..records.dkim import parse_key_record
from ..records.spf import SpfSyntaxError, parse, select_records
from .flatten import flatten_include
from .lookups import analyze

# Walks the policies through the resolver it is given (compiles them, in
# practice) and returns their own domains, whose names the lock never holds.
Walk = Callable[[Resolver], Iterable[str]]

# A flattened include is held for review when its address count at least doubles
# and grows by at least a /16 (IPv4) or a /24 (IPv6).
WIDEN_FACTOR = 2
WIDEN_MIN = {4: 2**16, 6: 2**104}


@dataclass
class RangeChange:
    """What changed upstream at one name (an include target)."""

    name: str
    added: list[str] = field(default_factory=list)  # ip4/ip6 ranges now listed
    removed: list[str] = field(default_factory=list)
    before: list[str] | None = None  # TXT answers before (None: not in the lock)
    after: list[str] | None = None  # TXT answers now (None: no longer needed)
    other: list[str] = field(default_factory=list)  # other changes, e.g. "A answers changed"


@dataclass
class LockDiff:
    path: Path
    changes: list[RangeChange] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # DNS errors, each saying what was kept
    gone: list[str] = field(default_factory=list)  # answered before, not now: old answer kept
    widened: list[str] = field(default_factory=list)  # includes held for review
    refreshed: datetime | None = None  # the lock's `refreshed` after this run
    kept: list[str] = field(default_factory=list)  # old entries kept below failed names
    written: bool = True  # False: the file was left as it was
    rebuilt: str | None = None  # why an unreadable lock was replaced


def _ranges(txts: list[str] | None) -> set[str]:
    try:
        text = select_records(txts or [])
        if text is None:
            return set()
        record = parse(text)
    except SpfSyntaxError:
        return set()
    return {
        f"{m.name}:{m.network}"
        for m in record.mechanisms
        if m.network is not None and m.qualifier == "+"
    }


def diff_locks(old: SpfLock | None, new: SpfLock) -> list[RangeChange]:
    old_entries = old.entries if old else {}
    changes: list[RangeChange] = []
    for name in sorted(set(old_entries) | set(new.entries)):
        before, after = old_entries.get(name), new.entries.get(name)
        if _same(before, after):
            continue  # most answers are as they were: nothing to compare
        b_txt = None if before is None else before.answers.get("TXT", [])
        a_txt = None if after is None else after.answers.get("TXT", [])
        change = RangeChange(name, before=b_txt, after=a_txt)
        if b_txt != a_txt:  # most answers are as they were: nothing to parse
            b_set, a_set = _ranges(b_txt), _ranges(a_txt)
            change.added = sorted(a_set - b_set)
            change.removed = sorted(b_set - a_set)
        if before is not None and after is not None:
            if before.nxdomain != after.nxdomain:
                change.other.append("now NXDOMAIN" if after.nxdomain else "exists again")
            for rdtype in sorted(set(before.answers) | set(after.answers)):
                x, y = before.answers.get(rdtype), after.answers.get(rdtype)
                if x is not None and y is not None and sorted(x) != sorted(y):
                    if rdtype != "TXT" or not (change.added or change.removed):
                        change.other.append(f"{rdtype}: {sorted(x)} -> {sorted(y)}")
        if before is None or after is None or change.added or change.removed or change.other:
            changes.append(change)
    return changes


def refresh_lock(
    walk: Walk,
    lock_path: str | Path,
    resolver: Resolver,
    *,
    now: datetime | None = None,
    accept_gone: bool = False,
    accept_widening: bool = False,
    rebuild: bool = False,
) -> LockDiff:
    """Resolve live everything `walk` asks, rewrite the lock atomically and
    return what changed upstream.

    A DNS failure hides more than the failed name: the includes below it are
    never asked.  So when a lookup fails (or a name is gone, see the module
    docstring), every old entry the new walk did not reach but the failed names
    lead to (per the old lock) is kept as it was, with its old `resolved` time,
    and `refreshed` is not advanced: the lock still says how old those answers
    are.  When nothing new was answered at all the file is left untouched."""
    now = now or datetime.now(timezone.utc)
    path = Path(lock_path)
    diff = LockDiff(path, refreshed=now)
    old: SpfLock | None = None
    if path.exists():
        try:
            old = SpfLock.load(path)
        except LockError as err:
            if not rebuild:
                raise
            diff.rebuilt = str(err)
    recorder = RecordingResolver(resolver)
    own = set(walk(recorder))
    new = lock_from_recording(path, recorder, now, exclude=own)
    failed = [(normalize(e.name), e.rdtype.upper()) for e in _unique_failures(recorder.failures)]
    for err in _unique_failures(recorder.failures):
        known = old is not None and normalize(err.name) in old.entries
        diff.failures.append(
            f"{err}; keeping the old answer"
            if known
            else f"{err}; the lock had no answer for it, so it still has none"
        )
    if old is not None and not accept_gone:
        for name, rdtype, now_answers in _gone(old, new):
            _drop(new, name, rdtype)
            failed.append((name, rdtype))
            diff.gone.append(
                f"{name} {rdtype}: answered before, now {now_answers}; kept the old answer "
                "(filtering or captive DNS answers like this; if the name is really gone, "
                "rerun with --accept-gone)"
            )
    answered = bool(new.entries)
    if failed:
        kept = _keep_old_subtrees(old, new, failed) if old else set()
        diff.kept = sorted(kept - {name for name, _ in failed})
        new.refreshed = old.refreshed if old else None  # this refresh was not complete
        diff.refreshed = new.refreshed
        if not answered:
            diff.written = False  # nothing answered: a rewrite could only lose information
            return diff
    diff.changes = diff_locks(old, new)
    if old is not None and not accept_widening:
        diff.widened = _widened(old, new)
        if diff.widened:
            diff.written = False
            diff.refreshed = old.refreshed
            return diff
    new.write()
    return diff


def _unique_failures(failures: list[DnsError]) -> list[DnsError]:
    """One failure per (name, type): several policies may ask the same name."""
    seen: dict[tuple[str, str], DnsError] = {}
    for err in failures:
        seen.setdefault((normalize(err.name), err.rdtype.upper()), err)
    return list(seen.values())


def _gone(old: SpfLock, new: SpfLock) -> list[tuple[str, str, str]]:
    """(name, type, what it answers now) for each answer that was there before and
    is not now: NXDOMAIN, no records, or (TXT) no longer the SPF record or DKIM
    key record it was."""
    out = []
    for name, before in sorted(old.entries.items()):
        after = new.entries.get(name)
        if after is None or before.nxdomain or _same(before, after):
            continue  # not asked this time (failed above it, or no longer needed), or as it was
        for rdtype, answers in sorted(before.answers.items()):
            was = _holds(rdtype, answers)
            if was is None:
                continue
            if after.nxdomain:
                out.append((name, rdtype, "NXDOMAIN"))
            elif rdtype in after.answers and _holds(rdtype, after.answers[rdtype]) is None:
                out.append((name, rdtype, f"no {was}" if rdtype == "TXT" else "no records"))
    return out


def _same(before: LockEntry | None, after: LockEntry | None) -> bool:
    """The same answers (when they were resolved aside)."""
    return (
        before is not None
        and after is not None
        and before.nxdomain == after.nxdomain
        and before.answers == after.answers
    )


def _holds(rdtype: str, answers: list[str]) -> str | None:
    """What the lock keeps this answer for, or None if it holds nothing of use: for
    TXT an SPF record (an include) or a DKIM key record (a delegated target, revoked
    keys included: an explicit answer, not what filtering DNS makes up)."""
    if rdtype != "TXT":
        return "records" if answers else None
    try:
        if select_records(answers) is not None:
            return "SPF record"
    except SpfSyntaxError:
        return "SPF record"  # two SPF records: still an answer
    for text in answers:
        try:
            parse_key_record(text)
        except DkimKeyError:
            continue
        return "DKIM key record"
    return None


def _drop(lock: SpfLock, name: str, rdtype: str) -> None:
    entry = lock.entries.get(name)
    if entry is None:
        return
    if entry.nxdomain:
        del lock.entries[name]
        return
    entry.answers.pop(rdtype, None)
    if not entry.answers:
        del lock.entries[name]


def _widened(old: SpfLock, new: SpfLock) -> list[str]:
    """Each name whose include, flattened, now authorises far more addresses."""
    common = sorted(set(old.entries) & set(new.entries))
    txt = "TXT"
    if all(old.entries[n].answers.get(txt) == new.entries[n].answers.get(txt) for n in common):
        return []
    out = []
    before_res, after_res = LockResolver(old), LockResolver(new)
    for name in common:
        before, after = flatten_include(name, before_res), flatten_include(name, after_res)
        if not (before.ok and after.ok):
            continue  # not flattenable: its addresses are never copied into our record
        for version, unit in ((4, "IPv4"), (6, "IPv6")):
            was = sum(n.num_addresses for n in before.networks if n.version == version)
            now = sum(n.num_addresses for n in after.networks if n.version == version)
            if now >= WIDEN_FACTOR * was and now - was >= WIDEN_MIN[version]:
                out.append(
                    f"{name}: flattened, it would now authorise {now:,} {unit} addresses, "
                    f"{f'{was:,}' if was else 'none'} before; held for review (rerun with "
                    "--accept-widening if the vendor really publishes this)"
                )
    return out


def _keep_old_subtrees(old: SpfLock, new: SpfLock, failed: list[tuple[str, str]]) -> set[str]:
    """Copy into `new` the old answers for every failed (name, type) and, for a
    failed TXT, for everything the old record there led to (its includes,
    their a/mx/exists targets...), unless the new walk answered it itself.
    Returns the names whose old answers were kept."""
    asking = RecordingResolver(LockResolver(old))  # notes every (name, type) asked
    for name, rdtype in failed:
        asking.asked.add((name, rdtype))
        if rdtype == "TXT" and name in old.entries:
            analyze(name, asking)
    kept: set[str] = set()
    for name, rdtype in sorted(asking.asked):
        before = old.entries.get(name)
        if before is None:
            continue
        after = new.entries.get(name)
        if after is not None and (after.nxdomain or rdtype in after.answers):
            continue  # answered by this refresh: the new answer wins
        if before.nxdomain:
            if after is None:
                new.entries[name] = LockEntry(before.resolved, nxdomain=True)
                kept.add(name)
            continue
        if rdtype not in before.answers:
            continue
        if after is None:
            after = new.entries[name] = LockEntry(before.resolved)
        # The entry's time is its oldest answer's, so staleness stays visible.
        after.resolved = min(after.resolved, before.resolved)
        after.answers[rdtype] = list(before.answers[rdtype])
        kept.add(name)
    return kept
