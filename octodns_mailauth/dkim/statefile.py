"""The committed DKIM rotation state file: load (with line numbers) and atomic save.

Public data only, so it belongs in the user's repo beside the policies:

    version: 1
    keys:
      - domain: example.com
        prefix: relay
        selector: relay-20261125-ed
        algorithm: ed25519
        status: active
        published: '2026-11-23T09:00:00Z'
        activated: '2026-11-25T09:00:00Z'
        p: 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=

The default location is `dkim-state.yaml` beside the policy folder (not in it:
every `.yaml` there is a policy).  A missing file is an empty state; the
rotate command creates it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .._fs import atomic_write
from ..errors import PolicyError
from ..findings import Finding, Location, Severity
from ..names import InvalidName, check_name, is_selector, normalize
from ..policy.yamlpos import LineMap, YamlSyntaxError, load
from .keys import ALGORITHMS, DkimKeyError, public_key_from_b64
from .rotation import KeyStatus, RotatedKey, RotationState, sort_keys, utc

DEFAULT_NAME = "dkim-state.yaml"
VERSION = 1
_FIELDS = {
    "domain",
    "prefix",
    "selector",
    "algorithm",
    "bits",
    "status",
    "published",
    "activated",
    "retired",
    "revoked",
    "p",
}
_HEADER = (
    "# DKIM rotation state: public data only (selectors, dates, public keys).\n"
    "# Written by `octodns-mailauth dkim rotate`; commit it, do not edit by hand.\n"
)


def default_path(policies_dir: str | Path) -> Path:
    return Path(policies_dir).parent / DEFAULT_NAME


def load_state(path: str | Path | None, policies_dir: str | Path) -> RotationState:
    """The state at `path` (or the default beside `policies_dir`); empty when absent.
    Raises PolicyError with a finding per problem, each at its line."""
    file = Path(path) if path is not None else default_path(policies_dir)
    if not file.exists():
        if path is not None and not file.parent.is_dir():
            raise PolicyError.one(
                f"DKIM state file {file}: its folder {file.parent} does not exist",
                hint="fix `dkim_state:` (paths are relative to the working directory)",
                code="dkim-state",
            )
        return RotationState(str(file))
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError.one(f"cannot read DKIM state file: {e}", Location(str(file))) from None
    return parse_state(text, str(file))


def parse_state(text: str, path: str) -> RotationState:
    try:
        data, lines = load(text)
    except YamlSyntaxError as e:
        raise PolicyError.one(str(e), Location(path, e.line), code="dkim-state") from None
    errors: list[Finding] = []

    def bad(message: str, *where: str | int, hint: str | None = None) -> None:
        key_path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
        location = Location(path, lines.line_for(tuple(where)), key_path.lstrip(".") or None)
        errors.append(
            Finding(
                Severity.ERROR,
                f"DKIM state: {message}",
                location,
                hint or "restore the file from version control or rerun `dkim rotate`",
                code="dkim-state",
            )
        )

    if data is None:
        # An emptied file is not a fresh start: the keys it listed may be signing mail.
        bad(
            "the file is empty; a rotation never starts over while keys it listed may be "
            "signing mail",
            hint="restore it from version control (git checkout -- <file>); delete the file "
            "only to start afresh, which `dkim rotate` allows when the keystore holds no "
            "rotated key",
        )
        raise PolicyError(errors)
    if not isinstance(data, dict) or data.get("version") != VERSION:
        bad(f"expected a mapping with `version: {VERSION}` and `keys:`")
        raise PolicyError(errors)
    entries = data.get("keys") or []
    if not isinstance(entries, list):
        bad("`keys:` must be a list", "keys")
        raise PolicyError(errors)
    keys: list[RotatedKey] = []
    for i, entry in enumerate(entries):
        key = _parse_entry(entry, i, lines, bad)
        if key is not None:
            keys.append(key)
    seen: dict[tuple[str, str], int] = {}
    active: dict[tuple[str, str, str], str] = {}
    for i, key in enumerate(keys):
        if (key.domain, key.selector) in seen:
            bad(f"selector {key.selector} of {key.domain} appears twice", "keys", i)
        seen[(key.domain, key.selector)] = i
        if key.status is KeyStatus.ACTIVE:
            slot = (key.domain, key.prefix, key.algorithm)
            if slot in active:
                bad(
                    f"two active {key.algorithm} keys for {key.prefix} of {key.domain} "
                    f"({active[slot]} and {key.selector})",
                    "keys",
                    i,
                )
            active[slot] = key.selector
    if not errors and _trailer(len(keys)) not in text.rstrip().splitlines()[-1:]:
        # Written last by render_state: without it the file was cut short (a failed
        # copy, a bad merge) and may have lost the key the MTA signs with.
        bad(
            f"the file does not end with `{_trailer(len(keys))}`: it is truncated or was "
            "edited by hand, and keys may be missing",
            hint="restore it from version control; never edit it by hand",
        )
    if errors:
        raise PolicyError(errors)
    return RotationState(path, tuple(keys))


def _trailer(count: int) -> str:
    return f"# end of state: {count} key{'s' if count != 1 else ''}"


def _parse_entry(entry: Any, i: int, lines: LineMap, bad: Any) -> RotatedKey | None:
    if not isinstance(entry, dict):
        bad("each key must be a mapping", "keys", i)
        return None
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        bad(f"unknown field {unknown[0]!r}", "keys", i, unknown[0])
        return None
    missing = [f for f in ("domain", "prefix", "selector", "algorithm", "status", "published")]
    missing = [f for f in missing if f not in entry]
    if missing or "p" not in entry:
        bad(f"missing {', '.join(missing + ([] if 'p' in entry else ['p']))}", "keys", i)
        return None
    domain, selector, prefix = (str(entry[f]) for f in ("domain", "selector", "prefix"))
    try:
        domain = check_name(domain)
    except InvalidName as e:
        bad(str(e), "keys", i, "domain")
        return None
    if not is_selector(selector) or not selector.startswith(prefix + "-"):
        bad(
            f"{selector!r} is not a valid selector starting with {prefix}- (RFC 6376 §3.1)",
            "keys",
            i,
            "selector",
        )
        return None
    algorithm = entry["algorithm"]
    if algorithm not in ALGORITHMS:
        bad(f"unknown algorithm {algorithm!r} (ed25519 or rsa)", "keys", i, "algorithm")
        return None
    try:
        status = KeyStatus(entry["status"])
    except ValueError:
        bad(
            f"unknown status {entry['status']!r} ({', '.join(s.value for s in KeyStatus)})",
            "keys",
            i,
            "status",
        )
        return None
    dates: dict[str, datetime | None] = {}
    for name in ("published", "activated", "retired", "revoked"):
        value = entry.get(name)
        if value is None:
            dates[name] = None
            continue
        try:
            parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            bad(f"{name}: {value!r} is not an ISO 8601 date and time", "keys", i, name)
            return None
        dates[name] = utc(parsed)
    needs = {
        KeyStatus.PUBLISHED: (),
        KeyStatus.ACTIVE: ("activated",),
        KeyStatus.RETIRED: ("retired",),
        KeyStatus.REVOKED: ("retired", "revoked"),
    }[status]
    lacking = [n for n in needs if dates[n] is None]
    if lacking:
        bad(f"a {status.value} key needs `{lacking[0]}:`", "keys", i)
        return None
    p = "".join(str(entry["p"] or "").split())
    try:
        public_key_from_b64(algorithm, p)
    except DkimKeyError as e:
        bad(f"p= of {selector}: {e}", "keys", i, "p")
        return None
    bits = entry.get("bits", 2048)
    if not isinstance(bits, int) or isinstance(bits, bool):
        bad("bits must be a number", "keys", i, "bits")
        return None
    published = dates["published"]
    assert published is not None
    return RotatedKey(
        normalize(domain),
        prefix,
        selector.lower(),
        algorithm,
        status,
        p,
        published,
        bits=bits,
        activated=dates["activated"],
        retired=dates["retired"],
        revoked=dates["revoked"],
        line=lines.line_for(("keys", i)),
    )


def render_state(state: RotationState) -> str:
    rows = []
    for key in sort_keys(state.keys):
        row: dict[str, Any] = {
            "domain": key.domain,
            "prefix": key.prefix,
            "selector": key.selector,
            "algorithm": key.algorithm,
        }
        if key.algorithm == "rsa":
            row["bits"] = key.bits
        row["status"] = key.status.value
        for name in ("published", "activated", "retired", "revoked"):
            value = getattr(key, name)
            if value is not None:
                row[name] = utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
        row["p"] = key.p
        rows.append(row)
    body = yaml.safe_dump(
        {"version": VERSION, "keys": rows},
        sort_keys=False,
        width=1 << 16,
        default_flow_style=False,
    )
    return _HEADER + body + _trailer(len(rows)) + "\n"


def save_state(state: RotationState, path: str | Path) -> None:
    """Write atomically: readers see the old file or the new one, never half of one.
    Public data, committed: readable like any repo file."""
    atomic_write(path, render_state(state), 0o644)
