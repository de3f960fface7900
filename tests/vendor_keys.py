"""A resolver for compile tests in which every vendor has published its DKIM
keys: TXT at a delegated selector's CNAME target answers with a real key
record; any other name is absent from the (imaginary) lock."""

from __future__ import annotations

from collections.abc import Iterable

from octodns_mailauth.dns.resolver import DnsError, Resolver
from octodns_mailauth.keysource import placeholder_public_key
from octodns_mailauth.records.dkim import dkim_txt_value

KEY_RECORD = dkim_txt_value("rsa", placeholder_public_key("rsa", 2048))


class VendorKeys(Resolver):
    """Names that look like a DKIM key location answer with a key."""

    offline = True
    source = "the vendor keys of this test"

    def __init__(self, without: Iterable[str] = ()) -> None:
        self.without = {n.rstrip(".").lower() for n in without}  # these are NXDOMAIN
        self.asked: list[str] = []

    def query(self, name: str, rdtype: str) -> list[str]:
        name = name.rstrip(".").lower()
        self.asked.append(name)
        if name in self.without:
            raise DnsError(name, rdtype, "nxdomain")
        if rdtype == "TXT" and ("domainkey" in name or "dkim" in name):
            return [KEY_RECORD]
        raise DnsError(name, rdtype, "missing", "not in this test's lock")
