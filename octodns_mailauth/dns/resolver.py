"""The resolver interface: the only way the core asks DNS anything.

Implementations: `live.LiveResolver` (dnspython, the network edge),
`lockfile.LockResolver` (the offline lock file) and `lockfile.RecordingResolver`
(records what another one answers).  Answers are plain strings so the core never
depends on dnspython types.  Implementations subclass `Resolver` to inherit
the defaults below.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

# Failures a retry or a later run may cure (RFC 7208 §2.6.6 temperror).
TEMPORARY = frozenset({"servfail", "timeout", "refused"})


class DnsError(Exception):
    """A lookup that did not produce an answer set.

    `kind` is one of: "nxdomain", "servfail", "timeout", "refused", "missing"
    ("missing" = an offline resolver has no entry for the name).
    """

    def __init__(self, name: str, rdtype: str, kind: str, detail: str = "") -> None:
        self.name = name
        self.rdtype = rdtype
        self.kind = kind
        self.detail = detail
        msg = f"{rdtype} lookup of {name} failed: {kind}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)

    def again(self) -> DnsError:
        """A fresh copy, to raise a cached failure: raising the cached one again
        would add to its traceback each time, and that traceback keeps every frame
        it passed through (and their callers' state) alive."""
        return DnsError(self.name, self.rdtype, self.kind, self.detail)


class Resolver(Protocol):
    """What every consumer may ask of a resolver, live or offline."""

    # True when answers come from a record (the lock file), not from the network:
    # prefetching gains nothing and a missing answer is "missing", not a failure.
    offline: bool = False
    # Where answers come from, for messages: "the SPF lock zones/spf-lock.json".
    source: str = "DNS"

    def query(self, name: str, rdtype: str) -> list[str]:
        """Answer for (name, rdtype), e.g. ("_spf.google.com", "TXT").

        - TXT: each RR's character-strings joined (no quotes, no escapes).
        - A / AAAA: address text.  MX: "preference exchange." text.
        - An empty list means NODATA (the name exists, no RR of that type);
          NXDOMAIN and failures raise DnsError.
        """
        ...

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Hint: these (name, rdtype) pairs will be asked soon; a live
        resolver may issue them concurrently.  May do nothing."""
        return None

    def resolved_at(self, name: str) -> datetime | None:
        """When the answer for `name` was obtained; None when it is live (now)."""
        return None

    def oldest(self) -> datetime | None:
        """When the oldest answer this resolver holds was obtained; None when live."""
        return None
