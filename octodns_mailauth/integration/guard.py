"""The plan guard: refuse a plan that would break mail authentication.

octoDNS hands every processor the finished plan (`process_plan`) before
anything is applied, the place its own update/delete thresholds act.  Here a
plan is refused when it would

- delete a DKIM selector that publishes a key (or its delegating CNAME),
  revoke one the rotation state does not revoke, or give a selector another
  key: mail signed with the old key fails, and at p=reject is rejected;
- delete a `_dmarc` record or lower its enforcement (p, sp, np, pct, t=y);
- publish SPF that lets every host pass (+all, or all of IPv4/IPv6 in ranges);
- delete an SPF record that authorised senders, or leave it authorising none.

whatever source the change comes from (our policy, a hand-written record, a
policy file removed by mistake), unless the change is acknowledged
(acknowledge.py).  Pure: changes come in as `PlanChange`s, the processor does
the octoDNS translation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..acknowledge import ACK_ENV, CHANGES
from ..dkim.keys import DkimKeyError
from ..dkim.rotation import KeyStatus, RotationState
from ..dns.resolver import Resolver
from ..names import relative_to, zone_of
from ..policy.dmarc import DmarcPolicy
from ..records import txt_kind_matches
from ..records.dkim import parse_key_record, split_key_name
from ..records.dmarc import parse_dmarc
from ..records.spf import SpfSyntaxError, parse
from ..spf.space import address_space

# What each p=, sp=, np= value enforces, in the order DmarcPolicy declares.
_DMARC_RANK = {p.value: p.strength for p in DmarcPolicy}


@dataclass(frozen=True)
class PlanChange:
    """One change of a plan: values as receivers read them (TXT unescaped)."""

    name: str  # absolute, lower case, no trailing dot
    rtype: str
    old: tuple[str, ...] | None  # None: created
    new: tuple[str, ...] | None  # None: deleted


@dataclass(frozen=True)
class Refusal:
    change: str  # a key of acknowledge.CHANGES
    name: str
    rtype: str
    why: str

    @property
    def ack(self) -> str:
        return f"{self.change} {self.name}"


def review(
    changes: Iterable[PlanChange],
    state: RotationState | None = None,
    resolver: Resolver | None = None,
    fresh_keys: Iterable[str] = (),
) -> list[Refusal]:
    """Every destructive change in `changes`.  `state` says which selectors the
    rotation revokes; `resolver` answers SPF includes (the lock); `fresh_keys`
    are DKIM record names whose key this run generated because the keystore had
    none (so a changed key there means the keystore lost the published one)."""
    fresh = set(fresh_keys)
    out: list[Refusal] = []
    for change in changes:
        if "_domainkey" in change.name.split("."):
            out += _dkim(change, state, fresh)
        if change.rtype == "TXT" and change.name.split(".")[0] == "_dmarc":
            out += _dmarc(change)
        if change.rtype == "TXT":
            out += _spf(change, resolver)
    return out


# --- DKIM --------------------------------------------------------------------------------


def _keys(values: tuple[str, ...] | None) -> tuple[set[tuple[str, str]], bool]:
    """(published (k, p) pairs, any revoked value) of a DKIM TXT RRset."""
    keys: set[tuple[str, str]] = set()
    revoked = False
    for value in values or ():
        try:
            record = parse_key_record(value)
        except DkimKeyError:
            continue  # verifiers discard it: nothing verifies with it to break
        if record.revoked:
            revoked = True
        else:
            keys.add((record.algorithm, record.p))
    return keys, revoked


def _dkim(change: PlanChange, state: RotationState | None, fresh: set[str]) -> list[Refusal]:
    selector, domain = split_key_name(change.name) or (change.name, "")
    if change.rtype == "CNAME":
        if change.old is None:
            return []
        if change.new is None:
            why = f"deletes the CNAME that delegates DKIM selector {selector} to {change.old[0]}"
            return [Refusal("dkim-delete", change.name, "CNAME", why + _SIGNERS)]
        if change.new != change.old:
            why = (
                f"points DKIM selector {selector} from {change.old[0]} to {change.new[0]}: "
                "the key the provider signs with is no longer the one published"
            )
            return [Refusal("dkim-key-change", change.name, "CNAME", why)]
        return []
    if change.rtype != "TXT" or change.old is None:
        return []
    old, _ = _keys(change.old)
    if not old:
        return []  # nothing published (revoked or unreadable): nothing to strand
    new, new_revoked = _keys(change.new)
    if old <= new:
        return []
    if change.new is None:
        return [
            Refusal(
                "dkim-delete",
                change.name,
                "TXT",
                f"deletes DKIM selector {selector}, which publishes a key" + _SIGNERS,
            )
        ]
    if not new:
        scheduled = state is not None and any(
            k.selector == selector and k.domain == domain and k.status is KeyStatus.REVOKED
            for k in state.keys
        )
        if scheduled:
            return []
        how = "empties p= at" if new_revoked else "leaves no usable key at"
        why = (
            f"{how} DKIM selector {selector}, which the rotation state does not revoke" + _SIGNERS
        )
        return [Refusal("dkim-revoke", change.name, "TXT", why)]
    if change.name in fresh:
        why = (
            f"DKIM selector {selector} is already published with a key the keystore does not "
            "hold, and this run generated a new one: restore the keystore from backup (the "
            "private key that signs mail), or move to a new selector; a selector never gets "
            "a second key"
        )
    else:
        why = (
            f"gives DKIM selector {selector} a different key: mail already signed with the "
            "published one fails; use a new selector for a new key"
        )
    return [Refusal("dkim-key-change", change.name, "TXT", why)]


_SIGNERS = "; a mail server may still sign with it, and every such signature would fail"


# --- DMARC -------------------------------------------------------------------------------


def _dmarc_tags(values: tuple[str, ...] | None) -> dict[str, str] | None:
    for value in values or ():
        if txt_kind_matches("dmarc", value):
            parsed = parse_dmarc(value)
            if parsed.valid:
                return {k: v.strip().lower() for k, v in parsed.tags.items()}
    return None


def _enforcement(tags: dict[str, str]) -> dict[str, int]:
    """What receivers apply (RFC 9989 §4.7): sp defaults to p, np to sp; pct 100."""
    p = _DMARC_RANK.get(tags.get("p", "none"), 0)
    sp = _DMARC_RANK.get(tags.get("sp", ""), p)
    np = _DMARC_RANK.get(tags.get("np", ""), sp)
    try:
        pct = int(tags.get("pct", "100"))
    except ValueError:
        pct = 100
    return {"p": p, "sp": sp, "np": np, "pct": pct, "t": 0 if tags.get("t") == "y" else 1}


def _dmarc(change: PlanChange) -> list[Refusal]:
    old = _dmarc_tags(change.old)
    if old is None:
        return []
    new = _dmarc_tags(change.new)
    if new is None:
        what = "deletes" if change.new is None else "removes the policy from"
        why = f"{what} the DMARC record: receivers stop applying p={old.get('p', 'none')}"
        return [Refusal("dmarc-delete", change.name, "TXT", why)]
    before, after = _enforcement(old), _enforcement(new)
    names = {v: k for k, v in _DMARC_RANK.items()}
    lowered = []
    for tag in ("p", "sp", "np"):
        if after[tag] < before[tag]:
            lowered.append(f"{tag} {names[before[tag]]} -> {names[after[tag]]}")
    if after["pct"] < before["pct"]:
        lowered.append(f"pct {before['pct']} -> {after['pct']}")
    if after["t"] < before["t"]:
        lowered.append("t=y (testing: receivers apply one step less)")
    if not lowered:
        return []
    why = "lowers DMARC enforcement: " + ", ".join(lowered)
    return [Refusal("dmarc-weaken", change.name, "TXT", why)]


# --- SPF ---------------------------------------------------------------------------------


def _spf_record(values: tuple[str, ...] | None) -> str | None:
    found = [v for v in values or () if txt_kind_matches("spf", v)]
    return found[0] if len(found) == 1 else None


def _authorises(record: str) -> bool:
    try:
        parsed = parse(record)
    except SpfSyntaxError:
        return False
    terms = [m for m in parsed.effective_mechanisms if m.qualifier == "+"]
    return any(m.name != "all" for m in terms) or bool(parsed.effective_redirect)


def _spf(change: PlanChange, resolver: Resolver | None) -> list[Refusal]:
    out = []
    new = _spf_record(change.new)
    if new is not None:
        why = address_space(change.name, new, resolver).everyone()
        if why:
            out.append(
                Refusal(
                    "spf-pass-all",
                    change.name,
                    "TXT",
                    f"publishes SPF that lets every host pass ({why}): anyone can send as "
                    "this domain",
                )
            )
    old = _spf_record(change.old)
    if old is not None and _authorises(old) and (new is None or not _authorises(new)):
        what = "deletes the SPF record" if new is None else f"changes SPF to {new!r}"
        out.append(
            Refusal(
                "spf-remove",
                change.name,
                "TXT",
                f"{what}, which authorised senders: their mail fails SPF from then on",
            )
        )
    return out


# --- acknowledgement and the message ------------------------------------------------------


def unacknowledged(
    refusals: Iterable[Refusal], acks: Iterable[tuple[str, str]]
) -> tuple[list[Refusal], set[tuple[str, str]]]:
    """(refusals no acknowledgement covers, the acknowledgements used)."""
    allowed = set(acks)
    left = [r for r in refusals if (r.change, r.name) not in allowed]
    used = {(r.change, r.name) for r in refusals} & allowed
    return left, used


def refusal_text(zone: str, target: str, refusals: list[Refusal], domains: list[str]) -> str:
    """The error octoDNS prints: each record, why, and how to say it is meant."""
    lines = [
        f"refusing the plan for {zone} (target {target}): it would break mail "
        f"authentication; nothing was applied"
    ]
    for r in refusals:
        lines.append(f"  - {r.name} {r.rtype}: {r.why} [{CHANGES[r.change]}]")
    lines.append(
        "If this is deliberate, acknowledge each change: in the policy of its domain, "
        "acknowledge: ["
        + ", ".join(f'"{_relative(r, domains)}"' for r in refusals)
        + f'], or for one run {ACK_ENV}="'
        + ",".join(r.ack for r in refusals)
        + '" (README "Safety")'
    )
    return "\n".join(lines)


def _relative(refusal: Refusal, domains: list[str]) -> str:
    owner = zone_of(refusal.name, domains)
    if owner is None:
        return refusal.ack
    return f"{refusal.change} {relative_to(refusal.name, owner) or '@'}"
