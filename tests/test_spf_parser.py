"""Grammar units for the SPF parser (RFC 7208 §12 ABNF)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from octodns_mailauth.records.spf import (
    Mechanism,
    Modifier,
    SpfSyntaxError,
    check_domain_spec,
    has_macro,
    parse,
    select_records,
)
from octodns_mailauth.records.spf import owns as is_spf


def _error(record: str) -> SpfSyntaxError:
    with pytest.raises(SpfSyntaxError) as info:
        parse(record)
    return info.value


# -- version and selection (§4.5) -------------------------------------------


@pytest.mark.parametrize("text", ["v=spf1", "v=spf1 -all", "V=SpF1 ~all", "v=spf1 "])
def test_version_accepted(text: str) -> None:
    assert is_spf(text)
    parse(text)


@pytest.mark.parametrize("text", ["v=spf10", "v=spf1-all", " v=spf1", "spf1", "v=spf2 -all", ""])
def test_version_rejected(text: str) -> None:
    assert not is_spf(text)
    assert "RFC 7208 §4.5" in str(_error(text))


def test_select_records_none_one_many() -> None:
    assert select_records([]) is None
    assert select_records(["google-site-verification=x", "v=spf10 -all"]) is None
    assert select_records(["foo", "v=spf1 -all"]) == "v=spf1 -all"
    with pytest.raises(SpfSyntaxError, match=r"2 'v=spf1' records.*RFC 7208 §4\.5"):
        select_records(["v=spf1 -all", "V=SPF1 +all"])


# -- mechanisms ---------------------------------------------------------------


def test_qualifiers_and_default() -> None:
    rec = parse("v=spf1 +a -mx ~ptr ?exists:x.example.com all")
    assert [m.qualifier for m in rec.mechanisms] == ["+", "-", "~", "?", "+"]
    assert str(rec) == "v=spf1 a -mx ~ptr ?exists:x.example.com all"


def test_names_are_case_insensitive() -> None:
    rec = parse("v=spf1 A:Example.COM INCLUDE:_spf.example.com Redirect=x.example.com")
    assert [t.name for t in rec.terms] == ["a", "include", "redirect"]
    assert rec.redirect == "x.example.com"


@pytest.mark.parametrize(
    ("term", "domain", "c4", "c6"),
    [
        ("a", None, None, None),
        ("a/24", None, 24, None),
        ("a//64", None, None, 64),
        ("a/24//64", None, 24, 64),
        ("a:mail.example.com/0//0", "mail.example.com", 0, 0),
        ("mx:foo:bar/baz.example.com", "foo:bar/baz.example.com", None, None),
        ("mx:foo.example.com/24", "foo.example.com", 24, None),
        ("a//128", None, None, 128),
    ],
)
def test_a_mx_dual_cidr(term: str, domain: str | None, c4: int | None, c6: int | None) -> None:
    (mech,) = parse(f"v=spf1 {term}").mechanisms
    assert (mech.domain_spec, mech.cidr4, mech.cidr6) == (domain, c4, c6)
    assert str(mech) == term


@pytest.mark.parametrize(
    ("term", "reason"),
    [
        ("a/33", "bad ip4-cidr-length"),
        ("a//129", "bad ip6-cidr-length"),
        ("a/024", "bad ip4-cidr-length"),
        ("mx//064", "bad ip6-cidr-length"),
        ("a/24/64", "expected 'a[:domain-spec]"),
        ("a:", "empty domain-spec"),
    ],
)
def test_a_mx_bad(term: str, reason: str) -> None:
    err = _error(f"v=spf1 {term}")
    assert err.term == term
    assert reason in str(err)


def test_ip4_ip6_networks() -> None:
    rec = parse("v=spf1 ip4:192.0.2.1/24 ip4:198.51.100.7 ip6:2001:DB8::/32 ip6:::FFFF:1.2.3.4")
    nets = [m.network for m in rec.mechanisms]
    assert nets == [
        ipaddress.ip_network("192.0.2.0/24"),
        ipaddress.ip_network("198.51.100.7/32"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("::ffff:1.2.3.4/128"),
    ]
    assert [m.domain_spec for m in rec.mechanisms] == [None] * 4
    assert rec.mechanisms[0].cidr4 == 24 and rec.mechanisms[2].cidr6 == 32
    # host bits stay as written: receivers mask them (RFC 7208 §5.6)
    assert (
        str(rec) == "v=spf1 ip4:192.0.2.1/24 ip4:198.51.100.7 ip6:2001:db8::/32 ip6:::ffff:1.2.3.4"
    )


@pytest.mark.parametrize(
    "term",
    [
        "ip4:1.2.3",
        "ip4:01.2.3.4",
        "ip4:256.1.1.1",
        "ip4:1.2.3.4:25",
        "ip4:2001:db8::1",
        "ip6:192.0.2.1",
        "ip6:fe80::1%eth0",
        "ip6::cafe::babe",
        "ip4:1.2.3.4/33",
        "ip6:::1/129",
        "ip4:1.2.3.4//32",
        "ip4",
        "ip4:",
    ],
)
def test_ip_bad(term: str) -> None:
    err = _error(f"v=spf1 {term} -all")
    assert err.term == term
    assert "RFC 7208 §5.6" in str(err)


@pytest.mark.parametrize(
    ("term", "fragment"),
    [
        ("all:x", "'all' takes no argument"),
        ("-all/8", "'all' takes no argument"),
        ("include", "requires ':domain-spec'"),
        ("exists", "requires ':domain-spec'"),
        ("include:", "empty domain-spec"),
        ("ptr/24", "no CIDR"),
        ("foo", "unknown mechanism 'foo'"),
        ("redirect:x.example.com", "unknown mechanism 'redirect'"),
        ("!all", "not a mechanism nor a modifier"),
        ("1up=x", "not a mechanism nor a modifier"),
    ],
)
def test_mechanism_errors(term: str, fragment: str) -> None:
    err = _error(f"v=spf1 {term}")
    assert fragment in str(err)
    assert str(err).startswith(f"SPF term '{term}' is invalid: ")


def test_ptr_forms() -> None:
    rec = parse("v=spf1 ptr ptr:example.com")
    assert [m.domain_spec for m in rec.mechanisms] == [None, "example.com"]


# -- domain-spec (§7.1, §4.8) --------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "example.com",
        "example.com.",
        "_spf.example.com",
        "foo.xn--zckzah",
        "a.123-4",  # toplabel alternative 2: alphanum "-" ... alphanum
        "%{d}",
        "%{i}.%{l2r-}.user.%{d2}",
        "mail.example...com",  # ABNF-valid; DNS-invalid, caught by analyze()
        "foo.%%",  # "%%" is a macro-expand, so a valid domain-end
        "%{ir}.bl.example.org",
    ],
)
def test_domain_spec_valid(spec: str) -> None:
    check_domain_spec(spec)


def test_museum_is_the_documented_error() -> None:
    err = _error("v=spf1 a:museum")
    assert str(err) == (
        "SPF term 'a:museum' is invalid: domain-spec must end in '.' and a top label of "
        "letters, digits and hyphens that is not all digits, or in a macro (RFC 7208 §7.1/§4.8)"
    )
    assert (err.term, err.rfc_section) == ("a:museum", "RFC 7208 §7.1/§4.8")
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    "spec",
    [
        "museum",
        "museum.",
        "1.2.3.4",
        "abc.123",
        "example.-com",
        "example.com-",
        "example.com:8080",
        "%{d}.",
        "%{d}com",
        ".",
        "",
    ],
)
def test_domain_spec_invalid(spec: str) -> None:
    with pytest.raises(SpfSyntaxError):
        check_domain_spec(spec)


# -- macros (§7) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "%{s}.x.com",
        "%{L}.x.com",
        "%{o}.x.com",
        "%{d5r}.x.com",
        "%{i}.x.com",
        "%{p}.x.com",
        "%{h}.x.com",
        "%{v}.x.com",
        "%{l1r.-+,/_=}.x.com",
        "a%%b%_c%-d.x.com",
    ],
)
def test_macro_forms_valid(spec: str) -> None:
    check_domain_spec(spec)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("%{c}.x.com", "allowed only in explanation text"),
        ("%{r}.x.com", "allowed only in explanation text"),
        ("%{t}.x.com", "allowed only in explanation text"),
        ("%{a}.x.com", "unknown macro letter 'a'"),
        ("%{d0}.x.com", "nonzero"),
        ("%{d!}.x.com", "invalid macro"),
        ("%{d.x.com", "invalid macro"),
        ("%a.x.com", "invalid macro '%a'"),
        ("x.com%", "invalid macro"),
    ],
)
def test_macro_forms_invalid(spec: str, fragment: str) -> None:
    with pytest.raises(SpfSyntaxError, match="RFC 7208 §7") as info:
        check_domain_spec(spec)
    assert fragment in str(info.value)


def test_has_macro() -> None:
    assert has_macro("%{d}.example.com")
    assert not has_macro("a%%b.example.com")
    assert not has_macro("example.com")


# -- modifiers (§6) ------------------------------------------------------------


def test_modifiers_and_unknown() -> None:
    rec = parse("v=spf1 -all exp=explain.%{d} moo.cow-far_out=man:dog/cat default=+ empty=")
    assert [m.value for m in rec.modifiers if m.name == "exp"] == ["explain.%{d}"]
    assert rec.modifiers[1:] == [
        Modifier("moo.cow-far_out", "man:dog/cat"),
        Modifier("default", "+"),
        Modifier("empty", ""),
    ]
    assert not rec.modifiers[1].known and rec.modifiers[0].known


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ("v=spf1 redirect=a.example.com redirect=b.example.com", "'redirect' appears more"),
        ("v=spf1 exp=a.example.com -all EXP=b.example.com", "'exp' appears more"),
        ("v=spf1 redirect=", "empty domain-spec"),
        ("v=spf1 exp=-all", "domain-spec must end"),
        ("v=spf1 foo=%abc", "invalid macro"),
        ("v=spf1 moo.cow/x=y", "unknown mechanism 'moo'"),
    ],
)
def test_modifier_errors(record: str, fragment: str) -> None:
    assert fragment in str(_error(record))


def test_unknown_modifier_may_repeat_and_use_exp_letters() -> None:
    """Only redirect and exp are limited to once (§6); unknown ones are never expanded."""
    parse("v=spf1 foo=1 foo=%{c} -all")


# -- record structure ----------------------------------------------------------


def test_all_and_redirect_semantics() -> None:
    rec = parse("v=spf1 redirect=x.example.com a -all mx")
    assert rec.all == Mechanism("-", "all")
    assert rec.redirect == "x.example.com"
    assert rec.effective_redirect is None  # §6.1: ignored when 'all' is present
    assert [m.name for m in rec.effective_mechanisms] == ["a", "all"]  # §5.1
    assert parse("v=spf1 a redirect=x.example.com").effective_redirect == "x.example.com"


@pytest.mark.parametrize(
    "text",
    ["v=spf1  a   -all ", "v=spf1 a\t-all", "v=spf1 a\r\n-all", "v=spf1 a:exämple.com"],
)
def test_whitespace_and_charset(text: str) -> None:
    if "\t" in text or "\r" in text or "ä" in text:
        assert "invalid character" in str(_error(text))
    else:
        assert str(parse(text)) == "v=spf1 a -all"


def test_round_trip_canonical() -> None:
    text = (
        "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a:%{d}/24//64 mx ~ptr:example.com "
        "?exists:%{ir}.%{l1r+-}._spf.%{d} include:_spf.example.com -all redirect=x.example.com "
        "exp=explain._spf.%{d} x-note=hello"
    )
    assert str(parse(text)) == text
    assert str(parse(str(parse(text)))) == text


_TERMS = [
    "a",
    "-a:mail.example.com/24",
    "~mx//64",
    "?mx:%{d}/16//48",
    "ptr",
    "ptr:example.org",
    "ip4:192.0.2.9/28",
    "-ip6:2001:DB8::1",
    "exists:%{ir}.%{v}._spf.%{d2}",
    "include:_spf.example.net.",
    "-all",
    "foo=bar%%%_%-",
]


@given(st.lists(st.sampled_from(_TERMS), max_size=12), st.booleans(), st.booleans())
def test_canonical_text_round_trips(terms: list[str], redirect: bool, exp: bool) -> None:
    """Any mix of valid terms parses, and its canonical text parses to the same record."""
    text = " ".join(["v=spf1", *terms])
    text += " redirect=r.example.com" if redirect else ""
    text += " exp=e.%{d}" if exp else ""
    parsed = parse(text)
    assert len(parsed.terms) == len(terms) + redirect + exp
    assert parse(str(parsed)) == parsed
    assert str(parse(str(parsed))) == str(parsed)
