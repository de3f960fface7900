"""Acknowledgements: the words a user writes to let the plan guard make a
destructive mail change deliberately (README "Safety").

An acknowledgement is `<change> <name>`, e.g. `dkim-delete old._domainkey`:
the kind of change and the DNS name it happens at.  It is written in the
policy (`acknowledge:`, names relative to the policy domain or absolute) or,
for one run, in the environment variable ACK_ENV (absolute names, separated by
commas or new lines).  Shared by the policy models (which check the words) and
integration/guard.py (which matches them against a plan).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from .names import InvalidName, check_name, is_subdomain, normalize

ACK_ENV = "OCTODNS_MAILAUTH_ACKNOWLEDGE"

# change -> what it means, for messages and the README.
CHANGES: dict[str, str] = {
    "dkim-delete": "delete a DKIM selector that publishes a key (or delegates one by CNAME)",
    "dkim-revoke": "revoke a DKIM key (empty p=) the rotation state does not revoke",
    "dkim-key-change": "publish a different key (or CNAME target) at a published selector",
    "dmarc-delete": "delete a DMARC policy record",
    "dmarc-weaken": "lower DMARC enforcement (p, sp, np, pct, or t=y)",
    "spf-pass-all": "an SPF record that lets every address pass (+all or all of IPv4/IPv6)",
    "spf-remove": "delete an SPF record that authorised senders, or leave it authorising none",
}


class AckError(ValueError):
    """An acknowledgement that does not read as `<change> <name>`."""


def parse_ack(text: str, domain: str | None = None) -> tuple[str, str]:
    """`dkim-delete old._domainkey` -> ("dkim-delete", "old._domainkey.<domain>").

    With `domain`, a name that is not already under it is taken as relative to
    it (`@` is the domain itself); without, the name must be absolute."""
    if not isinstance(text, str):
        raise AckError(f"{text!r} is not text: write `<change> <name>`")
    parts = text.split()
    if len(parts) != 2:
        raise AckError(f"{text!r} is not `<change> <name>`, e.g. `dkim-delete old._domainkey`")
    change, name = parts[0].lower(), parts[1]
    if change not in CHANGES:
        raise AckError(f"unknown change {parts[0]!r} in {text!r}; known: {', '.join(CHANGES)}")
    try:  # `_dmarc`, `_domainkey`: DNS names, not host names
        name = name if name == "@" else check_name(name, service_labels=True, min_labels=1)
    except InvalidName:
        raise AckError(f"{parts[1]!r} in {text!r} is not a DNS name") from None
    if domain is not None:
        domain = normalize(domain)
        if name == "@":
            name = domain
        elif not is_subdomain(name, domain):
            name = f"{name}.{domain}"
    elif name == "@":
        raise AckError(f"{text!r}: `@` needs a policy domain; write the full name")
    return change, name


def env_acks(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The acknowledgements in ACK_ENV for this run (absolute names)."""
    raw = (os.environ if environ is None else environ).get(ACK_ENV, "")
    out = []
    for entry in re.split(r"[,\n]", raw):
        if entry.strip():
            try:
                out.append(parse_ack(entry.strip()))
            except AckError as e:
                raise AckError(f"{ACK_ENV}: {e}") from None
    return out
