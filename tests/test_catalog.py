"""The sender catalog: each shipped sender produces the records its vendor
documents, and users add their own entries through the `catalog:` option."""

from __future__ import annotations

import shutil
from pathlib import Path

import dns.zone
import pytest
import yaml
from octodns.manager import Manager
from vendor_keys import VendorKeys

import octodns_mailauth.catalog as catalog_module
from octodns_mailauth.catalog import CatalogError, load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.keysource import placeholder_public_key
from octodns_mailauth.outcome import AlignmentRow, Verdict
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import parse_policy

CATALOG = load_catalog()
KEY = placeholder_public_key("rsa", 2048)  # a real public key: vendor TXT values are checked


class Keys:
    def public_key(self, domain: str, key: DkimKey) -> str:
        return placeholder_public_key(key.algorithm, key.bits)


def compile_sender(sender: str, domain: str = "example.com") -> CompileResult:
    text = f"senders:\n  - name: s\n{sender}dmarc: {{stage: monitor, rua: mailto:d@{domain}}}\n"
    lp = parse_policy(text, f"mail/{domain}.yaml", domain)
    return compile_policy(lp, CATALOG, Keys(), VendorKeys())


def published(result: CompileResult) -> set[tuple[str, str, str]]:
    return {
        (r.name, r.type, v)
        for r in result.records
        if not r.name.startswith("_dmarc.")
        for v in r.values
    }


def spf(result: CompileResult) -> str:
    return next(r.values[0] for r in result.records if r.kind == "spf" and r.name == result.domain)


def row(result: CompileResult) -> AlignmentRow:
    return result.details.alignment[0]


# (provider params, records the vendor's setup page lists, apex SPF include or None,
#  MAIL FROM, verdict)
CASES = {
    "microsoft365": (
        "    tenant: contoso\n    dkim_targets: legacy\n",
        {
            (
                "selector1._domainkey.example.com",
                "CNAME",
                "selector1-example-com._domainkey.contoso.onmicrosoft.com.",
            ),
            (
                "selector2._domainkey.example.com",
                "CNAME",
                "selector2-example-com._domainkey.contoso.onmicrosoft.com.",
            ),
        },
        "include:spf.protection.outlook.com",
        "example.com",
        Verdict.DKIM,
    ),
    "google": (
        f"    dkim_record: 'v=DKIM1; k=rsa; p={KEY}'\n",
        {("google._domainkey.example.com", "TXT", f"v=DKIM1; k=rsa; p={KEY}")},
        "include:_spf.google.com",
        "example.com",
        Verdict.DKIM,
    ),
    "amazonses": (
        "    region: eu-west-1\n    mail_from: bounce\n    dkim_tokens: ["
        + ", ".join(c * 32 for c in "abc")
        + "]\n",
        {
            *(
                (f"{c * 32}._domainkey.example.com", "CNAME", f"{c * 32}.dkim.amazonses.com.")
                for c in "abc"
            ),
            ("bounce.example.com", "MX", "10 feedback-smtp.eu-west-1.amazonses.com."),
            ("bounce.example.com", "TXT", "v=spf1 include:amazonses.com ~all"),
        },
        None,
        "bounce.example.com",
        Verdict.DKIM,
    ),
    "sendgrid": (
        "    account: u1234567\n    link: wl123\n    return_path_label: em1234\n",
        {
            ("s1._domainkey.example.com", "CNAME", "s1.domainkey.u1234567.wl123.sendgrid.net."),
            ("s2._domainkey.example.com", "CNAME", "s2.domainkey.u1234567.wl123.sendgrid.net."),
            ("em1234.example.com", "CNAME", "u1234567.wl123.sendgrid.net."),
        },
        "include:sendgrid.net",
        "em1234.example.com",
        Verdict.DKIM,
    ),
    "mailgun": (
        f"    dkim_selector: k1\n    dkim_record: 'k=rsa; p={KEY}'\n    tracking_label: email\n",
        {
            ("k1._domainkey.example.com", "TXT", f"k=rsa; p={KEY}"),
            ("email.example.com", "CNAME", "mailgun.org."),
        },
        "include:mailgun.org",
        "example.com",
        Verdict.DKIM,
    ),
    "postmark": (
        f"    dkim_selector: 20240101120000pm\n    dkim_record: 'k=rsa; p={KEY}'\n",
        {
            ("20240101120000pm._domainkey.example.com", "TXT", f"k=rsa; p={KEY}"),
            ("pm-bounces.example.com", "CNAME", "pm.mtasv.net."),
        },
        None,
        "pm-bounces.example.com",
        Verdict.DKIM,
    ),
    "mailchimp": (
        "",
        {
            ("k2._domainkey.example.com", "CNAME", "dkim2.mcsv.net."),
            ("k3._domainkey.example.com", "CNAME", "dkim3.mcsv.net."),
        },
        None,
        "mcsv.net",
        Verdict.DKIM,
    ),
    "mandrill": (
        "    verify_code: abc123\n    return_path_label: mail\n",
        {
            ("mte1._domainkey.example.com", "CNAME", "dkim1.mandrillapp.com."),
            ("mte2._domainkey.example.com", "CNAME", "dkim2.mandrillapp.com."),
            ("_mandrill.example.com", "TXT", "mandrill_verify.abc123"),
            ("mail.example.com", "CNAME", "mandrillapp.com."),
        },
        "include:spf.mandrillapp.com",
        "mail.example.com",
        Verdict.DKIM,
    ),
    "brevo": (
        "    brevo_code: 0123456789abcdef0123456789abcdef\n",
        {
            ("brevo1._domainkey.example.com", "CNAME", "b1.example-com.dkim.brevo.com."),
            ("brevo2._domainkey.example.com", "CNAME", "b2.example-com.dkim.brevo.com."),
            ("example.com", "TXT", "brevo-code:0123456789abcdef0123456789abcdef"),
        },
        None,
        "sender-sib.com",
        Verdict.DKIM,
    ),
    "zendesk": (
        "    verification_code: 1a2b3c\n",
        {
            ("zendesk1._domainkey.example.com", "CNAME", "zendesk1._domainkey.zendesk.com."),
            ("zendesk2._domainkey.example.com", "CNAME", "zendesk2._domainkey.zendesk.com."),
            ("zendeskverification.example.com", "TXT", "1a2b3c"),
        },
        "include:mail.zendesk.com",
        "zendesk.com",
        Verdict.DKIM,
    ),
    "salesforce": (
        "    dkim_selector: sf1\n    dkim_target: sf1.abc.custdkim.salesforce.com\n"
        "    alt_selector: sf2\n    alt_target: sf2.abc.custdkim.salesforce.com\n",
        {
            ("sf1._domainkey.example.com", "CNAME", "sf1.abc.custdkim.salesforce.com."),
            ("sf2._domainkey.example.com", "CNAME", "sf2.abc.custdkim.salesforce.com."),
        },
        "include:_spf.salesforce.com",
        "salesforce.com",
        Verdict.DKIM,
    ),
    "hubspot": (
        "    hub_id: '1234567'\n",
        {
            (
                "hs1-1234567._domainkey.example.com",
                "CNAME",
                "example-com.hs01a.dkim.hubspotemail.net.",
            ),
            (
                "hs2-1234567._domainkey.example.com",
                "CNAME",
                "example-com.hs01b.dkim.hubspotemail.net.",
            ),
        },
        None,
        "hubspotemail.net",
        Verdict.DKIM,
    ),
    "fastmail": (
        "",
        {
            (f"fm{i}._domainkey.example.com", "CNAME", f"fm{i}.example.com.dkim.fmhosted.com.")
            for i in (1, 2, 3)
        },
        "include:spf.messagingengine.com",
        "example.com",
        Verdict.DKIM,
    ),
    "proton": (
        "    dkim_id: d1e2f3\n    verification: " + "ab" * 20 + "\n",
        {
            *(
                (
                    f"{s}._domainkey.example.com",
                    "CNAME",
                    f"{s}.domainkey.d1e2f3.domains.proton.ch.",
                )
                for s in ("protonmail", "protonmail2", "protonmail3")
            ),
            ("example.com", "TXT", "protonmail-verification=" + "ab" * 20),
        },
        "include:_spf.protonmail.ch",
        "example.com",
        Verdict.DKIM,
    ),
    "zoho": (
        f"    dkim_selector: zmail\n    dkim_record: 'v=DKIM1; k=rsa; p={KEY}'\n"
        "    verification: zb12345678\n",
        {
            ("zmail._domainkey.example.com", "TXT", f"v=DKIM1; k=rsa; p={KEY}"),
            ("example.com", "TXT", "zoho-verification=zb12345678.zmverify.zoho.com"),
        },
        "include:zohomail.com",
        "example.com",
        Verdict.DKIM,
    ),
}


def test_every_shipped_entry_is_tested() -> None:
    assert set(CASES) == set(CATALOG.ids())


@pytest.mark.parametrize("provider", sorted(CASES))
def test_sender_produces_the_documented_records(provider: str) -> None:
    params, records, include, mail_from, verdict = CASES[provider]
    result = compile_sender(f"    provider: {provider}\n{params}")
    assert not result.errors, result.errors
    got = published(result) - {(result.domain, "TXT", spf(result))}
    assert got == records
    terms = spf(result).split()
    if include:
        assert include in terms
    else:
        assert not [t for t in terms if t.startswith("include:")], terms
    r = row(result)
    assert (r.mail_from, r.verdict) == (mail_from, verdict)


@pytest.mark.parametrize(
    "provider, missing",
    [
        ("amazonses", "dkim_tokens"),
        ("google", "dkim_record"),
        ("salesforce", "dkim_selector"),
        ("proton", "dkim_id"),
        ("zoho", "dkim_selector"),
    ],
)
def test_missing_dkim_params_say_where_to_find_them(provider: str, missing: str) -> None:
    params = "    region: eu-west-1\n" if provider == "amazonses" else ""
    result = compile_sender(f"    provider: {provider}\n{params}")
    warning = next(f for f in result.findings if f.code == "provider-no-dkim")
    entry = CATALOG.get(provider)
    assert entry is not None
    assert missing in (warning.hint or "") and entry.params[missing].help in (warning.hint or "")


def test_a_pasted_vendor_dkim_record_no_verifier_can_read_is_an_error() -> None:
    """A garbled paste is refused with the copy-again hint, not the new-key one."""
    pasted = "    dkim_selector: 20240101120000pm\n    dkim_record: 'k=rsa; p=AAAA'\n"
    result = compile_sender(f"    provider: postmark\n{pasted}")
    [error] = [f for f in result.findings if f.severity.value == "error"]
    assert (error.code, error.rfc) == ("dkim-record-invalid", "RFC 6376 §3.6.1")
    assert "is not usable" in error.message and "copy the whole TXT value" in (error.hint or "")
    assert not any(r.name.startswith("20240101120000pm.") for r in result.records)


def test_every_entry_states_its_facts() -> None:
    assert len(CATALOG.ids()) >= 10  # the shipped catalog, not an empty one
    for entry_id in CATALOG.ids():
        entry = CATALOG.get(entry_id)
        assert entry is not None and entry.docs and entry.docs.startswith("https://")
        assert entry.dkim is not None, entry_id
        assert entry.return_path is not None, entry_id
        for name, param in entry.params.items():
            assert len(param.help) > 15, (entry_id, name)


def test_broken_user_entry_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(
        "id: acme\nname: Acme\nspf_include: a.example\ndkim:\n  dd: x\n"
    )
    with pytest.raises(CatalogError, match=r"acme.yaml:5: catalog entry: dkim.dd"):
        load_catalog([tmp_path])


ACME = """\
# A user's own sender, in the same format as the shipped entries.
id: acme
name: Acme Mailer
docs: https://acme.example/dns
params:
  key_id:
    type: token
    required: true
    pattern: '^[a-z0-9]+$'
    help: the key id Acme shows under Settings > Domains
spf_include: spf.acme.example
dkim:
  d: '{domain}'
  default_d: acme.example
  records:
    - {name: acme._domainkey, type: CNAME, value: '{key_id}.dkim.acme.example.'}
return_path:
  default: bounces.acme.example
"""


def test_user_catalog_folder_through_the_processor(example: Path) -> None:
    folder = example / "zones" / "senders"
    folder.mkdir()
    (folder / "acme.yaml").write_text(ACME)
    config = yaml.safe_load(Path("zones/config.yaml").read_text())
    config["processors"]["mailauth"]["catalog"] = "./zones/senders"
    Path("zones/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    policy = yaml.safe_load(Path("zones/mail/example.com.yaml").read_text())
    policy["senders"].append({"name": "crm", "provider": "acme", "key_id": "k42"})
    Path("zones/mail/example.com.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))

    Manager("zones/config.yaml").sync(dry_run=False)
    zone = dns.zone.from_file(
        "zones/output/example.com.zone", "example.com", relativize=False, check_origin=False
    )
    cname = zone.get_rdataset("acme._domainkey.example.com.", "CNAME")
    assert cname is not None and cname[0].target.to_text() == "k42.dkim.acme.example."
    apex = zone.get_rdataset("example.com.", "TXT")
    assert apex is not None
    assert any(b"include:spf.acme.example" in b"".join(r.strings) for r in apex)
    shutil.rmtree(folder)


def test_apex_verification_txt_is_published_beside_spf(example: Path) -> None:
    # A vendor's ownership TXT at the apex shares the name with our SPF record
    # and the zone's own TXT values: all three kinds must be served.
    policy = yaml.safe_load(Path("zones/mail/example.com.yaml").read_text())
    policy["senders"].append({"name": "support", "provider": "zoho", "verification": "zb12345678"})
    Path("zones/mail/example.com.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    Manager("zones/config.yaml").sync(dry_run=False)
    zone = dns.zone.from_file(
        "zones/output/example.com.zone", "example.com", relativize=False, check_origin=False
    )
    apex = zone.get_rdataset("example.com.", "TXT")
    assert apex is not None
    values = [b"".join(r.strings).decode() for r in apex]
    assert "zoho-verification=zb12345678.zmverify.zoho.com" in values
    assert sum(v.startswith("v=spf1") for v in values) == 1
    assert any("include:zohomail.com" in v for v in values)
    assert "MS=ms12345678" in values


def test_render_parses_each_template_once_and_renders_as_format_does() -> None:
    from octodns_mailauth.catalog import _FORMATTER, _plain_fields, render

    cases = [
        ("{selector}._domainkey", {"selector": "s1"}),
        ("10 feedback-smtp.{region}.amazonses.com.", {"region": "eu-west-1"}),
        ("{{literal}} {n}", {"n": 7}),
        ("no fields", {}),
        ("{n:>4}|{n!r}", {"n": "x"}),  # a spec or conversion: the Formatter renders it
    ]
    for template, values in cases:
        assert render(template, values) == _FORMATTER.format(template, **values), template
    assert _plain_fields("{n:>4}") is None and _plain_fields("{a}.{b}") is not None
    with pytest.raises(CatalogError, match=r"unknown parameter \{tenant\}"):
        render("{tenant}.onmicrosoft.com", {"domain": "example.com"})


def test_shipped_entries_are_read_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []
    load_entry = catalog_module._load_entry
    monkeypatch.setattr(
        catalog_module, "_load_entry", lambda path: read.append(path.stem) or load_entry(path)
    )
    catalog_module._builtin_entry.cache_clear()
    catalog = load_catalog()
    assert read == [] and "google" in catalog.ids()
    assert catalog.get("Google") is not None and read == ["google"]
    assert catalog.get("no-such-provider") is None and read == ["google"]
    assert set(catalog.entries) == set(catalog.ids()) and sorted(read) == catalog.ids()
    catalog_module._builtin_entry.cache_clear()
