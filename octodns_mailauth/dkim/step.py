"""The DKIM step: publish the keys we hold for each sender (`dkim:` in a sender).

A fixed key (`selector:`) publishes its public key from the keystore or the
policy.  A rotating key (`rotate:`) publishes exactly what the committed
rotation state requires: published, active and retired selectors with their
key, revoked ones with `p=` empty (RFC 6376 §3.6.1), removed ones not at all.
Wherever a private key is present too, the published `p=` is checked against it.
"""

from __future__ import annotations

from ..context import CompileContext
from ..errors import KeyUnavailable
from ..findings import Location, Severity
from ..policy.dkim import DkimKey
from ..policy.models import Sender
from ..records.base import DesiredRecord
from ..records.dkim import dkim_txt_value, key_name
from .keys import Algorithm, DkimKeyError
from .rotation import KeyStatus, RotatedKey, RotationConfig, RotationState, plan_rotation


def dkim_step(ctx: CompileContext) -> None:
    state: RotationState = ctx.dkim_state or RotationState(None)
    prefixes: set[str] = set()
    for index, sender in enumerate(ctx.lp.policy.senders):
        facts = next((f for f in ctx.result.senders if f.index == index), None)
        for k, key in enumerate(sender.dkim):
            where = ctx.location("senders", index, "dkim", k)
            if key.rotate is not None:
                assert key.prefix is not None
                prefixes.add(key.prefix)
                ok = _rotating(ctx, sender, key, where, state)
            else:
                ok = _own_dkim(ctx, sender, key, where)
            if ok and facts is not None and ctx.domain not in facts.dkim_domains:
                facts.dkim_domains.append(ctx.domain)
    for key in state.for_domain(ctx.domain):
        if key.prefix not in prefixes:
            ctx.find(
                Severity.WARNING,
                f"DKIM state has selector {key.selector} ({key.status.value}) for prefix "
                f"{key.prefix}, which no sender of {ctx.domain} rotates; it is not published",
                _state_location(state, key),
                "restore the sender's `rotate:` entry until its keys are removed",
                code="dkim-state-orphan",
            )


def _record_value(key: DkimKey, algorithm: Algorithm, p: str) -> str:
    return dkim_txt_value(
        algorithm,
        p,
        testing=key.testing,
        hash_algorithms=list(key.hash_algorithms) if key.hash_algorithms else None,
        service=":".join(key.service) if key.service else None,
        notes=key.notes,
    )


def _own_dkim(ctx: CompileContext, sender: Sender, key: DkimKey, where: Location) -> bool:
    assert key.selector is not None
    try:
        p = ctx.keys.public_key(ctx.domain, key)
        value = _record_value(key, key.algorithm, p)
    except KeyUnavailable as e:
        ctx.find(Severity.ERROR, str(e), where, code="dkim-key")
        return False
    except DkimKeyError as e:
        ctx.find(Severity.ERROR, f"DKIM selector {key.selector}: {e}", where, code="dkim-key")
        return False
    _add(ctx, sender, key.selector, key.algorithm, value, where, "")
    return True


def _add(
    ctx: CompileContext,
    sender: Sender,
    selector: str,
    algorithm: str,
    value: str,
    where: Location,
    status: str,
) -> None:
    ctx.add(
        DesiredRecord(
            key_name(selector, ctx.domain),
            "TXT",
            ctx.ttl,
            (value,),
            f"sender {sender.name} (DKIM {algorithm}{status})",
            "dkim",
            where,
        )
    )


def _state_location(state: RotationState, key: RotatedKey) -> Location:
    return Location(state.path or "dkim state", key.line, key.selector)


def _rotating(
    ctx: CompileContext, sender: Sender, key: DkimKey, where: Location, state: RotationState
) -> bool:
    config = RotationConfig.from_policy(ctx.domain, key, ctx.ttl)
    problems = config.findings(where)
    ctx.result.findings += problems
    if problems:
        return False
    keys = state.for_prefix(ctx.domain, config.prefix)
    if not keys:
        ctx.find(
            Severity.ERROR,
            f"DKIM key {config.prefix} rotates but the rotation state "
            f"({state.path or 'none configured'}) has no key for it yet",
            where,
            "run `octodns-mailauth dkim rotate` where the keystore is and commit the state file",
            code="dkim-rotation-missing",
        )
        return False
    plan = plan_rotation(config, keys, ctx.now)
    ok = True
    for rk in plan.published:
        p = rk.record_p
        if rk.status is not KeyStatus.REVOKED:
            # The keystore (when present) must hold this very key: a mismatch would
            # publish a key nobody signs with.
            probe = DkimKey(
                selector=rk.selector, algorithm=rk.algorithm, bits=rk.bits, public_key=rk.p
            )
            try:
                p = ctx.keys.public_key(ctx.domain, probe)
            except KeyUnavailable as e:
                ctx.find(
                    Severity.ERROR,
                    f"DKIM state: {e}",
                    _state_location(state, rk),
                    "restore the state file or keystore from backup; never edit p= by hand",
                    rfc="RFC 6376 §3.6.1",
                    code="dkim-key-mismatch",
                )
                ok = False
                continue
        try:
            value = _record_value(key, rk.algorithm, p)
        except DkimKeyError as e:
            ctx.find(Severity.ERROR, f"DKIM selector {rk.selector}: {e}", where, code="dkim-key")
            ok = False
            continue
        _add(ctx, sender, rk.selector, rk.algorithm, value, where, f", {rk.status.value}")
    # One warning for the rotation, however many algorithms it steps: one cause, one
    # `dkim rotate` fixes it.
    due = plan.due(ctx.now)
    if due:
        ctx.find(
            Severity.WARNING,
            f"DKIM rotation of {config.prefix} is due: "
            + "; ".join(action.describe() for action in due),
            where,
            "run `octodns-mailauth dkim rotate` and commit the state file",
            code="dkim-rotation-due",
        )
    return ok and bool(plan.active)
