"""What the compile steps find beyond records and findings, as types.

Each step fills its part of `Details` (context.py's CompileResult.details); the
CLI, the reports and later steps read it.  Rendering it as text, Markdown or
HTML is the CLI's job (cli/report.py, cli/reports_html.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from .spf.lookups import LookupTree

if TYPE_CHECKING:
    from .reports.attribution import Attribution


# --- DMARC alignment and stage (dmarc/alignment.py) -----------------------------------------


class Verdict(str, Enum):
    DKIM = "pass via DKIM"
    UNVERIFIED = "unverified"  # aligned d= only through delegated keys not (yet) found
    SPF_ONLY = "SPF only"
    NONE = "cannot align"


# A NamedTuple, not a frozen dataclass: every `validate` defines it, and a dataclass
# costs four times as much to define (it compiles its methods from source).
class AlignmentRow(NamedTuple):
    sender: str
    provider: str | None
    mail_from: str | None
    spf_aligned: bool
    dkim_domains: tuple[str, ...]
    dkim_aligned: bool
    verdict: Verdict
    acknowledged: str | None = None  # the sender's unaligned_ok reason
    note: str | None = None  # e.g. the d= a provider uses until custom DKIM is on
    dkim_unverified: bool = False  # aligned d= whose keys were not found at their targets


@dataclass(frozen=True)
class StageReport:
    """`details.dmarc_stage`: where the rollout is and what blocks the next step."""

    stage: str  # monitor | quarantine | reject | none (no DMARC record) | parked
    testing: bool
    next: str | None  # the next step: a stage, "testing off", or None when done
    blockers: list[str] = field(default_factory=list)

    @classmethod
    def no_record(cls) -> StageReport:
        """A domain with no `dmarc:` section: monitoring is the next step."""
        return cls("none", False, "monitor", ["no DMARC record: add dmarc: {stage: monitor}"])


# --- delegated DKIM targets (dkim/delegation.py) --------------------------------------------


class TargetStatus(str, Enum):
    VERIFIED = "verified"  # a usable key record answers at the target
    NO_KEY = "no key"  # NXDOMAIN, no TXT, no DKIM record, or a revoked key (p= empty)
    UNKNOWN = "unverified"  # not asked: no lock, the lock lacks it, or DNS failed


class DelegatedTarget(NamedTuple):
    """One selector CNAME we publish and what its target answered."""

    sender: str
    name: str  # <selector>._domainkey.<domain>
    target: str  # the CNAME target, no trailing dot
    status: TargetStatus
    detail: str  # what was found, e.g. "rsa key" or "NXDOMAIN"
    weak: str | None = None  # a verified key under 2048 bits: what RFC 8301 says of it

    @property
    def verified(self) -> bool:
        return self.status is TargetStatus.VERIFIED


# --- the rollout gate over report evidence (reports/gate.py) -------------------------------


_ACTION = {"quarantine": "quarantined", "reject": "rejected"}


@dataclass
class GateReport:
    """`details.evidence`."""

    state: str  # unconfigured | empty | clear | blocked | enforced
    next: str | None  # the next stage (or "testing off ...")
    policy: str | None  # the p= whose effect is counted: the next stage's, or the current one
    days: int = 0
    db: str = ""
    min_messages: int = 10
    attribution: Attribution | None = None
    would_fail: int = 0  # messages that fail DMARC: quarantined/rejected at `policy`
    by_source: list[tuple[str, int]] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    @property
    def action(self) -> str | None:
        return _ACTION.get(self.policy or "")

    def summary(self) -> str:
        """One line: what the evidence says about the next stage."""
        if self.state == "unconfigured":
            return (
                "no report evidence: no reports database is configured (processor setting "
                "reports: {db: FILE}, or --reports-db), so mail from undeclared sources is unknown"
            )
        if self.state == "empty":
            return (
                f"no report evidence: no DMARC aggregate reports for the last {self.days} days "
                f"in {self.db}, so mail from undeclared sources is unknown; ingest the rua "
                "reports with `octodns-mailauth reports ingest`"
            )
        att = self.attribution
        assert att is not None
        head = (
            f"reports of the last {self.days} days ({att.reports} reports, "
            f"{att.total.messages} messages on {len(att.days)} days)"
        )
        if self.action is None:
            return f"{head}: {att.total.failing} messages failed DMARC"
        when = f"at p={self.policy}" if self.state != "enforced" else f"now, at p={self.policy}"
        if not self.would_fail:
            return f"{head}: {when} no message would have been {self.action}"
        sources = ", ".join(f"{label} {n}" for label, n in self.by_source[:5])
        more = f" and {len(self.by_source) - 5} more" if len(self.by_source) > 5 else ""
        return (
            f"{head}: {when} {self.would_fail} messages would have been {self.action}: "
            f"{sources}{more}"
        )


# --- MTA-STS (mtasts.py) ---------------------------------------------------------------------


class MtaStsDetail(NamedTuple):
    policy: str  # the policy file's text
    id: str  # the TXT record's id=


@dataclass
class Details:
    """What the steps found, per standard; defaults mean the step had nothing to say."""

    parked: bool = False  # parked.py: the SPF and DMARC steps stand aside
    spf: LookupTree | None = None  # the apex record's lookup tree
    spf_per_sender: dict[str, int] = field(default_factory=dict)  # apex lookups by sender
    spf_not_followed: list[str] = field(default_factory=list)  # includes with no lock answer
    alignment: list[AlignmentRow] = field(default_factory=list)
    dmarc_stage: StageReport = field(default_factory=StageReport.no_record)
    evidence: GateReport | None = None  # None: the domain has no stage to gate
    mta_sts: MtaStsDetail | None = None
