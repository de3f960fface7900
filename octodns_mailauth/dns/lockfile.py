"""The lock file: third-party DNS answers the policies depend on (the records
SPF includes, and the DKIM key record at each delegated selector's CNAME
target), kept in the user's repo so CI and pre-commit are deterministic and
offline.

Format (JSON, sorted keys, so diffs review well)::

    {
      "version": 2,
      "refreshed": "2026-11-25T18:00:00Z",          # when `lock refresh` last ran
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

Versions: 1 held SPF answers, and later also DKIM target keys, which a version 1
lock may lack (they read as "unverified" until the next refresh).  2 is the same
shape, written by a refresh that resolves delegated DKIM targets too.  A version
1 lock is read as it is and written as 2 by the next refresh; a version
newer than LOCK_VERSION is refused (a newer release wrote it).
Names under the policies' own domains are never stored: the zone answers those.
`spf/refresh.py` rewrites the lock; this module only reads, writes and answers.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._fs import atomic_write, locked, remove_stray_temps
from ..errors import MailAuthError
from ..names import InvalidName, check_name, normalize, zone_of
from .resolver import DnsError, Resolver

LOCK_VERSION = 2
DEFAULT_LOCK_NAME = "spf-lock.json"
REFRESH_COMMAND = "octodns-mailauth lock refresh"  # alias: spf refresh
REBUILD_COMMAND = f"{REFRESH_COMMAND} --rebuild"
# Finding.cause of what a compile without a lock finds for that reason alone
# (includes not followed, delegated DKIM keys unverified): one cause for the run.
NO_LOCK = "no-spf-lock"


class LockError(MailAuthError):
    """The lock file cannot be read as a lock: the message says how to rebuild it."""


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: object, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise LockError(f"{where}: {text!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


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
        """Read the lock; anything but a whole lock of this version is a LockError."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise LockError(f"{path}: cannot read the SPF lock file: {err.strerror}") from None
        rebuild = f"rebuild it with `{REBUILD_COMMAND}` (its old answers are not kept)"
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise LockError(
                f"{path}: the SPF lock file is not UTF-8 text (byte {err.start}); {rebuild}"
            ) from None
        except json.JSONDecodeError as err:
            what = "is empty" if not raw.strip() else f"is not valid JSON ({err.msg})"
            raise LockError(
                f"{path}:{err.lineno}: the SPF lock file {what}, perhaps cut short; {rebuild}"
            ) from None
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise LockError(
                f"{path}: not an SPF lock file (expected a JSON object with a 'version' from 1 "
                f"to {LOCK_VERSION}, found {version!r}); {rebuild}"
            )
        if version > LOCK_VERSION:
            # Written by a newer release: its content may mean what this one cannot
            # read, so it is neither guessed at nor silently rewritten.
            raise LockError(
                f"{path}: lock file version {version} was written by a newer "
                f"octodns-mailauth; this one reads versions 1 to {LOCK_VERSION}. Upgrade "
                "octodns-mailauth wherever this lock is read (CI, pre-commit, the octoDNS "
                f"host); or, to go back to this version's format, `{REBUILD_COMMAND}` "
                "replaces it with what DNS answers now"
            )
        try:  # versions 1 and 2 have one shape (see above)
            return cls._from_json(path, data)
        except LockError as err:
            raise LockError(f"{err}; fix it or {rebuild}") from None

    @classmethod
    def _from_json(cls, path: Path, data: dict[str, Any]) -> SpfLock:
        lock = cls(path)
        if data.get("refreshed"):
            lock.refreshed = _parse_time(data["refreshed"], f"{path}: refreshed")
        answers = data.get("answers") or {}
        if not isinstance(answers, dict):
            raise LockError(f"{path}: 'answers' must be an object of names")
        times: dict[object, datetime] = {}  # a refresh writes one time for many names
        entries = lock.entries
        strs = itertools.repeat(str)  # isinstance's second argument, for map()
        # One pass, reusing json's dicts as the entries' answers: a lock holds
        # thousands of names and every offline compile loads it.
        for name, raw in answers.items():
            try:
                name = check_name(name, "name", service_labels=True, min_labels=1)
            except InvalidName as e:
                raise LockError(f"{path}: answers: {e}") from None
            if type(raw) is not dict or "resolved" not in raw:
                raise LockError(f"{path}: answers.{name}: expected an object with 'resolved'")
            resolved = raw.pop("resolved")
            when = times.get(resolved) if type(resolved) is str else None
            if when is None:
                when = _parse_time(resolved, f"{path}: answers.{name}")
                if type(resolved) is str:
                    times[resolved] = when
            nxdomain = raw.pop("nxdomain", False)
            if type(nxdomain) is not bool:  # "yes" is no flag we understand
                raise LockError(f"{path}: answers.{name}.nxdomain: expected true or false")
            for rdtype, values in raw.items():
                if type(values) is not list or not all(map(isinstance, values, strs)):
                    raise LockError(f"{path}: answers.{name}.{rdtype}: expected a list of strings")
            if not all(map(str.isupper, raw)):  # a refresh writes them upper case
                raw = {rdtype.upper(): values for rdtype, values in raw.items()}
            entries[name] = LockEntry(when, nxdomain, raw)
        return lock

    def to_json(self) -> str:
        """The lock as `json.dumps(..., indent=1)` writes it, built here: with an
        indent json runs its pure-Python encoder, several times slower on a lock
        of thousands of answers; each string still goes through json's C escaper."""
        enc = json.encoder.encode_basestring_ascii
        entries: list[str] = []
        for name in sorted(self.entries):
            entry = self.entries[name]
            fields = [f'   "resolved": {enc(_iso(entry.resolved))}']
            if entry.nxdomain:
                fields.append('   "nxdomain": true')
            for rdtype in sorted(entry.answers):
                values = sorted(entry.answers[rdtype])
                listed = ",\n    ".join(map(enc, values))
                fields.append(
                    f"   {enc(rdtype)}: [\n    {listed}\n   ]"
                    if values
                    else f"   {enc(rdtype)}: []"
                )
            entries.append(f"  {enc(name)}: {{\n" + ",\n".join(fields) + "\n  }")
        about = (
            "third-party DNS answers the policies depend on (SPF includes, the keys "
            f"at delegated DKIM targets); update with `{REFRESH_COMMAND}`"
        )
        refreshed = _iso(self.refreshed) if self.refreshed else None
        answers = "{\n" + ",\n".join(entries) + "\n }" if entries else "{}"
        return (
            f'{{\n "version": {json.dumps(LOCK_VERSION)},\n "about": {enc(about)},\n'
            f' "refreshed": {json.dumps(refreshed)},\n "answers": {answers}\n}}\n'
        )

    def write(self) -> None:
        """Atomically: a reader or a crash sees the old lock or the new one.  Writers
        take turns (a lock on the folder), so a temp file a killed one left is removed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path.parent):
            remove_stray_temps(self.path)
            atomic_write(self.path, self.to_json(), 0o644)

    def oldest(self) -> datetime | None:
        times = [e.resolved for e in self.entries.values()]
        return min(times) if times else self.refreshed


class LockResolver(Resolver):
    """Answers from the lock, offline.  Remembers what it was asked and lacked,
    so the SPF step can name the missing entries."""

    offline = True

    def __init__(self, lock: SpfLock) -> None:
        self.lock = lock
        self.source = f"the SPF lock {lock.path}"
        self.missing: set[tuple[str, str]] = set()

    @property
    def path(self) -> Path:
        return self.lock.path

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (normalize(name), rdtype.upper())
        entry = self.lock.entries.get(key[0])
        if entry is not None and entry.nxdomain:
            raise DnsError(name, rdtype, "nxdomain", f"recorded in {self.path.name}")
        if entry is None or key[1] not in entry.answers:
            self.missing.add(key)
            raise DnsError(name, rdtype, "missing", f"not in {self.path}")
        return list(entry.answers[key[1]])

    def resolved_at(self, name: str) -> datetime | None:
        entry = self.lock.entries.get(normalize(name))
        return entry.resolved if entry else None

    def oldest(self) -> datetime | None:
        return self.lock.oldest()


def lock_path(path: str | Path | None, policies_dir: str | Path) -> Path:
    """The SPF lock file a run uses: `path` when named, else the default beside the policies."""
    return Path(path) if path else Path(policies_dir) / DEFAULT_LOCK_NAME


def open_lock(path: str | Path | None, policies_dir: str | Path) -> LockResolver | None:
    """The offline resolver for a processor: `path`, or the default lock file
    beside the policies.  None when there is no lock (yet); an explicitly
    named lock that does not exist is an error."""
    if path is None:
        default = lock_path(None, policies_dir)
        if not default.exists():
            return None
        return LockResolver(SpfLock.load(default))
    if not Path(path).exists():
        raise LockError(
            f"spf_lock: {path} does not exist; create it with `{REFRESH_COMMAND}` "
            "or remove the spf_lock option"
        )
    return LockResolver(SpfLock.load(path))


class RecordingResolver(Resolver):
    """Wraps a live resolver and keeps every answer (and NXDOMAIN) it gave.
    Thread-safe: policies are walked concurrently through one recorder."""

    def __init__(self, inner: Resolver) -> None:
        self.inner = inner
        self.source = inner.source
        self.offline = inner.offline  # a recording of the lock is offline too
        self.answers: dict[tuple[str, str], list[str]] = {}
        self.nxdomain: set[str] = set()
        self.failures: list[DnsError] = []
        self.asked: set[tuple[str, str]] = set()
        self._mutex = threading.Lock()

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (normalize(name), rdtype.upper())
        with self._mutex:
            self.asked.add(key)
        try:
            answer = self.inner.query(name, rdtype)
        except DnsError as err:
            with self._mutex:
                if err.kind == "nxdomain":
                    self.nxdomain.add(key[0])
                else:
                    self.failures.append(err)
            raise
        with self._mutex:
            self.answers[key] = list(answer)
        return answer

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.inner.prefetch(pairs)


def lock_from_recording(
    path: str | Path, recorder: RecordingResolver, now: datetime, exclude: set[str] = frozenset()
) -> SpfLock:
    """A lock holding everything `recorder` was answered, except names under `exclude`."""
    lock = SpfLock(Path(path), refreshed=now)
    for (name, rdtype), answers in recorder.answers.items():
        if zone_of(name, exclude) is None:
            lock.entries.setdefault(name, LockEntry(now)).answers[rdtype] = answers
    for name in recorder.nxdomain:
        if zone_of(name, exclude) is None:
            lock.entries[name] = LockEntry(now, nxdomain=True)
    return lock
