"""The state one compile carries from step to step.

Each standard's step (`spf/step.py`, `dmarc/step.py`, ...) reads the policy
and what earlier steps found, and adds records and findings here.  Nothing in
it does I/O except through the key source and resolver it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .catalog import Catalog, Entry
from .dns.resolver import Resolver
from .findings import Finding, Location, Severity
from .names import InvalidName, check_name
from .outcome import Details
from .policy.dkim import DkimKey
from .policy.loader import LoadedPolicy
from .records.base import DesiredRecord
from .zoneview import ZoneReads

if TYPE_CHECKING:
    from .spf.lookups import SubtreeMemo


class KeySource(Protocol):
    def public_key(self, domain: str, key: DkimKey) -> str:
        """The base64 `p=` value for this selector, or raise KeyUnavailable."""
        ...


# A NamedTuple, not a frozen dataclass: every `validate` defines it, and a dataclass
# costs four times as much to define (it compiles its methods from source).
class SpfTerm(NamedTuple):
    """One SPF mechanism a sender needs, e.g. `include:_spf.google.com`."""

    text: str
    sender: str
    flatten: bool = False  # the sender asks for its include to be flattened

    @property
    def mechanism(self) -> str:
        return self.text.split(":", 1)[0].split("/", 1)[0].lstrip("+-~?")


@dataclass
class SenderFacts:
    """What a sender's mail carries, for DMARC alignment (RFC 7489 §3.1).

    `mail_from` is the envelope (RFC5321.MailFrom) domain SPF is checked for;
    `dkim_domains` the d= domains it signs with.
    """

    name: str
    index: int
    provider: Entry | None
    mail_from: str | None
    dkim_domains: list[str] = field(default_factory=list)
    location: Location | None = None
    # Selectors published as a CNAME to a key the provider holds: (name, target),
    # the d= those keys sign as, and the d= domains none of whose keys could be
    # verified at their target (dkim/delegation.py).
    delegated: list[tuple[str, str]] = field(default_factory=list)
    delegated_d: str | None = None
    unverified_dkim: set[str] = field(default_factory=set)
    # False when the declaration had errors (an unknown provider, a bad
    # parameter): what it would carry is unknown, so nothing is claimed about it.
    complete: bool = True
    # The provider's template values (catalog.resolve_params), resolved once by
    # the senders step for the later ones; None when they had problems.
    params: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"sender {self.name!r}" + (f" ({self.provider.name})" if self.provider else "")


@dataclass
class CompileResult:
    domain: str
    records: list[DesiredRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    senders: list[SenderFacts] = field(default_factory=list)
    # What each step found beyond records and findings (outcome.py): the SPF
    # lookup trees, the alignment rows, the DMARC stage...
    details: Details = field(default_factory=Details)
    # What of the zone view the compile read: the result holds for any view
    # that agrees (integration/run.py reuses it).
    zone_reads: ZoneReads = field(default_factory=ZoneReads, repr=False, compare=False)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]


@dataclass
class CompileContext:
    lp: LoadedPolicy
    catalog: Catalog
    keys: KeySource
    resolver: Resolver | None
    zone: ZoneReads  # a plain view is wrapped: every read of it is noted
    result: CompileResult
    now: datetime
    dkim_state: Any = None
    evidence: Any = None  # reports.gate.EvidenceInput: DMARC report evidence, if configured
    # SPF subtrees shared with the other compiles over the same resolver (walk_dns).
    spf_memo: SubtreeMemo | None = None
    spf_terms: list[SpfTerm] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.result.zone_reads = self.zone

    @property
    def domain(self) -> str:
        return self.lp.domain

    @property
    def ttl(self) -> int:
        return self.lp.policy.ttl

    def location(self, *path: str | int) -> Location:
        return self.lp.location(*path)

    def has_key(self, *path: str | int) -> bool:
        return tuple(path) in self.lp.lines.lines

    def find(
        self,
        severity: Severity,
        message: str,
        where: Location | None,
        hint: str | None = None,
        *,
        code: str,
        rfc: str | None = None,
        cause: str | None = None,
    ) -> None:
        self.result.findings.append(Finding(severity, message, where, hint, rfc, code, cause))

    def add(self, record: DesiredRecord) -> None:
        # Each name was checked where it entered, but joined ones can still
        # outgrow DNS (`<selector>._domainkey.<domain>` over 253 characters).
        name = record.name[2:] if record.name.startswith("*.") else record.name
        try:
            check_name(name, "the record name", service_labels=True)
        except InvalidName as e:
            self.find(Severity.ERROR, f"{record.owner}: {e}", record.location, code="record-name")
            return
        self.result.records.append(record)
