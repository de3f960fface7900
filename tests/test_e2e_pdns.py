"""End to end through a real authoritative server: octodns-sync with the
processor into PowerDNS on loopback, then everything checked over DNS by
independent verifiers (dnspython, checkdmarc, pyspf, dkimpy)."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dns.resolver
import pytest
import yaml
from pdns_fixture import pdns_of_the_module  # noqa: F401  (`pdns`: a server of its own)
from spf_realworld import serve_rrsets

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.dkim.statefile import load_state
from octodns_mailauth.keysource import KeystoreKeys
from octodns_mailauth.policy.loader import load_policy_dir
from octodns_mailauth.records.base import DesiredRecord

pytestmark = pytest.mark.pdns

CONFIG = "zones/config-powerdns.yaml"
BIN = Path(sys.executable).parent


def zones_in_config() -> list[str]:
    data = yaml.safe_load(Path(CONFIG).read_text())
    return [z.rstrip(".") for z in data["zones"]]


LOCK = "zones/mail/spf-lock.json"


def serve_third_parties(pdns: Any) -> None:
    """The vendor records the policies depend on, exactly as the project's SPF
    lock file recorded them: the receivers below resolve the same data the
    processor analysed offline."""
    answers = json.loads(Path(LOCK).read_text())["answers"]
    data = {
        (name, rtype): entry[rtype]
        for name, entry in answers.items()
        for rtype in ("TXT", "A", "AAAA", "MX")
        if entry.get(rtype)
    }
    serve_rrsets(pdns, data)


@pytest.fixture
def published(example: Path, pdns: Any) -> Iterator[Any]:
    """The example synced into a fresh set of zones on the loopback server."""
    for zone in zones_in_config():
        if f"{zone}." in pdns.zone_names():
            pdns.delete_zone(zone)
        pdns.create_zone(zone)
    serve_third_parties(pdns)
    yield pdns


def octodns_sync(pdns: Any, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        PDNS_HOST=pdns.host,
        PDNS_PORT=str(pdns.api_port),
        PDNS_API_KEY=pdns.api_key,
    )
    return subprocess.run(
        [str(BIN / "octodns-sync"), "--config-file", CONFIG, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def wanted() -> list[DesiredRecord]:
    keys = KeystoreKeys("zones/.dkim", generate=False)
    catalog = load_catalog()
    state = load_state("zones/dkim-state.yaml", "zones/mail")  # the example's rotation
    out: list[DesiredRecord] = []
    for lp in load_policy_dir("zones/mail"):
        result = compile_policy(lp, catalog, keys, dkim_state=state)
        assert not result.errors, result.errors
        out += result.records
    return out


def answer(resolver: dns.resolver.Resolver, name: str, rtype: str) -> list[str]:
    try:
        rrset = resolver.resolve(name, rtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    if rtype == "TXT":
        return [b"".join(r.strings).decode() for r in rrset]
    return [r.to_text() for r in rrset]


def test_every_wanted_record_is_served_byte_for_byte(published: Any) -> None:
    result = octodns_sync(published, "--doit")
    assert result.returncode == 0, result.stderr
    resolver = published.resolver()
    records = wanted()
    assert len(records) >= 15
    for record in records:
        served = answer(resolver, record.name, record.type)
        for value in record.values:
            assert value in served, (record.name, record.type, value, served)
        if record.type == "TXT":
            # Long values arrive as several ≤255-octet strings that join back exactly.
            for rr in resolver.resolve(record.name, "TXT"):
                assert all(len(s) <= 255 for s in rr.strings)
    # ... and a second sync plans nothing.
    again = octodns_sync(published)
    assert again.returncode == 0, again.stderr
    assert "No changes were planned" in again.stderr


def test_long_rsa_key_is_split_on_the_wire(published: Any) -> None:
    assert octodns_sync(published, "--doit").returncode == 0
    rrset = published.resolver().resolve("relay2026r._domainkey.example.com", "TXT")
    strings = list(rrset[0].strings)
    assert len(strings) == 2 and len(strings[0]) == 255
    assert b"".join(strings).decode().startswith("v=DKIM1; k=rsa; p=MIIB")


def test_records_the_policy_does_not_own_survive(published: Any) -> None:
    assert octodns_sync(published, "--doit").returncode == 0
    resolver = published.resolver()
    ours_before = {
        (n, t): answer(resolver, n, t)
        for n, t in [
            ("example.com", "A"),
            ("example.com", "MX"),
            ("www.example.com", "CNAME"),
            ("autodiscover.example.com", "CNAME"),
            ("shop.example.net", "A"),
        ]
    }
    apex_txt = answer(resolver, "example.com", "TXT")
    assert "MS=ms12345678" in apex_txt
    # Drop a sender: only its records leave.
    policy = yaml.safe_load(Path("zones/mail/example.com.yaml").read_text())
    policy["senders"] = [s for s in policy["senders"] if s["name"] != "newsletters"]
    Path("zones/mail/example.com.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    # Its DKIM delegations go too: the plan guard wants that said (README "Safety").
    result = octodns_sync(published, "--doit")
    assert result.returncode != 0 and "deletes the CNAME that delegates DKIM" in result.stderr
    assert answer(resolver, "s1._domainkey.example.com", "CNAME")
    policy["acknowledge"] = ["dkim-delete s1._domainkey", "dkim-delete s2._domainkey"]
    Path("zones/mail/example.com.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    result = octodns_sync(published, "--doit")
    assert result.returncode == 0, result.stderr
    assert answer(resolver, "s1._domainkey.example.com", "CNAME") == []
    assert answer(resolver, "s2._domainkey.example.com", "CNAME") == []
    assert answer(resolver, "selector1._domainkey.example.com", "CNAME")
    for key, values in ours_before.items():
        assert answer(resolver, *key) == values, key
    after = answer(resolver, "example.com", "TXT")
    assert sorted(v for v in after if not v.startswith("v=spf1")) == sorted(
        v for v in apex_txt if not v.startswith("v=spf1")
    )
    assert octodns_sync(published).stderr.count("No changes were planned") == 1


def test_checkdmarc_finds_no_error(published: Any) -> None:
    import checkdmarc.dmarc
    import checkdmarc.spf

    assert octodns_sync(published, "--doit").returncode == 0
    resolver = published.resolver()
    for domain in ("example.com", "example.net"):
        dmarc = checkdmarc.dmarc.check_dmarc(domain, resolver=resolver)
        assert dmarc.get("valid") is True and "error" not in dmarc, dmarc
        spf = checkdmarc.spf.query_spf_record(domain, resolver=resolver)
        record = spf["record"]
        parsed = checkdmarc.spf.parse_spf_record(
            record, domain, resolver=resolver, ignore_too_many_lookups=True
        )
        assert parsed["parsed"]["all"] in ("fail", "softfail")


def dkim_dns(resolver: dns.resolver.Resolver):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        values = answer(resolver, name.decode().rstrip("."), "TXT")
        return values[0].encode() if values else None

    return lookup


def signed(selector: str, domain: str, key_path: Path) -> bytes:
    import dkim
    from dkimpy_key import dkimpy_private_key

    from octodns_mailauth.dkim.keys import algorithm_of, private_key_from_pem

    key = private_key_from_pem(key_path.read_bytes(), None)
    msg = EmailMessage()
    msg["From"] = f"billing@{domain}"
    msg["To"] = "someone@example.org"
    msg["Subject"] = "invoice"
    msg.set_content("Hello\n")
    raw = msg.as_bytes().replace(b"\n", b"\r\n")
    algorithm = f"{algorithm_of(key)}-sha256".encode()
    sig = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        dkimpy_private_key(key),
        signature_algorithm=algorithm,
        linesep=b"\r\n",
    )
    return sig + raw


def test_dkimpy_verifies_each_stored_key_through_the_server(published: Any) -> None:
    import dkim

    assert octodns_sync(published, "--doit").returncode == 0
    resolver = published.resolver()
    keys = sorted(Path("zones/.dkim").glob("*/*.pem"))
    assert len(keys) >= 3
    for key_path in keys:
        domain, selector = key_path.parent.name, key_path.stem
        message = signed(selector, domain, key_path)
        assert dkim.verify(message, dnsfunc=dkim_dns(resolver)), key_path
        # Tampering is caught: the check can fail.
        assert not dkim.verify(message.replace(b"Hello", b"Hullo"), dnsfunc=dkim_dns(resolver))


def _first_address(text: str) -> str:
    network = ipaddress.ip_network(text, strict=False)
    return str(network[1] if network.num_addresses > 1 else network[0])


def sender_addresses(domain: str) -> dict[str, str]:
    """One address per declared sender that SPF should pass: its own ip4/ip6,
    or the first range its include resolves to in the lock file."""
    from octodns_mailauth.records.spf import parse

    answers = json.loads(Path(LOCK).read_text())["answers"]

    def first_range(name: str, depth: int = 0) -> str | None:
        for value in answers.get(name, {}).get("TXT", []):
            if not value.lower().startswith("v=spf1"):
                continue
            for term in parse(value).mechanisms:
                if term.name in ("ip4", "ip6") and term.qualifier in ("+", ""):
                    return str(term.network)
                if term.name == "include" and depth < 5 and term.domain_spec:
                    found = first_range(term.domain_spec.lower(), depth + 1)
                    if found:
                        return found
        return None

    policy = yaml.safe_load(Path(f"zones/mail/{domain}.yaml").read_text())
    out: dict[str, str] = {}
    catalog = load_catalog()
    for sender in policy.get("senders", []):
        if isinstance(sender.get("a"), list):
            zone = yaml.safe_load(Path(f"zones/config/{domain}.yaml").read_text())
            label = sender["a"][0].rstrip(".")[: -len(domain) - 1]
            out[sender["name"]] = zone[label]["value"]
        elif sender.get("ip4") or sender.get("ip6"):
            out[sender["name"]] = _first_address(str((sender.get("ip4") or sender["ip6"])[0]))
        elif sender.get("provider"):
            entry = catalog.get(sender["provider"])
            if entry and entry.spf_include and entry.spf_include in answers:
                found = first_range(entry.spf_include)
                if found:
                    out[sender["name"]] = _first_address(found)
    return out


def test_pyspf_passes_declared_senders_and_fails_others(published: Any) -> None:
    import spf

    assert octodns_sync(published, "--doit").returncode == 0
    resolver = published.resolver()

    def lookup(name: str, qtype: str, tcpfallback: bool = True, timeout: int = 30) -> list:  # type: ignore[type-arg]
        out: list = []  # type: ignore[type-arg]
        try:
            rrset = resolver.resolve(name, qtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return out
        for r in rrset:
            if qtype in ("A", "AAAA"):
                out.append(((name, qtype), r.address))
            elif qtype == "MX":
                out.append(((name, qtype), (r.preference, r.exchange)))
            elif qtype in ("TXT", "SPF"):
                out.append(((name, qtype), r.strings))
        return out

    original = spf.DNSLookup
    spf.DNSLookup = lookup
    checked = 0
    try:
        for domain, undeclared in (("example.com", "fail"), ("example.net", "softfail")):
            addresses = sender_addresses(domain)
            assert len(addresses) >= 2, addresses
            for sender, address in addresses.items():
                result = spf.check2(i=address, s=f"{sender}@{domain}", h=f"mail.{domain}")
                assert result[0] == "pass", (domain, sender, address, result)
                checked += 1
            # An address nobody declared gets the policy's `all`.
            result = spf.check2(i="192.0.2.99", s=f"someone@{domain}", h="elsewhere.example")
            assert result[0] == undeclared, (domain, result)
        ranged = spf.check2(i="198.51.100.14", s="relay@example.com", h="mail.example.com")
        assert ranged[0] == "pass", ranged
    finally:
        spf.DNSLookup = original
    assert checked >= 4
