"""`reports html`: the page opened in a real browser (headless Chromium).

Asserts no console errors, the charts and rows for the example's synthetic
month, escaping of hostile report values, and saves a screenshot under
tests/artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import reports_synth as rs
from browser import CHROMIUM, Chromium

from octodns_mailauth.cli import main

ARTIFACTS = Path(__file__).parent / "artifacts"
COM_CHART = 'svg.day-chart[data-domain="example.com"]'
HOSTILE_MX = '<img src=x onerror="console.error(1)">.shop.example'


def _month(folder: Path) -> None:
    folder.mkdir()
    end = datetime.now(timezone.utc).date()
    for domain, srcs, policy in (
        ("example.com", rs.example_com_sources(), "quarantine"),
        ("example.net", rs.example_net_sources(), "none"),
    ):
        for name, data in rs.month(domain, srcs, end, policy=policy):
            (folder / name).write_bytes(data)
    for i in range(3):
        day = end - timedelta(days=i)
        failures = [("certificate-expired", "mx2.shop.example", 4 + i)]
        if i == 0:
            failures.append(("validation-failure", HOSTILE_MX, 1))
        (folder / f"tls-{i}.json").write_bytes(rs.tls_report("shop.example", day, 500, failures))


@pytest.fixture
def page(example: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    _month(example / "in")
    assert main(["reports", "ingest", "in", "--db", "r.db", "-q"]) == 0
    assert "180 DMARC aggregate and 3 SMTP TLS reports stored" in capsys.readouterr().out
    assert (
        main(["reports", "html", "-o", "out", "--config", "zones/config.yaml", "--db", "r.db"])
        == 0
    )
    return example / "out" / "index.html"


def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text()
    assert "Content-Security-Policy" in text
    # No external assets: nothing is loaded from anywhere.
    for needle in ('src="http', 'href="http', "@import", "url("):
        assert needle not in text
    assert HOSTILE_MX not in text  # escaped
    assert "&lt;img src=x onerror=" in text


def _chromium_or_skip() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: script/bootstrap runs script/install-chromium")
    pytest.skip("chromium is not installed (as root: script/install-chromium)")


def test_page_in_headless_chromium(page: Path) -> None:
    _chromium_or_skip()
    with Chromium() as browser:
        session = browser.open(page.as_uri())
        js = browser.evaluate
        assert js(session, "document.body.dataset.ready") == "yes"
        assert js(session, "document.body.dataset.domains") == "4"
        domains = js(session, "[...document.querySelectorAll('section.domain')].map(s => s.id)")
        assert domains == ["example.com", "example.net", "parked.example", "shop.example"]
        # Charts: one per domain with DMARC evidence, bars for each of the 30 days.
        charts = js(
            session, "[...document.querySelectorAll('svg.day-chart')].map(s => s.dataset.domain)"
        )
        assert charts == ["example.com", "example.net"]
        bars = js(
            session,
            f"document.querySelectorAll('{COM_CHART} rect.bar.pass').length",
        )
        assert bars == 30
        failing = js(
            session,
            f"[...document.querySelectorAll('{COM_CHART} rect.bar.fail')]"
            ".filter(r => r.getBBox().height > 0).length",
        )
        assert failing == 30  # Mailchimp and the unknown host fail every day
        assert js(session, "document.querySelectorAll('svg.sender-chart').length") == 2
        rows = js(
            session,
            "[...document.querySelectorAll('#example\\\\.com table.undeclared tbody tr')]"
            ".map(r => [0, 1, 7].map(i => r.cells[i].textContent).join('|'))",
        )
        assert rows == ["Mailchimp|mailchimp|270", "198.18.7.7|-|60"]
        senders = js(
            session,
            "[...document.querySelectorAll('#example\\\\.com table.senders tbody tr')]"
            ".map(r => r.cells[0].textContent)",
        )
        assert senders == ["office", "newsletters", "relay"]
        blockers = js(
            session, "document.querySelectorAll('#example\\\\.com ul.blockers li').length"
        )
        assert blockers == 2
        tls = js(
            session,
            "[...document.querySelectorAll('#shop\\\\.example table.tls-failures tbody tr')]"
            ".map(r => r.cells[3].textContent)",
        )
        assert sorted(tls) == ["certificate-expired"] * 3 + ["validation-failure"]
        # The hostile MX name is text, not an element.
        assert js(session, "document.images.length") == 0
        # Sorting by a column works (the page's script runs).
        js(
            session,
            "document.querySelector('#example\\\\.com table.senders th:nth-child(3)').click()",
        )
        first = js(
            session,
            "document.querySelector('#example\\\\.com table.senders tbody tr')"
            ".cells[0].textContent",
        )
        assert first == "office"
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "reports-html.png"
        browser.screenshot(session, shot)
        assert shot.stat().st_size > 10_000
        assert browser.console_errors() == []
    shutil.copy(page, ARTIFACTS / "reports-html.html")
