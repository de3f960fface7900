"""One recogniser per record kind: `owns()` is what its parser checks, and the
merge, the zone checks and the CLI all ask it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from octodns.manager import Manager

from octodns_mailauth.errors import MailAuthProcessorError
from octodns_mailauth.records import kind_of, txt_kind_matches
from octodns_mailauth.records.dkim import key_name, split_key_name
from octodns_mailauth.records.dmarc import parse_dmarc
from octodns_mailauth.records.spf import owns as is_spf

CONFIG = "zones/config.yaml"


def test_upper_case_dmarc_tag_in_the_zone_is_a_dmarc_record(example: Path) -> None:
    # "v" is a case-insensitive ABNF literal (RFC 9989 §4.8): receivers read
    # `V=DMARC1` as DMARC, so kept beside ours it makes two records and
    # receivers apply none (§4.10).  It must be refused, not kept.
    path = Path("zones/config/example.com.yaml")
    data = yaml.safe_load(path.read_text())
    data["_dmarc"] = {"type": "TXT", "value": "V=DMARC1\\; p=reject"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(
        MailAuthProcessorError, match="hand-written dmarc value 'V=DMARC1; p=reject'"
    ):
        Manager(CONFIG).sync(dry_run=True)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("v=DMARC1; p=reject", "dmarc"),
        ("V=DMARC1; p=reject", "dmarc"),
        ("v = DMARC1 ; p=none", "dmarc"),
        ("v=DMARC1", "dmarc"),
        ("v=dmarc1; p=reject", None),  # the value is case-sensitive (%s"DMARC1")
        ("v=DMARC10; p=reject", None),
        ("v=spf1 -all", "spf"),
        ("V=SPF1 -all", "spf"),  # RFC 7208 §4.6.1: literals are case-insensitive
        ("v=spf1", "spf"),
        ("v=spf10 -all", None),
        ("v=spf1\t-all", None),  # §4.5: a space or the end, nothing else
        ("v=TLSRPTv1; rua=mailto:a@example.com", "tlsrpt"),
        ("v=tlsrptv1; rua=mailto:a@example.com", None),
        ("v=STSv1; id=1", "mta-sts"),
        ("v=BIMI1; l=; a=;", "bimi"),
        ("google-site-verification=abc", None),
    ],
)
def test_kind_of_a_txt_value(text: str, kind: str | None) -> None:
    assert kind_of(text) == kind
    # The parser's own verdict on the version is the same answer.
    assert is_spf(text) == (kind == "spf")
    dmarc_version_error = any("not a DMARC record" in f.message for f in parse_dmarc(text).errors)
    assert dmarc_version_error == (kind != "dmarc")
    if kind is not None:
        assert txt_kind_matches(kind, text)


def test_any_txt_at_a_selector_is_a_key_record() -> None:
    assert txt_kind_matches("dkim", "p=MIIB")
    assert not txt_kind_matches("dkim", "")
    assert not txt_kind_matches("no-such-kind", "v=spf1 -all")


def test_dkim_key_name_is_built_and_split_in_one_place() -> None:
    name = key_name("s2026", "mail.example.com")
    assert name == "s2026._domainkey.mail.example.com"
    assert split_key_name(name) == ("s2026", "mail.example.com")
    assert split_key_name("_dmarc.example.com") is None
    assert split_key_name("_domainkey.example.com") is None  # no selector label before it
