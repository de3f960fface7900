"""The live resolver: the only dnspython client, at the network edge.

Each (name, type) is asked at most once per LiveResolver (a per-run cache, errors
included), and `prefetch` issues the queries it is handed concurrently on a thread
pool, so an SPF tree is fetched level by level with each level in parallel.
Answers are plain strings (see resolver.Resolver); failures raise DnsError with a
kind the caller can act on.  An optional deadline bounds the whole run: once it
passes, every query not yet answered fails at once as a timeout.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from ..names import normalize
from .resolver import DnsError, Resolver

Answer = list[str] | DnsError


class NameserverError(ValueError):
    """A nameserver that cannot be asked: bad address or port, or no system resolver."""


def parse_nameserver(text: str) -> tuple[str, int]:
    """`host[:port]`, `[v6]:port` or a bare IPv6 address -> (address, port).
    A host name is looked up once, through the system, to its address."""
    text = text.strip()
    host, raw_port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        raw_port = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, raw_port = text.split(":")
    port = 53
    if raw_port:
        if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
            raise NameserverError(f"{text}: {raw_port!r} is not a port number")
        port = int(raw_port)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = socket.gethostbyname(host)
        except OSError as err:
            raise NameserverError(f"{text}: cannot resolve {host}: {err}") from None
    return host, port


class LiveResolver(Resolver):
    """A caching, concurrent resolver over dnspython.

    `nameservers`: `host[:port]` strings; None uses the system configuration
    (/etc/resolv.conf).  `timeout` is per attempt, `retries` how many more
    attempts a timed-out or SERVFAIL query gets; `deadline` (a `time.monotonic()`
    value) ends every attempt, retries included, at that moment.
    """

    def __init__(
        self,
        nameservers: Iterable[str] | None = None,
        *,
        timeout: float = 2.0,
        retries: int = 2,
        workers: int = 32,
        deadline: float | None = None,
    ) -> None:
        if nameservers is None:
            try:
                self._resolver = dns.resolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration as err:
                raise NameserverError(f"no system resolver configured ({err})") from None
            self.source = "the system resolver"
        else:
            names = list(nameservers)
            if not names:
                raise NameserverError("no nameserver given")
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_nameserver(n)) for n in names
            ]
            self.source = ", ".join(names)
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout
        self._resolver.cache = None  # our own cache below also keeps negative answers
        self._resolver.use_edns(0, 0, 1232)
        self.timeout = timeout
        self.retries = retries
        self.workers = workers
        self.deadline = deadline
        self._cache: dict[tuple[str, str], Answer] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        self._pending: dict[tuple[str, str], Future[Answer]] = {}
        self._mutex = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.queries_sent = 0  # wire queries, retries included: for benchmarks and tests

    # -- Resolver protocol --------------------------------------------------

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (normalize(name), rdtype.upper())
        mine: Future[Answer] | None = None
        with self._mutex:
            answer = self._cache.get(key)
            future = self._pending.get(key) if answer is None else None
            if answer is None and future is None:
                # Ask it here, but let other threads wanting it wait for this answer.
                mine = self._pending[key] = Future()
        if mine is not None:
            answer = self._remember(key)
            mine.set_result(answer)
        elif answer is None:
            assert future is not None
            answer = future.result()
        if isinstance(answer, DnsError):
            raise answer.again()
        return list(answer)

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Start every unasked pair now, in parallel; `query` then waits for its own."""
        with self._mutex:
            todo: dict[tuple[str, str], None] = {}
            for name, rdtype in pairs:
                key = (normalize(name), rdtype.upper())
                if key not in self._cache and key not in self._pending:
                    todo[key] = None
            if not todo:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="dns")
            for key in todo:
                self._pending[key] = self._pool.submit(self._remember, key)

    def alias(self, name: str, rdtype: str) -> str | None:
        """The CNAME target an answered `query(name, rdtype)` came through, if any."""
        return self._aliases.get((normalize(name), rdtype.upper()))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> LiveResolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wire -----------------------------------------------------------------

    def _remember(self, key: tuple[str, str]) -> Answer:
        answer = self._ask(*key)
        with self._mutex:
            self._cache[key] = answer
            self._pending.pop(key, None)
        return answer

    def _lifetime(self) -> float:
        if self.deadline is None:
            return self.timeout
        return min(self.timeout, self.deadline - time.monotonic())

    def _ask(self, name: str, rdtype: str) -> Answer:
        last: DnsError | None = None
        for _attempt in range(self.retries + 1):
            lifetime = self._lifetime()
            if lifetime <= 0:
                return last or DnsError(name, rdtype, "timeout", "the deadline passed")
            with self._mutex:
                self.queries_sent += 1
            try:
                answer = self._resolver.resolve(
                    dns.name.from_text(name),
                    rdtype,
                    search=False,
                    raise_on_no_answer=False,
                    lifetime=lifetime,
                )
            except dns.resolver.NXDOMAIN:
                return DnsError(name, rdtype, "nxdomain", "the name does not exist")
            except dns.resolver.NoNameservers as err:
                # Every server answered SERVFAIL/REFUSED; retrying may help with SERVFAIL.
                kind = "refused" if "REFUSED" in str(err) else "servfail"
                last = DnsError(name, rdtype, kind, _short(err))
                if kind == "refused":
                    return last
                continue
            except (dns.exception.Timeout, dns.resolver.LifetimeTimeout) as err:
                last = DnsError(name, rdtype, "timeout", _short(err))
                continue
            except dns.exception.DNSException as err:
                return DnsError(name, rdtype, "servfail", _short(err))
            canonical = normalize(str(answer.canonical_name))
            if canonical != name and rdtype != "CNAME":
                with self._mutex:
                    self._aliases[(name, rdtype)] = canonical
            if answer.rrset is None:
                return []  # NODATA
            return [_text(rdata, rdtype) for rdata in answer.rrset]
        assert last is not None
        return last


def _text(rdata: object, rdtype: str) -> str:
    if rdtype == "TXT":
        # RFC 7208 §3.3: character-strings are joined without spaces.
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    # Names in RDATA (MX exchange, CNAME target) are case-insensitive: one spelling.
    return rdata.to_text().lower()  # type: ignore[attr-defined]


def _short(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) < 200 else text[:197] + "..."
