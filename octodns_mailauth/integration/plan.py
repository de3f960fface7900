"""`process_plan` for the processor: the octoDNS side of the plan guard, and
when the DKIM keys a plan publishes are written.

Keys: a key generated while planning is kept in memory.  It is written to the
keystore only when the plan is applied, just before the records that publish
it: a plan that is only shown, refused, or not applied (a dry run, an
`always-dry-run` zone, a failed checksum or safety check) writes no private
key.  octoDNS gives processors no hook for "this plan will be applied"; the one
call it makes only then is the target's `apply(plan)`, so that is where the
keys are written (`_write_keys_on_apply`), rather than guessing from the caller.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from ..acknowledge import AckError, env_acks
from ..errors import MailAuthProcessorError
from ..names import normalize
from ..records.dkim import key_name, split_key_name
from ..zoneview import record_texts
from .guard import PlanChange, refusal_text, review, unacknowledged
from .zonemap import ZoneNames


class MailAuthProcessor(Protocol):
    """What the guard reads of the processor (a Protocol, so this module does not
    import processor.py, which imports it)."""

    id: str
    keys: Any
    inputs: Any
    policies: dict[str, Any]
    log: logging.Logger

    def acknowledged_under(self, zone: str) -> frozenset[tuple[str, str]]: ...


def plan_changes(plan: Any) -> list[PlanChange]:
    out = []
    for change in plan.changes:
        record = change.new or change.existing
        name = normalize(record.fqdn)
        out.append(
            PlanChange(
                name,
                record._type,
                None if change.existing is None else record_texts(change.existing),
                None if change.new is None else record_texts(change.new),
            )
        )
    return out


def _fresh_keys(changes: list[PlanChange], pending: Any) -> set[str]:
    """The DKIM record names among `changes` whose key this run generated (pending
    (domain, selector) pairs): looked up per change, so a first sync that generates
    thousands of keys does not scan them all for every zone."""
    out = set()
    for change in changes:
        parts = split_key_name(change.name)
        if parts and (parts[1], parts[0]) in pending:
            out.add(change.name)
    return out


def check_plan(proc: MailAuthProcessor, plan: Any, target: Any) -> None:
    here = plan.desired or plan.existing
    names = ZoneNames(here)  # each name's place in the zone worked out once
    zone = here.name
    target_id = getattr(target, "id", str(target))
    changes = plan_changes(plan)
    fresh = _fresh_keys(changes, proc.keys.pending)
    refusals = review(changes, proc.inputs.dkim_state, proc.inputs.resolver, fresh)
    try:
        acks = set(env_acks())
    except AckError as e:
        raise MailAuthProcessorError(f"{proc.id}: {e}") from None
    acks |= proc.acknowledged_under(zone)
    left, used = unacknowledged(refusals, acks)
    if left:
        text = refusal_text(zone, target_id, left, sorted(proc.policies))
        raise MailAuthProcessorError(f"{proc.id}: {text}")
    for change, name in sorted(used):
        proc.log.warning(
            "process_plan: %s %s acknowledged: applying a destructive change on purpose; "
            "remove the acknowledgement once applied",
            change,
            name,
        )
    for change, name in sorted(acks - used):
        if name in names:
            # Left in a policy, it would let the next such change at that name through.
            proc.log.warning(
                "process_plan: the acknowledgement `%s %s` matches no change in this plan: "
                "remove it",
                change,
                name,
            )
    listed = ", ".join(sorted(n for n in fresh if n in names))
    if not listed:
        return
    if not callable(getattr(target, "apply", None)):
        raise MailAuthProcessorError(
            f"{proc.id}: new DKIM key(s) for {listed} would be published, but this plan has "
            "no octoDNS target whose apply could write them first: run `octodns-mailauth "
            "dkim keygen` first"
        )
    proc.log.info(
        "process_plan: new DKIM key(s) for %s are kept in memory; they are written to "
        "the keystore only when this plan is applied (`octodns-sync --doit`)",
        listed,
    )
    _write_keys_on_apply(proc, target)


_WRAP = threading.Lock()


def _write_keys_on_apply(proc: MailAuthProcessor, target: Any) -> None:
    """Make `target.apply(plan)` write this processor's pending keys for the
    plan's zone first.  Planning runs in octoDNS's worker threads, so the
    wrapper is installed once per target under a lock; applying is sequential."""
    with _WRAP:
        writers = target.__dict__.setdefault("_mailauth_key_writers", [])
        if not writers:
            apply = target.apply

            def write_then_apply(plan: Any) -> Any:
                if not getattr(target, "apply_disabled", False):
                    for writer in writers:
                        _write_pending_keys(writer, plan.desired or plan.existing)
                return apply(plan)

            target.apply = write_then_apply
        if proc not in writers:
            writers.append(proc)


def pending_in(keys: Any, zone: Any) -> set[tuple[str, str]]:
    """The pending (domain, selector) keys whose record is in the octoDNS `zone`."""
    names = ZoneNames(zone)
    return {(d, s) for d, s in keys.pending_under(zone.name) if key_name(s, d) in names}


def _write_pending_keys(proc: MailAuthProcessor, zone: Any) -> None:
    try:
        written = proc.keys.commit(pending_in(proc.keys, zone))
    except Exception as e:  # KeyUnavailable: say which run, never a traceback
        raise MailAuthProcessorError(f"{proc.id}: {e}") from None
    for domain, sel in written:
        proc.log.info("apply: wrote DKIM key %s of %s to the keystore", sel, domain)
