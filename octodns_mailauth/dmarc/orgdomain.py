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

from publicsuffixlist import PublicSuffixList

from ..names import normalize


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the bundled list: no download


def is_public_suffix(name: str) -> bool:
    name = normalize(name)
    return _psl().publicsuffix(name) == name


def organizational_domain(name: str, declared: Iterable[str] = ()) -> str:
    """The Organizational Domain of `name`: a declared one (psd=n) it is at or
    below, else the PSL public suffix plus one label, else `name` itself (a
    public suffix is its own)."""
    name = normalize(name)
    for org in sorted((normalize(d) for d in declared), key=len, reverse=True):
        if name == org or name.endswith("." + org):
            return org
    return _psl().privatesuffix(name) or name


def aligned(identifier: str, author: str, strict: bool, declared: Iterable[str] = ()) -> bool:
    """Whether an authenticated identifier aligns with the author (From) domain:
    strict = the same name; relaxed = the same Organizational Domain."""
    identifier, author = normalize(identifier), normalize(author)
    if strict:
        return identifier == author
    declared = list(declared)
    return organizational_domain(identifier, declared) == organizational_domain(author, declared)
