"""The processor's first compile of every policy in worker processes
(integration/bulk.py): every zone gets what one process gives it."""

from __future__ import annotations

import gc
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from octodns.manager import Manager
from test_processor import add_reporting_zones
from test_processor import edit_yaml as edit

from octodns_mailauth import _workers as workers_module
from octodns_mailauth.context import CompileResult
from octodns_mailauth.findings import Finding, Location, Severity
from octodns_mailauth.integration import bulk
from octodns_mailauth.policy.loader import DeferredPolicy
from octodns_mailauth.processor import MailAuthProcessor

CONFIG = "zones/config.yaml"


def _workers(monkeypatch: pytest.MonkeyPatch, jobs: int) -> list[int]:
    """Make the processor compile in `jobs` worker processes (1: here); the
    pools started, by their size."""
    pools: list[int] = []

    class Counted(bulk.ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(bulk, "ProcessPoolExecutor", Counted)
    monkeypatch.setattr(bulk, "PARALLEL_MIN_POLICIES", 1)
    monkeypatch.setattr(bulk, "CHUNK_POLICIES", 2)  # the first policy compiles here
    monkeypatch.setattr(bulk, "idle_cpus", lambda waiting: jobs)
    # Workers are forked only with no other thread running: octoDNS's idle worker
    # threads from earlier runs end once their executor is collected.
    gc.collect()
    deadline = time.monotonic() + 30
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    return pools


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return sorted(
        r.getMessage()
        for r in caplog.records
        if r.name == "MailAuthProcessor[mailauth]" and r.levelno == logging.WARNING
    )


def test_zones_get_from_workers_what_one_process_gives(
    example: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # 12 more zones, each sending DMARC reports to example.com (a record placed in
    # another zone), with a DKIM key of its own read from the keystore.
    extra = add_reporting_zones(12, "{name: relay, ip4: [192.0.2.7], dkim: {selector: k1}}")
    edit(
        CONFIG,
        lambda d: d["zones"].update(
            {
                f"{z}.": {"sources": ["config"], "processors": ["mailauth"], "targets": ["local"]}
                for z in extra
            }
        ),
    )
    here = _workers(monkeypatch, 1)
    assert Manager(CONFIG).sync(dry_run=False) > 0  # keys generated and published
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert Manager(CONFIG).sync(dry_run=True) == 0
    alone = _warnings(caplog)
    assert here == [] and alone, alone

    pools = _workers(monkeypatch, 2)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        # Nothing to change: every record the workers' results gave is the one
        # published from this process's; the same warnings, the same number.
        assert Manager(CONFIG).sync(dry_run=True) == 0
    assert pools == [2]  # policies read and compiled in one pass
    assert _warnings(caplog) == alone


def test_an_error_in_a_worker_is_raised_as_one_here(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("keys").mkdir(mode=0o700)

    def build() -> str:
        with pytest.raises(Exception) as e:
            MailAuthProcessor("mail", policies="zones/mail", keys="keys", generate_keys=False)
        return f"{type(e.value).__name__}: {e.value}"

    _workers(monkeypatch, 1)
    alone = build()
    assert "no DKIM key for selector" in alone, alone
    pools = _workers(monkeypatch, 2)
    assert build() == alone
    assert pools == [2]


def test_policy_errors_from_workers_are_every_file_s_in_order(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Across chunks of 3 files: a YAML error, a schema error, a second policy for a
    # domain; every one is reported, in file order, as one process reports them.
    for i in range(8):
        Path(f"zones/mail/z{i}.example.yaml").write_text("senders: []\ndmarc: {policy: none}\n")
    Path("zones/mail/z2.example.yaml").write_text("senders: [\n")
    Path("zones/mail/z5.example.yaml").write_text("senders: []\nspf: {all: maybe}\n")
    Path("zones/mail/z6.example.yml").write_text("senders: []\n")

    def build() -> str:
        with pytest.raises(Exception) as e:
            MailAuthProcessor("mail", policies="zones/mail")
        return f"{type(e.value).__name__}: {e.value}"

    _workers(monkeypatch, 1)
    alone = build()
    assert (
        alone.index("z2.example.yaml:2")
        < alone.index("z5.example.yaml")
        < alone.index("a second policy for z6.example")
    ), alone
    pools = _workers(monkeypatch, 2)
    assert build() == alone
    assert pools == [2]  # the files read in workers; with errors nothing is compiled


def test_policies_from_workers_are_parsed_here_only_when_read(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _workers(monkeypatch, 1)
    alone = MailAuthProcessor(
        "mail", policies="zones/mail", keys="zones/.dkim", generate_keys=True
    )
    pools = _workers(monkeypatch, 2)
    proc = MailAuthProcessor("mail", policies="zones/mail", keys="zones/.dkim", generate_keys=True)
    assert pools == [2]
    deferred = list(proc.policies.values())
    assert {type(lp) for lp in deferred} == {DeferredPolicy}
    assert proc.acknowledged == alone.acknowledged  # from the workers, nothing parsed
    assert not any("_parsed" in vars(lp) for lp in deferred)
    for lp, there in zip(deferred, alone.policies.values(), strict=True):
        # Parsed here again from the text the worker parsed: the same policy.
        assert (lp.domain, lp.path, lp.policy, lp.lines) == (
            there.domain,
            there.path,
            there.policy,
            there.lines,
        )
        assert lp == there and lp.location("senders", 0) == there.location("senders", 0)


@pytest.mark.parametrize("policy_error", [False, True])
def test_shared_inputs_failing_before_the_workers_fail_as_in_one_process(
    example: Path, monkeypatch: pytest.MonkeyPatch, policy_error: bool
) -> None:
    # The SPF lock is read before the workers start (they compile): when it is
    # broken, the files are read first and the errors come in the usual order.
    Path("zones/mail/spf-lock.json").write_text("{not json")
    if policy_error:
        Path("zones/mail/z.example.yaml").write_text("senders: [\n")

    def build() -> str:
        with pytest.raises(Exception) as e:
            MailAuthProcessor(
                "mail", policies="zones/mail", keys="zones/.dkim", generate_keys=True
            )
        return f"{type(e.value).__name__}: {e.value}"

    _workers(monkeypatch, 1)
    alone = build()
    assert ("z.example.yaml:2" in alone) is policy_error, alone
    assert ("spf-lock.json" in alone) is not policy_error, alone
    pools = _workers(monkeypatch, 2)
    assert build() == alone
    assert pools == [2]  # the files read in workers, nothing compiled there


def test_findings_come_back_formatted_as_here() -> None:
    # Workers format what the processor logs; the text kept is the one made here,
    # and a finding changed by `replace` formats itself anew.
    where = Location("mail/a.example.yaml", 3, "senders[0]")
    warning = Finding(Severity.WARNING, "w", where, "fix it", rfc="RFC 7208 §4.6.4")
    info = Finding(Severity.INFO, "i", where)
    result = CompileResult("a.example", findings=[warning, info])
    back = pickle.loads(pickle.dumps(bulk._for_zones(result)))
    assert [vars(f).get("_formatted") for f in back.findings] == [warning.format(), None]
    assert back.findings == [warning, info]
    assert back.findings[0].format() == replace(warning).format()  # made anew
    assert (
        replace(back.findings[0], message="v")
        .format()
        .endswith("v (at senders[0]) [RFC 7208 §4.6.4]; hint: fix it")
    )


def test_workers_end_when_their_process_is_killed(tmp_path: Path) -> None:
    # A process killed while its workers compile leaves none of them waiting.
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys, time
            from octodns_mailauth.integration.bulk import fork_map

            def slow(i):
                os.write(1, f"{os.getpid()}\\n".encode())  # one write: workers share the pipe
                time.sleep(60)

            fork_map(slow, list(range(400)), jobs=2)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert proc.stdout is not None
        workers = {int(proc.stdout.readline()), int(proc.stdout.readline())}
        assert len(workers) == 2 and proc.pid not in workers
    finally:
        proc.kill()
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while workers and time.monotonic() < deadline:
        workers = {pid for pid in workers if _running(pid)}
        time.sleep(0.05)
    assert not workers, workers


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its (new) parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_a_waiting_process_counts_its_own_cpu_as_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers_module, "usable_cpus", lambda: 2)
    for load, alone, waiting in ((0.2, 2, 2), (0.9, 1, 2), (1.6, 1, 1), (3.5, 1, 1)):
        monkeypatch.setattr(workers_module.os, "getloadavg", lambda: (load, 0.0, 0.0))  # noqa: B023
        found = (workers_module.idle_cpus(), workers_module.idle_cpus(waiting=True))
        assert found == (alone, waiting), load


def test_the_first_policy_compiles_here_before_the_workers_start(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What each worker would otherwise do for itself on first use (imports, the
    # policy schema, catalog entries) is done once, here, and inherited.
    pools = _workers(monkeypatch, 2)
    where: list[tuple[str, int, int]] = []
    read = bulk.FirstPass._read_and_compile

    def noted(self: bulk.FirstPass, path: Path) -> Any:
        out = read(self, path)
        where.append((path.name, os.getpid(), len(pools)))
        return out

    monkeypatch.setattr(bulk.FirstPass, "_read_and_compile", noted)
    MailAuthProcessor("mail", policies="zones/mail", keys="zones/.dkim", generate_keys=True)
    assert pools == [2]
    assert where == [("example.com.yaml", os.getpid(), 0)]  # the workers' are theirs
