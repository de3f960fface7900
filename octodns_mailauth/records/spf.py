"""SPF (RFC 7208): recognise, parse and build the record, as pure, DNS-free
code.  Lookup accounting: spf/lookups.py.

Every syntax error anywhere in a record makes receivers return `permerror`
before evaluation starts (§4.6), so the compiler must reject a bad record at
build time, naming the term and the rule it breaks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TypeAlias

from ..policy.spf import SpfAll

VERSION = "v=spf1"
# §4.5: exactly `v=spf1` then a space or the end; ABNF literals are
# case-insensitive (§4.6.1, §12), so `V=SPF1` counts.
_VERSION = re.compile(r"v=spf1(?: |\Z)", re.IGNORECASE)
QUALIFIER = {SpfAll.fail: "-", SpfAll.softfail: "~", SpfAll.neutral: "?"}


def owns(text: str) -> bool:
    """True for text that starts an SPF record."""
    return _VERSION.match(text) is not None


def build(terms: Iterable[str]) -> str:
    """`v=spf1` followed by the terms, one space apart (§4.6.1)."""
    return " ".join([VERSION, *terms])


MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
# Terms that make receivers query DNS and so count towards the limit of 10 (§4.6.4).
DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
KNOWN_MODIFIERS = ("redirect", "exp")

MACRO_LETTERS = "slodiphv"
EXP_ONLY_MACRO_LETTERS = "crt"

_MODIFIER_RE = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(.*)\Z", re.DOTALL)
_MECHANISM_RE = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9]*)(.*)\Z", re.DOTALL)
_MACRO_EXPAND_RE = re.compile(r"%\{([A-Za-z])([0-9]*)([rR]?)([.\-+,/_=]*)\}")
_DUAL_CIDR_RE = re.compile(r"(?::(?P<ds>.*?))?(?P<c4>/[0-9]+)?(?P<c6>//[0-9]+)?\Z", re.DOTALL)
_IP_RE = re.compile(r":(?P<addr>[^/]*)(?P<cidr>/[0-9]+)?\Z", re.DOTALL)
_TOPLABEL_RE = re.compile(
    r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])\Z"
)

SEC_RECORD = "RFC 7208 §4.6.1/§12"
SEC_SELECT = "RFC 7208 §4.5"
SEC_DOMAIN = "RFC 7208 §7.1/§4.8"
SEC_MACRO = "RFC 7208 §7.1/§7.2"
SEC_CIDR = "RFC 7208 §5.6"


class SpfSyntaxError(ValueError):
    """A record receivers would reject with `permerror`; says which term and why."""

    def __init__(self, message: str, term: str | None = None, rfc_section: str = SEC_RECORD):
        self.message = message
        self.term = term
        self.rfc_section = rfc_section
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.term is None:
            return f"SPF record is invalid: {self.message} ({self.rfc_section})"
        return f"SPF term {_show(self.term)} is invalid: {self.message} ({self.rfc_section})"


def _show(text: str) -> str:
    """Quote a term for a message, escaping control and non-ASCII characters."""
    return "'" + repr(text)[1:-1].replace("\\'", "'") + "'"


@dataclass(frozen=True)
class Mechanism:
    """A directive: qualifier + mechanism (RFC 7208 §4.6.2, §5)."""

    qualifier: str
    name: str
    domain_spec: str | None = None
    cidr4: int | None = None
    cidr6: int | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    address_text: str | None = None  # as written, lower-cased: `::FFFF:1.2.3.4` stays readable

    @property
    def queries_dns(self) -> bool:
        return self.name in DNS_MECHANISMS

    def __str__(self) -> str:
        out = ("" if self.qualifier == "+" else self.qualifier) + self.name
        if self.address is not None:
            out += f":{self.address_text or self.address}"
        elif self.domain_spec is not None:
            out += f":{self.domain_spec}"
        if self.cidr4 is not None:
            out += f"/{self.cidr4}"
        if self.cidr6 is not None:
            out += f"//{self.cidr6}" if self.name in ("a", "mx") else f"/{self.cidr6}"
        return out


@dataclass(frozen=True)
class Modifier:
    """`name=value` (RFC 7208 §6); unknown names are legal and ignored by receivers."""

    name: str
    value: str

    @property
    def known(self) -> bool:
        return self.name in KNOWN_MODIFIERS

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


Term: TypeAlias = Mechanism | Modifier


@dataclass(frozen=True)
class SpfRecord:
    """A parsed record; `str()` renders canonical text (lower-case names, no `+`).

    Read-only: `parse` shares one instance per text, and the term views are cached.
    """

    terms: list[Term] = field(default_factory=list)

    @cached_property
    def mechanisms(self) -> list[Mechanism]:
        return [t for t in self.terms if isinstance(t, Mechanism)]

    @cached_property
    def modifiers(self) -> list[Modifier]:
        return [t for t in self.terms if isinstance(t, Modifier)]

    @property
    def redirect(self) -> str | None:
        return next((m.value for m in self.modifiers if m.name == "redirect"), None)

    @cached_property
    def all(self) -> Mechanism | None:
        """The first `all`; later mechanisms are never evaluated (RFC 7208 §5.1)."""
        return next((m for m in self.mechanisms if m.name == "all"), None)

    @cached_property
    def effective_mechanisms(self) -> list[Mechanism]:
        """Mechanisms up to and including the first `all` (RFC 7208 §5.1)."""
        out: list[Mechanism] = []
        for mech in self.mechanisms:
            out.append(mech)
            if mech.name == "all":
                break
        return out

    @cached_property
    def effective_redirect(self) -> str | None:
        """`redirect` is ignored when the record has `all` anywhere (RFC 7208 §5.1/§6.1)."""
        return None if self.all is not None else self.redirect

    def __str__(self) -> str:
        return build(str(t) for t in self.terms)


def select_records(txt_values: list[str]) -> str | None:
    """Pick the SPF record among the TXT strings at one name (RFC 7208 §4.5).

    None when there is none; several records are a `permerror`, so raise.
    """
    found = [t for t in txt_values if owns(t)]
    if len(found) > 1:
        raise SpfSyntaxError(f"{len(found)} 'v=spf1' records at one name", None, SEC_SELECT)
    return found[0] if found else None


@lru_cache(maxsize=8192)
def parse(record: str) -> SpfRecord:
    """Parse a whole record, raising SpfSyntaxError for the first broken term.

    Cached: vendor records (_spf.google.com...) recur in every tree that includes
    them, and parsing dominates an offline analysis.  Treat the result as read-only.
    """
    if not owns(record):
        raise SpfSyntaxError(
            "a record must start with 'v=spf1' followed by a space or the end", None, SEC_SELECT
        )
    terms: list[Term] = []
    seen: set[str] = set()
    for text in record[len(VERSION) :].split(" "):
        if not text:
            continue  # 1*SP between terms and trailing *SP
        term = parse_term(text)
        if isinstance(term, Modifier) and term.known:
            if term.name in seen:
                raise SpfSyntaxError(f"'{term.name}' appears more than once", text, "RFC 7208 §6")
            seen.add(term.name)
        terms.append(term)
    return SpfRecord(terms)


def parse_term(text: str) -> Term:
    """Parse one space-free term: a modifier or a directive."""
    _check_chars(text, text)
    mod = _MODIFIER_RE.match(text)
    if mod:
        return _parse_modifier(text, mod.group(1).lower(), mod.group(2))
    mech = _MECHANISM_RE.match(text)
    if not mech:
        raise SpfSyntaxError("not a mechanism nor a modifier", text, SEC_RECORD)
    qualifier, name, rest = mech.group(1) or "+", mech.group(2).lower(), mech.group(3)
    if name not in MECHANISMS:
        raise SpfSyntaxError(f"unknown mechanism '{name}'", text, "RFC 7208 §5/§12")
    return _MECHANISM_PARSERS[name](text, qualifier, name, rest)


def _check_chars(text: str, term: str) -> None:
    """Records are US-ASCII; terms hold only visible characters (RFC 7208 §3.1, §12)."""
    for ch in text:
        if not "\x21" <= ch <= "\x7e":
            raise SpfSyntaxError(
                f"invalid character {_show(ch)} (only visible US-ASCII is allowed)",
                term,
                "RFC 7208 §3.1/§12",
            )


def _parse_modifier(text: str, name: str, value: str) -> Modifier:
    if name in KNOWN_MODIFIERS:
        check_domain_spec(value, text)
    else:
        # Unknown modifiers are never expanded, so every §7.1 macro letter is legal syntax.
        scan_macro_string(value, text, exp_letters=True)  # raises on bad syntax
    return Modifier(name, value)


def _parse_all(text: str, qualifier: str, name: str, rest: str) -> Mechanism:
    if rest:
        raise SpfSyntaxError("'all' takes no argument", text, "RFC 7208 §5.1")
    return Mechanism(qualifier, name)


def _parse_domain_required(text: str, qualifier: str, name: str, rest: str) -> Mechanism:
    """include and exists: `name:domain-spec`, no CIDR (RFC 7208 §5.2, §5.7)."""
    if not rest.startswith(":"):
        raise SpfSyntaxError(f"'{name}' requires ':domain-spec'", text, "RFC 7208 §5.2/§5.7")
    domain = rest[1:]
    check_domain_spec(domain, text)
    return Mechanism(qualifier, name, domain)


def _parse_ptr(text: str, qualifier: str, name: str, rest: str) -> Mechanism:
    if not rest:
        return Mechanism(qualifier, name)
    if not rest.startswith(":"):
        raise SpfSyntaxError("'ptr' takes only ':domain-spec' (no CIDR)", text, "RFC 7208 §5.5")
    check_domain_spec(rest[1:], text)
    return Mechanism(qualifier, name, rest[1:])


def _parse_a_mx(text: str, qualifier: str, name: str, rest: str) -> Mechanism:
    """`a` and `mx`: optional domain-spec, then optional dual-cidr (RFC 7208 §5.3/§5.4/§5.6)."""
    match = _DUAL_CIDR_RE.match(rest)
    if not match:
        raise SpfSyntaxError(
            f"expected '{name}[:domain-spec][/ip4-cidr][//ip6-cidr]'", text, SEC_CIDR
        )
    domain = match.group("ds")
    if domain is not None:
        check_domain_spec(domain, text)
    cidr4 = _cidr(match.group("c4"), 32, text, "ip4")
    cidr6 = _cidr(match.group("c6"), 128, text, "ip6")
    return Mechanism(qualifier, name, domain, cidr4, cidr6)


def _parse_ip(text: str, qualifier: str, name: str, rest: str) -> Mechanism:
    """ip4 needs a dotted quad, ip6 an RFC 4291 address; each an optional prefix (§5.6)."""
    match = _IP_RE.match(rest)
    if not match:
        raise SpfSyntaxError(f"expected '{name}:address[/prefix]'", text, SEC_CIDR)
    version, maximum = (4, 32) if name == "ip4" else (6, 128)
    addr_text = match.group("addr")
    try:
        if "%" in addr_text:  # scope ids are not part of the ABNF
            raise ValueError
        address = ipaddress.ip_address(addr_text)
    except ValueError:
        address = None
    if address is None or address.version != version:
        what = "a dotted quad" if version == 4 else "an IPv6 address"
        raise SpfSyntaxError(f"{_show(addr_text)} is not {what}", text, SEC_CIDR)
    prefix = _cidr(match.group("cidr"), maximum, text, name)
    network = ipaddress.ip_network(f"{address}/{maximum if prefix is None else prefix}", False)
    cidr4, cidr6 = (prefix, None) if version == 4 else (None, prefix)
    return Mechanism(qualifier, name, None, cidr4, cidr6, network, address, addr_text.lower())


def _cidr(text: str | None, maximum: int, term: str, family: str) -> int | None:
    """A CIDR length: no leading zeros, at most 32 or 128 (RFC 7208 §5.6, §12)."""
    if text is None:
        return None
    digits = text.lstrip("/")
    if (len(digits) > 1 and digits[0] == "0") or int(digits) > maximum:
        raise SpfSyntaxError(
            f"bad {family}-cidr-length '{text}' (0-{maximum}, no leading zeros)", term, SEC_CIDR
        )
    return int(digits)


_MECHANISM_PARSERS = {
    "all": _parse_all,
    "include": _parse_domain_required,
    "exists": _parse_domain_required,
    "ptr": _parse_ptr,
    "a": _parse_a_mx,
    "mx": _parse_a_mx,
    "ip4": _parse_ip,
    "ip6": _parse_ip,
}


def scan_macro_string(
    text: str, term: str | None = None, *, exp_letters: bool = False
) -> list[tuple[bool, str]]:
    """Split a macro-string into (is_macro, text) tokens, raising on bad syntax (§7.1).

    `exp_letters` admits c, r and t, which §7.2 allows only in explanation text.
    """
    where = text if term is None else term
    tokens: list[tuple[bool, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%":
            token = _scan_macro(text, i, where, exp_letters)
            tokens.append((True, token))
            i += len(token)
            continue
        _check_chars(ch, where)
        tokens.append((False, ch))
        i += 1
    return _merge_literals(tokens)


def _scan_macro(text: str, i: int, where: str, exp_letters: bool) -> str:
    """One macro-expand at text[i] == '%': `%{...}`, `%%`, `%_` or `%-`."""
    nxt = text[i + 1 : i + 2]
    if nxt in ("%", "_", "-"):
        return "%" + nxt
    match = _MACRO_EXPAND_RE.match(text, i)
    if nxt != "{" or not match:
        shown = text[i : i + 2] if nxt != "{" else text[i:]
        raise SpfSyntaxError(
            f"invalid macro {_show(shown)} (use %{{letter}}, %%, %_ or %-)", where, SEC_MACRO
        )
    letter, digits = match.group(1).lower(), match.group(2)
    allowed = MACRO_LETTERS + (EXP_ONLY_MACRO_LETTERS if exp_letters else "")
    if letter in EXP_ONLY_MACRO_LETTERS and not exp_letters:
        raise SpfSyntaxError(
            f"macro letter '{letter}' is allowed only in explanation text", where, SEC_MACRO
        )
    if letter not in allowed:
        raise SpfSyntaxError(f"unknown macro letter '{letter}'", where, SEC_MACRO)
    if digits and int(digits) == 0:
        raise SpfSyntaxError("a macro's digit transformer must be nonzero", where, SEC_MACRO)
    return match.group(0)


def _merge_literals(tokens: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
    merged: list[tuple[bool, str]] = []
    for is_macro, text in tokens:
        if merged and not is_macro and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + text)
        else:
            merged.append((is_macro, text))
    return merged


def has_macro(domain_spec: str) -> bool:
    """True when a domain-spec needs a sender to expand (`%%`, `%_`, `%-` do not)."""
    if "%" not in domain_spec:
        return False  # the common case, without scanning
    return any(
        is_macro and tok.startswith("%{") for is_macro, tok in scan_macro_string(domain_spec)
    )


def check_domain_spec(text: str, term: str | None = None) -> None:
    """domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand.

    So `a:museum` (no dot) and `a:1.2.3.4` (numeric top label) are syntax errors.
    """
    where = text if term is None else term
    if not text:
        raise SpfSyntaxError("empty domain-spec", where, SEC_DOMAIN)
    tokens = scan_macro_string(text, where)
    if tokens[-1][0]:
        return  # ends in a macro-expand
    tail = tokens[-1][1]
    if len(tail) > 1 and tail.endswith("."):
        tail = tail[:-1]
    dot = tail.rfind(".")
    if dot < 0 or not _TOPLABEL_RE.match(tail[dot + 1 :]):
        raise SpfSyntaxError(
            "domain-spec must end in '.' and a top label of letters, digits and hyphens "
            "that is not all digits, or in a macro",
            where,
            SEC_DOMAIN,
        )
