"""names.py: the one set of DNS name rules, and an IDN zone meaning the same
in every command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from octodns.manager import Manager

from octodns_mailauth.cli import main as cli_main
from octodns_mailauth.names import (
    MAX_SELECTOR,
    InvalidName,
    check_name,
    check_selector,
    is_hostname,
    is_subdomain,
    mailto_to_ascii,
    normalize,
    relative_to,
    zone_of,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("bl\u00e5b\u00e6r.no", "xn--blbr-roah.no"),  # U-label -> A-label (IDNA 2008, UTS 46)
        ("xn--blbr-roah.no", "xn--blbr-roah.no"),
        ("BL\u00c5B\u00c6R.NO", "xn--blbr-roah.no"),  # UTS 46 maps case
        ("\u6771\u4eac.jp", "xn--1lqs71d.jp"),
        ("\u3072\u3089\u304c\u306a\u6f22\u5b57.jp", "xn--v8j0cwa6gy22xv2ya.jp"),  # Japanese mixes
        ("a" * 63 + ".example", "a" * 63 + ".example"),
    ],
)
def test_names_are_normalised(text: str, expected: str) -> None:
    assert check_name(text) == expected
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("example.com\n", "control character"),  # no `$` that lets a trailing newline pass
        ("exa\tmple.com", "control character"),
        ("example.com\x7f", "control character"),
        ("a" * 64 + ".example", "DNS allows 63"),
        (".".join(["a" * 63] * 4), "DNS allows 253"),
        ("p\u0430ypal.com", "mixes scripts"),  # a Cyrillic a
        ("xn--pypal-4ve.com", "mixes scripts"),  # the same, as an A-label
        ("a..example", "empty label"),
        ("-a.example", "inner hyphens"),
        ("a_b.example", "inner hyphens"),
        ("example", "single label"),
        ("192.0.2.1", "an address"),
        ("xn--zz.example", "IDNA"),
    ],
)
def test_bad_names_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidName, match=reason):
        check_name(text)
    assert not is_hostname(text)


def test_service_labels_only_where_asked() -> None:
    assert check_name("_dmarc.example.com", service_labels=True) == "_dmarc.example.com"
    with pytest.raises(InvalidName):
        check_name("_dmarc.example.com")


def test_selectors_fit_the_keystore() -> None:
    assert check_selector("Relay2026") == "relay2026"
    longest = ".".join(["a" * 57] * 4)[:MAX_SELECTOR].rstrip(".")
    assert check_selector(longest) == longest
    with pytest.raises(InvalidName, match="keystore"):
        check_selector(".".join(["a" * 60] * 4))
    for bad in ("s1\n", "bl\u00e5", "s1.", "a_b"):
        with pytest.raises(InvalidName, match="RFC 6376|ASCII|relative"):
            check_selector(bad)


def test_relations() -> None:
    assert is_subdomain("mail.example.com", "example.com")
    assert is_subdomain("example.com", "example.com")
    assert not is_subdomain("badexample.com", "example.com")
    assert relative_to("Mail.Example.com.", "example.com") == "mail"
    assert relative_to("example.org", "example.com") is None
    assert zone_of("a.mail.example.com", ["example.com", "mail.example.com", "com"]) == (
        "mail.example.com"
    )
    assert zone_of("example.org", ["example.com"]) is None
    assert zone_of("badexample.com", {"example.com"}) is None  # a label, not a suffix
    assert zone_of("example.com", frozenset({"example.com", "com"})) == "example.com"


def test_report_addresses_take_the_a_label() -> None:
    assert mailto_to_ascii("mailto:d@bl\u00e5b\u00e6r.no!10m", "rua") == (
        "mailto:d@xn--blbr-roah.no!10m"
    )
    assert mailto_to_ascii("https://x.example/r", "rua") == "https://x.example/r"
    with pytest.raises(InvalidName, match="mixes scripts"):
        mailto_to_ascii("mailto:d@p\u0430ypal.com", "rua")


def test_an_idn_zone_means_the_same_in_every_command(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The config names the zone by its U-label; the policy file by its U-label
    # too.  octoDNS works with the A-label; so must we, in every command.
    config = yaml.safe_load(Path("zones/config.yaml").read_text())
    config["zones"]["bl\u00e5b\u00e6r.no."] = dict(config["zones"]["parked.example."])
    Path("zones/config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    Path("zones/config/bl\u00e5b\u00e6r.no.yaml").write_text("--- {}\n")
    Path("zones/mail/bl\u00e5b\u00e6r.no.yaml").write_text("parked: true\n")

    Manager("zones/config.yaml").validate_configs()
    assert cli_main(["validate", "--config", "zones/config.yaml"]) == 0, capsys.readouterr()
    assert Manager("zones/config.yaml").sync(dry_run=False) > 0
    (served,) = [p for p in Path("zones/output").glob("*.zone") if "example" not in p.name]
    assert "v=spf1 -all" in served.read_text()
    assert Manager("zones/config.yaml").sync(dry_run=True) == 0
