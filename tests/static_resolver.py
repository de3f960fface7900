"""A resolver over answers held in a dict, for tests that need DNS without a server."""

from __future__ import annotations

from collections.abc import Iterable

from octodns_mailauth.dns.resolver import DnsError, Resolver
from octodns_mailauth.names import normalize


class StaticResolver(Resolver):
    """A resolver over a dict {(name, rdtype): [answers]}; a missing name is
    NXDOMAIN."""

    source = "answers in memory"

    def __init__(
        self, data: dict[tuple[str, str], list[str]], nodata_names: Iterable[str] = ()
    ) -> None:
        self._data = {(normalize(n), t.upper()): list(v) for (n, t), v in data.items()}
        self._names = {n for n, _ in self._data} | {normalize(n) for n in nodata_names}
        self.queries: list[tuple[str, str]] = []

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (normalize(name), rdtype.upper())
        self.queries.append(key)
        if key in self._data:
            return list(self._data[key])
        if key[0] in self._names:
            return []
        raise DnsError(name, rdtype, "nxdomain")
