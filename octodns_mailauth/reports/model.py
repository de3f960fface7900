"""Reports as the ingest step reads them, before they are stored.

Field names follow RFC 9990 (DMARC aggregate reports) and RFC 8460 (SMTP TLS
reports).  Values are normalised (lower case results, no trailing dots) so the
store and attribution compare like with like.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

# RFC 9990 / RFC 7489 App. C enumerations, lower case.
DISPOSITIONS = frozenset({"none", "pass", "quarantine", "reject"})
DMARC_RESULTS = frozenset({"pass", "fail"})
DKIM_RESULTS = frozenset({"none", "pass", "fail", "policy", "neutral", "temperror", "permerror"})
SPF_RESULTS = frozenset({"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"})


# Tuples, not frozen dataclasses: a large ingest makes one per record and per
# signature, and a tuple is built several times faster.
class DkimAuth(NamedTuple):
    domain: str  # d=
    selector: str  # s= ("" when the reporter left it out, as RFC 7489 allowed)
    result: str


class SpfAuth(NamedTuple):
    domain: str  # the MAIL FROM (or HELO) domain SPF was checked for
    scope: str  # mfrom | helo ("" when not given)
    result: str


@dataclass
class AggregateRow:
    """One <record>: `count` messages from one source with one set of results."""

    source_ip: str
    count: int
    disposition: str
    dmarc_dkim: str  # policy_evaluated: the DMARC-aligned DKIM result
    dmarc_spf: str  # policy_evaluated: the DMARC-aligned SPF result
    header_from: str
    envelope_from: str = ""
    dkim: list[DkimAuth] = field(default_factory=list)
    spf: list[SpfAuth] = field(default_factory=list)
    reverse_dns: str = ""  # parsedmarc's JSON carries it; XML does not


@dataclass
class AggregateReport:
    org: str
    report_id: str
    begin: int  # seconds since the epoch, UTC
    end: int
    domain: str  # policy_published/domain
    rows: list[AggregateRow]
    format: str  # rfc9990 | rfc7489 | parsedmarc
    email: str = ""
    policy: dict[str, str] = field(default_factory=dict)  # policy_published as given
    source: str = ""  # where it was read from (file, member, message part)
    digest: str = ""  # of the document it was read from (`Known`)

    kind = "dmarc"


class TlsFailure(NamedTuple):
    result_type: str
    count: int
    receiving_mx: str = ""
    reason: str = ""


@dataclass
class TlsPolicy:
    policy_type: str  # sts | tlsa | no-policy-found
    policy_domain: str
    mx_hosts: list[str]
    successes: int
    failures: int
    details: list[TlsFailure] = field(default_factory=list)


@dataclass
class TlsReport:
    org: str
    report_id: str
    begin: int
    end: int
    policies: list[TlsPolicy]
    format: str  # rfc8460 | parsedmarc
    source: str = ""
    digest: str = ""  # of the document it was read from (`Known`)

    kind = "tls"

    @property
    def domain(self) -> str:
        return self.policies[0].policy_domain if self.policies else ""


@dataclass(frozen=True)
class Refused:
    """Something that was read but is not usable evidence, and why (one line)."""

    source: str
    reason: str


@dataclass(frozen=True)
class Seen:
    """A report the store held before, known by its header and the digest of its
    document: not read in full."""

    source: str
    kind: str  # dmarc | tls
    org: str  # lower case, as the store keys it
    report_id: str


# What the store keys reports by, (kind, organisation in lower case, report id), with
# the digest (`digest`) of the document each was stored from.  A report whose header
# names a stored one is `Seen` only if its document has that digest: a damaged or
# otherwise different copy is read in full (refused with the reason, or a duplicate).
Known = Mapping[tuple[str, str, str], str]
NOTHING_KNOWN: Known = {}  # a Mapping: never changed


def digest(document: bytes) -> str:
    """BLAKE2b of a report's document (decompressed): a few times cheaper than
    parsing even its header."""
    return hashlib.blake2b(document, digest_size=16).hexdigest()


Report = AggregateReport | TlsReport
