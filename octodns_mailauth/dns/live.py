"""The live resolver: the only dnspython client, at the network edge.

Each (name, type) is asked at most once per LiveResolver (a per-run cache, errors
included), and `prefetch` issues the queries it is handed at once, all in flight
together on one I/O thread, so an SPF tree is fetched level by level with each
level in parallel.
Answers are plain strings (see resolver.Resolver); failures raise DnsError with a
kind the caller can act on.  An optional deadline bounds the whole run: once it
passes, every query not yet answered fails at once as a timeout.
"""

from __future__ import annotations

import ipaddress
import secrets
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from ..names import normalize
from .resolver import DnsError, Resolver

Answer = list[str] | DnsError
EDNS_PAYLOAD = 1232  # the DNS Flag Day 2020 size: no fragmented UDP answers


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


@dataclass(eq=False)
class _Flight:
    """One (name, type) being asked: its attempt, the server it is at, and the
    socket (None between attempts) and message ID of the query in flight."""

    key: tuple[str, str]
    attempt: int = 0
    server: int = 0  # index into the resolver's servers, within this attempt
    refused: bool = False  # a server of this attempt answered REFUSED
    sock: socket.socket | None = None
    qid: int = 0  # the query in flight's message ID
    expiration: float = 0.0
    last: DnsError | None = None


class LiveResolver(Resolver):
    """A caching, concurrent resolver over dnspython.

    `nameservers`: `host[:port]` strings; None uses the system configuration
    (/etc/resolv.conf).  `timeout` is per attempt, `retries` how many more
    attempts a timed-out or SERVFAIL query gets; `deadline` (a `time.monotonic()`
    value) ends every attempt, retries included, at that moment.  `workers`:
    how many queries may be in flight at once.

    One I/O thread sends every UDP query and reads every answer, each query on a
    socket of its own (its own random source port), all waited on by one
    selector: a thread per query costs each query several hand-overs of the GIL
    with the threads that compile, which on a small machine cost more than the
    query.  A query goes out through dns.query.send_udp (see `query_wire`),
    dnspython parses every answer (dns.message.from_wire) and follows its CNAME
    chain as its resolver does; a truncated answer is asked again over TCP
    (dns.query.tcp) on a thread of its own.  The I/O thread ends when nothing is in
    flight; the TCP threads, once started, stay until `close()`.
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
                system = dns.resolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration as err:
                raise NameserverError(f"no system resolver configured ({err})") from None
            self._servers = [_endpoint(n, system) for n in system.nameservers]
            if not self._servers:
                raise NameserverError("no system resolver configured (no nameserver listed)")
            self.source = "the system resolver"
        else:
            names = list(nameservers)
            if not names:
                raise NameserverError("no nameserver given")
            self._servers = [parse_nameserver(n) for n in names]
            self.source = ", ".join(names)
        self.timeout = timeout
        self.retries = retries
        self.workers = max(1, workers)
        self.deadline = deadline
        self._cache: dict[tuple[str, str], Answer] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        self._pending: dict[tuple[str, str], Future[Answer]] = {}
        self._mutex = threading.Lock()
        # The I/O thread's work: flights to start, and a socket pair to wake it.
        self._queue: deque[_Flight] = deque()
        self._thread: threading.Thread | None = None
        self._ended: threading.Thread | None = None  # the last I/O thread, until joined
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._tcp: ThreadPoolExecutor | None = None
        self._tcp_busy = 0  # truncated answers being asked again over TCP
        self._idle = threading.Condition(self._mutex)  # the I/O thread or a TCP ask ended
        # Queries asked, retries included (a truncated answer asked again over
        # TCP is the same query): for benchmarks and tests.
        self.queries_sent = 0

    # -- Resolver protocol --------------------------------------------------

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (normalize(name), rdtype.upper())
        with self._mutex:
            answer = self._cache.get(key)
            future = None if answer is not None else self._ensure(key)
        if answer is None:
            assert future is not None
            answer = future.result()
        if isinstance(answer, DnsError):
            raise answer.again()
        return list(answer)

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Start every unasked pair now, in parallel; `query` then waits for its own."""
        with self._mutex:
            for name, rdtype in pairs:
                key = (normalize(name), rdtype.upper())
                if key not in self._cache:
                    self._ensure(key)

    def alias(self, name: str, rdtype: str) -> str | None:
        """The CNAME target an answered `query(name, rdtype)` came through, if any."""
        return self._aliases.get((normalize(name), rdtype.upper()))

    def close(self) -> None:
        """Wait for the queries in flight; a closed resolver may be used again."""
        with self._idle:
            self._idle.wait_for(lambda: self._thread is None and not self._tcp_busy)
            ended, self._ended = self._ended, None
        if ended is not None:
            ended.join()  # past its last line, so nothing is left running
        if self._tcp is not None:
            self._tcp.shutdown(wait=True)
            self._tcp = None

    def __enter__(self) -> LiveResolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the I/O thread -------------------------------------------------------

    def _ensure(self, key: tuple[str, str]) -> Future[Answer]:
        """The future for `key`, its query started if it was not (under the mutex)."""
        future = self._pending.get(key)
        if future is None:
            future = self._pending[key] = Future()
            self._submit(_Flight(key))
        return future

    def _submit(self, flight: _Flight) -> None:
        """Hand `flight` to the I/O thread, starting one if none runs (under the mutex)."""
        self._queue.append(flight)
        if self._thread is None:
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._thread = threading.Thread(
                target=self._run, args=(self._wake_r,), name="dns", daemon=True
            )
            self._thread.start()
        elif len(self._queue) == 1 and self._wake_w is not None:
            try:
                self._wake_w.send(b"\0")
            except BlockingIOError:
                pass  # wake-ups are waiting already

    def _run(self, wake: socket.socket) -> None:
        flights: set[_Flight] = set()  # UDP queries in flight
        starting: deque[_Flight] = deque()  # taken from the queue, not yet sent
        sel = selectors.DefaultSelector()
        try:
            sel.register(wake, selectors.EVENT_READ)
            while True:
                with self._mutex:
                    while self._queue and len(flights) + len(starting) < self.workers:
                        starting.append(self._queue.popleft())
                    if not starting and not flights:
                        self._stopped()  # the next query starts another thread
                        return
                while starting:  # each left here until sent: an error below finishes it
                    self._send(sel, flights, starting[0])
                    starting.popleft()
                if not flights:
                    continue
                timeout = max(0.0, min(f.expiration for f in flights) - time.monotonic())
                for selected, _ in sel.select(timeout):
                    if selected.data is None:
                        _drain(selected.fileobj)  # type: ignore[arg-type]
                    else:
                        self._receive(sel, flights, selected.data)
                now = time.monotonic()
                for flight in [f for f in flights if f.expiration <= now]:
                    self._land(sel, flights, flight)
                    host, port = self._servers[flight.server]
                    self._server_failed(flight, "timeout", f"no answer from {host}:{port}")
        except BaseException as err:
            # Nobody may wait forever on a query this thread will not finish.
            with self._mutex:
                lost = list(dict.fromkeys([*flights, *starting, *self._queue]))
                self._queue.clear()
                self._stopped()
            for flight in lost:
                self._finish(
                    flight, self._error(flight, "servfail", f"internal error: {_short(err)}")
                )
            raise
        finally:
            for flight in flights:
                if flight.sock is not None:
                    flight.sock.close()
            sel.close()

    def _stopped(self) -> None:
        """The I/O thread ends (under the mutex)."""
        for end in (self._wake_r, self._wake_w):
            if end is not None:
                end.close()
        self._wake_r = self._wake_w = None
        self._ended, self._thread = self._thread, None  # joined by close()
        self._idle.notify_all()

    def _send(self, sel: selectors.BaseSelector, flights: set[_Flight], flight: _Flight) -> None:
        lifetime = self._lifetime()
        if lifetime <= 0:
            self._finish(
                flight, flight.last or self._error(flight, "timeout", "the deadline passed")
            )
            return
        host, port = self._servers[flight.server]
        qid = secrets.randbits(16)
        try:
            wire = query_wire(qid, *flight.key)
        except (dns.exception.DNSException, ValueError) as err:
            # Not a name DNS can carry: no server will answer it (kept as dnspython's
            # resolver reported it, a failed query).
            self._finish(flight, self._error(flight, "servfail", f"cannot ask: {_short(err)}"))
            return
        try:
            sock = socket.socket(
                socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM
            )
        except OSError as err:  # out of descriptors, say: this query fails, not all
            self._server_failed(flight, "servfail", _short(err))
            return
        sock.setblocking(False)
        with self._mutex:
            self.queries_sent += 1
        try:
            dns.query.send_udp(sock, wire, (host, port))
        except OSError as err:
            sock.close()
            self._server_failed(flight, "servfail", _short(err))
            return
        flight.sock, flight.qid = sock, qid
        flight.expiration = time.monotonic() + lifetime
        sel.register(sock, selectors.EVENT_READ, flight)
        flights.add(flight)

    def _land(self, sel: selectors.BaseSelector, flights: set[_Flight], flight: _Flight) -> None:
        """Take `flight` out of the air: its socket closed, no longer waited on."""
        assert flight.sock is not None
        sel.unregister(flight.sock)
        flight.sock.close()
        flight.sock = None
        flights.discard(flight)

    def _receive(
        self, sel: selectors.BaseSelector, flights: set[_Flight], flight: _Flight
    ) -> None:
        """Read what arrived for `flight`; datagrams that are not its answer are
        dropped and the wait goes on, as dnspython's ignore_unexpected/ignore_errors."""
        assert flight.sock is not None
        server = self._servers[flight.server]
        while True:
            try:
                wire, source = flight.sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError as err:
                self._land(sel, flights, flight)
                self._server_failed(flight, "servfail", _short(err))
                return
            if not _same_address(source, server):
                continue
            try:
                response = dns.message.from_wire(wire, raise_on_truncation=True)
            except dns.message.Truncated as err:
                if not _is_answer(err.message(), flight):
                    continue
                self._land(sel, flights, flight)
                self._over_tcp(flight)
                return
            except Exception:
                continue  # malformed: not the answer
            if not _is_answer(response, flight):
                continue
            self._land(sel, flights, flight)
            self._answered(flight, response)
            return

    def _over_tcp(self, flight: _Flight) -> None:
        """Ask a truncated answer's question again over TCP (RFC 7766), on a
        thread of its own: a TCP exchange blocks."""
        with self._mutex:
            if self._tcp is None:
                self._tcp = ThreadPoolExecutor(4, thread_name_prefix="dns-tcp")
            self._tcp_busy += 1
            self._tcp.submit(self._ask_tcp, flight)

    def _ask_tcp(self, flight: _Flight) -> None:
        host, port = self._servers[flight.server]
        name, rdtype = flight.key
        query = dns.message.make_query(
            name, rdtype, use_edns=0, payload=EDNS_PAYLOAD, id=flight.qid
        )
        try:
            lifetime = self._lifetime()
            if lifetime <= 0:
                flight.last = self._error(flight, "timeout", "the deadline passed")
                self._retry(flight)
                return
            try:
                response = dns.query.tcp(query, host, timeout=lifetime, port=port)
            except dns.exception.Timeout:
                flight.last = self._error(flight, "timeout", f"no answer from {host}:{port}")
                self._retry(flight)
            except (OSError, EOFError, dns.exception.DNSException) as err:
                # EOFError: the server closed the connection before answering.
                self._server_failed(flight, "servfail", _short(err))
            else:
                self._answered(flight, response)
        except BaseException as err:  # nobody may wait forever on this query
            self._finish(flight, self._error(flight, "servfail", f"internal error: {_short(err)}"))
            raise
        finally:
            with self._mutex:
                self._tcp_busy -= 1
                self._idle.notify_all()

    # -- answers ----------------------------------------------------------------

    def _answered(self, flight: _Flight, response: dns.message.Message) -> None:
        name, rdtype = flight.key
        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            self._finish(flight, self._error(flight, "nxdomain", "the name does not exist"))
            return
        if rcode == dns.rcode.YXDOMAIN:
            self._finish(flight, self._error(flight, "servfail", "YXDOMAIN"))
            return
        if rcode != dns.rcode.NOERROR:
            # SERVFAIL, REFUSED, anything else: this server cannot answer; the next may.
            host, port = self._servers[flight.server]
            kind = "refused" if rcode == dns.rcode.REFUSED else "servfail"
            self._server_failed(flight, kind, f"{host}:{port} answered {dns.rcode.to_text(rcode)}")
            return
        try:
            # The CNAME chain to the answer, as dnspython's resolver follows it.
            chain = response.resolve_chaining()  # type: ignore[attr-defined]
        except dns.exception.DNSException as err:
            self._server_failed(flight, "servfail", _short(err))
            return
        canonical = normalize(str(chain.canonical_name))
        if canonical != name and rdtype != "CNAME":
            with self._mutex:
                self._aliases[flight.key] = canonical
        rrset = chain.answer
        self._finish(flight, [] if rrset is None else [_text(r, rdtype) for r in rrset])

    def _server_failed(self, flight: _Flight, kind: str, detail: str) -> None:
        """This attempt's server failed: ask the next, or end the attempt."""
        flight.last = self._error(flight, kind, detail)
        flight.refused = flight.refused or kind == "refused"
        flight.server += 1
        if flight.server < len(self._servers):
            with self._mutex:
                self._submit(flight)
        elif flight.refused:
            self._finish(flight, flight.last)  # refusing again will not help
        else:
            self._retry(flight)

    def _retry(self, flight: _Flight) -> None:
        """The attempt failed (timeout or SERVFAIL): another, if any are left."""
        flight.attempt += 1
        flight.server = 0
        flight.refused = False
        if flight.attempt > self.retries:
            assert flight.last is not None
            self._finish(flight, flight.last)
            return
        with self._mutex:
            self._submit(flight)

    def _finish(self, flight: _Flight, answer: Answer) -> None:
        with self._mutex:
            self._cache[flight.key] = answer
            future = self._pending.pop(flight.key, None)
        if future is not None:  # an internal error's clean-up may finish it again
            future.set_result(answer)

    @staticmethod
    def _error(flight: _Flight, kind: str, detail: str) -> DnsError:
        return DnsError(*flight.key, kind, detail)

    def _lifetime(self) -> float:
        if self.deadline is None:
            return self.timeout
        return min(self.timeout, self.deadline - time.monotonic())


# The EDNS OPT record of every query: root owner, type OPT, class = the UDP
# payload size, extended rcode/version/flags 0, no options (RFC 6891 §6.1.2).
_OPT = struct.pack("!BHHIH", 0, dns.rdatatype.OPT, EDNS_PAYLOAD, 0, 0)


def query_wire(qid: int, name: str, rdtype: str) -> bytes:
    """The query for (name, rdtype) with ID `qid`, byte for byte what
    `dns.message.make_query(name, rdtype, use_edns=0, payload=EDNS_PAYLOAD)` renders
    (tests compare them), without building and rendering a Message: that took a
    tenth of a refresh's CPU.  dnspython still encodes the name."""
    return (
        struct.pack("!6H", qid, dns.flags.RD, 1, 0, 0, 1)
        + dns.name.from_text(name).to_wire()
        + struct.pack("!HH", dns.rdatatype.from_text(rdtype), dns.rdataclass.IN)
        + _OPT
    )


def _is_answer(response: dns.message.Message, flight: _Flight) -> bool:
    """Does `response` answer the query in flight?  dnspython's
    Message.is_response, for the one question we ask."""
    if not response.flags & dns.flags.QR or response.id != flight.qid:
        return False
    if dns.opcode.from_flags(response.flags) != dns.opcode.QUERY:
        return False
    if not response.question:
        # As dnspython: these errors may come without the question.
        return response.rcode() in _QUESTIONLESS
    if len(response.question) != 1:
        return False
    asked = response.question[0]
    name, rdtype = flight.key
    return (
        asked.rdclass == dns.rdataclass.IN
        and asked.rdtype == dns.rdatatype.from_text(rdtype)
        and asked.name == dns.name.from_text(name)
    )


_QUESTIONLESS = frozenset(
    {dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED}
)


def _endpoint(nameserver: object, system: dns.resolver.Resolver) -> tuple[str, int]:
    """(address, port) of a nameserver the system configuration lists."""
    if isinstance(nameserver, str):
        return nameserver, system.nameserver_ports.get(nameserver, system.port)
    if isinstance(nameserver, dns.nameserver.Do53Nameserver):
        return nameserver.address, nameserver.port
    raise NameserverError(f"the system resolver lists {nameserver}, not a plain DNS server")


def _same_address(source: tuple, server: tuple[str, int]) -> bool:
    """Did a datagram from `source` come from `server` (address text may differ)?"""
    if source[1] != server[1]:
        return False
    try:
        return ipaddress.ip_address(source[0]) == ipaddress.ip_address(server[0])
    except ValueError:
        return False


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except BlockingIOError:
        pass


def _text(rdata: object, rdtype: str) -> str:
    if rdtype == "TXT":
        # RFC 7208 §3.3: character-strings are joined without spaces.
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    # Names in RDATA (MX exchange, CNAME target) are case-insensitive: one spelling.
    return rdata.to_text().lower()  # type: ignore[attr-defined]


def _short(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) < 200 else text[:197] + "..."
