"""External report destinations (RFC 9990) through octoDNS, two zones in one config.

checkdmarc's own destination check is the verifier: it reads the zone files the
sync wrote (in place of DNS, which tests never query).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import checkdmarc.dmarc as cd
import dns.name
import dns.resolver
import dns.zone
import pytest
import yaml
from octodns.manager import Manager

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.findings import Severity
from octodns_mailauth.keysource import placeholder_public_key
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import parse_policy

CONFIG = "zones/config.yaml"
DEST = "reports.example.org"
AUTH = f"example.com._report._dmarc.{DEST}"


def _edit(path: str, change: Any) -> None:
    data = yaml.safe_load(Path(path).read_text())
    change(data)
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def _point_rua_outside() -> None:
    _edit(
        "zones/mail/example.com.yaml",
        lambda d: d["dmarc"].update(rua=["mailto:dmarc@example.com", f"mailto:agg@{DEST}"]),
    )


def _add_destination_zone() -> None:
    Path(f"zones/config/{DEST}.yaml").write_text("---\n'':\n  type: A\n  value: 192.0.2.80\n")
    _edit(
        CONFIG,
        lambda d: d["zones"].update(
            {f"{DEST}.": {"sources": ["config"], "processors": ["mailauth"], "targets": ["local"]}}
        ),
    )


def _zone_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer checkdmarc's TXT queries from the zone files the sync wrote."""
    zones = {}
    for path in Path("zones/output").glob("*.zone"):
        origin = path.name[: -len(".zone")]
        zones[origin] = dns.zone.from_file(str(path), origin, relativize=False, check_origin=False)

    def query_dns(name: str, rtype: str, **_: Any) -> list[str]:
        owner = dns.name.from_text(name)
        for origin, zone in zones.items():
            if owner.is_subdomain(dns.name.from_text(origin)):
                rdataset = zone.get_rdataset(owner, rtype)
                if rdataset is not None:
                    return [b"".join(r.strings).decode() for r in rdataset]
        raise dns.resolver.NXDOMAIN

    monkeypatch.setattr(cd, "query_dns", query_dns)


def test_destination_in_the_config_gets_its_authorization_record(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_rua_outside()
    _add_destination_zone()
    Manager(CONFIG).sync(dry_run=False)
    _zone_dns(monkeypatch)
    served = cd.query_dns(AUTH, "TXT")
    assert served == ["v=DMARC1"]
    # checkdmarc accepts the destination; the in-organization one needs no record.
    cd.verify_dmarc_report_destination("example.com", DEST)
    cd.verify_dmarc_report_destination("example.com", "example.com")
    # The destination zone keeps its own records; a second run changes nothing.
    zone = dns.zone.from_file(
        f"zones/output/{DEST}.zone", DEST, relativize=False, check_origin=False
    )
    assert zone.get_rdataset(f"{DEST}.", "A") is not None
    assert Manager(CONFIG).sync(dry_run=False) == 0


def test_destination_outside_the_config_is_a_warning_with_the_exact_record(
    example: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _point_rua_outside()
    with caplog.at_level(logging.WARNING):
        Manager(CONFIG).sync(dry_run=False)
    text = caplog.text
    # Our finding, at the rua line, naming the record the destination must publish.
    assert f'{AUTH}. TXT "v=DMARC1"' in text
    assert "zones/mail/example.com.yaml" in text and "RFC 9990" in text
    # The processor found no configured zone for it and says so too.
    assert f"is in no zone this processor manages here; its owner must publish {AUTH}." in text
    _zone_dns(monkeypatch)
    with pytest.raises(cd.UnverifiedDMARCURIDestination) as info:
        cd.verify_dmarc_report_destination("example.com", DEST)
    # checkdmarc names the same record we told the user to ask for.
    assert AUTH in str(info.value)


class Keys:
    def public_key(self, domain: str, key: DkimKey) -> str:
        return placeholder_public_key(key.algorithm, key.bits)


def _compile(dmarc: str, domain: str = "example.com") -> Any:
    text = f"senders:\n  - {{name: relay, ip4: [192.0.2.1]}}\ndmarc: {dmarc}\n"
    return compile_policy(
        parse_policy(text, f"mail/{domain}.yaml", domain), load_catalog(), Keys()
    )


def test_only_destinations_outside_the_organization_need_authorization() -> None:
    result = _compile(
        "{stage: monitor, rua: [mailto:a@example.com, mailto:b@mail.example.com, "
        "'mailto:c@reports.example.net!5m'], ruf: [mailto:f@reports.example.net, "
        "mailto:g@forensics.example.org]}"
    )
    auth = sorted(r.name for r in result.records if "._report._dmarc." in r.name)
    assert auth == [
        "example.com._report._dmarc.forensics.example.org",
        "example.com._report._dmarc.reports.example.net",
    ]
    assert all(
        r.values == ("v=DMARC1",) and r.kind == "dmarc"
        for r in result.records
        if "._report._dmarc." in r.name
    )
    warnings = [f for f in result.findings if f.code == "dmarc-external-destination"]
    assert len(warnings) == 2 and all(f.severity is Severity.WARNING for f in warnings)
    lines = sorted(f.location.line for f in warnings if f.location)
    assert lines == [3, 3]  # the flow-style dmarc: mapping is on line 3


def test_subdomain_policy_reporting_to_its_parent_is_internal() -> None:
    result = _compile("{stage: monitor, rua: mailto:d@example.com}", "shop.example.com")
    assert not [r for r in result.records if "._report._dmarc." in r.name]
    # psd=n makes shop.example.com its own organization: example.com is then external.
    own = _compile(
        "{stage: monitor, rua: mailto:d@example.com, public_suffix_domain: false}",
        "shop.example.com",
    )
    assert [r.name for r in own.records if "._report._dmarc." in r.name] == [
        "shop.example.com._report._dmarc.example.com"
    ]


def test_the_examples_destination_is_published_and_said_as_info(
    example: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The example: example.net's reports go to dmarc@example.com, a zone of the
    same config, so the processor publishes the authorization there; nobody has
    to be asked, so no warning, in octodns-sync or validate."""
    from cli_run import cli

    with caplog.at_level(logging.WARNING):
        assert Manager(CONFIG).sync(dry_run=False) > 0
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned and not [m for m in warned if "_report._dmarc" in m], warned
    _zone_dns(monkeypatch)
    assert cd.query_dns("example.net._report._dmarc.example.com", "TXT") == ["v=DMARC1"]
    cd.verify_dmarc_report_destination("example.net", "example.com")  # checkdmarc agrees
    quiet = cli("validate", "--config", CONFIG)
    assert quiet.returncode == 0 and "_report._dmarc" not in quiet.stdout, quiet.stdout
    verbose = cli("validate", "--config", CONFIG, "-v").stdout
    (line,) = [ln for ln in verbose.splitlines() if "_report._dmarc" in ln]
    assert line.startswith("zones/mail/example.net.yaml:") and ": info: " in line
    assert 'example.net._report._dmarc.example.com. TXT "v=DMARC1" authorizes them' in line
    assert "published in zone example.com of this config" in line
