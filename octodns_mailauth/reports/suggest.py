"""The policy change the evidence calls for, as an edit of the policy file.

From the gate's attribution (`gate.py`): declare a recognised undeclared source
as a sender with its catalog provider; drop an SPF include no source used in
the window; advance the DMARC stage when nothing blocks it; add
`nonexistent_policy: reject` (np=reject) when no mail came from subdomains.
Edits are made to the file's text at the lines the loader recorded, so
comments and layout survive and the result is a small diff for a pull request.
Whatever is seen but not changed is said as a note, with the reason.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from ..names import normalize


@dataclass
class Suggestion:
    domain: str
    path: str
    before: str
    after: str
    changes: list[str] = field(default_factory=list)  # what the diff does and why
    notes: list[str] = field(default_factory=list)  # what was seen but not changed

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                f"a/{self.path}",
                f"b/{self.path}",
            )
        )


def suggest(lp: Any, result: Any, catalog: Any, text: str) -> Suggestion:
    """Pure: the policy, its compile result (with `details.evidence`), the
    catalog and the policy file's text -> the edited text and the reasons."""
    out = Suggestion(lp.domain, lp.path, text, text)
    gate = result.details.evidence
    if gate is None or gate.state in ("unconfigured", "empty") or gate.attribution is None:
        why = gate.summary() if gate is not None else "no DMARC record or a parked domain"
        out.notes.append(f"nothing to suggest: {why}")
        return out
    att = gate.attribution
    lines = text.splitlines(keepends=True)
    edits = _Edits(lines)
    _add_senders(lp, gate, att, catalog, edits, out)
    _drop_includes(lp, att, edits, out)
    _advance(lp, result, gate, att, edits, out)
    _np_reject(lp, att, edits, out)
    out.after = "".join(edits.apply())
    return out


class _Edits:
    """Line edits against the original numbering, applied bottom-up at the end."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.replace: dict[int, str | None] = {}  # 0-based line -> new text (None: delete)
        self.insert: dict[int, list[str]] = {}  # insert before this 0-based line

    def apply(self) -> list[str]:
        out: list[str] = []
        for i, line in enumerate(self.lines):
            out += self.insert.get(i, [])
            new = self.replace.get(i, line)
            if new is not None:
                out.append(new)
        return out + self.insert.get(len(self.lines), [])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], key_line: int) -> int:
    """0-based index after the last line of the block whose key is on `key_line`
    (1-based), trailing blank and comment lines left outside."""
    start = key_line - 1
    base = _indent(lines[start])
    end = start + 1
    last = start
    while end < len(lines):
        stripped = lines[end].strip()
        if stripped and not stripped.startswith("#"):
            if _indent(lines[end]) <= base:
                break
            last = end
        end += 1
    return last + 1


def _unique_name(lp: Any, wanted: str) -> str:
    names = {s.name for s in lp.policy.senders}
    name, n = wanted, 2
    while name in names:
        name, n = f"{wanted}-{n}", n + 1
    return name


def _add_senders(
    lp: Any, gate: Any, att: Any, catalog: Any, edits: _Edits, out: Suggestion
) -> None:
    minimum = gate.min_messages
    declared = {s.provider for s in lp.policy.senders if s.provider}
    blocks: list[str] = []
    item_indent = "  "
    first = lp.lines.line_for(("senders", 0)) if lp.policy.senders else None
    if first is not None and "-" in edits.lines[first - 1]:
        item_indent = " " * edits.lines[first - 1].index("-")
    for src in att.undeclared:
        seen = f"{src.messages} messages in {len(att.days)} days from {len(src.addresses)} address"
        seen += "es" if len(src.addresses) != 1 else ""
        if src.provider is None:
            if src.messages >= minimum:
                out.notes.append(
                    f"undeclared source {src.label} sent {seen}, {src.failing} failing DMARC; "
                    "no catalog provider matches it: find out who it is"
                )
            continue
        if src.messages < minimum:
            out.notes.append(
                f"undeclared {src.provider_name} sent {seen}, fewer than {minimum}: not added"
            )
            continue
        if src.provider in declared:
            out.notes.append(
                f"undeclared source {src.label} looks like {src.provider}, which a sender "
                "already declares: its mail does not match that sender's DKIM or addresses; "
                "check the provider's parameters"
            )
            continue
        name = _unique_name(lp, src.provider)
        entry = catalog.get(src.provider)
        block = [
            f"{item_indent}- name: {name}\n",
            f"{item_indent}  provider: {src.provider}\n",
        ]
        required = [p for p, spec in (entry.params.items() if entry else []) if spec.required]
        for p in required:
            block.append(f"{item_indent}  {p}: ''  # {entry.params[p].help}\n")
        blocks += block
        out.changes.append(
            f"declare sender {name} (provider {src.provider}, {src.provider_name}): the "
            f"reports show {seen} ({src.why}), {src.failing} of them failing DMARC"
            + (f"; fill in {', '.join(required)}" if required else "")
        )
    if not blocks:
        return
    senders_line = lp.lines.line_for(("senders",)) if lp.policy.senders else None
    if senders_line is None:
        edits.insert.setdefault(0, []).extend(["senders:\n", *blocks])
    else:
        end = _block_end(edits.lines, senders_line)
        edits.insert.setdefault(end, []).extend(blocks)


def _drop_includes(lp: Any, att: Any, edits: _Edits, out: Suggestion) -> None:
    for i, sender in enumerate(lp.policy.senders):
        unused = [
            t for t in sender.include if att.include_use.get((sender.name, normalize(t))) == 0
        ]
        if not unused:
            continue
        reasons = [
            f"drop include:{t} from sender {sender.name}: no reported source in the last "
            f"{len(att.days)} days with reports sent from its addresses"
            for t in unused
        ]
        key = lp.lines.line_for(("senders", i, "include"))
        items = [
            lp.lines.line_for(("senders", i, "include", j)) for j in range(len(sender.include))
        ]
        if key is None or None in items:
            out.notes += [f"{r}; the lines could not be found: do it by hand" for r in reasons]
            continue
        line = edits.lines[key - 1]
        m = re.match(r"^(\s*(?:-\s+)?include:\s*)(\[.*\]|\S.*?)(\s*(#.*)?)$", line.rstrip("\n"))
        rest = [t for t in sender.include if t not in unused]
        if all(n != key for n in items):  # a block list: one line per item
            for j, t in enumerate(sender.include):
                if t in unused:
                    edits.replace[items[j] - 1] = None  # type: ignore[operator]
            if not rest:
                edits.replace[key - 1] = None
        elif m is not None:  # a flow list or a single name on the key's line
            if rest:
                edits.replace[key - 1] = f"{m.group(1)}[{', '.join(rest)}]{m.group(3)}\n"
            else:
                edits.replace[key - 1] = None
        else:
            out.notes += [f"{r}; the line could not be edited: do it by hand" for r in reasons]
            continue
        out.changes += reasons


def _advance(lp: Any, result: Any, gate: Any, att: Any, edits: _Edits, out: Suggestion) -> None:
    stage = result.details.dmarc_stage
    if stage.next is None:
        return
    if stage.blockers:
        out.notes.append(
            f"stay at {stage.stage}: before {stage.next}, fix: " + "; ".join(stage.blockers)
        )
        return
    wanted_days = min(7, gate.days)
    if len(att.days) < wanted_days:
        out.notes.append(
            f"stay at {stage.stage}: reports cover {len(att.days)} days; wait for at least "
            f"{wanted_days} before {stage.next}"
        )
        return
    dmarc = lp.policy.dmarc
    reason = f"advance DMARC to {stage.next}: {gate.summary()}"
    if stage.next not in ("quarantine", "reject"):  # testing off
        line_no = lp.lines.line_for(("dmarc", "testing"))
        if line_no is not None and line_no != lp.lines.line_for(("dmarc",)):
            edits.replace[line_no - 1] = None
            out.changes.append(reason)
        return
    for key, value in (("stage", stage.next), ("policy", stage.next)):
        if (key == "stage" and dmarc.stage is None) or ("dmarc", key) not in lp.lines.lines:
            continue
        line_no = lp.lines.lines[("dmarc", key)]
        line = edits.lines[line_no - 1]
        new, n = re.subn(rf"(\b{key}:\s*)([\w'\"]+)", rf"\g<1>{value}", line, count=1)
        if n:
            edits.replace[line_no - 1] = new
            out.changes.append(reason)
            return
    out.notes.append(f"{reason}; the dmarc stage line could not be edited: do it by hand")


def _np_reject(lp: Any, att: Any, edits: _Edits, out: Suggestion) -> None:
    dmarc = lp.policy.dmarc
    if dmarc is None or dmarc.np.value == "reject":
        return
    if att.subdomains:
        listed = ", ".join(f"{d} ({n})" for d, n in att.subdomains.most_common(5))
        out.notes.append(
            f"no np=reject yet: mail came from subdomains of {lp.domain}: {listed}; make "
            "sure each exists in DNS first"
        )
        return
    key_line = lp.lines.line_for(("dmarc",))
    if key_line is None or ("dmarc", "nonexistent_policy") in lp.lines.lines:
        return
    line = edits.lines[key_line - 1]
    if "{" in line:
        out.notes.append("add nonexistent_policy: reject to dmarc (flow style: by hand)")
        return
    end = _block_end(edits.lines, key_line)
    children = [
        ln for ln in edits.lines[key_line:end] if ln.strip() and not ln.strip().startswith("#")
    ]
    indent = " " * (_indent(children[0]) if children else _indent(line) + 2)
    edits.insert.setdefault(end, []).append(f"{indent}nonexistent_policy: reject\n")
    out.changes.append(
        f"add np=reject (nonexistent_policy: reject): the reports of the last "
        f"{len(att.days)} days show no mail from subdomains of {lp.domain}, so receivers "
        "may reject mail from names that do not exist (RFC 9989 §4.7)"
    )
