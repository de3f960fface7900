"""MTA-STS (RFC 8461 §3.1): the `_mta-sts` TXT value.  The policy file and
the MX check: mtasts.py."""

from __future__ import annotations

import re

# sts-version = %s"v=STSv1": case-sensitive.
_VERSION = re.compile(r"v=STSv1[ \t]*(?:;|\Z)")


def owns(text: str) -> bool:
    return _VERSION.match(text) is not None


def build(policy_id: str) -> str:
    return f"v=STSv1; id={policy_id}"
