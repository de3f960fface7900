"""Live DNS for `check` and `spf refresh`: dnspython asking one server (or the
system resolver), with failures turned into messages a user can act on."""

from __future__ import annotations

from .settings import UsageError


class DnsUnavailable(UsageError):
    """The server timed out, failed (SERVFAIL) or refused: exit 2, never "missing"."""


def parse_nameserver(text: str) -> tuple[str, int]:
    """HOST, HOST:PORT, [V6]:PORT or a bare IPv6 address."""
    import ipaddress
    import socket

    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, raw = text.split(":")
        port = _port(raw, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = socket.gethostbyname(host)
        except OSError as e:
            raise UsageError(f"--nameserver {text}: cannot resolve {host}: {e}") from None
    return host, port


def _port(raw: str, text: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise UsageError(f"--nameserver {text}: {raw!r} is not a port number")
    return int(raw)


class LiveDns:
    """dnspython, asking one server (or the system resolver); answers as text."""

    def __init__(self, nameserver: str | None, timeout: float) -> None:
        import dns.resolver

        self.where = nameserver or "the system resolver"
        if nameserver:
            host, port = parse_nameserver(nameserver)
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [host]
            self.resolver.port = port
        else:
            try:
                self.resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration as e:
                raise UsageError(
                    f"no system resolver configured ({e}); give --nameserver"
                ) from None
        self.resolver.timeout = timeout
        self.resolver.lifetime = timeout
        self.resolver.cache = None

    def query(self, name: str, rdtype: str) -> tuple[list[str], str | None]:
        """(values, cname target if the name is an alias).  NXDOMAIN/NODATA -> []."""
        import dns.exception
        import dns.resolver

        try:
            answer = self.resolver.resolve(name + ".", rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return [], None
        except dns.resolver.NoNameservers as e:
            raise DnsUnavailable(
                f"{self.where} did not answer {rdtype} {name}: SERVFAIL or refused "
                f"({_short(e)}); is it authoritative for the zone, and is the zone loaded?"
            ) from None
        except dns.exception.Timeout:
            raise DnsUnavailable(
                f"{self.where} did not answer {rdtype} {name} within "
                f"{self.resolver.lifetime:g} s; check the address and port, or raise --timeout"
            ) from None
        except dns.exception.DNSException as e:
            raise DnsUnavailable(f"{rdtype} {name} via {self.where}: {_short(e)}") from None
        alias = None
        if str(answer.canonical_name).rstrip(".").lower() != name and rdtype != "CNAME":
            alias = str(answer.canonical_name)
        values = []
        if answer.rrset is not None:
            for rdata in answer.rrset:
                if rdtype == "TXT":
                    values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
                elif rdtype == "MX":
                    values.append(f"{rdata.preference} {str(rdata.exchange).lower()}")
                else:
                    values.append(rdata.to_text().lower())
        return values, alias


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:200]
