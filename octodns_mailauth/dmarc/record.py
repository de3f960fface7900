"""Build the `_dmarc` TXT value from the policy settings."""

from __future__ import annotations

from ..policy.dmarc import Alignment, DmarcPolicySettings


def dmarc_value(settings: DmarcPolicySettings) -> str:
    """`v=DMARC1; p=...` with v and p first (RFC 7489 §6.3) and defaults left out,
    so the record stays short and a later default change is inherited."""
    tags = [("v", "DMARC1"), ("p", settings.policy.value)]
    if settings.subdomain_policy is not None and settings.subdomain_policy != settings.policy:
        tags.append(("sp", settings.subdomain_policy.value))
    if settings.rua:
        tags.append(("rua", ",".join(settings.rua)))
    if settings.dkim_alignment is Alignment.strict:
        tags.append(("adkim", "s"))
    if settings.spf_alignment is Alignment.strict:
        tags.append(("aspf", "s"))
    return "; ".join(f"{k}={v}" for k, v in tags)
