"""The SPF lock file: third-party DNS answers the policies depend on, kept in
the user's repo so CI and pre-commit are deterministic and offline.

Format (JSON, sorted keys, so diffs review well)::

    {
      "version": 1,
      "refreshed": "2026-11-25T18:00:00Z",          # when `spf refresh` last ran
      "answers": {
        "_spf.google.com": {
          "resolved": "2026-11-25T18:00:00Z",       # when this name was asked
          "TXT": ["v=spf1 include:_netblocks.google.com ... ~all"]
        },
        "gone.example": {"resolved": "...", "nxdomain": true}
      }
    }

A type listed with `[]` is NODATA (the name exists, no record of that type).
A name or type the lock does not list is "missing": the offline resolver raises
DnsError(kind="missing") and the SPF step tells the user to run refresh.
Names under the policies' own domains are never stored: the zone answers those.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._fs import atomic_write
from ..errors import MailAuthError
from ..resolver import DnsError, Resolver

LOCK_VERSION = 1
DEFAULT_LOCK_NAME = "spf-lock.json"
REFRESH_COMMAND = "octodns-mailauth spf refresh"


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise MailAuthError(f"{where}: {text!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass
class LockEntry:
    resolved: datetime
    nxdomain: bool = False
    answers: dict[str, list[str]] = field(default_factory=dict)  # rdtype -> answers


@dataclass
class SpfLock:
    """The lock file's content."""

    path: Path
    refreshed: datetime | None = None
    entries: dict[str, LockEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> SpfLock:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise MailAuthError(f"{path}: cannot read the SPF lock file: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise MailAuthError(
                f"{path}:{err.lineno}: the SPF lock file is not valid JSON ({err.msg}); "
                f"regenerate it with `{REFRESH_COMMAND}`"
            ) from None
        if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
            raise MailAuthError(
                f"{path}: not an SPF lock file of version {LOCK_VERSION}; "
                f"regenerate it with `{REFRESH_COMMAND}`"
            )
        lock = cls(path)
        if data.get("refreshed"):
            lock.refreshed = _parse_time(data["refreshed"], f"{path}: refreshed")
        answers = data.get("answers") or {}
        if not isinstance(answers, dict):
            raise MailAuthError(f"{path}: 'answers' must be an object of names")
        for name, raw in answers.items():
            where = f"{path}: answers.{name}"
            if not isinstance(raw, dict) or "resolved" not in raw:
                raise MailAuthError(f"{where}: expected an object with 'resolved'")
            entry = LockEntry(_parse_time(raw["resolved"], where), bool(raw.get("nxdomain")))
            for rdtype, values in raw.items():
                if rdtype in ("resolved", "nxdomain"):
                    continue
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise MailAuthError(f"{where}.{rdtype}: expected a list of strings")
                entry.answers[rdtype.upper()] = list(values)
            lock.entries[_norm(name)] = entry
        return lock

    def to_json(self) -> str:
        answers: dict[str, Any] = {}
        for name in sorted(self.entries):
            entry = self.entries[name]
            out: dict[str, Any] = {"resolved": _iso(entry.resolved)}
            if entry.nxdomain:
                out["nxdomain"] = True
            for rdtype in sorted(entry.answers):
                out[rdtype] = sorted(entry.answers[rdtype])
            answers[name] = out
        data = {
            "version": LOCK_VERSION,
            "about": "third-party DNS answers the SPF policies depend on; "
            f"update with `{REFRESH_COMMAND}`",
            "refreshed": _iso(self.refreshed) if self.refreshed else None,
            "answers": answers,
        }
        return json.dumps(data, indent=1, sort_keys=False) + "\n"

    def write(self) -> None:
        """Atomically: a reader or a crash sees the old lock or the new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, self.to_json(), 0o644)

    def oldest(self) -> datetime | None:
        times = [e.resolved for e in self.entries.values()]
        return min(times) if times else self.refreshed


class LockResolver:
    """Answers from the lock, offline.  Remembers what it was asked and lacked,
    so the SPF step can name the missing entries."""

    offline = True  # analyze() skips prefetching for offline resolvers

    def __init__(self, lock: SpfLock) -> None:
        self.lock = lock
        self.missing: set[tuple[str, str]] = set()
        self.queries = 0

    @property
    def path(self) -> Path:
        return self.lock.path

    def query(self, name: str, rdtype: str) -> list[str]:
        self.queries += 1
        key = (_norm(name), rdtype.upper())
        entry = self.lock.entries.get(key[0])
        if entry is not None and entry.nxdomain:
            raise DnsError(name, rdtype, "nxdomain", f"recorded in {self.path.name}")
        if entry is None or key[1] not in entry.answers:
            self.missing.add(key)
            raise DnsError(name, rdtype, "missing", f"not in {self.path}")
        return list(entry.answers[key[1]])

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        return None

    def resolved_at(self, name: str) -> datetime | None:
        entry = self.lock.entries.get(_norm(name))
        return entry.resolved if entry else None


def open_lock(path: str | Path | None, policies_dir: str | Path) -> Resolver | None:
    """The offline resolver for a processor: `path`, or the default lock file
    beside the policies.  None when there is no lock (yet); an explicitly
    named lock that does not exist is an error."""
    if path is None:
        default = Path(policies_dir) / DEFAULT_LOCK_NAME
        if not default.exists():
            return None
        return LockResolver(SpfLock.load(default))
    if not Path(path).exists():
        raise MailAuthError(
            f"spf_lock: {path} does not exist; create it with `{REFRESH_COMMAND}` "
            "or remove the spf_lock option"
        )
    return LockResolver(SpfLock.load(path))


# --- refresh ----------------------------------------------------------------------


class RecordingResolver:
    """Wraps a live resolver and keeps every answer (and NXDOMAIN) it gave."""

    def __init__(self, inner: Resolver) -> None:
        self.inner = inner
        self.answers: dict[tuple[str, str], list[str]] = {}
        self.nxdomain: set[str] = set()
        self.failures: list[DnsError] = []
        self.asked: set[tuple[str, str]] = set()

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (_norm(name), rdtype.upper())
        self.asked.add(key)
        try:
            answer = self.inner.query(name, rdtype)
        except DnsError as err:
            if err.kind == "nxdomain":
                self.nxdomain.add(key[0])
            else:
                self.failures.append(err)
            raise
        self.answers[key] = list(answer)
        return answer

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.inner.prefetch(pairs)


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
    refreshed: datetime | None = None  # the lock's `refreshed` after this run
    kept: list[str] = field(default_factory=list)  # old entries kept below failed names
    written: bool = True  # False: every lookup failed, the file was left as it was

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def render(self) -> list[str]:
        if not self.written:
            lines = [f"{self.path}: not rewritten"]
        elif not self.changes:
            lines = [f"{self.path}: no upstream change"]
        else:
            lines = [f"{self.path}: {len(self.changes)} name(s) changed upstream"]
        for change in self.changes:
            if change.before is None:
                lines.append(f"+ {change.name} (new)")
            elif change.after is None:
                lines.append(f"- {change.name} (no longer needed)")
            else:
                lines.append(f"~ {change.name}")
            lines.extend(f"    + {r}" for r in change.added)
            lines.extend(f"    - {r}" for r in change.removed)
            lines.extend(f"    {o}" for o in change.other)
        lines.extend(f"! {f}" for f in self.failures)
        if self.kept:
            lines.append(
                f"! kept the old answers for {len(self.kept)} name(s) below the failed "
                "lookups, not asked this time: " + ", ".join(self.kept)
            )
        if not self.written:
            lines.append(f"! no lookup succeeded: {self.path} was left unchanged")
        elif self.failures:
            lines.append(
                "! the lock's 'refreshed' time and the kept answers' 'resolved' times were "
                "not advanced"
            )
        return lines


def _ranges(txts: list[str] | None) -> set[str]:
    from .parser import SpfSyntaxError, parse, select_records

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
        b_txt = None if before is None else before.answers.get("TXT", [])
        a_txt = None if after is None else after.answers.get("TXT", [])
        change = RangeChange(name, before=b_txt, after=a_txt)
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


def collect_answers(
    policies: Iterable[Any],
    resolver: Resolver,
    *,
    catalog: Any = None,
) -> tuple[RecordingResolver, set[str]]:
    """Compile every policy through a recording resolver: the SPF step walks every
    include tree, so what it asked is what the lock must hold."""
    from ..catalog import load_catalog
    from ..compile import compile_policy
    from ..context import KeyUnavailable
    from ..policy.models import DkimKey

    class _NoKeys:
        def public_key(self, domain: str, key: DkimKey) -> str:
            raise KeyUnavailable("keys are not needed to refresh the SPF lock")

    recorder = RecordingResolver(resolver)
    own: set[str] = set()
    catalog = catalog if catalog is not None else load_catalog([])
    for lp in policies:
        own.add(lp.domain)
        compile_policy(lp, catalog, _NoKeys(), recorder)
    return recorder, own


def lock_from_recording(
    path: str | Path, recorder: RecordingResolver, now: datetime, exclude: set[str] = frozenset()
) -> SpfLock:
    """A lock holding everything `recorder` was answered, except names under `exclude`."""
    lock = SpfLock(Path(path), refreshed=now)
    for (name, rdtype), answers in recorder.answers.items():
        if not _own(name, exclude):
            lock.entries.setdefault(name, LockEntry(now)).answers[rdtype] = answers
    for name in recorder.nxdomain:
        if not _own(name, exclude):
            lock.entries[name] = LockEntry(now, nxdomain=True)
    return lock


def _own(name: str, domains: set[str] | frozenset[str]) -> bool:
    return any(name == d or name.endswith("." + d) for d in domains)


def refresh_lock(
    policies: Iterable[Any],
    lock_path: str | Path,
    resolver: Resolver,
    *,
    catalog: Any = None,
    now: datetime | None = None,
) -> LockDiff:
    """Resolve live everything the policies' SPF depends on, rewrite the lock
    atomically and return what changed upstream.

    A DNS failure hides more than the failed name: the includes below it are
    never asked.  So when any lookup fails, every old entry the new walk did
    not reach but the failed names lead to (per the old lock) is kept as it
    was, with its old `resolved` time, and `refreshed` is not advanced: the
    lock still says how old those answers are.  When no lookup succeeded at
    all the file is left untouched."""
    now = now or datetime.now(timezone.utc)
    path = Path(lock_path)
    old = SpfLock.load(path) if path.exists() else None
    recorder, own = collect_answers(policies, resolver, catalog=catalog)
    new = lock_from_recording(path, recorder, now, exclude=own)
    diff = LockDiff(path, refreshed=now)
    failed = _unique_failures(recorder.failures)
    if not failed:
        diff.changes = diff_locks(old, new)
        new.write()
        return diff
    old_entries = old.entries if old else {}
    kept = _keep_old_subtrees(old, new, failed) if old else set()
    for err in failed:
        key = _norm(err.name)
        if key in old_entries:
            diff.failures.append(f"{err}; keeping the old answer")
        else:
            diff.failures.append(f"{err}; the lock had no answer for it, so it still has none")
    below = sorted(kept - {_norm(e.name) for e in failed})
    if below:
        diff.kept = below
    answered = [n for n, _ in recorder.answers] + list(recorder.nxdomain)
    if not any(not _own(n, own) for n in answered):
        # Nothing answered: a rewrite could only lose information.
        diff.written = False
        diff.refreshed = old.refreshed if old else None
        return diff
    new.refreshed = old.refreshed if old else None  # this refresh was not complete
    diff.refreshed = new.refreshed
    diff.changes = diff_locks(old, new)
    new.write()
    return diff


def _unique_failures(failures: list[DnsError]) -> list[DnsError]:
    """One failure per (name, type): several policies may ask the same name."""
    seen: dict[tuple[str, str], DnsError] = {}
    for err in failures:
        seen.setdefault((_norm(err.name), err.rdtype.upper()), err)
    return list(seen.values())


class _Asking:
    """A resolver over the old lock that notes every (name, type) asked."""

    def __init__(self, inner: LockResolver) -> None:
        self.inner = inner
        self.asked: set[tuple[str, str]] = set()

    def query(self, name: str, rdtype: str) -> list[str]:
        self.asked.add((_norm(name), rdtype.upper()))
        return self.inner.query(name, rdtype)

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        return None


def _keep_old_subtrees(old: SpfLock, new: SpfLock, failed: list[DnsError]) -> set[str]:
    """Copy into `new` the old answers for every failed (name, type) and, for a
    failed TXT, for everything the old record there led to (its includes,
    their a/mx/exists targets...), unless the new walk answered it itself.
    Returns the names whose old answers were kept."""
    from .lookups import analyze

    asking = _Asking(LockResolver(old))
    for err in failed:
        name, rdtype = _norm(err.name), err.rdtype.upper()
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


def iter_missing(resolver: Resolver | None) -> Iterator[tuple[str, str]]:
    if isinstance(resolver, LockResolver):
        yield from sorted(resolver.missing)
