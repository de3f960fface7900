"""Organizational domains and identifier alignment (RFC 9989 §3.2, §4.4).

RFC 9989 finds the Organizational Domain by a DNS tree walk (§4.10.2).  A
compiler that must not query DNS approximates it, as checkdmarc and RFC 7489
did, with the Public Suffix List (the `publicsuffixlist` package ships a copy,
so this works offline), corrected by what policies declare themselves:
`psd=n` makes a domain its own Organizational Domain.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from publicsuffixlist import PSLFILE, PublicSuffixList

from ..names import normalize, zone_of


@lru_cache(maxsize=1)
def _list_bytes() -> bytes:
    """The list (UTF-8) framed by newlines, so a TLD's rules are found with
    `bytes.find`: searching the bytes, and decoding only the rules found, costs a
    fraction of decoding the whole list."""
    with open(PSLFILE, "rb") as f:
        return b"\n" + f.read() + b"\n"


def _rules_ending_in(tld: str) -> list[str]:
    """The rules (`tld`, `*.tld`, `a.b.tld`, `!c.tld`) whose last label is `tld`, in
    list order.  A rule is read up to the first whitespace of its line; comment lines
    (`//`) are not rules."""
    text, label = _list_bytes(), tld.encode("utf-8")
    found = []
    for needle, whole_line in ((b"\n" + label, True), (b"." + label, False)):
        at = text.find(needle)
        while at != -1:
            end = at + len(needle)
            if text[end : end + 1].isspace():  # the label ends there
                start = at + 1 if whole_line else text.rfind(b"\n", 0, at) + 1
                rule = text[start:end]
                if not rule.startswith(b"//") and rule.split(maxsplit=1) == [rule]:
                    found.append((start, rule.decode("utf-8")))
            at = text.find(needle, end)
    return [rule for _, rule in sorted(found)]


@lru_cache(maxsize=512)  # TLDs; a bound, as names come from policies and zones
def _psl(tld: str) -> PublicSuffixList:
    """The Public Suffix List for names under `tld` (the bundled list: no download).

    A name's suffixes all end in its last label, so only the rules ending in it
    can match; parsing those alone costs a fraction of parsing (and IDN-encoding)
    the whole list, which validate would otherwise pay at every commit.  A TLD the
    list lacks gets an empty list: unknown TLDs are public suffixes either way."""
    forms = [tld]
    if tld.startswith("xn--"):
        try:
            forms.append(tld.encode("ascii").decode("idna"))  # the list writes IDNs in Unicode
        except UnicodeError:
            pass
    rules = [rule for form in forms for rule in _rules_ending_in(form)]
    # Names arrive as A-labels: add those forms of the IDN rules (the library
    # would otherwise encode every rule, ASCII ones included).
    rules += [_a_labels(rule) for rule in rules if not rule.isascii()]
    return PublicSuffixList(rules, accept_encoded_idn=False)


def _a_labels(rule: str) -> str:
    bang = "!" if rule.startswith("!") else ""
    return bang + rule.removeprefix("!").encode("idna").decode("ascii")


def _list_for(name: str) -> PublicSuffixList:
    return _psl(name.rsplit(".", 1)[-1])


def is_public_suffix(name: str) -> bool:
    name = normalize(name)
    return _list_for(name).publicsuffix(name) == name


def organizational_domain(name: str, declared: Iterable[str] = ()) -> str:
    """The Organizational Domain of `name`: a declared one (psd=n) it is at or
    below, else the PSL public suffix plus one label, else `name` itself (a
    public suffix is its own)."""
    name = normalize(name)
    return zone_of(name, map(normalize, declared)) or _private_suffix(name)


@lru_cache(maxsize=65536)
def _private_suffix(name: str) -> str:
    # Cached: each policy asks for its own domain, its senders' and its report
    # receivers' over and over, and 10,000 policies share most of them.
    return _list_for(name).privatesuffix(name) or name


def aligned(identifier: str, author: str, strict: bool, declared: Iterable[str] = ()) -> bool:
    """Whether an authenticated identifier aligns with the author (From) domain:
    strict = the same name; relaxed = the same Organizational Domain."""
    identifier, author = normalize(identifier), normalize(author)
    if strict:
        return identifier == author
    declared = list(declared)
    return organizational_domain(identifier, declared) == organizational_domain(author, declared)
