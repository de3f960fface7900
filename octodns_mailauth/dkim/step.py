"""The DKIM step: publish the keys we hold for each sender (`dkim:` in a sender)."""

from __future__ import annotations

from ..context import CompileContext, KeyUnavailable
from ..findings import Location, Severity
from ..policy.dkim import DkimKey
from ..policy.models import Sender
from ..records import DesiredRecord
from .keys import DkimKeyError, dkim_txt_value


def dkim_step(ctx: CompileContext) -> None:
    for index, sender in enumerate(ctx.lp.policy.senders):
        facts = next((f for f in ctx.result.senders if f.index == index), None)
        for k, key in enumerate(sender.dkim):
            if _own_dkim(ctx, sender, key, ctx.location("senders", index, "dkim", k)):
                if facts is not None and ctx.domain not in facts.dkim_domains:
                    facts.dkim_domains.append(ctx.domain)


def _own_dkim(ctx: CompileContext, sender: Sender, key: DkimKey, where: Location) -> bool:
    try:
        p = ctx.keys.public_key(ctx.domain, key)
        value = dkim_txt_value(key.algorithm, p, testing=key.testing)
    except KeyUnavailable as e:
        ctx.find(Severity.ERROR, str(e), where, code="dkim-key")
        return False
    except DkimKeyError as e:
        ctx.find(Severity.ERROR, f"DKIM selector {key.selector}: {e}", where, code="dkim-key")
        return False
    ctx.add(
        DesiredRecord(
            f"{key.selector}._domainkey.{ctx.domain}",
            "TXT",
            ctx.ttl,
            (value,),
            f"sender {sender.name} (DKIM {key.algorithm})",
            "dkim",
            where,
        )
    )
    return True
