"""`reports html -o DIR`: one static page of the report evidence.

No server and no external assets: styles, charts (inline SVG) and data (JSON in
the page) are all in DIR/index.html, and a Content-Security-Policy forbids
loading anything else.  Every value from a report is escaped: reports come from
anyone who can send mail.
"""

from __future__ import annotations

import html
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .._fs import atomic_write

GREEN, RED, GREY = "#2e7d32", "#c62828", "#90a4ae"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _days(since: str, until: str) -> list[str]:
    lo, hi = date.fromisoformat(since), date.fromisoformat(until)
    return [(lo + timedelta(days=i)).isoformat() for i in range((hi - lo).days + 1)]


def day_chart(per_day: dict[str, list[int]], days: list[str], domain: str) -> str:
    """Stacked bars per day (aligned / failing) with the aligned share as a line."""
    width, height, left, bottom = 760, 220, 48, 28
    inner_w, inner_h = width - left - 12, height - bottom - 12
    top = max((sum(per_day.get(d, [0, 0])) for d in days), default=0) or 1
    bar = inner_w / max(len(days), 1)
    parts = [
        f'<svg class="chart day-chart" data-domain="{_e(domain)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="messages per day">',
        f'<line x1="{left}" y1="{12 + inner_h}" x2="{left + inner_w}" y2="{12 + inner_h}" '
        'stroke="#555"/>',
        f'<text x="{left - 6}" y="18" text-anchor="end" class="axis">{top}</text>',
        f'<text x="{left - 6}" y="{12 + inner_h}" text-anchor="end" class="axis">0</text>',
    ]
    points = []
    for i, d in enumerate(days):
        ok, bad = per_day.get(d, [0, 0])
        x = left + i * bar
        h_ok, h_bad = inner_h * ok / top, inner_h * bad / top
        y_ok = 12 + inner_h - h_ok
        parts.append(
            f'<rect class="bar pass" x="{x + 1:.1f}" y="{y_ok:.1f}" width="{bar - 2:.1f}" '
            f'height="{h_ok:.1f}" fill="{GREEN}"><title>{_e(d)}: {ok} aligned</title></rect>'
        )
        parts.append(
            f'<rect class="bar fail" x="{x + 1:.1f}" y="{y_ok - h_bad:.1f}" '
            f'width="{bar - 2:.1f}" height="{h_bad:.1f}" fill="{RED}">'
            f"<title>{_e(d)}: {bad} failing DMARC</title></rect>"
        )
        if ok + bad:
            share = ok / (ok + bad)
            points.append(f"{x + bar / 2:.1f},{12 + inner_h - inner_h * share:.1f}")
        if i % max(1, len(days) // 6) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                f'class="axis">{_e(d[5:])}</text>'
            )
    if points:
        parts.append(
            f'<polyline class="share" points="{" ".join(points)}" fill="none" '
            'stroke="#1565c0" stroke-width="2"><title>aligned share</title></polyline>'
        )
    parts.append("</svg>")
    return "".join(parts)


def sender_chart(rows: list[tuple[str, int, int, bool]], domain: str) -> str:
    """One bar per sender or source: messages, aligned share in green."""
    width, row_h, left = 760, 26, 230
    height = max(len(rows), 1) * row_h + 10
    top = max((m for _, m, _, _ in rows), default=0) or 1
    parts = [
        f'<svg class="chart sender-chart" data-domain="{_e(domain)}" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" aria-label="messages per sender">'
    ]
    for i, (label, messages, passing, declared) in enumerate(rows):
        y = 5 + i * row_h
        w = (width - left - 90) * messages / top
        w_ok = w * passing / messages if messages else 0
        share = f"{100 * passing / messages:.0f}%" if messages else "-"
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" class="label'
            f'{"" if declared else " undeclared"}">{_e(label)}</text>'
            f'<rect class="sbar" x="{left}" y="{y + 3}" width="{w:.1f}" height="18" '
            f'fill="{RED if messages > passing else GREY}"/>'
            f'<rect class="sbar-pass" x="{left}" y="{y + 3}" width="{w_ok:.1f}" height="18" '
            f'fill="{GREEN}"><title>{_e(label)}: {passing} of {messages} aligned</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 16}" class="axis">{messages} ({share})</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(cls: str, header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr class="empty"><td colspan="{len(header)}">none</td></tr>'
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def domain_section(lp: Any, result: Any, evidence: Any) -> tuple[str, dict[str, Any]]:
    gate = result.details.evidence
    stage = result.details.dmarc_stage
    domain = lp.domain
    out = [f'<section class="domain" id="{_e(domain)}"><h2>{_e(domain)}</h2>']
    data: dict[str, Any] = {"domain": domain}
    nxt = f", next: {stage.next}" if stage.next else " (fully enforced)"
    out.append(f'<p class="stage">DMARC stage: <b>{_e(stage.stage)}</b>{_e(nxt)}</p>')
    data["stage"] = {"stage": stage.stage, "next": stage.next, "blockers": stage.blockers}
    if stage.blockers:
        out.append('<h3>What blocks the next stage</h3><ul class="blockers">')
        out += [f"<li>{_e(b)}</li>" for b in stage.blockers]
        out.append("</ul>")
    if gate is not None:
        out.append(f'<p class="summary">{_e(gate.summary())}</p>')
    att = gate.attribution if gate is not None else None
    if att is not None:
        days = _days(att.since, att.until)
        data["days"] = {d: att.total.per_day.get(d, [0, 0]) for d in days}
        out.append("<h3>Aligned and failing messages per day</h3>")
        out.append(day_chart(att.total.per_day, days, domain))
        bars = [
            (
                f"{ev.name}" + (f" ({ev.provider})" if ev.provider else ""),
                ev.messages,
                ev.passing,
                True,
            )
            for ev in att.senders.values()
        ] + [(f"undeclared: {u.label}", u.messages, u.passing, False) for u in att.undeclared]
        out.append("<h3>Messages and aligned share per sender</h3>")
        out.append(sender_chart(bars, domain))
        out.append("<h3>Declared senders</h3>")
        out.append(
            _table(
                "senders",
                [
                    "sender",
                    "provider",
                    "messages",
                    "aligned",
                    "failing",
                    "addresses",
                    "matched by",
                ],
                [
                    [
                        ev.name,
                        ev.provider or "-",
                        ev.messages,
                        _pct(ev.passing, ev.messages),
                        ev.failing,
                        len(ev.addresses),
                        ", ".join(sorted(ev.matched_by)) or "-",
                    ]
                    for ev in att.senders.values()
                ],
            )
        )
        out.append("<h3>Undeclared sources</h3>")
        out.append(
            _table(
                "undeclared",
                [
                    "source",
                    "likely provider",
                    "organisation",
                    "addresses",
                    "reverse DNS",
                    "SPF domains",
                    "DKIM d=",
                    "messages",
                    "failing",
                ],
                [
                    [
                        u.label,
                        u.provider or "-",
                        u.org or "-",
                        ", ".join(sorted(u.addresses)),
                        ", ".join(sorted(u.reverse_dns)) or "-",
                        ", ".join(d for d, _ in u.spf_domains.most_common(3)) or "-",
                        ", ".join(d for d, _ in u.dkim_domains.most_common(3)) or "-",
                        u.messages,
                        u.failing,
                    ]
                    for u in att.undeclared
                ],
            )
        )
        data["senders"] = {
            ev.name: {"messages": ev.messages, "passing": ev.passing}
            for ev in att.senders.values()
        }
        data["undeclared"] = [
            {
                "label": u.label,
                "provider": u.provider,
                "messages": u.messages,
                "failing": u.failing,
                "addresses": sorted(u.addresses),
            }
            for u in att.undeclared
        ]
    tls = evidence.evidence.tls if evidence is not None and evidence.evidence else []
    failures = [t for t in tls if t.result_type != "success"]
    ok = sum(t.sessions for t in tls if t.result_type == "success")
    out.append("<h3>SMTP TLS reports (RFC 8460)</h3>")
    out.append(
        f'<p class="tls-summary">{ok} successful sessions, '
        f"{sum(t.sessions for t in failures)} failed</p>"
    )
    out.append(
        _table(
            "tls-failures",
            ["day", "policy", "MX host", "result", "sessions"],
            [
                [t.day, t.policy_type, t.mx_host or "-", t.result_type, t.sessions]
                for t in failures
            ],
        )
    )
    data["tls"] = [t.__dict__ for t in tls]
    out.append("</section>")
    return "".join(out), data


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3;cursor:pointer}.axis{font-size:11px;fill:#555}
.label{font-size:12px}.undeclared{fill:#c62828}.blockers li{color:#c62828}
nav a{margin-right:1em}
"""

_SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById("evidence-data").textContent);
  document.body.setAttribute("data-domains", String(data.domains.length));
  document.querySelectorAll("table").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, col) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent, y = b.cells[col].textContent;
          var nx = parseFloat(x), ny = parseFloat(y);
          return (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : ny - nx;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.body.setAttribute("data-ready", "yes");
})();
"""


def render_page(sections: list[tuple[str, dict[str, Any]]], title: str) -> str:
    blob = json.dumps({"domains": [d for _, d in sections]}, sort_keys=True, default=str)
    blob = blob.replace("<", "\\u003c")  # no "</script>" can end the data early
    nav = "".join(f'<a href="#{_e(d["domain"])}">{_e(d["domain"])}</a>' for _, d in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1><nav>{nav}</nav>"
        + "".join(s for s, _ in sections)
        + f'<script type="application/json" id="evidence-data">{blob}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def write_page(ws: Any, policies: list[Any], out_dir: Path) -> Path:
    sections = []
    for lp in policies:
        result = ws.compile(lp)
        sections.append(domain_section(lp, result, ws.inputs.evidence_for(lp.domain)))
    page = render_page(sections, "Mail authentication: DMARC and TLS report evidence")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    atomic_write(path, page.encode("utf-8"), 0o644)
    return path
