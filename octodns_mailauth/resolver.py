"""The resolver interface: the only way the core asks DNS anything.

Implementations: the live dnspython resolver (network edge), the offline lock
file, and a dict-backed one for tests.  Answers are plain strings so the core
never depends on dnspython types.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


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


class Resolver(Protocol):
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
        ...


class StaticResolver:
    """A resolver over a dict {(name, rdtype): [answers]}; a missing name is
    NXDOMAIN.  For tests and for answers we already hold in memory."""

    def __init__(
        self, data: dict[tuple[str, str], list[str]], nodata_names: Iterable[str] = ()
    ) -> None:
        self._data = {(n.lower().rstrip("."), t.upper()): list(v) for (n, t), v in data.items()}
        self._names = {n for n, _ in self._data} | {n.lower().rstrip(".") for n in nodata_names}
        self.queries: list[tuple[str, str]] = []

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (name.lower().rstrip("."), rdtype.upper())
        self.queries.append(key)
        if key in self._data:
            return list(self._data[key])
        if key[0] in self._names:
            return []
        raise DnsError(name, rdtype, "nxdomain")

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        return None
