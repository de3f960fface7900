"""A private, throw-away PowerDNS authoritative server for tests and benchmarks.

``PdnsServer`` starts ``pdns_server`` (gsqlite3 backend) on loopback with
ports picked at run time, so several sessions can run side by side and
nothing needs port 53. The ``pdns`` pytest fixture wraps it for a whole test
session. Install the server with ``script/install-pdns``.

Usage outside pytest (e.g. benchmarks)::

    with PdnsServer() as server:
        server.create_zone("example.com.")
        provider = PowerDnsProvider("pdns", **server.octodns_provider_config())

Only 127.0.0.1 is ever contacted; the config turns off PowerDNS's own
outbound traffic (security polling, NOTIFY).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver
import pytest

HOST = "127.0.0.1"

# Debian's pdns-backend-sqlite3 ships the schema here; PDNS_SQLITE_SCHEMA
# lets other distributions or source builds point elsewhere.
DEFAULT_SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")

# pdns_server lives in /usr/sbin, which is not on a normal user's PATH.
_SBIN_FALLBACKS = ("/usr/sbin/pdns_server", "/usr/local/sbin/pdns_server")

# Module dirs to search for the SQLite backend, multiarch first.
_MODULE_GLOBS = ("/usr/lib/*/pdns", "/usr/lib/pdns", "/usr/local/lib/pdns", "/usr/lib64/pdns")

# Startup on a warm machine takes well under a second; the slack is for
# loaded CI runners.
DEFAULT_START_TIMEOUT = 30.0

# Picking a free port and handing it to pdns_server is inherently racy; if
# another process grabs a port in between we retry with fresh ports.
_BIND_RETRIES = 3


class PdnsUnavailable(RuntimeError):
    """PowerDNS (or its SQLite backend / schema) is not installed."""


class PdnsStartError(RuntimeError):
    """pdns_server was found but did not come up."""


def find_pdns_server() -> str | None:
    found = shutil.which("pdns_server")
    if found:
        return found
    for candidate in _SBIN_FALLBACKS:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _find_gsqlite3_module() -> Path | None:
    for pattern in _MODULE_GLOBS:
        for directory in sorted(Path("/").glob(pattern.lstrip("/"))):
            module = directory / "libgsqlite3backend.so"
            if module.exists():
                return module
    return None


def _schema_path() -> Path:
    return Path(os.environ.get("PDNS_SQLITE_SCHEMA", DEFAULT_SCHEMA))


def check_installed() -> str:
    """Return the pdns_server path, or raise PdnsUnavailable saying what is missing."""
    missing = []
    binary = find_pdns_server()
    if binary is None:
        missing.append("pdns_server (package pdns-server)")
    if _find_gsqlite3_module() is None:
        missing.append("libgsqlite3backend.so (package pdns-backend-sqlite3)")
    if not _schema_path().is_file():
        missing.append(f"SQLite schema {_schema_path()} (package pdns-backend-sqlite3)")
    if missing:
        raise PdnsUnavailable("missing: " + ", ".join(missing))
    assert binary is not None
    return binary


def _port_is_free(port: int) -> bool:
    # DNS needs the same number on UDP and TCP.
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def _free_port(exclude: set[int]) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in exclude and _port_is_free(port):
            return port
    raise PdnsStartError("could not find a free loopback port")


class PdnsServer:
    """One pdns_server process with its own SQLite DB, config and ports.

    ``workdir``: where the config, DB, control socket and log go. If omitted
    a temporary directory is created and removed again by ``stop()``.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else None
        self.start_timeout = start_timeout
        self.host = HOST
        self.dns_port = 0
        self.api_port = 0
        self.api_key = secrets.token_urlsafe(24)
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # -- paths / properties -------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            raise RuntimeError("PdnsServer is not started")
        return self.workdir

    @property
    def log_path(self) -> Path:
        return self._dir / "pdns.log"

    @property
    def db_path(self) -> Path:
        return self._dir / "pdns.sqlite3"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> PdnsServer:
        if self.running:
            return self
        binary = check_installed()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="pdns-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self._init_db()

        started = time.monotonic()
        last_error: PdnsStartError | None = None
        for _ in range(_BIND_RETRIES):
            self.dns_port = _free_port(set())
            self.api_port = _free_port({self.dns_port})
            self._write_config()
            self._spawn(binary)
            try:
                self._wait_ready()
            except PdnsStartError as exc:
                self._kill()
                last_error = exc
                if "Address already in use" in str(exc):
                    continue
                raise
            self.startup_seconds = time.monotonic() - started
            return self
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        self._kill()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> PdnsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _init_db(self) -> None:
        # Fresh DB every start: tests must not see a previous run's zones.
        self.db_path.unlink(missing_ok=True)
        schema = _schema_path().read_text()
        with sqlite3.connect(self.db_path) as conn:
            conn.executescript(schema)
        conn.close()

    def _write_config(self) -> None:
        settings = {
            "launch": "gsqlite3",
            "gsqlite3-database": str(self.db_path),
            "local-address": self.host,
            "local-port": str(self.dns_port),
            "api": "yes",
            "api-key": self.api_key,
            "webserver": "yes",
            "webserver-address": self.host,
            "webserver-port": str(self.api_port),
            "webserver-allow-from": "127.0.0.0/8",
            # Every cache off / zero so an API write is visible to the very
            # next DNS query (otherwise answers can be up to 20-60 s stale
            # and a new zone is unknown until the zone cache refreshes).
            "zone-cache-refresh-interval": "0",
            "query-cache-ttl": "0",
            "cache-ttl": "0",
            "negquery-cache-ttl": "0",
            "zone-metadata-cache-ttl": "0",
            # Keep every file in the workdir; nothing under /run or /etc.
            "socket-dir": str(self._dir),
            "config-dir": str(self._dir),
            "write-pid": "no",
            # Run in the foreground under our control: no fork, no guardian
            # re-exec, logs on stderr (captured into pdns.log).
            "daemon": "no",
            "guardian": "no",
            "disable-syslog": "yes",
            "loglevel": "4",
            # No outbound traffic: the default security poll sends a DNS
            # query to secpoll.powerdns.com at startup, and a primary would
            # NOTIFY the zone's NS hosts.
            "security-poll-suffix": "",
            "primary": "no",
            "secondary": "no",
            "only-notify": "",
            "query-local-address": self.host,
            # As root pdns_server simply keeps running as root (no setuid/
            # setgid configured). That is deliberate: dropping to the
            # `pdns` user would need the temp dir and DB chowned to it, and
            # the high ports need no privileges anyway.
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        (self._dir / "pdns.conf").write_text("\n".join(lines) + "\n")

    def _spawn(self, binary: str) -> None:
        if self._log_file is not None:
            self._log_file.close()
        # Append so a retried start keeps the earlier attempt's log.
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _kill
        self._proc = subprocess.Popen(
            [binary, f"--config-dir={self._dir}"],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self._dir,
            # Own process group: a Ctrl-C in the terminal reaches pytest,
            # which then stops the server in order instead of both racing.
            start_new_session=True,
        )

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        api_ok = dns_ok = False
        last = "nothing tried yet"
        while time.monotonic() < deadline:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise PdnsStartError(
                    f"pdns_server exited with status {code} during startup "
                    f"(config {self._dir / 'pdns.conf'}). Log tail:\n{self.log_tail()}"
                )
            if not api_ok:
                try:
                    self.api("GET", "", timeout=1.0)
                    api_ok = True
                except (OSError, urllib.error.URLError) as exc:
                    last = f"API: {exc}"
            if api_ok and not dns_ok:
                # Any well-formed reply counts (REFUSED is expected with no
                # zones); check both transports since we bind both.
                query = dns.message.make_query(".", dns.rdatatype.SOA)
                try:
                    dns.query.udp(query, self.host, port=self.dns_port, timeout=0.5)
                    dns.query.tcp(query, self.host, port=self.dns_port, timeout=0.5)
                    dns_ok = True
                except (OSError, dns.exception.DNSException) as exc:
                    last = f"DNS: {exc!r}"
            if api_ok and dns_ok:
                return
            time.sleep(0.05)
        raise PdnsStartError(
            f"pdns_server did not become ready within {self.start_timeout:.0f}s "
            f"(last error: {last}). Log tail:\n{self.log_tail()}"
        )

    # -- API helpers ----------------------------------------------------------

    def api(self, method: str, path: str, data: Any = None, *, timeout: float = 10.0) -> Any:
        """Call ``/api/v1/servers/localhost/<path>``; returns decoded JSON or None.

        Raises ``urllib.error.HTTPError`` with PowerDNS's error text appended.
        """
        url = f"{self.url}/api/v1/servers/localhost/{path}".rstrip("/")
        body = None if data is None else json.dumps(data).encode()
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("X-API-Key", self.api_key)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            exc.msg = f"{exc.msg}: {detail}"
            raise
        return json.loads(payload) if payload else None

    def create_zone(self, name: str, *, ttl: int = 300) -> str:
        """Create a Native zone with an SOA and one in-zone NS; return its FQDN."""
        fqdn = name if name.endswith(".") else f"{name}."
        soa = f"ns1.{fqdn} hostmaster.{fqdn} 1 10800 3600 604800 {ttl}"
        self.api(
            "POST",
            "zones",
            {
                "name": fqdn,
                "kind": "Native",
                "nameservers": [],
                # Same SOA-EDIT-API as octoDNS's PowerDnsProvider default, so
                # the serial is bumped on every API change like in prod.
                "soa_edit_api": "DEFAULT",
                "rrsets": [
                    {
                        "name": fqdn,
                        "type": "SOA",
                        "ttl": ttl,
                        "records": [{"content": soa, "disabled": False}],
                    },
                    {
                        "name": fqdn,
                        "type": "NS",
                        "ttl": ttl,
                        "records": [{"content": f"ns1.{fqdn}", "disabled": False}],
                    },
                ],
            },
        )
        return fqdn

    def set_rrsets(
        self, zone: str, rrsets: Iterable[tuple[str, str, list[str] | None]], *, ttl: int = 60
    ) -> None:
        """Replace RRsets (name, type, contents in zone-file syntax), or delete one whose
        contents are None, through the API: DNS changed behind octoDNS's back."""
        fqdn = zone if zone.endswith(".") else f"{zone}."
        changes: list[dict[str, Any]] = []
        for name, rtype, contents in rrsets:
            rrset: dict[str, Any] = {"name": name.rstrip(".") + ".", "type": rtype, "ttl": ttl}
            if contents is None:
                rrset["changetype"] = "DELETE"
            else:
                rrset["changetype"] = "REPLACE"
                rrset["records"] = [{"content": c, "disabled": False} for c in contents]
            changes.append(rrset)
        self.api("PATCH", f"zones/{fqdn}", {"rrsets": changes})

    def delete_zone(self, name: str) -> None:
        fqdn = name if name.endswith(".") else f"{name}."
        # PowerDNS wants '/' in zone ids as '=2F' (see octodns_powerdns).
        zone_id = urllib.request.quote(fqdn, safe="").replace("%", "=")
        self.api("DELETE", f"zones/{zone_id}")

    def zone_names(self) -> list[str]:
        return sorted(zone["name"] for zone in self.api("GET", "zones"))

    # -- clients ----------------------------------------------------------------

    def resolver(self, *, timeout: float = 1.0, lifetime: float = 3.0) -> dns.resolver.Resolver:
        """A stub resolver that asks only this server (no /etc/resolv.conf)."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.host]
        resolver.port = self.dns_port
        resolver.timeout = timeout
        resolver.lifetime = lifetime
        # EDNS with the common 1232-byte payload, like real resolvers; the
        # resolver still falls back to TCP on truncation.
        resolver.use_edns(0, 0, 1232)
        resolver.cache = None
        return resolver

    def octodns_provider_config(self) -> dict[str, Any]:
        """Keyword arguments for ``octodns_powerdns.PowerDnsProvider(id, **kwargs)``."""
        return {
            "host": self.host,
            "port": self.api_port,
            "api_key": self.api_key,
            "scheme": "http",
        }

    def octodns_provider(self, provider_id: str = "pdns") -> Any:
        """A ready ``PowerDnsProvider`` for this server."""
        from octodns_powerdns import PowerDnsProvider

        return PowerDnsProvider(provider_id, **self.octodns_provider_config())


def txt_content(text: str) -> str:
    """PowerDNS zone-file syntax: quoted character-strings of at most 255 octets."""
    raw = text.encode()
    chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    quoted = []
    for chunk in chunks:
        s = chunk.decode("utf-8", "replace").replace("\\", "\\\\").replace('"', '\\"')
        quoted.append(f'"{s}"')
    return " ".join(quoted)


def _must_not_skip() -> bool:
    # Root means CI (or a developer who could just run script/install-pdns):
    # a missing server there is a broken setup, not an optional extra.
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return os.geteuid() == 0 or ci


def require_pdns() -> None:
    """Skip the calling test if PowerDNS is missing, or fail if root/CI.

    For tests that start their own ``PdnsServer`` instead of using ``pdns``.
    """
    try:
        check_installed()
    except PdnsUnavailable as exc:
        message = f"PowerDNS not installed (run script/install-pdns as root): {exc}"
        if _must_not_skip():
            pytest.fail(f"{message}. Running as root/CI, so this is an error, not a skip.")
        pytest.skip(message)


def _running(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[PdnsServer]:
    require_pdns()
    server = PdnsServer(tmp_path_factory.mktemp(name))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pdns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PdnsServer]:
    """A running PowerDNS shared by the whole session; use unique zone names."""
    yield from _running(tmp_path_factory, "pdns")


@pytest.fixture(scope="module", name="pdns")
def pdns_of_the_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PdnsServer]:
    """`pdns` as a PowerDNS of the module's own, for modules that serve whole
    top-level zones (com., net., ...: spf_realworld.serve_rrsets) and import this.
    In the session's server those zones would answer for every later test's names
    under them (NXDOMAIN where a test expects its server to refuse), and the order
    the tests run in would decide."""
    yield from _running(tmp_path_factory, "pdns-module")
