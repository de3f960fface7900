"""DKIM key rotation, pure logic: selectors move through published, active,
retired and revoked states; the committed state file says where each one is.

    published --publish_ahead--> active --rotate--> retired --retire_for-->
    revoked (p= empty, RFC 6376 §3.6.1) --revoke_for--> removed

`plan_rotation(config, keys, now)` says which records the state publishes and
which actions are due when; `apply_due(...)` performs the due ones on a copy of
the state (the caller hands it a function that makes the new key, so this
module stays free of I/O).  The state holds public data only: selectors,
algorithms, dates and `p=`, so the pipeline running octodns-sync needs no
private key.  File I/O is in dkim/statefile.py, the key-making edge in
dkim/rotate.py.

Invariant, by construction and checked in `apply_due`: no action revokes or
removes an active key, and an algorithm with an active key keeps one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Literal, NamedTuple

from ..findings import Finding, Location, Severity
from ..policy.dkim import DkimKey, format_duration
from .keys import Algorithm

# Selector dates have day resolution, so a key cannot rotate more often.
MIN_PERIOD = timedelta(days=1)
ALGORITHM_TAGS: dict[str, str] = {"ed25519": "ed", "rsa": "rsa"}


class KeyStatus(str, Enum):
    PUBLISHED = "published"  # in DNS, not signing yet
    ACTIVE = "active"  # the MTA signs with it
    RETIRED = "retired"  # not signing; still published so mail in flight verifies
    REVOKED = "revoked"  # published with p= empty (RFC 6376 §3.6.1)


@dataclass(frozen=True)
class RotatedKey:
    """One selector of a rotating key, as the state file records it."""

    domain: str
    prefix: str
    selector: str
    algorithm: Algorithm
    status: KeyStatus
    p: str  # public key (base64); kept after revocation so the keystore can still be checked
    published: datetime
    bits: int = 2048  # RSA modulus size (ignored for ed25519)
    activated: datetime | None = None
    retired: datetime | None = None
    revoked: datetime | None = None
    line: int | None = field(default=None, compare=False)  # in the state file, for messages

    @property
    def record_p(self) -> str:
        """The p= to publish: empty once revoked."""
        return "" if self.status is KeyStatus.REVOKED else self.p


@dataclass(frozen=True)
class RotationState:
    """Every rotating key of every domain; `path` is the state file (None: no file)."""

    path: str | None
    keys: tuple[RotatedKey, ...] = ()

    def for_domain(self, domain: str) -> list[RotatedKey]:
        return [k for k in self.keys if k.domain == domain]

    def for_prefix(self, domain: str, prefix: str) -> list[RotatedKey]:
        return [k for k in self.keys if k.domain == domain and k.prefix == prefix]

    def with_keys(self, domain: str, prefix: str, keys: Iterable[RotatedKey]) -> RotationState:
        others = [k for k in self.keys if not (k.domain == domain and k.prefix == prefix)]
        return replace(self, keys=tuple(sort_keys([*others, *keys])))


def sort_keys(keys: Iterable[RotatedKey]) -> list[RotatedKey]:
    return sorted(keys, key=lambda k: (k.domain, k.prefix, k.published, k.algorithm, k.selector))


@dataclass(frozen=True)
class RotationConfig:
    """A sender's `dkim: {rotate: ...}` entry with the policy's TTL."""

    domain: str
    prefix: str
    algorithms: tuple[Algorithm, ...]
    bits: int
    period: timedelta
    publish_ahead: timedelta
    retire_for: timedelta
    revoke_for: timedelta
    ttl: int

    @classmethod
    def from_policy(cls, domain: str, key: DkimKey, ttl: int) -> RotationConfig:
        assert key.rotate is not None and key.prefix is not None
        return cls(
            domain,
            key.prefix,
            tuple(key.rotation_algorithms),
            key.bits,
            key.rotate,
            key.publish_ahead,
            key.retire_for,
            key.revoke_for,
            ttl,
        )

    def problems(self) -> list[str]:
        """Why these durations cannot work with this TTL (empty when they can).

        Resolvers may keep the old answer for a TTL: a new key must be in DNS
        for 2x TTL before mail signed with it arrives, a replaced key must stay
        2x TTL for mail signed just before the switch, and a revocation must be
        seen before the record goes.  The period must cover all three, so a
        rotation never has more than two selectors per algorithm in DNS.
        """
        out = []
        floor = timedelta(seconds=2 * self.ttl)
        for name, value in (
            ("publish_ahead", self.publish_ahead),
            ("retire_for", self.retire_for),
            ("revoke_for", self.revoke_for),
        ):
            if value < floor:
                # Say which setting to change: the generic hint names `rotate:`.
                out.append(
                    f"{name} {format_duration(value)} is shorter than 2x the record TTL "
                    f"({format_duration(floor)}); resolvers could still hold the old answer: "
                    f"set {name}: {format_duration(floor)} or more (or lower the policy ttl)"
                )
        needed = max(MIN_PERIOD, self.publish_ahead + self.retire_for + self.revoke_for)
        if self.period < needed:
            out.append(
                f"rotate {format_duration(self.period)} is shorter than publish_ahead + "
                f"retire_for + revoke_for = {format_duration(needed)} (and at least 1d): "
                "a key would be replaced before the previous one is gone"
            )
        return out

    def findings(self, where: Location | None) -> list[Finding]:
        """`problems()` as the errors the compile step and `dkim rotate` report."""
        return [
            Finding(
                Severity.ERROR,
                f"DKIM rotation of {self.prefix}: {problem}",
                where,
                "change the setting the message names; or lengthen `rotate:` or shorten "
                "the phase durations (or the policy ttl)",
                rfc="RFC 6376 §3.6.1",
                code="dkim-rotation-period",
            )
            for problem in self.problems()
        ]


ActionKind = Literal["publish", "activate", "retire", "revoke", "remove"]


# A NamedTuple, not a frozen dataclass: every `validate` defines it, and a dataclass
# costs four times as much to define (it compiles its methods from source).
class Action(NamedTuple):
    """A step of the rotation: `publish` makes a new key (selector chosen when
    applied); `activate` makes a published key sign and retires the one it
    replaces; `retire`, `revoke`, `remove` move an old key along."""

    kind: ActionKind
    domain: str
    prefix: str
    algorithm: Algorithm
    selector: str | None
    due: datetime
    replaces: str | None = None  # for activate: the selector it retires

    def describe(self) -> str:
        when = self.due.strftime("%Y-%m-%d %H:%M UTC")
        if self.kind == "publish":
            return f"publish a new {self.algorithm} key for {self.prefix} ({when})"
        if self.kind == "activate":
            old = f", retiring {self.replaces}" if self.replaces else ""
            return f"activate {self.selector}{old} ({when})"
        return f"{self.kind} {self.selector} ({when})"


@dataclass(frozen=True)
class RotationPlan:
    published: tuple[RotatedKey, ...]  # the records the state requires now
    actions: tuple[Action, ...]  # every next action, soonest first

    def due(self, now: datetime) -> list[Action]:
        return [a for a in self.actions if a.due <= now]

    @property
    def active(self) -> list[RotatedKey]:
        return [k for k in self.published if k.status is KeyStatus.ACTIVE]


def utc(value: datetime) -> datetime:
    """Naive datetimes are UTC; aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def plan_rotation(
    config: RotationConfig, keys: Iterable[RotatedKey], now: datetime
) -> RotationPlan:
    """The records `keys` (one domain and prefix) publish, and the actions to come."""
    now = utc(now)
    mine = [k for k in keys if k.domain == config.domain and k.prefix == config.prefix]
    actions: list[Action] = []
    for algorithm in sorted({*config.algorithms, *(k.algorithm for k in mine)}):
        of_alg = [k for k in mine if k.algorithm == algorithm]
        actions += _actions_for(config, algorithm, of_alg, now)
    actions.sort(key=lambda a: (a.due, a.algorithm, a.kind))
    return RotationPlan(tuple(sort_keys(mine)), tuple(actions))


def _actions_for(
    config: RotationConfig, algorithm: Algorithm, keys: list[RotatedKey], now: datetime
) -> list[Action]:
    def act(kind: ActionKind, key: RotatedKey | None, due: datetime, **kw: str | None) -> Action:
        selector = key.selector if key else None
        return Action(kind, config.domain, config.prefix, algorithm, selector, due, **kw)

    out: list[Action] = []
    for key in keys:
        if key.status is KeyStatus.RETIRED and key.retired is not None:
            out.append(act("revoke", key, key.retired + config.retire_for))
        elif key.status is KeyStatus.REVOKED and key.revoked is not None:
            out.append(act("remove", key, key.revoked + config.revoke_for))
    active = next((k for k in keys if k.status is KeyStatus.ACTIVE), None)
    pending = [k for k in keys if k.status is KeyStatus.PUBLISHED]
    if algorithm not in config.algorithms:
        # The policy dropped this algorithm: stop signing with it; the old key then
        # walks out through retired and revoked like any other.
        if active is not None:
            out.append(act("retire", active, now))
        out += [act("retire", k, now) for k in pending]
        return out
    if pending:
        newest = max(pending, key=lambda k: k.published)
        due = newest.published + config.publish_ahead
        if active is not None and active.activated is not None:
            due = max(due, active.activated + config.period)
        out.append(act("activate", newest, due, replaces=active.selector if active else None))
        # An older pending key (never used) is superseded: retire it.
        out += [act("retire", k, due) for k in pending if k is not newest]
    elif active is not None and active.activated is not None:
        out.append(act("publish", None, active.activated + config.period - config.publish_ahead))
    else:
        out.append(act("publish", None, now))  # nothing signs yet: start now
    return out


def selector_name(
    prefix: str, algorithm: Algorithm, when: datetime, taken: Callable[[str], bool]
) -> str:
    """`relay-20261125-ed`; a letter after the date if that name was ever used,
    since a selector must never be given a second key."""
    day = utc(when).strftime("%Y%m%d")
    tag = ALGORITHM_TAGS[algorithm]
    for suffix in ["", *"bcdefghijklmnopqrstuvwxyz"]:
        name = f"{prefix}-{day}{suffix}-{tag}"
        if not taken(name):
            return name
    raise ValueError(f"every selector name for {prefix} on {day} is taken")


NewKey = Callable[[str, Algorithm, int], str]
"""(selector, algorithm, bits) -> the new key's p= (the edge generates and stores it)."""


def apply_due(
    config: RotationConfig,
    keys: Iterable[RotatedKey],
    now: datetime,
    new_key: NewKey,
    taken: Callable[[str], bool] = lambda s: False,
    *,
    may_activate: Callable[[RotatedKey], bool] | None = None,
) -> tuple[list[RotatedKey], list[Action]]:
    """Apply every action due at `now`, repeatedly, to a copy of `keys`.

    Actions are dated `now` (when they happen), not when they were due: the
    clock of each state starts when the record actually changes.  An activation
    `may_activate` refuses (DNS does not serve the key yet) waits for a later run.
    """
    now = utc(now)
    current = list(keys)
    applied: list[Action] = []
    held: set[str] = set()
    for _ in range(16):  # each round moves keys forward; a handful always suffices
        due = [
            a
            for a in plan_rotation(config, current, now).due(now)
            if not (a.kind == "activate" and a.selector in held)
        ]
        if not due:
            break
        for action in due:
            if action.kind == "activate" and may_activate is not None:
                key = next(k for k in current if k.selector == action.selector)
                if not may_activate(key):
                    held.add(key.selector)
                    continue
            current = _apply(config, current, action, now, new_key, taken)
            applied.append(action)
    _check_invariant(config, keys, current)
    return sort_keys(current), applied


def _apply(
    config: RotationConfig,
    keys: list[RotatedKey],
    action: Action,
    now: datetime,
    new_key: NewKey,
    taken: Callable[[str], bool],
) -> list[RotatedKey]:
    used = {k.selector for k in keys}
    if action.kind == "publish":
        selector = selector_name(
            config.prefix, action.algorithm, now, lambda s: s in used or taken(s)
        )
        p = new_key(selector, action.algorithm, config.bits)
        new = RotatedKey(
            config.domain,
            config.prefix,
            selector,
            action.algorithm,
            KeyStatus.PUBLISHED,
            p,
            now,
            bits=config.bits,
        )
        return [*keys, new]
    out = []
    for key in keys:
        if key.selector == action.selector:
            if action.kind == "activate":
                key = replace(key, status=KeyStatus.ACTIVE, activated=now)
            elif action.kind == "retire":
                key = replace(key, status=KeyStatus.RETIRED, retired=now)
            elif action.kind == "revoke":
                assert key.status is KeyStatus.RETIRED
                key = replace(key, status=KeyStatus.REVOKED, revoked=now)
            else:  # remove
                assert key.status is KeyStatus.REVOKED
                continue
        elif action.kind == "activate" and key.selector == action.replaces:
            key = replace(key, status=KeyStatus.RETIRED, retired=now)
        out.append(key)
    return out


def _check_invariant(
    config: RotationConfig, before: Iterable[RotatedKey], after: list[RotatedKey]
) -> None:
    """An algorithm that had an active key still has one, published."""
    for algorithm in config.algorithms:
        had = any(k.status is KeyStatus.ACTIVE and k.algorithm == algorithm for k in before)
        has = [k for k in after if k.status is KeyStatus.ACTIVE and k.algorithm == algorithm]
        if (had and not has) or len(has) > 1:
            raise AssertionError(f"rotation of {config.prefix} {algorithm} lost its active key")
