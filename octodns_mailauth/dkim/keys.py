"""DKIM key pairs (RFC 6376, RFC 8301, RFC 8463); the key record: records/dkim.py.

Pure functions: nothing here touches the file system, the environment or DNS; the keystore
(``keystore.py``) is the edge that stores what these functions produce.

No exception raised here carries key material: messages name what is wrong, never the bytes,
and errors from the crypto library are not chained (their text is ours to vouch for, theirs
is not).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal, Union, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

# cryptography's `serialization` package (SSH, PKCS#7, PKCS#12 ...) would cost every
# `validate` 70M instructions, more than the rest of cryptography, for three names it
# re-exports: the formats from `_serialization` (which the key types import anyway) and the
# DER loader from the Rust bindings.  Taken from there (a test checks they are the public
# names); from the package if a cryptography version moves them.  Private keys (PEM) are
# rare on that path and import the package where they are read or written.
try:
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl
    from cryptography.hazmat.primitives._serialization import Encoding, PublicFormat

    _load_der_public_key = _rust_openssl.keys.load_der_public_key
except (ImportError, AttributeError):  # pragma: no cover - another cryptography layout
    from cryptography.hazmat.primitives.serialization import (  # type: ignore[assignment]
        Encoding,
        PublicFormat,
    )
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key as _load_der_public_key,
    )

Algorithm = Literal["ed25519", "rsa"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)

# Union rather than `|`: these aliases are evaluated at import time and the project supports 3.10.
PrivateKey = Union[ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey]  # noqa: UP007
PublicKey = Union[ed25519.Ed25519PublicKey, rsa.RSAPublicKey]  # noqa: UP007

# RFC 8301 §3.2: signers MUST use at least 1024 bits and SHOULD use at least 2048. New keys
# follow the SHOULD; 4096 is the ceiling because a larger `p=` no longer fits a 512-octet UDP
# answer comfortably and several large providers refuse to verify such keys.
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 4096
# Keys made elsewhere (imported, or read back from an older store) may be 1024 bits: RFC 8301
# still allows verifying those, so they load but are never generated.
RSA_LEGACY_MIN_BITS = 1024
RSA_PUBLIC_EXPONENT = 65537
ED25519_RAW_LEN = 32  # RFC 8463 §4.2: p= is the raw 32-octet public key


FWS = re.compile(r"[ \t\r\n]+")


class DkimKeyError(ValueError):
    """A key or key record is unusable. The message never contains key material."""


class WeakKeyError(DkimKeyError):
    """An RSA key too short for its use (RFC 8301 §3.2): its fix is a new key, not a new copy."""


# --- key generation and introspection ----------------------------------------------------


def check_algorithm(algorithm: str) -> Algorithm:
    """Return ``algorithm`` if it is one this package can generate and publish."""
    if algorithm not in ALGORITHMS:
        raise DkimKeyError(
            f"unknown DKIM key algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}"
        )
    return algorithm  # type: ignore[return-value]


def check_rsa_floor(key: PrivateKey | PublicKey) -> None:
    """Refuse an RSA key under RSA_LEGACY_MIN_BITS, however it is used: RFC 8301 §3.2 says
    signers MUST NOT use one and verifiers discard it."""
    bits = key_bits(key)
    if algorithm_of(key) == "rsa" and bits < RSA_LEGACY_MIN_BITS:
        raise WeakKeyError(
            f"the RSA key is {bits} bits, under the {RSA_LEGACY_MIN_BITS} bits RFC 8301 §3.2 "
            "requires of every signer: verifiers discard it, so nothing signed with it passes"
        )


def check_published_key(key: PublicKey, *, vendor: str | None = None) -> str | None:
    """The key-size rule for a key record we publish (RFC 8301 §3.2: signers MUST use at
    least 1024 bits and SHOULD use 2048; 1024-bit keys are within reach of factoring and
    some receivers refuse them).

    Raises WeakKeyError under 1024 bits, and under RSA_MIN_BITS for a key we generate or
    are given (`vendor` None: we can make a better one).  A key `vendor` made and we only
    copy may be 1024 to 2047 bits: verifiers accept it, and only the vendor can replace
    it, so the result is a warning saying so (None for a key of full size)."""
    check_rsa_floor(key)
    bits = key_bits(key)
    if algorithm_of(key) != "rsa" or bits >= RSA_MIN_BITS:
        return None
    if vendor is None:
        raise WeakKeyError(
            f"the RSA key is {bits} bits; a key we publish must have at least "
            f"{RSA_MIN_BITS} (RFC 8301 §3.2): generate a new one (bits: 2048 or ed25519)"
        )
    return (
        f"the RSA key {vendor} made is {bits} bits: RFC 8301 §3.2 says signers SHOULD use at "
        f"least {RSA_MIN_BITS} (shorter keys are within reach of factoring, and some "
        "receivers refuse them)"
    )


def check_rsa_bits(bits: int) -> int:
    """Return ``bits`` if it is an RSA size we generate (RFC 8301 §3.2), else raise."""
    # bool is an int subclass; `bits=True` is a caller bug, not a 1-bit key.
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise DkimKeyError(f"RSA key size must be an integer number of bits, got {bits!r}")
    if bits < RSA_MIN_BITS:
        raise DkimKeyError(
            f"RSA key size {bits} is too small: RFC 8301 §3.2 says signers SHOULD use at "
            f"least {RSA_MIN_BITS} bits"
        )
    if bits > RSA_MAX_BITS:
        raise DkimKeyError(
            f"RSA key size {bits} is too large: at most {RSA_MAX_BITS} bits are supported "
            "(larger keys do not fit DNS answers well and many verifiers refuse them)"
        )
    return bits


def generate_private_key(algorithm: Algorithm, bits: int = 2048) -> PrivateKey:
    """Make a new private key. ``bits`` applies to RSA only (Ed25519 keys have one size)."""
    if check_algorithm(algorithm) == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(
        public_exponent=RSA_PUBLIC_EXPONENT, key_size=check_rsa_bits(bits)
    )


def keyless_rsa_public_key(bits: int) -> rsa.RSAPublicKey:
    """An RSA public key of exactly ``bits`` bits with no private key behind it, from fixed
    numbers: the shape of a key at no cost, for placeholders (never published)."""
    modulus = (1 << (check_rsa_bits(bits) - 1)) | 1  # ``bits`` long and odd, as moduli are
    return rsa.RSAPublicNumbers(RSA_PUBLIC_EXPONENT, modulus).public_key()


def _public(key: PrivateKey | PublicKey) -> PublicKey:
    if isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)):
        return key.public_key()
    if isinstance(key, (ed25519.Ed25519PublicKey, rsa.RSAPublicKey)):
        return key
    raise DkimKeyError(f"unsupported key type {type(key).__name__}: DKIM keys are rsa or ed25519")


def algorithm_of(key: PrivateKey | PublicKey) -> Algorithm:
    """The DKIM ``k=`` value for a private or public key."""
    return "ed25519" if isinstance(_public(key), ed25519.Ed25519PublicKey) else "rsa"


def key_bits(key: PrivateKey | PublicKey) -> int:
    """The key size in bits: the modulus length for RSA, 256 for Ed25519."""
    pub = _public(key)
    return pub.key_size if isinstance(pub, rsa.RSAPublicKey) else 8 * ED25519_RAW_LEN


def public_key_b64(key: PrivateKey | PublicKey) -> str:
    """The ``p=`` value for a private or public key.

    Ed25519: base64 of the raw 32-octet key (RFC 8463 §4.2). RSA: base64 of the DER
    SubjectPublicKeyInfo, the form `openssl rsa -pubout` gives (RFC 6376 App. C, erratum 3017)
    and every verifier accepts.
    """
    pub = _public(key)
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(Encoding.Raw, PublicFormat.Raw)
    else:
        raw = pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(raw).decode("ascii")


def public_key_from_b64(algorithm: Algorithm, p: str) -> PublicKey:
    """Decode a ``p=`` value into a public key of ``algorithm``, else raise DkimKeyError.

    Whitespace is ignored (RFC 6376 §3.6.1 allows FWS inside base64). RSA accepts both the
    SubjectPublicKeyInfo form and the bare PKCS#1 RSAPublicKey that §3.6.1 literally names.
    """
    check_algorithm(algorithm)
    compact = FWS.sub("", p)
    if not compact:
        raise DkimKeyError("empty p= (a revoked key) has no public key")
    try:
        # validate=True rejects characters outside the alphabet instead of skipping them.
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise DkimKeyError(f"p= is not valid base64 for a {algorithm} public key") from None
    if algorithm == "ed25519":
        if len(raw) != ED25519_RAW_LEN:
            raise DkimKeyError(
                f"an ed25519 p= must decode to {ED25519_RAW_LEN} octets (RFC 8463 §4.2), "
                f"got {len(raw)}"
            )
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    try:  # SubjectPublicKeyInfo, or else a bare PKCS#1 RSAPublicKey
        pub = _load_der_public_key(raw)
    except (ValueError, UnsupportedAlgorithm):
        raise DkimKeyError(
            "p= is not a DER RSA public key (SubjectPublicKeyInfo or PKCS#1)"
        ) from None
    if not isinstance(pub, rsa.RSAPublicKey):
        raise DkimKeyError("p= holds a public key that is not RSA, but k= says rsa")
    return pub


def public_key_matches(private_key: PrivateKey, p_b64: str) -> bool:
    """Whether the ``p=`` value is the public half of ``private_key``.

    Compares keys, not strings, so an RSA record in PKCS#1 form still matches. A revoked
    (empty) or undecodable ``p=`` matches nothing.
    """
    algorithm = algorithm_of(private_key)
    try:
        published = public_key_from_b64(algorithm, p_b64)
    except DkimKeyError:
        return False
    return public_key_b64(published) == public_key_b64(private_key)


# --- PEM ------------------------------------------------------------------------------------

_ENCRYPTED_PEM_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


def pem_is_encrypted(data: bytes) -> bool:
    """Whether a PEM private key is passphrase-protected (PKCS#8 or legacy OpenSSL form)."""
    return any(marker in data for marker in _ENCRYPTED_PEM_MARKERS)


def private_key_from_pem(data: bytes, passphrase: bytes | None) -> PrivateKey:
    """Load a PEM private key (PKCS#8, or PKCS#1 for RSA).

    ``passphrase`` is used only if the PEM is encrypted, so a store can hold both plain and
    encrypted keys while a passphrase is being introduced.
    """
    from cryptography.hazmat.primitives import serialization  # see the imports above

    encrypted = pem_is_encrypted(data)
    if encrypted and not passphrase:
        raise DkimKeyError("the private key is encrypted and no passphrase was given")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise DkimKeyError(
                "cannot decrypt the private key: wrong passphrase, or the file is corrupt"
            ) from None
        raise DkimKeyError("not a valid PEM private key (corrupt or truncated file?)") from None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)):
        raise DkimKeyError(
            f"unsupported private key type {type(key).__name__}: DKIM keys are rsa or ed25519"
        )
    check_rsa_floor(key)
    return key


def private_key_to_pem(key: PrivateKey, passphrase: bytes | None) -> bytes:
    """Serialise as PKCS#8 PEM, encrypted with the best available cipher if ``passphrase``."""
    from cryptography.hazmat.primitives import serialization  # see the imports above

    _public(key)  # type check with our error message
    if passphrase is not None and not isinstance(passphrase, bytes):
        raise DkimKeyError("the passphrase must be bytes")
    if passphrase == b"":
        # cryptography refuses it too, but with a message that does not say what to do.
        raise DkimKeyError("the passphrase is empty: give a non-empty passphrase or none")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


# --- key records ----------------------------------------------------------------------------


def key_mismatch(key: PrivateKey | PublicKey, algorithm: str, bits: int) -> str | None:
    """What `key` is instead of the declared `algorithm` (and size, for RSA), or None
    when it matches: a selector never changes either, so a mismatch is an error."""
    have = algorithm_of(key)
    if have != algorithm:
        return f"an {have} key, not {algorithm}"
    if have == "rsa" and key_bits(key) != bits:
        return f"an RSA key of {key_bits(key)} bits, not {bits}"
    return None
