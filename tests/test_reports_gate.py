"""Attribution, the rollout gate and `reports suggest` on a synthetic month.

The month (tests/reports_synth.py) has daily reports from three receivers for
the example's declared senders (zones/mail/example.com.yaml, example.net.yaml)
plus two undeclared sources for example.com: Mailchimp (recognisable by its
d= and MAIL FROM) and an unknown host.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
import reports_synth as rs

from octodns_mailauth.cli import main
from octodns_mailauth.cli.settings import read_config
from octodns_mailauth.cli.workspace import load
from octodns_mailauth.findings import Severity
from octodns_mailauth.reports.settings import ReportsSettings
from octodns_mailauth.reports.suggest import suggest

CONFIG = "zones/config.yaml"
DAYS = 30


def _write_month(folder: Path, extra: dict[str, list[rs.Source]] | None = None) -> int:
    folder.mkdir(exist_ok=True)
    end = datetime.now(timezone.utc).date()
    sources = {
        "example.com": (rs.example_com_sources(), "quarantine"),
        "example.net": (rs.example_net_sources(), "none"),
    }
    n = 0
    for domain, (srcs, policy) in sources.items():
        for name, data in rs.month(
            domain, srcs + (extra or {}).get(domain, []), end, policy=policy
        ):
            (folder / name).write_bytes(data)
            n += 1
    return n


@pytest.fixture
def month(example: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    n = _write_month(example / "in")
    assert n == 180  # 30 days x 3 receivers x 2 domains
    assert main(["reports", "ingest", "in", "--db", "r.db", "-q"]) == 0
    assert "180 DMARC aggregate and 0 SMTP TLS reports stored" in capsys.readouterr().out
    return example


def _workspace(**reports: object) -> object:
    settings = read_config(Path(CONFIG), None)
    reports = ReportsSettings.model_validate({"db": "r.db", **reports})
    return load(replace(settings, reports=reports))


def _compile(domain: str, **reports: object) -> tuple[object, object, object]:
    ws = _workspace(**reports)
    lp = ws.policy_for(domain)  # type: ignore[attr-defined]
    return ws, lp, ws.compile(lp)  # type: ignore[attr-defined]


def test_attribution(month: Path) -> None:
    _, _, result = _compile("example.com")
    att = result.details.evidence.attribution
    assert att.reports == 90 and len(att.days) == DAYS
    by_name = {name: ev for name, ev in att.senders.items()}
    assert {n: (e.messages, e.failing) for n, e in by_name.items()} == {
        "office": (40 * DAYS, 0),
        "newsletters": (25 * DAYS, 0),
        "relay": (12 * DAYS, 0),
    }
    # Microsoft's and SendGrid's addresses come from the ranges in the SPF lock.
    assert set(by_name["office"].matched_by) == {"address"}
    assert by_name["office"].addresses == {"40.107.22.5"}
    assert set(by_name["newsletters"].matched_by) == {"address"}
    assert set(by_name["relay"].matched_by) == {"address"}
    assert att.include_use == {
        ("office", "spf.protection.outlook.com"): 40 * DAYS,
        ("newsletters", "sendgrid.net"): 25 * DAYS,
    }
    mailchimp, unknown = att.undeclared
    assert (mailchimp.provider, mailchimp.label, mailchimp.messages) == (
        "mailchimp",
        "Mailchimp",
        9 * DAYS,
    )
    assert mailchimp.why == "DKIM d= mcsv.net"
    assert mailchimp.addresses == {"205.201.131.98"}
    assert (unknown.provider, unknown.label, unknown.messages) == (None, "198.18.7.7", 2 * DAYS)
    assert att.total.messages == (40 + 25 + 12 + 9 + 2) * DAYS
    assert not att.subdomains


def test_gate_counts_and_blocks(month: Path) -> None:
    _, _, result = _compile("example.com")
    gate = result.details.evidence
    assert gate.state == "blocked" and gate.next == "reject" and gate.policy == "reject"
    assert gate.would_fail == 11 * DAYS
    assert gate.by_source == [("undeclared Mailchimp", 9 * DAYS), ("undeclared 198.18.7.7", 60)]
    codes = [(f.severity, f.code) for f in result.findings if f.code.startswith("evidence")]
    assert codes == [
        (Severity.WARNING, "evidence-undeclared"),
        (Severity.WARNING, "evidence-undeclared"),
        (Severity.INFO, "evidence-gate"),
    ]
    stage = result.details.dmarc_stage
    assert len(stage.blockers) == 2 and "Mailchimp" in stage.blockers[0]
    (line,) = [f for f in result.findings if f.code == "dmarc-stage"]
    assert "before reject, fix: undeclared source Mailchimp" in line.message
    # gate: fail makes them errors (validate and octodns-sync stop).
    _, _, strict = _compile("example.com", gate="fail")
    assert [f.code for f in strict.errors] == ["evidence-undeclared"] * 2
    # Below min_messages an undeclared source is noise, not a blocker.
    _, _, lenient = _compile("example.com", min_messages=61)
    assert [f.code for f in lenient.findings if f.code == "evidence-undeclared"] == [
        "evidence-undeclared"
    ]


def test_gate_clear_when_only_declared_senders_send(month: Path) -> None:
    _, _, result = _compile("example.net")
    gate = result.details.evidence
    assert gate.state == "clear" and gate.would_fail == 0
    (line,) = [f for f in result.findings if f.code == "dmarc-stage"]
    assert line.message.startswith("DMARC stage monitor: nothing blocks quarantine: reports of")
    assert "at p=quarantine no message would have been quarantined" in line.message


def test_a_declared_sender_failing_in_the_reports_blocks(example: Path) -> None:
    failing = rs.Source("203.0.113.5", 20, "example.com", "fail", [], "fail", "fail")
    _write_month(example / "in", {"example.com": [failing]})
    assert main(["reports", "ingest", "in", "--db", "r.db", "-q"]) == 0
    _, _, result = _compile("example.com")
    att = result.details.evidence.attribution
    assert (att.senders["relay"].messages, att.senders["relay"].failing) == (32 * DAYS, 20 * DAYS)
    (f,) = [f for f in result.findings if f.code == "evidence-sender-fails"]
    assert f.message.startswith("sender relay: 600 of 960 messages in the reports of the last 30")
    assert f.location is not None and f.location.line == 16  # senders[2] in the policy file


def test_no_evidence_is_said(example: Path) -> None:
    _, _, result = _compile("example.net")  # r.db does not exist
    assert result.details.evidence.state == "empty"
    (line,) = [f for f in result.findings if f.code == "dmarc-stage"]
    assert "no declared sender blocks quarantine, but there is no report evidence" in line.message
    assert "nothing blocks" not in line.message
    (none,) = [f for f in result.findings if f.code == "evidence-none"]
    assert "no DMARC aggregate reports for the last 30 days in r.db" in none.message


EXPECTED_COM = """\
--- a/zones/mail/example.com.yaml
+++ b/zones/mail/example.com.yaml
@@ -19,8 +19,11 @@
     dkim:                      # dual signing: Ed25519 plus RSA for older verifiers
       - {selector: relay2026a, algorithm: ed25519}
       - {selector: relay2026r, algorithm: rsa}
+  - name: mailchimp
+    provider: mailchimp
 spf:
   all: fail
 dmarc:
   policy: quarantine
   rua: [mailto:dmarc@example.com]
+  nonexistent_policy: reject
"""

EXPECTED_NET = """\
--- a/zones/mail/example.net.yaml
+++ b/zones/mail/example.net.yaml
@@ -25,8 +25,9 @@
 dmarc:
   # The rollout stage: monitor (p=none) while the reports show who sends as us, then
   # quarantine, then reject; `octodns-mailauth explain` says what blocks the next one.
-  stage: monitor
+  stage: quarantine
   # Reports go to the company's DMARC mailbox at example.com, another organizational
   # domain: example.com must authorize them (RFC 9990), and as it is a zone of this
   # config the processor publishes example.net._report._dmarc.example.com there.
   rua: [mailto:dmarc@example.com]
+  nonexistent_policy: reject
"""


def _suggest(domain: str) -> object:
    ws, lp, result = _compile(domain)
    return suggest(lp, result, ws.inputs.catalog, Path(lp.path).read_text())  # type: ignore[attr-defined]


def test_suggest_diffs(month: Path) -> None:
    com = _suggest("example.com")
    assert com.diff() == EXPECTED_COM
    assert com.changes[0].startswith(
        "declare sender mailchimp (provider mailchimp, Mailchimp): the reports show 270 "
        "messages in 30 days from 1 address (DKIM d= mcsv.net), 270 of them failing DMARC"
    )
    assert any("198.18.7.7" in n and "no catalog provider" in n for n in com.notes)
    assert any(n.startswith("stay at quarantine: before reject") for n in com.notes)
    net = _suggest("example.net")
    assert net.diff() == EXPECTED_NET
    assert net.changes[0].startswith("advance DMARC to quarantine: reports of the last 30 days")


def test_suggested_policy_is_valid_and_takes_mailchimp_in(month: Path) -> None:
    com = _suggest("example.com")
    Path("zones/mail/example.com.yaml").write_text(com.after)
    _, _, result = _compile("example.com")
    assert not result.errors
    att = result.details.evidence.attribution
    assert att.senders["mailchimp"].messages == 9 * DAYS
    assert set(att.senders["mailchimp"].matched_by) == {"DKIM d="}
    assert [u.label for u in att.undeclared] == ["198.18.7.7"]
    # The DKIM records Mailchimp needs are now published (k2/k3 CNAMEs).
    names = {r.name for r in result.records}
    assert {"k2._domainkey.example.com", "k3._domainkey.example.com"} <= names
    again = _suggest("example.com")
    assert "mailchimp" not in again.diff()


def test_suggest_drops_an_unused_include(month: Path) -> None:
    path = Path("zones/mail/example.com.yaml")
    text = path.read_text()
    path.write_text(
        text.replace(
            "    ip6: [2001:db8:25::/64]\n",
            "    ip6: [2001:db8:25::/64]\n    include:\n      - _spf.google.com\n",
        )
    )
    com = _suggest("example.com")
    assert "-    include:\n-      - _spf.google.com\n" in com.diff()
    assert any(c.startswith("drop include:_spf.google.com from sender relay") for c in com.changes)
    path.write_text(
        text.replace(
            "    ip6: [2001:db8:25::/64]\n",
            "    ip6: [2001:db8:25::/64]\n    include: [_spf.google.com, sendgrid.net]\n",
        )
    )
    com = _suggest("example.com")
    assert "+    include: [sendgrid.net]\n" in com.diff(), com.diff() + str(com.changes)


def test_subdomain_mail_holds_np_reject_back(example: Path) -> None:
    sub = rs.Source(
        "203.0.113.5",
        5,
        "example.com",
        "pass",
        [("example.com", "relay2026a", "pass")],
        "pass",
        "pass",
        header_from="billing.example.com",
    )
    _write_month(example / "in", {"example.com": [sub]})
    assert main(["reports", "ingest", "in", "--db", "r.db", "-q"]) == 0
    com = _suggest("example.com")
    assert "nonexistent_policy" not in com.diff()
    assert any("billing.example.com (150)" in n for n in com.notes)


def test_cli_explain_validate_suggest(month: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "example.com", "--config", CONFIG, "--reports-db", "r.db"]) == 0
    out = capsys.readouterr().out
    assert (
        "evidence: reports of the last 30 days (90 reports, 2640 messages on 30 days): at "
        "p=reject 330 messages would have been rejected: undeclared Mailchimp 270, "
        "undeclared 198.18.7.7 60" in out
    )
    assert (
        main(["validate", "--config", CONFIG, "--reports-db", "r.db", "--reports-days", "7"]) == 0
    )
    out = capsys.readouterr().out
    assert (
        "info: reports of the last 7 days (21 reports, 385 messages on 7 days): at p=quarantine"
        " no message would have been quarantined" in out
    )
    assert (
        "undeclared source Mailchimp (1 address, likely the catalog provider mailchimp): 63" in out
    )
    assert main(["reports", "suggest", "example.com", "--config", CONFIG, "--db", "r.db"]) == 0
    out = capsys.readouterr().out
    assert EXPECTED_COM in out
    assert (
        main(["reports", "suggest", "--config", CONFIG, "--db", "r.db", "--format", "markdown"])
        == 0
    )
    md = capsys.readouterr().out
    assert "```diff\n" + EXPECTED_NET.rstrip("\n") + "\n```" in md


def test_processor_reads_the_evidence(month: Path) -> None:
    from octodns_mailauth.errors import MailAuthProcessorError
    from octodns_mailauth.processor import MailAuthProcessor

    kwargs = {"policies": "zones/mail", "keys": "zones/.dkim", "generate_keys": True}
    proc = MailAuthProcessor("mailauth", **kwargs, reports={"db": "r.db"})
    assert proc.inputs.evidence_for("example.com").evidence.messages == 88 * DAYS
    with pytest.raises(MailAuthProcessorError, match="undeclared source Mailchimp"):
        MailAuthProcessor("mailauth", **kwargs, reports={"db": "r.db", "gate": "fail"})
    with pytest.raises(MailAuthProcessorError, match=r"processors.mailauth.reports.days: .*1"):
        MailAuthProcessor("mailauth", **kwargs, reports={"db": "r.db", "days": 0})


def test_example_workflow_evidence_job(month: Path) -> None:
    """The workflow's weekly job, its own steps run as the runner would."""
    import os
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parent.parent
    workflow = yaml.safe_load((root / "docs/github-workflow.yml").read_text())
    steps = {s.get("name"): s for s in workflow["jobs"]["evidence"]["steps"]}
    config = Path(CONFIG)
    config.write_text(
        config.read_text().replace(
            "    generate_keys: true\n", "    generate_keys: true\n    reports: {db: r.db}\n"
        )
    )
    Path("incoming").mkdir()
    summary = month / "summary.md"
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        OCTODNS_CONFIG=workflow["env"]["OCTODNS_CONFIG"],
        GITHUB_STEP_SUMMARY=str(summary),
    )
    for name in ("ingest", "suggest", "HTML page"):
        subprocess.run(["bash", "-e", "-c", steps[name]["run"]], check=True, env=env, timeout=300)
    text = summary.read_text()
    assert text.startswith("## Policy changes the DMARC reports suggest")
    assert "```diff\n" + EXPECTED_COM.rstrip("\n") + "\n```" in text
    assert Path("evidence/index.html").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "--reports-db", "r.db", "--reports-days", "500"], "--reports-days 500: "),
        (["validate", "--reports-days", "0"], "--reports-days 0: give at least 1"),
        (["validate", "--reports-days", "7"], "--reports-days needs a reports database"),
        (["reports", "suggest", "--db", "r.db", "--days", "401"], "--days 401: "),
        (["reports", "html", "-o", "out", "--db", "r.db", "--days", "0"], "--days 0: give"),
    ],
)
def test_report_window_flags_out_of_range_are_usage_errors(
    example: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main([*args, "--config", CONFIG]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
