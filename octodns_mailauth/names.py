"""The one set of DNS name rules: every name that enters (policy, octoDNS
config, DKIM state file, SPF lock, catalog) is checked and normalised here.

Names are kept lower case, without the trailing dot, in their A-label form:
`blåbær.no` is accepted and becomes `xn--blbr-roah.no` (IDNA 2008 with UTS 46
mapping, the codec dnspython uses).  Lengths are dnspython's (RFC 1035 §2.3.4).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import dns.exception
import dns.name

# RFC 1035 §2.3.1 letters, digits and inner hyphens, whole string (\Z, so a
# trailing newline never passes as `$` would let it).
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
# Underscore labels (`_dmarc`, `_domainkey`) are service labels, not host names.
_SERVICE_LABEL = re.compile(r"_?(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NAME = 253  # octets in presentation form, without the trailing dot
# A keystore file is `.<selector>.pem.<16 hex>.tmp` while written, and must fit
# NAME_MAX (255 on the file systems we support).
MAX_SELECTOR = 255 - len("..pem.0123456789abcdef.tmp")
# Scripts that are written together (Japanese, Korean, Chinese with Bopomofo).
_SCRIPT_FAMILIES = ({"CJK", "HIRAGANA", "KATAKANA"}, {"CJK", "HANGUL"}, {"CJK", "BOPOMOFO"})


class InvalidName(ValueError):
    """A name we refuse; the text says why and how to write it."""


def _script(ch: str) -> str | None:
    """The script of a letter from its Unicode name (`LATIN SMALL LETTER A`);
    None for digits, hyphens and marks, which go with any script."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    word = unicodedata.name(ch, "UNKNOWN").split()[0]
    return "CJK" if word in {"CJK", "IDEOGRAPHIC"} else word


def _mixed_scripts(label: str) -> set[str]:
    scripts = {s for s in map(_script, label) if s}
    if len(scripts) < 2 or any(scripts <= family for family in _SCRIPT_FAMILIES):
        return set()
    return scripts


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 80 else repr(text[:77] + "...")


def check_name(
    text: object, what: str = "domain", *, service_labels: bool = False, min_labels: int = 2
) -> str:
    """`text` as a normalised absolute name (lower case, A-labels, no trailing
    dot), or InvalidName saying what is wrong with it.

    `service_labels` allows `_dmarc`-style labels; `min_labels=1` accepts a
    single label (a selector, a zone like `no`)."""
    if type(text) is str:
        # A compile checks most names several times (a domain, a selector per key).
        return _check_text(text, what, service_labels, min_labels)
    return _check_name(text, what, service_labels, min_labels)


@functools.lru_cache(maxsize=4096)
def _check_text(text: str, what: str, service_labels: bool, min_labels: int) -> str:
    return _check_name(text, what, service_labels, min_labels)


def _check_name(text: object, what: str, service_labels: bool, min_labels: int) -> str:
    if not isinstance(text, str):
        raise InvalidName(f"{what} must be a name as text, not {type(text).__name__}")
    bad = _CONTROL.search(text)
    if bad:
        raise InvalidName(
            f"{what} {_shown(text)} contains a control character ({bad.group()!r}): "
            "a DNS name is letters, digits, hyphens and dots"
        )
    name = text[:-1] if text.endswith(".") else text
    if " " in name:
        raise InvalidName(f"{what} {_shown(text)} contains a space: a DNS name has none")
    if not name or name.startswith(".") or ".." in name:
        raise InvalidName(f"{what} {_shown(text)} is not a DNS name: it has an empty label")
    if not name.isascii() or "xn--" in name.lower():
        name = _to_a_labels(name, what)
    labels = name.split(".")
    for label in labels:
        if len(label) > 63:
            raise InvalidName(
                f"{what} {_shown(text)} has a label of {len(label)} characters; DNS allows 63 "
                "(RFC 1035 §2.3.4)"
            )
    check = _SERVICE_LABEL.match if service_labels else _LABEL.match
    wrong = next((label for label in labels if not check(label)), None)
    try:
        if wrong is not None or len(name) > MAX_NAME:
            # Plain labels of at most 63 characters leave dnspython only the length
            # to judge (wire form = len(name) + 2 <= 255): asked only when in doubt.
            dns.name.from_text(name, origin=dns.name.root)
    except dns.name.NameTooLong:
        raise InvalidName(
            f"{what} {_shown(text)} is {len(name)} characters long; DNS allows {MAX_NAME} "
            "(RFC 1035 §2.3.4)"
        ) from None
    except dns.exception.DNSException as e:
        raise InvalidName(f"{what} {_shown(text)} is not a DNS name: {e}") from None
    if len(labels) < min_labels:
        raise InvalidName(
            f"{what} {_shown(text)} is a single label: write the fully qualified name, "
            "e.g. mail.example.com"
        )
    if wrong is not None:
        raise InvalidName(
            f"{what} {_shown(text)} is not a DNS name: label {wrong!r} must be letters, digits "
            "and inner hyphens" + (" (or a leading _)" if service_labels else "")
        )
    # The top label is never all digits (RFC 3696 §2), or `1.2.3.4` passes as a name.
    if min_labels > 1 and labels[-1].isdigit():
        raise InvalidName(f"{what} {_shown(text)} is an address, not a domain name")
    return name.lower()


def _to_a_labels(name: str, what: str) -> str:
    """U-labels -> A-labels (IDNA 2008, UTS 46), refusing look-alikes: a label
    that mixes scripts (a Cyrillic `а` in `pаypal`) is how phishing domains
    are spelt, and in a policy it is almost surely a paste gone wrong."""
    try:
        unicode = dns.name.from_text(name, origin=dns.name.root).to_unicode(omit_final_dot=True)
        ascii_ = dns.name.from_unicode(unicode, origin=dns.name.root).to_text(omit_final_dot=True)
    except (dns.exception.DNSException, UnicodeError) as e:
        if isinstance(e, dns.name.NameTooLong | dns.name.LabelTooLong):
            raise InvalidName(
                f"{what} {_shown(name)} is too long for DNS even in its xn-- form "
                f"(labels at most 63, names at most {MAX_NAME} characters)"
            ) from None
        raise InvalidName(
            f"{what} {_shown(name)} is not a valid internationalised domain name (IDNA 2008): {e}"
        ) from None
    for label in unicode.split("."):
        scripts = _mixed_scripts(label)
        if scripts:
            raise InvalidName(
                f"{what} {_shown(name)}: label {label!r} mixes scripts "
                f"({', '.join(sorted(s.title() for s in scripts))}), as look-alike names do; "
                "type the name again in one script"
            )
    return ascii_


def is_hostname(text: str) -> bool:
    """A fully qualified name with at least two labels, no trailing dot needed."""
    try:
        check_name(text)
    except InvalidName:
        return False
    return True


def is_label(text: str) -> bool:
    return isinstance(text, str) and bool(_LABEL.match(text))


def is_selector(text: str) -> bool:
    """A DKIM selector: one or more dot-separated labels (RFC 6376 §3.1), short
    enough for its keystore file name."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= MAX_SELECTOR
        and all(is_label(p) for p in text.split("."))
    )


def check_selector(text: object, what: str = "DKIM selector") -> str:
    """A selector (DKIM, BIMI): dot-separated LDH labels (RFC 6376 §3.1), ASCII,
    short enough for its keystore file name; lower case.  InvalidName says why."""
    if isinstance(text, str) and not text.isascii():
        raise InvalidName(f"{what} {_shown(text)} must be ASCII letters, digits and hyphens")
    try:
        name = check_name(text, what, min_labels=1)
    except InvalidName as e:
        reason = str(e).removeprefix(f"{what} {_shown(text)}").lstrip(" :")
        reason = reason.removeprefix("is not a DNS name: ")
        raise InvalidName(
            f"{_shown(text)} is not a valid {what}: {reason} (RFC 6376 §3.1)"
        ) from None
    if isinstance(text, str) and text.endswith("."):
        raise InvalidName(f"{what} {_shown(text)} is relative: write it without the final dot")
    if len(name) > MAX_SELECTOR:
        raise InvalidName(
            f"{what} {_shown(text)} is {len(name)} characters; at most {MAX_SELECTOR} fit "
            "the keystore's file names"
        )
    return name


def normalize(name: str) -> str:
    """Lower case, no trailing dot, A-labels: the form used inside the compiler,
    for names already checked or read from octoDNS (whose config may spell a
    zone `blåbær.no.`; octoDNS itself works with the A-label).  An invalid IDN is
    left for check_name to explain."""
    name = name.rstrip(".").lower()
    if not name.isascii():
        try:
            return dns.name.from_unicode(name, origin=dns.name.root).to_text(omit_final_dot=True)
        except (dns.exception.DNSException, UnicodeError):
            pass
    return name


def at_and_above(name: str) -> list[str]:
    """`a.b.example` -> a.b.example, b.example, example: the keys under which an
    index by name finds `name` from any zone it may be in."""
    labels = normalize(name).split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def is_subdomain(name: str, zone: str) -> bool:
    """`name` is `zone` or below it (both normalised)."""
    return name == zone or name.endswith("." + zone)


def relative_to(fqdn: str, zone: str) -> str | None:
    """`fqdn` relative to `zone` ('' for the apex), or None when outside it."""
    fqdn, zone = normalize(fqdn), normalize(zone)
    if fqdn == zone:
        return ""
    if fqdn.endswith("." + zone):
        return fqdn[: -len(zone) - 1]
    return None


def zone_of(name: str, zones: Iterable[str]) -> str | None:
    """The longest of `zones` that `name` is in (both normalised), or None.
    Looks up `name` and each name above it, longest first: with a set of zones
    that costs a few lookups however many zones there are (a lock refresh asks
    it for every recorded name against every policy domain)."""
    index = zones if isinstance(zones, set | frozenset) else set(zones)
    labels = name.split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in index:
            return candidate
    return None


def mailto_to_ascii(uri: str, what: str) -> str:
    """`mailto:dmarc@blåbær.no` -> `mailto:dmarc@xn--blbr-roah.no`: report
    addresses go into TXT records, which hold ASCII (RFC 9989 §4.8 asks for
    non-ASCII to be encoded).  Other URIs are returned as they are."""
    scheme, colon, rest = uri.partition(":")
    if scheme.lower() != "mailto" or not colon or rest.isascii():
        return uri
    local, at, tail = rest.rpartition("@")
    end = min((i for i in (tail.find("?"), tail.find("!")) if i >= 0), default=len(tail))
    domain = tail[:end]
    if not at or not local.isascii() or domain.isascii():
        return uri  # a non-ASCII local part is not ours to encode: the checks refuse it
    return f"{scheme}:{local}@{check_name(domain, f'the domain of {what}')}{tail[end:]}"
