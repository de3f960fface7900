"""DKIM (RFC 6376, RFC 8301, RFC 8463): the key record built, parsed as a
verifier reads it, and recognised.  Key pairs: dkim/keys.py."""

from __future__ import annotations

import re
from typing import NamedTuple

from ..dkim.keys import (
    ALGORITHMS,
    FWS,
    Algorithm,
    DkimKeyError,
    PublicKey,
    check_algorithm,
    check_published_key,
    check_rsa_floor,
    key_bits,
    public_key_from_b64,
)

# §3.6.1: an empty p= is a revoked key.
REVOKED = "v=DKIM1; p="
# RFC 6376 §3.6.1 service types; RFC 8460 §3 adds "tlsrpt".
SERVICE_TYPES = frozenset({"*", "email", "tlsrpt"})
# RFC 8301 §3.1: "rsa-sha1 MUST NOT be used for signing or verifying", so h= never offers sha1.
HASH_ALGORITHMS = frozenset({"sha256"})

# Emitted in this order; RFC 6376 §3.6.1 requires only that v= comes first.
_TAG_ORDER = ("v", "h", "k", "n", "p", "s", "t")

_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")  # RFC 6376 §3.2 tag-name
# tval = 1*VALCHAR, VALCHAR = %x21-3A / %x3C-7E; values may hold inner WSP/FWS between tvals.
_TAG_VALUE = re.compile(r"(?:[\x21-\x3a\x3c-\x7e]+(?:[ \t\r\n]+[\x21-\x3a\x3c-\x7e]+)*)?\Z")


def key_name(selector: str, domain: str) -> str:
    """Where `domain`'s key for `selector` is published (RFC 6376 §3.6.2.1)."""
    return f"{selector}._domainkey.{domain}"


def split_key_name(name: str) -> tuple[str, str] | None:
    """(selector, domain) of a key record's name; None when `name` is not one."""
    selector, sep, domain = name.partition("._domainkey.")
    return (selector, domain) if sep else None


def owns(text: str) -> bool:
    """A selector name holds one key (§3.6.2.2: with several the results are
    undefined) and `v=` is optional, so any TXT value there is a key record."""
    return bool(text)


def _qp_encode_notes(notes: str) -> str:
    # n= is a qp-section (RFC 6376 §3.6.1). Octets that cannot stand in a tag value (';',
    # controls, non-ASCII) or would be read as an escape ('='), plus '\\' and '"' which zone
    # files and octoDNS treat specially, are written as =XX. Inner spaces stay readable;
    # leading and trailing ones would be stripped by parsers, so they are encoded too.
    out: list[str] = []
    data = notes.encode("utf-8")
    for i, octet in enumerate(data):
        edge = i == 0 or i == len(data) - 1
        if octet == 0x20 and not edge:
            out.append(" ")
        elif 0x21 <= octet <= 0x7E and chr(octet) not in ';=\\"':
            out.append(chr(octet))
        else:
            out.append(f"={octet:02X}")
    return "".join(out)


def dkim_txt_value(
    algorithm: Algorithm,
    p: str,
    *,
    testing: bool = False,
    hash_algorithms: list[str] | None = None,
    service: str | None = None,
    notes: str | None = None,
) -> str:
    """The DKIM key record text, e.g. ``v=DKIM1; k=ed25519; p=...``.

    Tags come in the order v, h, k, n, p, s, t. ``p=""`` publishes a revoked key
    (RFC 6376 §3.6.1). ``testing`` adds ``t=y``. The result is plain text: the caller escapes
    ``;`` for octoDNS and splits it into 255-octet strings if needed.
    """
    check_algorithm(algorithm)
    compact_p = FWS.sub("", p)
    if compact_p:
        # Publishing a key that verifiers cannot decode would silently break all mail.
        # We never publish a weak key, however it arrived (`public_key:`, a key
        # file, the rotation state): one rule, here where every record is built.
        check_published_key(public_key_from_b64(algorithm, compact_p))
    tags: dict[str, str] = {"v": "DKIM1"}
    if hash_algorithms is not None:
        if not hash_algorithms:
            raise DkimKeyError("h= needs at least one hash algorithm (omit it to allow all)")
        for name in hash_algorithms:
            if name not in HASH_ALGORITHMS:
                raise DkimKeyError(
                    f"hash algorithm {name!r} is not allowed in h=: use "
                    f"{', '.join(sorted(HASH_ALGORITHMS))} (RFC 8301 §3.1 forbids sha1)"
                )
        tags["h"] = ":".join(dict.fromkeys(hash_algorithms))
    tags["k"] = algorithm
    if notes:
        tags["n"] = _qp_encode_notes(notes)
    tags["p"] = compact_p
    if service is not None:
        services = service.split(":")
        unknown = [s for s in services if s not in SERVICE_TYPES]
        if unknown or not service:
            # Verifiers ignore keys whose only service types they do not know.
            raise DkimKeyError(
                f"unknown DKIM service type {service!r}: use a colon list of "
                f"{', '.join(sorted(SERVICE_TYPES))}"
            )
        tags["s"] = ":".join(dict.fromkeys(services))
    if testing:
        tags["t"] = "y"
    return "; ".join(f"{name}={tags[name]}" for name in _TAG_ORDER if name in tags)


def parse_dkim_txt(value: str) -> dict[str, str]:
    """Parse a tag-list (RFC 6376 §3.2) into ``{tag: value}``.

    Raises DkimKeyError on bad syntax or a duplicate tag (which invalidates the whole list).
    Accepts the ``\\;`` escaping octoDNS uses in TXT values. Values keep inner whitespace
    but not surrounding whitespace; tag names keep their case (tags are case-sensitive).
    """
    text = value.replace("\\;", ";")
    parts = text.split(";")
    # One trailing ';' (and whitespace after it, which senders emit in practice) is allowed.
    if len(parts) > 1 and not parts[-1].strip():
        parts.pop()
    tags: dict[str, str] = {}
    for index, part in enumerate(parts, start=1):
        if not part.strip():
            raise DkimKeyError(f"empty tag-spec at position {index} in the tag-list")
        name, eq, raw_value = part.partition("=")
        name = name.strip()
        if not eq:
            raise DkimKeyError(f"tag-spec at position {index} has no '='")
        if not _TAG_NAME.match(name):
            raise DkimKeyError(f"invalid tag name at position {index}")
        tag_value = raw_value.strip(" \t\r\n")
        if not _TAG_VALUE.match(tag_value):
            raise DkimKeyError(f"invalid characters in the value of tag {name!r}")
        if name in tags:
            raise DkimKeyError(f"duplicate tag {name!r}: RFC 6376 §3.2 makes the record invalid")
        tags[name] = tag_value
    return tags


# A NamedTuple, not a frozen dataclass: every `validate` defines it, and a dataclass
# costs four times as much to define (it compiles its methods from source).
class KeyRecord(NamedTuple):
    """The meaning of a DKIM key record, after the defaults of RFC 6376 §3.6.1."""

    algorithm: Algorithm
    public_key: PublicKey | None  # None when revoked
    hash_algorithms: tuple[str, ...] | None  # None = all
    services: tuple[str, ...]
    flags: tuple[str, ...]
    p: str = ""  # as published, without the folding white space

    @property
    def bits(self) -> int | None:
        return key_bits(self.public_key) if self.public_key is not None else None

    @property
    def revoked(self) -> bool:
        return self.public_key is None

    @property
    def testing(self) -> bool:
        return "y" in self.flags


def parse_key_record(value: str) -> KeyRecord:
    """Parse and check a DKIM key record the way a verifier reads it, else DkimKeyError.

    Rejects what makes verifiers discard the key: a v= other than DKIM1 or not first, a k=
    other than rsa/ed25519, a p= that does not decode, an RSA key under 1024 bits
    (RFC 8301), or service types of which none is known.
    """
    tags = parse_dkim_txt(value)
    if "v" in tags and (tags["v"] != "DKIM1" or next(iter(tags)) != "v"):
        raise DkimKeyError("v= must be exactly DKIM1 and the first tag (RFC 6376 §3.6.1)")
    k = tags.get("k", "rsa")
    if k not in ALGORITHMS:
        raise DkimKeyError(f"unknown key type k={k!r}: verifiers know rsa and ed25519")
    algorithm: Algorithm = k  # type: ignore[assignment]
    if "p" not in tags:
        raise DkimKeyError("p= is required (RFC 6376 §3.6.1)")
    public_key: PublicKey | None = None
    p = FWS.sub("", tags["p"])
    if p:
        public_key = public_key_from_b64(algorithm, p)
        check_rsa_floor(public_key)
    services = tuple(s.strip() for s in tags.get("s", "*").split(":"))
    if not any(s in SERVICE_TYPES for s in services):
        raise DkimKeyError("no known service type in s=: the key is usable for nothing")
    hashes = tuple(h.strip() for h in tags["h"].split(":")) if "h" in tags else None
    flags = tuple(f.strip() for f in tags["t"].split(":")) if "t" in tags else ()
    return KeyRecord(
        algorithm=algorithm,
        public_key=public_key,
        hash_algorithms=hashes,
        services=services,
        flags=flags,
        p=p,
    )
