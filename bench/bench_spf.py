"""SPF benchmark: the 483 real-world SPF records (tests/data/realworld) served by a
private loopback PowerDNS, resolved in one run by
  ours        -- what `octodns-mailauth lock refresh` does once it has read the
                 policy files: refresh_lock(walk_dns over the policies) through the
                 CLI's live resolver (cli/livedns.live_resolver, the command's
                 default timeout and deadline), every policy compiled on walk_dns's
                 threads, then the lock diffed against the one there and written
                 (atomically, fsync included).  The policies are one per surveyed
                 domain, including that domain (tests/spf_realworld.policies), so
                 the walk asks every record's whole tree; they are parsed before
                 the timing, as the command reads its files before it resolves;
  floor       -- the least any analyser can do: each distinct (name, type) the
                 analysis needs asked once, with dnspython, concurrently, each query
                 sent the moment the answer it depends on arrives (below);
  checkdmarc  -- checkdmarc.spf.check_spf of each surveyed domain, the reference;
  offline     -- the SPF analysis of the 483 domains from the lock file `ours`
                 wrote (loading the file included; one process, one after the
                 other, sharing include subtrees): the lookup count a compile
                 reads from the lock, not a whole compile.

Our verdicts and lookup counts, compared with checkdmarc's, are those of the
analysis from the lock the last timed refresh wrote; "offline = live" compares
them with the same analysis through that refresh's resolver, which must ask
nothing more (each answer is in its cache).
Every DNS message any of them sends is counted on the wire
(dns.query.send_udp/send_tcp, which dnspython's resolver and ours send through)
per (name, type), and the server's own counters confirm the totals.  Timings are
the best of --repeat cold runs taken in turns.
A lock is recorded first (one untimed refresh), so each timed refresh rewrites an
existing lock, as a scheduled one does, and each round also times the offline
analysis, OFFLINE_PER_ROUND times: it takes milliseconds where checkdmarc takes
seconds, and the best of that many runs spread over the same minutes as
checkdmarc's is what a load spike on a shared machine cannot move.  Every timed
run starts after a full garbage collection, so none pays for the garbage of the
one before.

    .venv/bin/python bench/bench_spf.py [--repeat 5] [--quick] [--results FILE]
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import spf_realworld as rw  # noqa: E402
from pdns_fixture import PdnsServer  # noqa: E402
from report import Report, add_arguments  # noqa: E402

from octodns_mailauth.catalog import load_catalog  # noqa: E402
from octodns_mailauth.cli.livedns import live_resolver  # noqa: E402
from octodns_mailauth.cli.spf import ATTEMPT_TIMEOUT  # noqa: E402
from octodns_mailauth.compile import walk_dns  # noqa: E402
from octodns_mailauth.dns.live import LiveResolver  # noqa: E402
from octodns_mailauth.dns.lockfile import LockResolver, SpfLock  # noqa: E402
from octodns_mailauth.spf.refresh import LockDiff, refresh_lock  # noqa: E402

Pair = tuple[str, str]
OFFLINE_PER_ROUND = 4
DEFAULT_TIMEOUT = 30.0  # `lock refresh --timeout`'s default (cli/__init__.py)

# -- counting every query on the wire --------------------------------------------


class WireCount:
    """Counts the DNS messages sent through dns.query.send_udp/send_tcp, per
    (name, type, transport): every dnspython query goes out through one of them
    (dns.query.udp/tcp, which dnspython's resolver uses, call them; ours calls
    them itself)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()
        send_udp, send_tcp = dns.query.send_udp, dns.query.send_tcp

        def counted_udp(sock: Any, what: Any, *args: Any, **kwargs: Any) -> Any:
            self._note(what, "udp")
            return send_udp(sock, what, *args, **kwargs)

        def counted_tcp(sock: Any, what: Any, *args: Any, **kwargs: Any) -> Any:
            self._note(what, "tcp")
            return send_tcp(sock, what, *args, **kwargs)

        dns.query.send_udp, dns.query.send_tcp = counted_udp, counted_tcp  # type: ignore[assignment]

    def _note(self, what: dns.message.Message | bytes, transport: str) -> None:
        key = (*_question(what), transport)
        with self._lock:
            self._counts[key] += 1

    def take(self) -> Counter[tuple[str, str, str]]:
        """The counts since the last take, and start again from zero."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts


def _question(what: dns.message.Message | bytes) -> tuple[str, str]:
    """(name, type) a query asks.  From wire format, read directly: a query's
    question is its first name, never compressed (RFC 1035 §4.1.4), and parsing
    the whole message would add dnspython's parsing cost to every query timed."""
    if isinstance(what, dns.message.Message):
        q = what.question[0]
        return q.name.to_text(omit_final_dot=True).lower(), dns.rdatatype.to_text(q.rdtype)
    labels, i = [], 12
    while what[i]:
        labels.append(what[i + 1 : i + 1 + what[i]].decode("ascii", "replace"))
        i += 1 + what[i]
    rdtype = int.from_bytes(what[i + 1 : i + 3], "big")
    return ".".join(labels).lower(), dns.rdatatype.to_text(rdtype)


class Traffic:
    """One run's queries: how many, over how many distinct (name, type)."""

    def __init__(self, counts: Counter[tuple[str, str, str]], server: int) -> None:
        self.server = server  # what PowerDNS says it answered
        self.sent = sum(counts.values())
        self.pairs = {(name, rdtype) for name, rdtype, _ in counts}
        # A truncated UDP answer retried over TCP is one question asked once per
        # transport, as RFC 7766 wants; asking the same thing twice on one is a repeat.
        self.max_per_pair = max(counts.values(), default=0)
        self.repeated = {(n, t) for (n, t, _), c in counts.items() if c > 1}
        self.tcp = sum(c for (_, _, transport), c in counts.items() if transport == "tcp")


# -- the floor ----------------------------------------------------------------------


class Floor:
    """Ask each (name, type) an SPF lookup-count analysis needs exactly once.

    What is needed is read off the answers with nothing but `str.split`: the TXT at
    each surveyed domain; for an SPF record there, `include:`/`redirect=` targets'
    TXT, `mx` targets' MX, `exists` targets' A, `a` targets' A, and AAAA where A is
    empty (as ours asks).  `redirect` counts only without `all` (RFC 7208 §6.1);
    macro names need a sender and are not asked.  Each answer releases the queries
    that depend on it at once, on a `workers` thread pool.
    """

    def __init__(self, host: str, port: int, workers: int = 32) -> None:
        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = [host]
        self.resolver.port = port
        self.resolver.timeout = self.resolver.lifetime = 2.0
        self.resolver.use_edns(0, 0, 1232)
        self.resolver.cache = None
        self.workers = workers

    def ask(self, pair: Pair) -> list[str] | None:
        """The answer's values, [] for no data, None for NXDOMAIN or failure."""
        name, rdtype = pair
        try:
            answer = self.resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except dns.exception.DNSException:
            return None
        if answer.rrset is None:
            return []
        if rdtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
        return [r.to_text() for r in answer.rrset]

    def run(self, domains: Iterable[str]) -> dict[Pair, list[str] | None]:
        answers: dict[Pair, list[str] | None] = {}
        asked: set[Pair] = set()
        want_aaaa: set[str] = set()  # names an `a` term points at
        pending: dict[Future[list[str] | None], Pair] = {}
        with ThreadPoolExecutor(self.workers, thread_name_prefix="floor") as pool:

            def submit(pair: Pair) -> None:
                if pair not in asked:
                    asked.add(pair)
                    pending[pool.submit(self.ask, pair)] = pair

            def after_a(name: str) -> None:
                if name in want_aaaa and answers.get((name, "A")) == []:
                    submit((name, "AAAA"))

            for domain in domains:
                submit((_norm(domain), "TXT"))
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pair = pending.pop(future)
                    answer = answers[pair] = future.result()
                    if pair[1] == "TXT":
                        for needed in _needs(pair[0], answer or []):
                            if needed[1] == "A?":
                                want_aaaa.add(needed[0])
                                if (needed[0], "A") in answers:
                                    after_a(needed[0])
                                submit((needed[0], "A"))
                            else:
                                submit(needed)
                    elif pair[1] == "A":
                        after_a(pair[0])
        return answers


def _needs(domain: str, txts: list[str]) -> list[Pair]:
    """The (name, type) pairs the one SPF record among `txts` sends a receiver to;
    type "A?" marks an `a` term (A, then AAAA when A is empty)."""
    records = [t for t in txts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]
    if len(records) != 1:
        return []
    terms = records[0].split()[1:]
    out: list[Pair] = []
    redirect = None
    has_all = False
    for term in terms:
        lower = term.lower()
        if lower.startswith("redirect="):
            redirect = term[len("redirect=") :]
            continue
        if "=" in lower.split(":")[0]:
            continue  # exp= and unknown modifiers query nothing during the count
        body = lower.lstrip("+-~?")
        mech, _, arg = body.partition(":")
        mech, _, cidr = mech.partition("/")
        target = arg.split("/")[0] if arg else domain
        if mech == "all":
            has_all = True
        elif mech in ("include", "mx", "a", "exists") and "%" not in target and target:
            kind = {"include": "TXT", "mx": "MX", "a": "A?", "exists": "A"}[mech]
            out.append((_norm(target), kind))
    if redirect and not has_all and "%" not in redirect:
        out.append((_norm(redirect), "TXT"))
    return out


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


# -- the run ----------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="cold runs each of ours and the floor")
    add_arguments(parser)
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 5)
    their_repeat = 1 if args.quick else 3  # checkdmarc is slow; its best of fewer runs
    report = Report("spf", args)
    wire = WireCount()

    with PdnsServer() as pdns:
        rw.serve(pdns)
        domains = [r["domain"] for r in rw.surveyed()]
        nameserver = f"{pdns.host}:{pdns.dns_port}"
        traffic: dict[str, Traffic] = {}
        results: dict[str, Any] = {}
        times: dict[str, list[float]] = {"ours": [], "floor": [], "checkdmarc": []}

        walk = functools.partial(walk_dns, rw.policies(domains), load_catalog([]))
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "spf-lock.json"

        def ours() -> tuple[LockDiff, LiveResolver]:
            # As cli/spf.py's run(): a deadline of the default --timeout, one
            # attempt at most ATTEMPT_TIMEOUT.
            deadline = time.monotonic() + DEFAULT_TIMEOUT
            attempt = min(ATTEMPT_TIMEOUT, DEFAULT_TIMEOUT)
            with live_resolver(nameserver, attempt, deadline=deadline) as live:
                return refresh_lock(walk, path, live), live

        def floor() -> Any:
            return Floor(pdns.host, pdns.dns_port).run(domains)

        def checkdmarc() -> Any:
            return rw.checkdmarc_run(domains, rw.counting_resolver(pdns))

        contenders: dict[str, Callable[[], Any]] = {
            "ours": ours,
            "floor": floor,
            "checkdmarc": checkdmarc,
        }
        # A lock to refresh, from one more (untimed) refresh.
        ours()
        lock_kb = path.stat().st_size / 1024
        offline_times: list[float] = []
        offline: Any = None

        def timed(run: Callable[[], Any]) -> tuple[Any, float]:
            gc.collect()
            start = time.perf_counter()
            value = run()
            return value, time.perf_counter() - start

        def from_lock() -> Any:
            return rw.ours(domains, LockResolver(SpfLock.load(path)))

        with tmp:
            for round_ in range(repeat):
                for name, run in contenders.items():
                    if name == "checkdmarc" and round_ >= their_repeat:
                        continue
                    wire.take()
                    before = rw.server_queries(pdns)
                    results[name], took = timed(run)
                    times[name].append(took)
                    traffic[name] = Traffic(wire.take(), rw.server_queries(pdns) - before)
                for _ in range(OFFLINE_PER_ROUND):
                    offline, took = timed(from_lock)
                    offline_times.append(took)
            assert not wire.take(), "the offline analysis sent DNS queries"
            diff, live = results["ours"]
            assert diff.written, "the refresh left the lock as it was"
            live_verdicts = rw.ours(domains, live)  # from its cache: asks nothing
            assert not wire.take(), "the refresh left answers the analysis needs unasked"
            mine = rw.ours(domains, LockResolver(SpfLock.load(path)))

    theirs = results["checkdmarc"]
    verdicts = sum(mine[d].verdict == theirs[d].verdict for d in domains)
    compared = [d for d in domains if theirs[d].lookups is not None]
    counts = sum(mine[d].lookups == theirs[d].lookups for d in compared)
    offline_same = sum(
        (live_verdicts[d].verdict, live_verdicts[d].lookups)
        == (offline[d].verdict, offline[d].lookups)
        for d in domains
    )
    best = {name: min(values) for name, values in times.items()}
    t_off = min(offline_times)
    print(
        f"records analysed: {len(domains)}; best of {repeat} cold runs "
        f"({their_repeat} for checkdmarc, {len(offline_times)} offline), taken in turns"
    )
    print("ours = refresh_lock(walk_dns over 483 policies) through the CLI's live resolver")
    print(f"{'':12} {'ms':>9} {'sent':>6} {'server':>7} {'pairs':>6} {'repeats':>8} {'tcp':>4}")
    for name in ("ours", "floor", "checkdmarc"):
        t = traffic[name]
        print(
            f"{name:12} {best[name] * 1000:9.1f} {t.sent:6d} {t.server:7d} "
            f"{len(t.pairs):6d} {len(t.repeated):8d} {t.tcp:4d}"
        )
    print(f"{'offline':12} {t_off * 1000:9.1f}      0 (lock {lock_kb:.0f} KiB)")
    only_ours = traffic["ours"].pairs - traffic["floor"].pairs
    only_floor = traffic["floor"].pairs - traffic["ours"].pairs
    print(
        f"pairs asked by ours only: {len(only_ours)}, by the floor only: {len(only_floor)}"
        + (f" (e.g. ours {sorted(only_ours)[:3]})" if only_ours else "")
        + (f" (e.g. floor {sorted(only_floor)[:3]})" if only_floor else "")
    )
    print(f"verdicts agree with checkdmarc: {verdicts}/{len(domains)}")
    print(f"lookup counts agree:            {counts}/{len(compared)} where checkdmarc gives one")
    print(f"offline = live:                 {offline_same}/{len(domains)}")
    sent = traffic["ours"]
    report.at_most("live: ours / floor", best["ours"] / best["floor"], 1.3)
    report.at_least("live: checkdmarc / ours", best["checkdmarc"] / best["ours"], 5)
    report.at_most("live: queries per distinct (name, type)", sent.max_per_pair, 1, "")
    report.figure(
        "live: queries ours / checkdmarc",
        f"{sent.sent} / {traffic['checkdmarc'].sent}",
    )
    report.at_least("offline from lock: checkdmarc live / ours", best["checkdmarc"] / t_off, 300)
    report.figure("offline = live, verdicts agree", f"{offline_same}, {verdicts}/{len(domains)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
