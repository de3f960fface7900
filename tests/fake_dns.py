"""Bad DNS servers on loopback, for the failures users meet: a server that never
answers, one that answers SERVFAIL or REFUSED, and a filtering (captive) resolver
that answers NXDOMAIN, or NOERROR with no records, for every name; and one whose
UDP answers are truncated and whose TCP port closes each connection unanswered."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode

MODES = ("silent", "servfail", "refused", "nxdomain", "nodata", "truncate")


class FakeDnsServer:
    """`with FakeDnsServer("nxdomain") as server:` then ask `server.address`."""

    def __init__(self, mode: str) -> None:
        assert mode in MODES, mode
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.tcp: socket.socket | None = None
        self.tcp_accepted = 0
        if mode == "truncate":  # the TCP port the truncated answers send clients to
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.bind(("127.0.0.1", self.port))
            self.tcp.listen()
            self.tcp.settimeout(0.2)
            self._tcp_thread = threading.Thread(target=self._close_each, daemon=True)

    def _close_each(self) -> None:
        assert self.tcp is not None
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            self.tcp_accepted += 1
            conn.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            self.received += 1
            if self.mode == "silent":
                continue
            reply = dns.message.make_response(dns.message.from_wire(data))
            rcode = {
                "servfail": dns.rcode.SERVFAIL,
                "refused": dns.rcode.REFUSED,
                "nxdomain": dns.rcode.NXDOMAIN,
            }
            reply.set_rcode(rcode.get(self.mode, dns.rcode.NOERROR))
            if self.mode == "truncate":
                reply.flags |= dns.flags.TC
            self.sock.sendto(reply.to_wire(), peer)

    def __enter__(self) -> FakeDnsServer:
        self._thread.start()
        if self.tcp is not None:
            self._tcp_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        if self.tcp is not None:
            self._tcp_thread.join(2)
            self.tcp.close()
