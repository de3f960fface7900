"""External report destinations (RFC 9990 "Verifying External Destinations",
formerly RFC 7489 §7.1).

A receiver sends reports to a rua/ruf address outside the policy domain's
Organizational Domain only if the destination publishes
`<policy-domain>._report._dmarc.<destination-host>` TXT `v=DMARC1`.
"""

from __future__ import annotations

from typing import NamedTuple

from .orgdomain import organizational_domain
from .uri import parse_report_uri


# A NamedTuple, not a frozen dataclass: every `validate` defines it, and a dataclass
# costs four times as much to define (it compiles its methods from source).
class ExternalDestination(NamedTuple):
    tag: str  # rua or ruf
    uri: str
    host: str

    def authorization_name(self, domain: str) -> str:
        return f"{domain}._report._dmarc.{self.host}"


# The finding that names the record a destination must publish (a warning; info
# once the record is published in a zone of the same config: integration/zonemap.py).
EXTERNAL_DESTINATION_CODE = "dmarc-external-destination"


def external_destinations(
    domain: str, rua: list[str], ruf: list[str], declared: list[str] | None = None
) -> list[ExternalDestination]:
    """The report destinations outside `domain`'s Organizational Domain, one per host."""
    declared = declared or []
    org = organizational_domain(domain, declared)
    out: dict[str, ExternalDestination] = {}
    for tag, uris in (("rua", rua), ("ruf", ruf)):
        for uri in uris:
            host = parse_report_uri(uri).host
            if host and organizational_domain(host, declared) != org and host not in out:
                out[host] = ExternalDestination(tag, uri, host)
    return list(out.values())
