"""DNS name rules shared by the policy models and the record builders."""

from __future__ import annotations

import re

# RFC 1035 §2.3.1 as relaxed by RFC 2181 §11 for labels used in mail records:
# letters, digits and hyphens, not starting or ending with a hyphen, 1..63 octets.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# Underscore labels (`_dmarc`, `_domainkey`) are service labels, not host names.
_SERVICE_LABEL = re.compile(r"^_?(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def is_label(text: str) -> bool:
    return bool(_LABEL.match(text))


def is_selector(text: str) -> bool:
    """A DKIM selector: one or more dot-separated labels (RFC 6376 §3.1)."""
    return bool(text) and all(is_label(p) for p in text.split("."))


def is_hostname(text: str, *, allow_service_labels: bool = False) -> bool:
    """A fully qualified name with at least two labels, no trailing dot needed."""
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    parts = name.split(".")
    if len(parts) < 2:
        return False
    check = _SERVICE_LABEL.match if allow_service_labels else _LABEL.match
    # The top label must not be all digits (RFC 3696 §2), or `1.2.3.4` passes as a name.
    return all(check(p) for p in parts) and not parts[-1].isdigit()


def normalize(name: str) -> str:
    """Lower case, no trailing dot: the form used inside the compiler."""
    return name.rstrip(".").lower()


def relative_to(fqdn: str, zone: str) -> str | None:
    """`fqdn` relative to `zone` ('' for the apex), or None when outside it."""
    fqdn, zone = normalize(fqdn), normalize(zone)
    if fqdn == zone:
        return ""
    if fqdn.endswith("." + zone):
        return fqdn[: -len(zone) - 1]
    return None
