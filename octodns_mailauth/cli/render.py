"""Output formats: findings as text/JSON, records as a table, octoDNS YAML or
BIND zone-file lines, and Markdown helpers."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import yaml

from ..findings import Finding, Severity
from ..names import is_subdomain
from ..records.base import DesiredRecord, escape_txt
from ..redact import redact
from ..spf.lookups import MAX_DNS_LOOKUPS, MAX_VOID_LOOKUPS, LookupTree

MAX_STRING = 255  # octets in one DNS character-string (RFC 1035 §3.3)


def finding_dict(f: Finding) -> dict[str, Any]:
    loc = f.location
    return {
        "severity": f.severity.value,
        "message": redact(f.message),
        "file": loc.file if loc else None,
        "line": loc.line if loc else None,
        "key_path": redact(loc.key_path) if loc and loc.key_path else None,
        "hint": redact(f.hint) if f.hint else None,
        "rfc": f.rfc,
        "code": f.code,
        "text": f.format(),
    }


PLACEHOLDER_NOTE = "placeholder key: run dkim keygen (or sync with generate_keys: true)"


def _is_placeholder(r: DesiredRecord, placeholders: Collection[str]) -> bool:
    return r.type == "TXT" and r.name in placeholders


def record_dict(r: DesiredRecord, placeholders: Collection[str] = ()) -> dict[str, Any]:
    return {
        "name": r.name,
        "type": r.type,
        "ttl": r.ttl,
        "values": list(r.values),
        "owner": r.owner,
        "file": r.location.file if r.location else None,
        "line": r.location.line if r.location else None,
        "placeholder": _is_placeholder(r, placeholders),
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def summary(findings: Sequence[Finding], policies: int) -> str:
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = sum(f.severity is Severity.WARNING for f in findings)
    return (
        f"{_plural(policies, 'policy', 'policies')}: {_plural(errors, 'error')}, "
        f"{_plural(warnings, 'warning')}"
    )


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def spf_tree_lines(tree: LookupTree, indent: str = "  ", depth: int = 0) -> list[str]:
    """An SPF lookup tree as indented lines, e.g. `include:_spf.google.com  4 lookups`."""
    pad = indent * depth
    if tree.via is None:
        head = (
            f"{tree.domain}  {_plural(tree.total, 'lookup')} (limit {MAX_DNS_LOOKUPS}), "
            f"{_plural(tree.void_total, 'void lookup')} (limit {MAX_VOID_LOOKUPS})"
        )
    else:
        head = f"{tree.via}  {_plural(tree.cost, 'lookup')}"
    lines = [pad + head]
    for label, messages in (
        ("error", tree.errors),
        ("temperror", tree.temp_errors),
        ("note", tree.notes),
    ):
        lines.extend(f"{pad}{indent}{label}: {msg}" for msg in messages)
    for child in tree.children:
        lines.extend(spf_tree_lines(child, indent, depth + 1))
    return lines


# --- records -----------------------------------------------------------------------------


def sorted_records(records: Iterable[DesiredRecord]) -> list[DesiredRecord]:
    # Reverse labels so a domain's names sort together, apex first (as zone files read).
    return sorted(records, key=lambda r: (list(reversed(r.name.split("."))), r.type))


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    # The last column (values) is not padded: it may be long.
    widths[-1] = 0
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=False)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)))
    return "\n".join(line.rstrip() for line in lines)


def records_table(records: Iterable[DesiredRecord], placeholders: Collection[str] = ()) -> str:
    rows = []
    for r in sorted_records(records):
        note = "PLACEHOLDER" if _is_placeholder(r, placeholders) else ""
        for value in r.values:
            shown = f'"{value}"' if r.type == "TXT" else value
            rows.append([r.name, r.type, str(r.ttl), r.owner, note, shown])
    return table(rows, ["NAME", "TYPE", "TTL", "OWNER", "NOTE", "VALUE"])


def _octodns_value(r: DesiredRecord, value: str) -> Any:
    if r.type == "TXT":
        return escape_txt(value)  # octoDNS wants `;` escaped as `\;`
    if r.type == "MX":
        preference, exchange = value.split()
        return {"exchange": exchange, "preference": int(preference)}
    return value


def records_octodns(
    records: Iterable[DesiredRecord], zone: str, placeholders: Collection[str] = ()
) -> str:
    """The records as octoDNS YamlProvider data for `zone` (names relative to it)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    outside: list[DesiredRecord] = []
    marked: list[DesiredRecord] = []
    for r in sorted_records(records):
        if _is_placeholder(r, placeholders):
            marked.append(r)
        if not is_subdomain(r.name, zone):
            outside.append(r)
            continue
        entry: dict[str, Any] = {"type": r.type, "ttl": r.ttl}
        values = [_octodns_value(r, v) for v in r.values]
        if len(values) == 1:
            entry["value"] = values[0]
        else:
            entry["values"] = values
        by_name.setdefault(r.relative_name(zone), []).append(entry)
    data = {name: (rs[0] if len(rs) == 1 else rs) for name, rs in sorted(by_name.items())}
    text = f"# octoDNS records for zone {zone}.\n"
    for r in marked:
        text += f"# {r.name} {r.type}: {PLACEHOLDER_NOTE}, do not copy its p= value\n"
    text += "---\n"
    text += yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=10_000)
    for r in outside:
        text += f"# outside zone {zone}: {r.name} {r.type} {' '.join(r.values)}\n"
    return text


def txt_rdata(value: str) -> str:
    """TXT text as zone-file rdata: character-strings of at most 255 octets (RFC 7208
    §3.3: receivers join them without spaces), quoted and escaped by dnspython."""
    from dns.rdtypes.ANY.TXT import TXT  # lazy: only `records --format bind` needs it

    data = value.encode("utf-8")
    chunks = [data[i : i + MAX_STRING] for i in range(0, len(data), MAX_STRING)] or [b""]
    return str(TXT("IN", "TXT", chunks).to_text())


def records_bind(records: Iterable[DesiredRecord], placeholders: Collection[str] = ()) -> str:
    lines = []
    for r in sorted_records(records):
        if _is_placeholder(r, placeholders):
            lines.append(f"; {r.name} {r.type}: {PLACEHOLDER_NOTE}, do not copy its p= value")
        for value in r.values:
            rdata = txt_rdata(value) if r.type == "TXT" else value
            lines.append(f"{r.name}.\t{r.ttl}\tIN\t{r.type}\t{rdata}")
    return "\n".join(lines)


# --- markdown ----------------------------------------------------------------------------


def md_cell(text: object) -> str:
    """One table cell of GitHub Markdown: the text reads as written and cannot
    end the cell or the row (`|`, a line break) or become HTML (`<b>`, `&x;`).
    A cell we wrote as a code span (`` `value` ``) stays one: inside it only
    `|` needs its backslash (a GFM table rule)."""
    text = "".join(c if c.isprintable() else " " for c in str(text))
    if len(text) > 1 and text[0] == text[-1] == "`":
        inner = text[1:-1].replace("|", "\\|")
        fence = "``" if "`" in inner else "`"
        return f"{fence} {inner} {fence}" if fence == "``" else f"`{inner}`"
    # html.escape(quote=False), written out: the html module loads its entity table,
    # which every `validate` run would pay for.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("`", "\\`")


def md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
