"""DKIM (RFC 6376): which TXT values at a selector are key records.  Building
and parsing the key record: dkim/keys.py (`dkim_txt_value`, `parse_key_record`)."""

from __future__ import annotations

# §3.6.1: an empty p= is a revoked key.
REVOKED = "v=DKIM1; p="


def owns(text: str) -> bool:
    """A selector name holds one key (§3.6.2.2: with several the results are
    undefined) and `v=` is optional, so any TXT value there is a key record."""
    return bool(text)
