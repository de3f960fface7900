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
def _lines() -> frozenset[bytes]:
    """Every line of the list (UTF-8).  A rule is a whole line: the list's own
    linter allows no whitespace in one (a test holds the shipped list to that), and
    comment (`//`) and blank lines never equal a rule asked for.  Splitting and
    hashing the lines costs a fraction of parsing (or even finding) the rules of a
    TLD, which `validate` would otherwise pay at every commit."""
    with open(PSLFILE, "rb") as f:
        return frozenset(f.read().split(b"\n"))


def _rules_for(name: str) -> tuple[str, ...]:
    """The rules of the list that match `name`, which alone decide its suffixes:
    for each suffix S of the name, `S`, `*.S` (the label below S) and `!S`.  The
    list writes IDNs in Unicode; names arrive as A-labels, so a Unicode rule found
    is given in both forms (the library would otherwise encode every rule)."""
    lines, found = _lines(), []
    forms = [name.lower()]
    if "xn--" in forms[0]:
        forms.append(".".join(map(_u_label, forms[0].split("."))))
    for form in forms:
        suffix = form.encode("utf-8")
        while True:
            found += [r for r in (suffix, b"*." + suffix, b"!" + suffix) if r in lines]
            dot = suffix.find(b".")
            if dot < 0:
                break
            suffix = suffix[dot + 1 :]
    rules = {r.decode("utf-8") for r in found}
    return tuple(sorted(rules | {_a_labels(r) for r in rules if not r.isascii()}))


@lru_cache(maxsize=512)  # rule sets; a bound, as names come from policies and zones
def _psl(rules: tuple[str, ...]) -> PublicSuffixList:
    """The Public Suffix List (the bundled one: no download) cut to `rules`: the
    same answers for every name those are all the matching rules of.  Names
    under one TLD without rules of their own (most of them) share one."""
    return PublicSuffixList(rules, accept_encoded_idn=False)


def _u_label(label: str) -> str:
    if label.startswith("xn--"):
        try:
            return label.encode("ascii").decode("idna")
        except UnicodeError:
            pass
    return label


def _a_labels(rule: str) -> str:
    bang = "!" if rule.startswith("!") else ""
    return bang + rule.removeprefix("!").encode("idna").decode("ascii")


def _list_for(name: str) -> PublicSuffixList:
    return _psl(_rules_for(name))


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
