"""DMARC (RFC 9989): which TXT values are DMARC records, and the `_dmarc` TXT
value built from the policy settings (§4.7).  Parsing: dmarc/parser.py."""

from __future__ import annotations

import re

from ..policy.dmarc import Alignment, DmarcPolicySettings

# dmarc-version = "v" dmarc-eq %s"DMARC1": the tag name is a case-insensitive
# ABNF literal, the value is case-sensitive (RFC 9989 §4.8), so a hand-written
# `V=DMARC1; p=reject` is a DMARC record receivers read.
VERSION = re.compile(r"[vV][ \t]*=[ \t]*DMARC1(?=[ \t]*;|[ \t]*\Z)")


def owns(text: str) -> bool:
    """True for a DMARC record (policy or report authorization)."""
    return VERSION.match(text) is not None


def dmarc_tags(settings: DmarcPolicySettings) -> list[tuple[str, str]]:
    """The tags in publishing order: v first (required), p second (RFC 7489
    receivers require it there), defaults left out so the record stays short
    and later default changes are inherited."""
    tags = [("v", "DMARC1"), ("p", settings.p.value)]
    if settings.subdomain_policy is not None and settings.subdomain_policy != settings.p:
        tags.append(("sp", settings.subdomain_policy.value))
    if settings.nonexistent_policy is not None and settings.nonexistent_policy != settings.sp:
        tags.append(("np", settings.nonexistent_policy.value))
    if settings.public_suffix_domain is not None:
        tags.append(("psd", "y" if settings.public_suffix_domain else "n"))
    if settings.testing:
        tags.append(("t", "y"))
    if settings.dkim_alignment is Alignment.strict:
        tags.append(("adkim", "s"))
    if settings.spf_alignment is Alignment.strict:
        tags.append(("aspf", "s"))
    if settings.rua:
        tags.append(("rua", ",".join(settings.rua)))
    if settings.ruf:
        tags.append(("ruf", ",".join(settings.ruf)))
        if settings.fo and settings.fo != "0":
            tags.append(("fo", settings.fo))
    legacy = settings.legacy
    if legacy is not None:
        if legacy.pct is not None:
            tags.append(("pct", str(legacy.pct)))
        if legacy.rf is not None:
            tags.append(("rf", ",".join(legacy.rf)))
        if legacy.ri is not None:
            tags.append(("ri", str(legacy.ri)))
    return tags


def dmarc_value(settings: DmarcPolicySettings) -> str:
    return "; ".join(f"{k}={v}" for k, v in dmarc_tags(settings))
