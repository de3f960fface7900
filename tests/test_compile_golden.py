"""Compile output pinned to a golden file: records, findings (text and order)
and errors of the example policies, of every hostile variant of them
(tests/test_hostile_variants.py) and of a synthetic estate run through the
processor in one process and in worker processes.  Work on how fast a policy is
read, parsed and compiled must leave every byte of this the same.

The golden (tests/data/golden/compile.json) was captured from the code before
that work; `OCTODNS_MAILAUTH_WRITE_GOLDEN=1` writes it again (only for an
intended output change, reviewed in the diff)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from octodns.zone import Zone
from test_bulk_compile import _workers
from test_hostile_variants import VARIANTS

from octodns_mailauth import compile as compile_module
from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.dkim.keys import private_key_to_pem, public_key_b64
from octodns_mailauth.dkim.statefile import load_state
from octodns_mailauth.dns.lockfile import open_lock
from octodns_mailauth.errors import (
    KeyUnavailable,
    MailAuthError,
    MailAuthProcessorError,
    PolicyError,
)
from octodns_mailauth.keysource import placeholder_public_key
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import parse_policy
from octodns_mailauth.processor import MailAuthProcessor

ROOT = Path(__file__).resolve().parent.parent
MAIL = ROOT / "zones" / "mail"
GOLDEN = ROOT / "tests" / "data" / "golden" / "compile.json"
WRITE = os.environ.get("OCTODNS_MAILAUTH_WRITE_GOLDEN") == "1"
# Rotation and the SPF lock's age are judged at this time, in every compile here.
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def _ed25519(domain: str, selector: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = hashlib.sha256(f"{domain}/{selector}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


class FixedKeys:
    """The same public key for a selector in every run: Ed25519 from a seed,
    RSA the keyless placeholder of its size (fixed numbers)."""

    def public_key(self, domain: str, key: DkimKey) -> str:
        if key.public_key:
            return key.public_key
        if key.algorithm == "rsa":
            return placeholder_public_key("rsa", key.bits)
        return public_key_b64(_ed25519(domain, key.selector or ""))


def _result(result: CompileResult) -> dict[str, Any]:
    return {
        "records": [
            [r.name, r.type, r.ttl, list(r.values), r.owner, r.kind, str(r.location), r.takeover]
            for r in result.records
        ],
        "findings": [[f.severity.name, f.code, f.rfc, f.format()] for f in result.findings],
    }


def _outcome(text: str, path: str, domain: str | None, inputs: dict[str, Any]) -> Any:
    try:
        lp = parse_policy(text, path, domain)
    except PolicyError as e:
        return {"error": [f.format() for f in e.findings]}
    try:
        result = compile_policy(lp, keys=FixedKeys(), now=NOW, **inputs)
    except (KeyUnavailable, MailAuthError) as e:
        return {"raised": f"{type(e).__name__}: {e}"}
    return _result(result)


def _example_inputs() -> dict[str, Any]:
    return {
        "catalog": load_catalog(),
        "resolver": open_lock(None, MAIL),
        "dkim_state": load_state(ROOT / "zones" / "dkim-state.yaml", MAIL),
    }


def compiled() -> dict[str, Any]:
    """Every example policy and hostile variant, parsed and compiled."""
    inputs = _example_inputs()
    out: dict[str, Any] = {}
    for p in sorted(MAIL.glob("*.yaml")):
        out[f"example:{p.name}"] = _outcome(p.read_text(), f"mail/{p.name}", p.stem, inputs)
    for v in VARIANTS:
        if v.kind == "weak":  # keys made at random: not the same output twice
            continue
        name = v.rename or v.file
        domain = name.rsplit(".", 1)[0]
        out[f"variant:{v.id}"] = _outcome(v.content(), f"mail/{name}", domain, inputs)
    return out


# --- a synthetic estate through the processor -------------------------------------------

ESTATE = 48  # tests/test_bulk_compile.py: `_workers` makes a few fork
SELECTOR = "relay2026a"
# The bench's policy (bench/estate.py) and shapes that report more.
SHAPES = [
    """\
senders:
  - name: office
    provider: microsoft365
    tenant: tenant{i}
    dkim_targets: legacy
  - name: newsletters
    provider: sendgrid
    account: u{i}
    link: wl{i}
  - name: relay
    ip4: [203.0.113.{octet}, 198.51.100.0/28]
    dkim: {{selector: {selector}, algorithm: ed25519}}
spf: {{all: fail}}
dmarc: {{policy: quarantine, rua: [mailto:dmarc@d{i}.example]}}
""",
    """\
senders:
  - name: workspace
    provider: google
  - name: relay
    ip4: [192.0.2.{octet}]
    a: true
    dkim: {{selector: {selector}, algorithm: ed25519}}
spf: {{all: softfail}}
dmarc: {{stage: monitor, rua: [mailto:dmarc@d{i}.example, mailto:agg@report.example]}}
""",
    """\
senders:
  - name: relay
    ip6: ['2001:db8:{octet}::/48']
    mx: true
    dkim: {{selector: {selector}, algorithm: ed25519}}
spf: {{all: fail}}
dmarc: {{policy: reject, rua: [mailto:dmarc@d0.example]}}
mta_sts: {{mode: testing, mx: [mx1.d{i}.example]}}
tls_rpt: {{rua: [mailto:tls@d{i}.example]}}
""",
    """\
parked: true
""",
]


def _estate(root: Path) -> tuple[Path, Path]:
    policies, keys = root / "mail", root / "keys"
    policies.mkdir(mode=0o700)
    keys.mkdir(mode=0o700)
    for i in range(ESTATE):
        name = f"d{i}.example"
        shape = SHAPES[i % len(SHAPES)]
        text = shape.format(i=i, octet=i % 250 + 1, selector=SELECTOR)
        (policies / f"{name}.yaml").write_text(text)
        if "dkim:" in text:
            (keys / name).mkdir(mode=0o700)
            pem = private_key_to_pem(_ed25519(name, SELECTOR), None)
            fd = os.open(keys / name / f"{SELECTOR}.pem", os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
    return policies, keys


def processed(root: Path, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """The processor over the estate: each zone's records and the lines it logged."""
    policies, keys = _estate(root)
    caplog.clear()
    proc = MailAuthProcessor("golden", policies=str(policies), keys=str(keys))
    out: dict[str, Any] = {}
    for i in range(ESTATE):
        caplog.clear()
        zone = Zone(f"d{i}.example.", [])
        proc.process_source_zone(zone, sources=[])
        out[zone.name] = {
            "records": sorted(
                [r.name, r._type, r.ttl, json.dumps(r.data, sort_keys=True)] for r in zone.records
            ),
            "logged": [
                [r.levelname, r.getMessage().replace(str(root), "<root>")]
                for r in caplog.records
                if r.name.endswith("[golden]")
            ],
        }
    # And the errors of a broken estate: every file's, in order; those of files
    # that read well but do not compile (the first compile's), in order.
    good = {n: (policies / n).read_text() for n in ("d7.example.yaml", "d11.example.yaml")}
    (policies / "d3.example.yaml").write_text("senders: [{name: x, provider: nosuch}]\n")
    (policies / "d5.example.yaml").write_text("senders: [{name: x, include: [a..b]}]\n")
    (policies / "d7.example.yaml").write_text("spf: {all: maybe}\nsenders: []\n")
    (policies / "d11.example.yaml").write_text("senders:\n  - name: r\n    ip4: [300.1.2.3]\n")
    for what in ("errors", "compile errors"):
        with pytest.raises(MailAuthProcessorError) as e:
            MailAuthProcessor("golden", policies=str(policies), keys=str(keys))
        out[what] = str(e.value).replace(str(root), "<root>")
        for name, text in good.items():
            (policies / name).write_text(text)
    return out


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    class Fixed(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return NOW

    monkeypatch.setattr(compile_module, "datetime", Fixed)


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


def _check(key: str, got: Any) -> None:
    if WRITE:
        golden = _golden()
        golden[key] = got
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        # Never a pass: a run that wrote the golden compared nothing.
        pytest.fail(f"{GOLDEN} written ({key}); review its diff, then run without WRITE_GOLDEN")
    want = _golden()[key]
    got = json.loads(json.dumps(got))  # as written: tuples are lists
    assert sorted(got) == sorted(want)
    for name in want:  # one entry at a time: a failure names the policy
        assert got[name] == want[name], name


def test_compiled_policies_match_the_golden() -> None:
    # The lock's path is in its messages: the checkout's own, not the golden's.
    got = json.loads(json.dumps(compiled(), ensure_ascii=False).replace(str(ROOT), "<root>"))
    assert len(got) > 500  # the variants are there
    assert sum("records" in v for v in got.values()) > 20
    assert sum("error" in v for v in got.values()) > 400
    _check("compiled", got)


@pytest.mark.parametrize("jobs", [1, 2])
def test_processed_estate_matches_the_golden(
    jobs: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fixed_now: None,
) -> None:
    pools = _workers(monkeypatch, jobs)
    monkeypatch.setattr("octodns_mailauth.integration.bulk.CHUNK_POLICIES", 10)
    caplog.set_level(logging.INFO)
    umask = os.umask(0o077)
    try:
        got = processed(tmp_path, caplog)
    finally:
        os.umask(umask)  # not left to the tests after this one
    assert set(pools) == ({2} if jobs > 1 else set())  # forked only when asked to
    assert sum(len(z["records"]) for k, z in got.items() if "errors" not in k) > 200
    assert "d11.example" in got["errors"]
    assert "d5.example" in got["compile errors"]
    _check("processed", got)
