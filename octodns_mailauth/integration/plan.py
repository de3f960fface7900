"""`process_plan` for the processor: the octoDNS side of the plan guard, and
when the DKIM keys a plan publishes are written.

Keys: a key generated while planning is kept in memory.  It is written to the
keystore here, once the guard has passed, and only when octoDNS is going to
apply the plan (`octodns-sync --doit`): a plan that is only shown, or refused,
writes no private key.  octoDNS does not tell processors whether it will apply,
so we read it from the `Manager.sync` call on the stack (its `dry_run`,
`checksum` and the zone's `always-dry-run`); when that cannot be found the key
is not written and the plan is refused, since publishing a key nobody holds
would strand the selector.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Protocol

from ..acknowledge import AckError, env_acks, parse_ack
from ..errors import MailAuthProcessorError
from ..names import normalize
from ..records import unescape_txt
from .guard import PlanChange, refusal_text, review, unacknowledged
from .zonemap import in_zone


class MailAuthProcessor(Protocol):
    """What the guard reads of the processor (a Protocol, so this module does not
    import processor.py, which imports it)."""

    id: str
    keys: Any
    dkim_state: Any
    resolver: Any
    policies: dict[str, Any]
    log: logging.Logger


def plan_changes(plan: Any) -> list[PlanChange]:
    out = []
    for change in plan.changes:
        record = change.new or change.existing
        name = normalize(record.fqdn)
        out.append(
            PlanChange(
                name,
                record._type,
                _values(change.existing),
                _values(change.new),
            )
        )
    return out


def _values(record: Any) -> tuple[str, ...] | None:
    if record is None:
        return None
    if record._type == "TXT":
        return tuple(unescape_txt(str(v)) for v in record.values)
    if hasattr(record, "values"):
        return tuple(str(v) for v in record.values)
    return (str(record.value),)


def check_plan(proc: MailAuthProcessor, plan: Any, target: Any) -> None:
    zone = plan.desired.name if plan.desired is not None else plan.existing.name
    zone_name = normalize(zone)
    target_id = getattr(target, "id", str(target))
    fresh = {f"{sel}._domainkey.{domain}" for domain, sel in proc.keys.pending}
    refusals = review(plan_changes(plan), proc.dkim_state, proc.resolver, fresh)
    try:
        acks = set(env_acks())
    except AckError as e:
        raise MailAuthProcessorError(f"{proc.id}: {e}") from None
    for lp in proc.policies.values():
        acks |= {parse_ack(entry, lp.domain) for entry in lp.policy.acknowledge}
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
    here = plan.desired or plan.existing
    for change, name in sorted(acks - used):
        if in_zone(here, name):
            # Left in a policy, it would let the next such change at that name through.
            proc.log.warning(
                "process_plan: the acknowledgement `%s %s` matches no change in this plan: "
                "remove it",
                change,
                name,
            )
    _write_pending_keys(proc, plan.desired or plan.existing, zone_name)


def _write_pending_keys(proc: MailAuthProcessor, zone: Any, zone_name: str) -> None:
    mine = {
        (domain, sel)
        for domain, sel in list(proc.keys.pending)
        if in_zone(zone, f"{sel}._domainkey.{domain}")
    }
    if not mine:
        return
    applies = sync_applies(zone_name)
    listed = ", ".join(f"{sel}._domainkey.{domain}" for domain, sel in sorted(mine))
    if applies is None:
        raise MailAuthProcessorError(
            f"{proc.id}: new DKIM key(s) for {listed} would be published, but this plan "
            "is not made by `octodns-sync`, so whether it will be applied is unknown and "
            "the key(s) were not written: run `octodns-mailauth dkim keygen` first"
        )
    if not applies:
        proc.log.warning(
            "process_plan: new DKIM key(s) for %s exist in memory for this plan only; "
            "`octodns-sync --doit` generates and writes them (or run `octodns-mailauth "
            "dkim keygen` first, so plans show the key that will be published)",
            listed,
        )
        return
    try:
        written = proc.keys.commit(mine)
    except Exception as e:  # KeyUnavailable: say which run, never a traceback
        raise MailAuthProcessorError(f"{proc.id}: {e}") from None
    for domain, sel in written:
        proc.log.info("process_plan: wrote DKIM key %s of %s to the keystore", sel, domain)


def sync_applies(zone_name: str) -> bool | None:
    """Whether the running `Manager.sync` will apply this zone's plans: False for
    a dry run (or an always-dry-run zone), None when no sync is running."""
    frames = [sys._getframe()]
    main = sys._current_frames().get(threading.main_thread().ident or 0)
    if main is not None:
        frames.append(main)  # plans made in octoDNS's worker threads
    for frame in frames:
        while frame is not None:
            manager = frame.f_locals.get("self")
            if frame.f_code.co_name == "sync" and type(manager).__name__ == "Manager":
                local = frame.f_locals
                if local.get("dry_run", True) and not local.get("checksum"):
                    return False
                zones = (getattr(manager, "config", None) or {}).get("zones") or {}
                config = zones.get(f"{zone_name}.") or {}
                return not config.get("always-dry-run", False)
            frame = frame.f_back  # type: ignore[assignment]
    return None
