"""`octodns-mailauth init`: a policy from what a domain already publishes, read
from the octoDNS config's zone files or from live DNS (the loopback PowerDNS),
then synced by the real octoDNS: the published mail records stay the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import cli
from cryptography.hazmat.primitives.asymmetric import rsa
from octodns.manager import Manager

from octodns_mailauth.adopt import OWN_SENDER, adopt
from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.dkim.keys import generate_private_key, public_key_b64
from octodns_mailauth.policy.loader import load_policy_file
from octodns_mailauth.records.dmarc import parse_dmarc
from octodns_mailauth.records.spf import parse

CONFIG = "zones/config.yaml"
DOMAIN = "adopt.example"
RSA_P = public_key_b64(generate_private_key("rsa", 2048))

ZONE = f"""\
---
'':
  - type: A
    value: 192.0.2.60
  - type: MX
    values:
      - exchange: adopt-example.mail.protection.outlook.com.
        preference: 0
  - type: TXT
    values:
      # Microsoft's domain verification: not ours, stays.
      - MS=ms424242
      - v=spf1 ip4:192.0.2.61 ip4:198.51.100.16/28 mx include:spf.protection.outlook.com include:sendgrid.net -all
_dmarc:
  type: TXT
  value: v=DMARC1\\; p=quarantine\\; pct=100\\; rua=mailto:dmarc@adopt.example\\; ruf=mailto:dmarc@adopt.example\\; fo=1
mail._domainkey:
  type: TXT
  value: k=rsa\\; p={RSA_P}
s1._domainkey:
  type: CNAME
  value: s1.domainkey.u7654321.wl42.sendgrid.net.
s2._domainkey:
  type: CNAME
  value: s2.domainkey.u7654321.wl42.sendgrid.net.
selector1._domainkey:
  type: CNAME
  value: selector1-adopt-example._domainkey.fabrikam.onmicrosoft.com.
selector2._domainkey:
  type: CNAME
  value: selector2-adopt-example._domainkey.fabrikam.onmicrosoft.com.
www:
  type: CNAME
  value: adopt.example.
"""  # noqa: E501

MAIL_NAMES = {
    (DOMAIN, "TXT"),
    (f"_dmarc.{DOMAIN}", "TXT"),
    (f"mail._domainkey.{DOMAIN}", "TXT"),
    (f"s1._domainkey.{DOMAIN}", "CNAME"),
    (f"s2._domainkey.{DOMAIN}", "CNAME"),
    (f"selector1._domainkey.{DOMAIN}", "CNAME"),
    (f"selector2._domainkey.{DOMAIN}", "CNAME"),
}


def served(zone: str) -> dict[tuple[str, str], list[str]]:
    import dns.rdatatype
    import dns.zone

    z = dns.zone.from_file(f"zones/output/{zone}.zone", zone, relativize=False, check_origin=False)
    out: dict[tuple[str, str], list[str]] = {}
    for name, _ttl, rdata in z.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        if rtype == "SOA":
            continue
        text = b"".join(rdata.strings).decode() if rtype == "TXT" else rdata.to_text()
        out.setdefault((name.to_text().rstrip("."), rtype), []).append(text)
    return out


def meaning(records: dict[tuple[str, str], list[str]]) -> dict[Any, Any]:
    """What receivers read from the mail records: SPF as a set of terms, DMARC as
    its effective tags, DKIM keys by their p=, CNAME targets as they are."""
    out: dict[Any, Any] = {}
    for key in MAIL_NAMES:
        values = records.get(key, [])
        if key == (DOMAIN, "TXT"):
            spf = [v for v in values if v.startswith("v=spf1")]
            out[key] = (
                frozenset(str(t) for t in parse(spf[0]).terms),
                sorted(set(values) - set(spf)),
            )
        elif key[0].startswith("_dmarc"):
            tags = parse_dmarc(values[0]).tags
            tags.pop("pct", None)  # pct=100 is the default
            out[key] = tags
        elif key[0].startswith("mail._domainkey"):
            out[key] = [v.split("p=")[1] for v in values]
        else:
            out[key] = values
    return out


@pytest.fixture
def adopt_zone(example: Path) -> Path:
    Path(f"zones/config/{DOMAIN}.yaml").write_text(ZONE)
    config = yaml.safe_load(Path(CONFIG).read_text())
    config["zones"][f"{DOMAIN}."] = {
        "sources": ["config"],
        "processors": ["mailauth"],
        "targets": ["local"],
    }
    Path(CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    return example


def test_init_writes_a_policy_that_publishes_what_was_published(adopt_zone: Path) -> None:
    Manager(CONFIG).sync(dry_run=False)  # before: the zone's records, no policy
    before = meaning(served(DOMAIN))

    proc = cli("init", DOMAIN, "--config", CONFIG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = Path(f"zones/mail/{DOMAIN}.yaml")
    assert f"wrote {path}" in proc.stdout
    policy = yaml.safe_load(path.read_text())
    by_name = {s["name"]: s for s in policy["senders"]}
    # Catalog senders from their SPF include, parameters from their DKIM CNAMEs.
    assert by_name["microsoft365"] == {
        "name": "microsoft365",
        "provider": "microsoft365",
        "tenant": "fabrikam",
        # The DKIM targets as the zone has them (Microsoft 365 cannot derive them).
        "selector1_target": "selector1-adopt-example._domainkey.fabrikam.onmicrosoft.com.",
        "selector2_target": "selector2-adopt-example._domainkey.fabrikam.onmicrosoft.com.",
    }
    assert by_name["sendgrid"] == {
        "name": "sendgrid",
        "provider": "sendgrid",
        "account": "u7654321",
        "link": "wl42",
    }
    servers = by_name["servers"]
    assert servers["ip4"] == ["192.0.2.61", "198.51.100.16/28"]
    assert servers["mx"] is True
    assert servers["dkim"] == [{"selector": "mail", "algorithm": "rsa", "public_key": RSA_P}]
    assert policy["spf"] == {"all": "fail", "takeover": True}
    assert policy["dmarc"] == {
        "policy": "quarantine",
        "rua": ["mailto:dmarc@adopt.example"],
        "ruf": ["mailto:dmarc@adopt.example"],
        "failure_options": ["any_fail"],
        "takeover": True,
    }
    # It loads and validates with the config (zone checks included).
    load_policy_file(path)
    # It says which hand-written values to delete, with file and line.
    assert "delete them from the zone" in proc.stdout
    assert f"zones/config/{DOMAIN}.yaml:18: mail._domainkey.{DOMAIN} TXT" in proc.stdout
    # The key is written without v=DKIM1, so the sync would refuse it: said.
    assert "octodns-sync will refuse the zone until the values listed above are deleted" in (
        proc.stdout
    )

    # The DKIM record is written differently (no v=DKIM1): the sync refuses until
    # it is gone from the zone file; --remove-from-zone on a second run is refused
    # (the policy exists), so remove by the listing: here, with a fresh init.
    path.unlink()
    zone_before = Path(f"zones/config/{DOMAIN}.yaml").read_text()
    proc = cli("init", DOMAIN, "--config", CONFIG, "--remove-from-zone")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    zone_after = Path(f"zones/config/{DOMAIN}.yaml").read_text()
    assert "octodns-sync will accept the zone with this policy" in proc.stdout
    # Only whole lines were cut; every other byte is as it was.
    import difflib

    ops = difflib.SequenceMatcher(
        None, zone_before.splitlines(keepends=True), zone_after.splitlines(keepends=True)
    ).get_opcodes()
    assert {op for op, *_ in ops} == {"equal", "delete"}
    deleted = sum(i2 - i1 for op, i1, i2, _j1, _j2 in ops if op == "delete")
    assert deleted == 19  # the SPF value line; _dmarc, mail, s1, s2, selector1/2 (3 lines each)
    assert "MS=ms424242" in zone_after and "# Microsoft's domain verification" in zone_after
    assert "www:" in zone_after

    assert Manager(CONFIG).sync(dry_run=False) > 0
    after = served(DOMAIN)
    assert meaning(after) == before
    assert after[(f"www.{DOMAIN}", "CNAME")] == [f"{DOMAIN}."]
    assert Manager(CONFIG).sync(dry_run=False) == 0  # and a second run plans nothing


def test_init_refuses_to_overwrite(adopt_zone: Path) -> None:
    path = Path(f"zones/mail/{DOMAIN}.yaml")
    path.write_text("# mine\ndmarc: {policy: none}\n")
    proc = cli("init", DOMAIN, "--config", CONFIG)
    assert proc.returncode == 2
    assert "init never overwrites" in proc.stderr
    assert path.read_text() == "# mine\ndmarc: {policy: none}\n"


def test_init_without_a_source_is_a_usage_error(adopt_zone: Path) -> None:
    proc = cli("init", DOMAIN, "--policies", "zones/mail")
    assert proc.returncode == 2
    assert "--config FILE" in proc.stderr and "--nameserver" in proc.stderr


def test_init_for_a_domain_no_configured_zone_holds(adopt_zone: Path) -> None:
    proc = cli("init", "elsewhere.test", "--config", CONFIG)
    assert proc.returncode == 2
    assert f"elsewhere.test: no zone in {CONFIG} contains it" in proc.stderr
    assert not Path("zones/mail/elsewhere.test.yaml").exists()


@pytest.mark.parametrize(
    ("spf", "why"),
    [
        ("v=spf1 ptr -all", "ptr is slow"),
        ("v=spf1 exists:%{i}._spf.adopt.example -all", "exists:"),
        ("v=spf1 include:%{d}.spf.example.net -all", "a macro in the include target"),
        ("v=spf1 redirect=_spf.example.net", "redirect="),
        ("v=spf1 ip4:192.0.2.1 +all", "+all"),
        ("v=spf1 -ip4:192.0.2.1 ~all", "policy senders only authorise"),
    ],
)
def test_init_refuses_what_the_policy_cannot_say(adopt_zone: Path, spf: str, why: str) -> None:
    zone = Path(f"zones/config/{DOMAIN}.yaml")
    text = zone.read_text()
    zone.write_text(text.replace(text.split("      - ")[-1].split("\n")[0], spf.replace("\\", "")))
    proc = cli("init", DOMAIN, "--config", CONFIG)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert why in proc.stdout
    assert "nothing written" in proc.stdout
    assert not Path(f"zones/mail/{DOMAIN}.yaml").exists()
    assert zone.read_text() != text and "www:" in zone.read_text()


def test_init_unknown_include_is_kept_as_a_raw_include(adopt_zone: Path) -> None:
    zone = Path(f"zones/config/{DOMAIN}.yaml")
    zone.write_text(
        zone.read_text().replace("include:sendgrid.net", "include:_spf.partner.example")
    )
    proc = cli("init", DOMAIN, "--config", CONFIG, "--stdout")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    policy = yaml.safe_load(proc.stdout)
    assert not Path(f"zones/mail/{DOMAIN}.yaml").exists()  # --stdout writes nothing
    raw = [s for s in policy["senders"] if s.get("include")]
    assert raw == [{"name": "_spf.partner.example", "include": ["_spf.partner.example"]}]
    # SendGrid's CNAMEs show, but the published SPF does not include it: as a
    # provider it would add include:sendgrid.net, so its records stay hand-written.
    assert not any(s.get("provider") == "sendgrid" for s in policy["senders"])
    report = cli("init", DOMAIN, "--config", CONFIG)
    assert "the published SPF record has no include:sendgrid.net" in report.stdout
    assert "s1._domainkey" not in report.stdout.split("delete them from the zone")[1]


LIVE = "initlive.test"


@pytest.mark.pdns
def test_init_from_live_dns(tmp_path: Path, pdns: Any) -> None:
    if f"{LIVE}." in pdns.zone_names():
        pdns.delete_zone(LIVE)
    pdns.create_zone(LIVE)
    ed = public_key_b64(generate_private_key("ed25519"))

    def rrset(name: str, rtype: str, contents: list[str]) -> dict[str, Any]:
        return {
            "name": f"{name}.",
            "type": rtype,
            "ttl": 300,
            "changetype": "REPLACE",
            "records": [{"content": c, "disabled": False} for c in contents],
        }

    try:
        pdns.api(
            "PATCH",
            f"zones/{LIVE}.",
            {
                "rrsets": [
                    rrset(LIVE, "TXT", ['"v=spf1 a include:_spf.google.com ~all"']),
                    rrset(LIVE, "MX", ["1 smtp.google.com."]),
                    rrset(
                        f"_dmarc.{LIVE}", "TXT", ['"v=DMARC1; p=none; rua=mailto:d@initlive.test"']
                    ),
                    rrset(f"k2._domainkey.{LIVE}", "CNAME", ["dkim2.mcsv.net."]),
                    rrset(f"k3._domainkey.{LIVE}", "CNAME", ["dkim3.mcsv.net."]),
                    rrset(f"relay._domainkey.{LIVE}", "TXT", [f'"v=DKIM1; k=ed25519; p={ed}"']),
                ]
            },
        )
        policies = tmp_path / "mail"
        policies.mkdir()
        ns = f"{pdns.host}:{pdns.dns_port}"
        proc = cli(
            "init", LIVE, "--policies", str(policies), "--nameserver", ns, "--selector", "relay"
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "live DNS cannot list DKIM selectors" in proc.stdout
        policy = yaml.safe_load((policies / f"{LIVE}.yaml").read_text())
        senders = {s["name"]: s for s in policy["senders"]}
        assert senders["google"] == {"name": "google", "provider": "google"}
        assert senders["mailchimp"] == {"name": "mailchimp", "provider": "mailchimp"}
        assert senders["servers"] == {
            "name": "servers",
            "a": True,
            "dkim": [{"selector": "relay", "algorithm": "ed25519", "public_key": ed}],
        }
        assert policy["spf"]["all"] == "softfail"
        assert policy["dmarc"]["policy"] == "none"
        # Live DNS has no zone file to edit.
        again = cli(
            "init", LIVE, "--policies", str(tmp_path), "--nameserver", ns, "--remove-from-zone"
        )
        assert again.returncode == 2 and "needs --config" in again.stderr
    finally:
        pdns.delete_zone(LIVE)


def test_remove_from_zone_refuses_a_value_it_cannot_cut_and_writes_nothing(
    adopt_zone: Path,
) -> None:
    zone = Path(f"zones/config/{DOMAIN}.yaml")
    flow = "---\n'':\n  type: TXT\n  values: [MS=ms1, v=spf1 ip4:192.0.2.61 -all]\n"
    zone.write_text(flow)
    proc = cli("init", DOMAIN, "--config", CONFIG, "--remove-from-zone")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "flow style" in proc.stderr and "remove the value by hand" in proc.stderr
    assert zone.read_text() == flow
    assert not Path(f"zones/mail/{DOMAIN}.yaml").exists()


def _rsa_p(bits: int) -> str:
    """The p= of an RSA public key of `bits` bits (fixed numbers: no key generation)."""
    return public_key_b64(rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 1).public_key())


@pytest.mark.parametrize(
    "bits, why",
    [
        (512, "under the 1024 bits RFC 8301 §3.2 requires"),
        (1024, "a key we publish must have at least 2048"),
        (8192, "at most 4096 bits are supported"),
        (3072, None),  # adopted, its size kept
    ],
)
def test_adopt_takes_only_dkim_keys_the_policy_would_publish(bits: int, why: str | None) -> None:
    """One key-size rule (dkim/keys.py): a key adopt would write is one the policy accepts."""
    name = f"s1._domainkey.{DOMAIN}"
    out = adopt(DOMAIN, {(name, "TXT"): (f"v=DKIM1; k=rsa; p={_rsa_p(bits)}",)}, load_catalog([]))
    if why is None:
        [servers] = out.policy["senders"]
        assert servers["name"] == OWN_SENDER and servers["dkim"][0]["bits"] == bits
        assert not [u for u in out.unexpressed if u.kind == "dkim"]
        return
    [left] = [u for u in out.unexpressed if u.kind == "dkim"]
    assert (left.what, left.kind, left.blocking) == (name, "dkim", False)
    assert why in left.reason
    assert "senders" not in out.policy


def test_adopt_vendor_records_with_clashing_parameters() -> None:
    """Two Microsoft 365 selectors under different tenants: the second does not fit the
    first's tenant (said in a note) and is adopted by its stated target instead."""
    d = DOMAIN
    view = {
        (d, "TXT"): ("v=spf1 include:spf.protection.outlook.com -all",),
        (f"selector1._domainkey.{d}", "CNAME"): (
            f"selector1-{d.replace('.', '-')}._domainkey.contoso.onmicrosoft.com.",
        ),
        (f"selector2._domainkey.{d}", "CNAME"): (
            f"selector2-{d.replace('.', '-')}._domainkey.fabrikam.onmicrosoft.com.",
        ),
    }
    out = adopt(d, view, load_catalog([]))
    [note] = [n for n in out.notes if "parameters that differ" in n]
    assert note.startswith(f"selector2._domainkey.{d} CNAME")
    [m365] = out.policy["senders"]
    assert m365["tenant"] == "contoso"
    assert m365["selector2_target"] == view[(f"selector2._domainkey.{d}", "CNAME")][0]
    assert len([o for o in out.owned if o.type == "CNAME"]) == 2


# Amazon SES as it is in opt-in regions, where the Easy DKIM targets name the region
# (<token>.dkim.<region>.amazonses.com): a list parameter and a single one in one record.
SES_REGIONAL = """\
id: sesregional
name: Amazon SES (opt-in region)
docs: https://docs.aws.amazon.com/ses/latest/dg/send-email-authentication-dkim-easy.html
params:
  dkim_tokens: {type: token, list: true, pattern: '^[a-z0-9]{32}$', help: the tokens}
  region: {type: token, pattern: '^[a-z]{2}(-[a-z]+)+-[0-9]$', help: the region}
dkim:
  d: '{domain}'
  requires: [dkim_tokens, region]
  records:
    - name: '{item}._domainkey'
      type: CNAME
      value: '{item}.dkim.{region}.amazonses.com.'
      foreach: dkim_tokens
"""


def test_adopt_leaves_a_clashing_record_out_of_a_list_parameter(tmp_path: Path) -> None:
    """Amazon SES DKIM tokens (a list parameter) where one record's region differs:
    that record is left in the zone, and its token is not in the adopted list."""
    (tmp_path / "sesregional.yaml").write_text(SES_REGIONAL)
    tokens = [c * 32 for c in "abc"]
    regions = ["af-south-1", "af-south-1", "eu-south-1"]
    view = {(DOMAIN, "TXT"): ("v=spf1 -all",)}
    for token, region in zip(tokens, regions, strict=True):
        view[(f"{token}._domainkey.{DOMAIN}", "CNAME")] = (
            f"{token}.dkim.{region}.amazonses.com.",
        )
    out = adopt(DOMAIN, view, load_catalog([tmp_path]))
    [ses] = out.policy["senders"]
    assert (ses["provider"], ses["region"]) == ("sesregional", "af-south-1")
    assert ses["dkim_tokens"] == tokens[:2]
    [note] = [n for n in out.notes if "parameters that differ" in n]  # said once
    assert note.startswith(f"{tokens[2]}._domainkey.{DOMAIN} CNAME")
    owned = sorted(o.name for o in out.owned if o.type == "CNAME")
    assert owned == [f"{t}._domainkey.{DOMAIN}" for t in tokens[:2]]
