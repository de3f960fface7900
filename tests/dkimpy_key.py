"""Our private keys in the form dkimpy signs with, to verify what we publish."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from octodns_mailauth.dkim.keys import PrivateKey, private_key_to_pem


def dkimpy_private_key(key: PrivateKey) -> bytes:
    """The private key in the form ``dkim.sign(privkey=...)`` takes.

    dkimpy reads RSA keys as unencrypted PEM but Ed25519 keys as the base64 of the raw
    32-octet seed (pynacl's format), so a PKCS#8 Ed25519 PEM cannot be handed over as is.
    """
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(raw)
    return private_key_to_pem(key, None)
