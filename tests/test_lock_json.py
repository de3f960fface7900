"""The lock file's text is built by hand (json's indented encoder is pure Python
and slow on big locks); it must be byte for byte what json.dumps(indent=1)
writes for the same content, or every refresh would rewrite every lock."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from octodns_mailauth.dns.lockfile import LOCK_VERSION, REFRESH_COMMAND, LockEntry, SpfLock


def reference(lock: SpfLock) -> str:
    """The lock as it was written before: json.dumps of its content, indent 1."""
    answers = {}
    for name in sorted(lock.entries):
        entry = lock.entries[name]
        out: dict[str, object] = {
            "resolved": entry.resolved.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        }
        if entry.nxdomain:
            out["nxdomain"] = True
        for rdtype in sorted(entry.answers):
            out[rdtype] = sorted(entry.answers[rdtype])
        answers[name] = out
    data = {
        "version": LOCK_VERSION,
        "about": "third-party DNS answers the policies depend on (SPF includes, the keys "
        f"at delegated DKIM targets); update with `{REFRESH_COMMAND}`",
        "refreshed": lock.refreshed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if lock.refreshed
        else None,
        "answers": answers,
    }
    return json.dumps(data, indent=1) + "\n"


TEXTS = [
    "v=spf1 include:_spf.example.com ~all",
    'quoted "part" and \\ backslash',
    "tab\there, newline\nthere",
    "ünïcödé and emoji \U0001f4e7 and \u2028",
    "",
    "10 mx1.example.com",
    "192.0.2.1",
    "\x00\x1f control",
]


def test_generated_locks_are_written_as_json_indent_1(tmp_path: Path) -> None:
    rng = random.Random(1)
    base = datetime(2026, 3, 1, tzinfo=timezone.utc)
    cases = 0
    for size in [0, 1, 2, 3, 5, 8, 13, 40, 200] * 10:
        lock = SpfLock(tmp_path / "lock.json", rng.choice([None, base]))
        for i in range(size):
            answers = {
                rdtype: rng.sample(TEXTS, rng.randint(0, 3))
                for rdtype in rng.sample(["TXT", "A", "AAAA", "MX", "CNAME"], rng.randint(0, 3))
            }
            name = rng.choice(["", "x.", "_spf."]) + f"n{i}.example"
            when = base - timedelta(seconds=rng.randint(0, 10**6))
            lock.entries[name] = LockEntry(when, rng.random() < 0.2, answers)
        text = lock.to_json()
        assert text == reference(lock)
        lock.write()
        assert SpfLock.load(lock.path).to_json() == text  # and it reads back
        cases += 1
    assert cases == 90
