"""Live DNS for the CLI (`check`, `spf refresh`): the one dnspython client
(dns/live.py) built from --nameserver/--timeout, with failures turned into
messages a user can act on (exit 2)."""

from __future__ import annotations

import time

from ..dns.live import LiveResolver, NameserverError
from ..dns.resolver import DnsError
from .settings import UsageError


class DnsUnavailable(UsageError):
    """The server timed out, failed (SERVFAIL) or refused: exit 2, never "missing"."""


def live_resolver(
    nameserver: str | None, timeout: float, *, retries: int = 1, deadline: float | None = None
) -> LiveResolver:
    """A LiveResolver for the flags; a bad --nameserver or no system resolver is exit 2."""
    if timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    try:
        return LiveResolver(
            [nameserver] if nameserver else None,
            timeout=timeout,
            retries=retries,
            deadline=deadline,
        )
    except NameserverError as err:
        if nameserver:
            raise UsageError(f"--nameserver {err}") from None
        raise UsageError(f"{err}; give --nameserver") from None


class LiveDns:
    """Answers for `check`: (values, alias); a name that does not exist has none."""

    def __init__(self, nameserver: str | None, timeout: float) -> None:
        self.resolver = live_resolver(nameserver, timeout, deadline=time.monotonic() + timeout)
        self.timeout = timeout
        self.where = self.resolver.source

    def query(self, name: str, rdtype: str) -> tuple[list[str], str | None]:
        """(values, CNAME target if the name is an alias).  NXDOMAIN/NODATA -> []."""
        try:
            values = self.resolver.query(name, rdtype)
        except DnsError as err:
            if err.kind == "nxdomain":
                return [], None
            raise unavailable(err, self.where, self.timeout) from None
        return values, self.resolver.alias(name, rdtype)


def unavailable(err: DnsError, where: str, timeout: float) -> DnsUnavailable:
    if err.kind == "timeout":
        return DnsUnavailable(
            f"{where} did not answer {err.rdtype} {err.name} within {timeout:g} s; "
            "check the address and port, or raise --timeout"
        )
    if err.kind in ("servfail", "refused"):
        return DnsUnavailable(
            f"{where} did not answer {err.rdtype} {err.name}: SERVFAIL or refused "
            f"({err.detail}); is it authoritative for the zone, and is the zone loaded?"
        )
    return DnsUnavailable(f"{err.rdtype} {err.name} via {where}: {err}")
