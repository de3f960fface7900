"""The DMARC step: the `_dmarc` record and the checks on it."""

from __future__ import annotations

from ..context import CompileContext
from ..findings import Location, Severity
from ..records import DesiredRecord
from .record import dmarc_value


def dmarc_step(ctx: CompileContext) -> None:
    settings = ctx.lp.policy.dmarc
    if settings is None:
        ctx.find(
            Severity.WARNING,
            f"no DMARC policy for {ctx.domain}: receivers get no instructions and you get "
            "no reports",
            Location(ctx.lp.path, 1, "dmarc"),
            "add `dmarc: {policy: none, rua: [mailto:...]}` to start monitoring",
            code="dmarc-missing",
        )
        return
    ctx.add(
        DesiredRecord(
            f"_dmarc.{ctx.domain}",
            "TXT",
            ctx.ttl,
            (dmarc_value(settings),),
            "dmarc",
            "dmarc",
            ctx.location("dmarc"),
            takeover=settings.takeover,
        )
    )
