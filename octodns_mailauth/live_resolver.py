"""The live resolver: dnspython at the network edge.

Each (name, type) is asked at most once per LiveResolver (a per-run cache, errors
included), and `prefetch` issues the queries it is handed concurrently on a thread
pool, so an SPF tree is fetched level by level with each level in parallel.
Answers are plain strings (see resolver.Resolver); failures raise DnsError with a
kind the caller can act on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from .resolver import DnsError

Answer = list[str] | DnsError


def parse_nameserver(text: str) -> tuple[str, int]:
    """`host[:port]`, `[v6]:port` or a bare IPv6 address -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


class LiveResolver:
    """A caching, concurrent resolver over dnspython.

    `nameservers`: `host[:port]` strings; None uses the system configuration
    (/etc/resolv.conf).  `timeout` is per attempt, `retries` how many more
    attempts a timed-out or SERVFAIL query gets.
    """

    def __init__(
        self,
        nameservers: Iterable[str] | None = None,
        *,
        timeout: float = 2.0,
        retries: int = 2,
        workers: int = 32,
    ) -> None:
        if nameservers is None:
            self._resolver = dns.resolver.Resolver(configure=True)
        else:
            self._resolver = dns.resolver.Resolver(configure=False)
            servers = [parse_nameserver(n) for n in nameservers]
            if not servers:
                raise ValueError("no nameserver given")
            # dnspython keeps one port for all plain nameservers; ours are usually one.
            self._resolver.nameservers = [h for h, _ in servers]
            self._resolver.port = servers[0][1]
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout
        self._resolver.cache = None  # our own cache below also keeps negative answers
        self._resolver.use_edns(0, 0, 1232)
        self.retries = retries
        self.workers = workers
        self._cache: dict[tuple[str, str], Answer] = {}
        self._pending: dict[tuple[str, str], Future[Answer]] = {}
        self._mutex = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.queries_sent = 0  # wire queries, retries included: for benchmarks and tests

    # -- Resolver protocol --------------------------------------------------

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (_norm(name), rdtype.upper())
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
            raise answer
        return list(answer)

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Start every unasked pair now, in parallel; `query` then waits for its own."""
        with self._mutex:
            todo: dict[tuple[str, str], None] = {}
            for name, rdtype in pairs:
                key = (_norm(name), rdtype.upper())
                if key not in self._cache and key not in self._pending:
                    todo[key] = None
            if not todo:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="dns")
            for key in todo:
                self._pending[key] = self._pool.submit(self._remember, key)

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

    def _ask(self, name: str, rdtype: str) -> Answer:
        last: DnsError | None = None
        for _attempt in range(self.retries + 1):
            with self._mutex:
                self.queries_sent += 1
            try:
                answer = self._resolver.resolve(
                    dns.name.from_text(name), rdtype, search=False, raise_on_no_answer=False
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
            if answer.rrset is None:
                return []  # NODATA
            return [_text(rdata, rdtype) for rdata in answer.rrset]
        assert last is not None
        return last


def _text(rdata: object, rdtype: str) -> str:
    if rdtype == "TXT":
        # RFC 7208 §3.3: character-strings are joined without spaces.
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    return rdata.to_text()  # type: ignore[attr-defined]


def _short(err: Exception) -> str:
    text = str(err)
    return text if len(text) < 200 else text[:197] + "..."


def _norm(name: str) -> str:
    return name.rstrip(".").lower()
