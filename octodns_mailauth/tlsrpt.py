"""TLS-RPT (RFC 8460): the `_smtp._tls` TXT record.

The destinations are validated by the policy model (policy/transport.py).
"""

from __future__ import annotations

from .context import CompileContext
from .findings import Severity
from .records import tlsrpt
from .records.base import DesiredRecord


def tlsrpt_step(ctx: CompileContext) -> None:
    settings = ctx.lp.policy.tls_rpt
    if settings is None:
        return
    if ctx.lp.policy.parked or ctx.lp.policy.null_mx:
        # Harmless but pointless: no mail is delivered, so no TLS to report on.
        ctx.find(
            Severity.WARNING,
            f"{ctx.domain} receives no mail (null MX), so TLS reports will stay empty",
            ctx.location("tls_rpt"),
            "remove tls_rpt",
            rfc="RFC 8460 §3",
            code="tls-rpt-no-mx",
        )
    ctx.add(
        DesiredRecord(
            f"_smtp._tls.{ctx.domain}",
            "TXT",
            ctx.ttl,
            (tlsrpt.build(settings.rua),),
            "tls-rpt",
            "tlsrpt",
            ctx.location("tls_rpt"),
        )
    )
