"""`check DOMAIN`: ask live DNS what is published and compare it with what the
policy wants.  Drift is reported as missing, extra (only values of the kinds we
manage, at names we manage: a site-verification TXT beside our SPF is not
ours) or different.  A server that does not answer is an environment error
(exit 2), never "missing"."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from ..dkim.delegation import verify_targets
from ..findings import Severity
from ..records import txt_kind_matches
from ..records.base import DesiredRecord
from .exitcodes import EXIT_OK, EXIT_POLICY
from .livedns import LiveDns
from .render import dumps
from .settings import resolve
from .workspace import load


@dataclass
class Drift:
    status: str  # "ok", "missing", "extra", "different", "unverified"
    name: str
    type: str
    wanted: list[str]
    published: list[str]
    owner: str
    note: str = ""

    def line(self) -> str:
        def show(values: list[str]) -> str:
            return " ".join(f'"{v}"' if self.type == "TXT" else v for v in values) or "(nothing)"

        head = f"{self.status:<10} {self.name} {self.type} ({self.owner})"
        if self.status == "missing":
            body = f"wanted {show(self.wanted)}"
        elif self.status == "extra":
            body = f"published but not wanted {show(self.published)}"
        elif self.status == "different":
            body = f"published {show(self.published)}, wanted {show(self.wanted)}"
        else:
            body = show(self.published)
        return f"{head}: {body}" + (f" ({self.note})" if self.note else "")


def compare(
    wanted: list[DesiredRecord],
    dns: Any,
    unverifiable: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[Drift]:
    """Each wanted record against what `dns.query` returns.  `unverifiable` are
    names whose value we cannot know (a DKIM key not in the keystore)."""
    out: list[Drift] = []
    cache: dict[tuple[str, str], tuple[list[str], str | None]] = {}
    for want in wanted:
        key = (want.name, want.type)
        if key not in cache:
            cache[key] = dns.query(want.name, want.type)
        published, alias = cache[key]
        wanted_values = list(want.values)
        if want.type == "CNAME":
            wanted_values = [v.lower() for v in wanted_values]
        note = ""
        if want.type == "TXT" and want.kind:
            mine = [v for v in published if txt_kind_matches(want.kind, v)]
        else:
            mine = published
        if alias is not None:
            status, mine, note = "different", [f"CNAME {alias}"], "the name is an alias"
        elif want.name in unverifiable:
            status = "unverified" if mine else "missing"
            note = "no key in the keystore to compare p= with" if mine else ""
        elif not mine:
            status = "missing"
        elif sorted(mine) == sorted(wanted_values):
            status = "ok"
        elif want.type == "TXT" and not want.kind:
            # A TXT value of a kind we do not own: only its presence is ours to check.
            status = "ok" if set(wanted_values) <= set(published) else "missing"
        elif set(wanted_values) < set(mine):
            status = "extra"
            mine = [v for v in mine if v not in wanted_values]
        else:
            status = "different"
        out.append(Drift(status, want.name, want.type, wanted_values, mine, want.owner, note))
    return out


def run(args: argparse.Namespace) -> int:
    ws = load(resolve(args))
    lp = ws.policy_for(args.domain)
    result = ws.compile(lp)
    errors = [f for f in result.findings if f.severity is Severity.ERROR]
    if errors:
        for f in errors:
            print(f.format(), file=sys.stderr)
        print(f"{lp.domain}: fix the policy errors before checking DNS", file=sys.stderr)
        return EXIT_POLICY
    live = LiveDns(args.nameserver, args.timeout)  # refuses a --timeout of 0 or less
    drift = compare(list(result.records), live, ws.placeholder_names)
    bad = [d for d in drift if d.status in ("missing", "extra", "different")]
    # The keys behind delegated selectors, as live DNS serves them now.
    targets = verify_targets(result.senders, live.resolver)
    unverified = [t for t in targets if not t.verified]
    if args.format == "json":
        print(
            dumps(
                {
                    "domain": lp.domain,
                    "nameserver": live.where,
                    "drift": len(bad),
                    "records": [d.__dict__ for d in drift],
                    "dkim_targets": [
                        {
                            "sender": t.sender,
                            "name": t.name,
                            "target": t.target,
                            "status": "verified" if t.verified else "unverified",
                            "detail": t.detail,
                        }
                        for t in targets
                    ],
                }
            )
        )
    else:
        for d in drift:
            print(d.line())
        if targets:
            print(f"DKIM keys at the delegated selectors' targets ({live.where}):")
        for t in targets:
            status = "verified" if t.verified else "unverified"
            print(f"  {status:<10} {t.name} CNAME {t.target} (sender {t.sender}): {t.detail}")
        if unverified:
            print(
                f"{lp.domain}: {len(unverified)} delegated DKIM target(s) have no key: "
                "mail signed with those selectors fails DKIM",
                file=sys.stderr,
            )
        verdict = f"{len(bad)} difference{'s' if len(bad) != 1 else ''}" if bad else "no drift"
        print(f"{lp.domain}: {verdict} ({live.where})", file=sys.stderr)
    return EXIT_POLICY if bad else EXIT_OK
