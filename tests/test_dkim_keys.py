"""DKIM keys and key records: generation, p= encoding, record text, parsing, PEM round trips.

Interop is checked with dkimpy (sign with our private key, verify against the exact record
text we produce) and against the published vectors in tests/data/dkim (see NOTICE.md there).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from dkimpy_key import dkimpy_private_key

from octodns_mailauth.dkim import keys
from octodns_mailauth.dkim.keys import (
    DkimKeyError,
    algorithm_of,
    generate_private_key,
    key_bits,
    private_key_from_pem,
    private_key_to_pem,
    public_key_b64,
    public_key_from_b64,
    public_key_matches,
)
from octodns_mailauth.records.dkim import dkim_txt_value, parse_dkim_txt, parse_key_record

DATA = Path(__file__).parent / "data" / "dkim"
DOMAIN = b"example.com"
SELECTOR = b"sel1"
MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: keys\r\n"
    b"Date: Wed, 25 Nov 2026 18:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hello.\r\n"
)
SIG_ALG = {"ed25519": b"ed25519-sha256", "rsa": b"rsa-sha256"}
# RFC 8463 Appendix A: the public half of the RFC 8032 §7.1 TEST 1 key.
RFC8463_P = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="


def dns_for(record: str, selector: bytes = SELECTOR, domain: bytes = DOMAIN):
    """A dkimpy dnsfunc that publishes exactly ``record`` at the selector's name."""
    name = selector + b"._domainkey." + domain + b"."

    def dnsfunc(qname: bytes, timeout: int = 5) -> bytes | None:
        return record.encode("ascii") if qname == name else None

    return dnsfunc


def sign_and_verify(privkey: bytes, algorithm: str, record: str) -> bool:
    signature = dkim.sign(
        MESSAGE,
        SELECTOR,
        DOMAIN,
        privkey=privkey,
        linesep=b"\r\n",
        signature_algorithm=SIG_ALG[algorithm],
    )
    return bool(dkim.verify(signature + MESSAGE, dnsfunc=dns_for(record)))


def seed_key(name: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(
        base64.b64decode((DATA / name).read_text().strip())
    )


@pytest.fixture(scope="module")
def rsa2048() -> rsa.RSAPrivateKey:
    return generate_private_key("rsa")  # type: ignore[return-value]


# --- generation -----------------------------------------------------------------------------


def test_generate_ed25519() -> None:
    key = generate_private_key("ed25519")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert algorithm_of(key) == algorithm_of(key.public_key()) == "ed25519"
    assert key_bits(key) == 256
    p = public_key_b64(key)
    # RFC 8463 §4.2: base64 of the raw 32 octets, 44 characters.
    assert len(p) == 44 and len(base64.b64decode(p)) == 32


def test_generate_rsa_default_is_2048(rsa2048: rsa.RSAPrivateKey) -> None:
    assert isinstance(rsa2048, rsa.RSAPrivateKey)
    assert rsa2048.key_size == 2048 and key_bits(rsa2048) == 2048
    assert rsa2048.public_key().public_numbers().e == 65537
    assert algorithm_of(rsa2048) == "rsa"
    # DER SubjectPublicKeyInfo: the familiar "MIIBIjAN" prefix of a 2048-bit SPKI.
    assert public_key_b64(rsa2048).startswith("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")
    assert public_key_b64(rsa2048) == public_key_b64(rsa2048.public_key())


def test_generate_rsa_4096_allowed() -> None:
    key = generate_private_key("rsa", 4096)
    assert key_bits(key) == 4096


def test_generate_rsa_3072_allowed() -> None:
    assert key_bits(generate_private_key("rsa", 3072)) == 3072


@pytest.mark.parametrize(
    ("bits", "needle"),
    [(1024, "RFC 8301"), (2047, "too small"), (8192, "too large"), (4097, "too large")],
)
def test_generate_rsa_size_refused(bits: int, needle: str) -> None:
    with pytest.raises(DkimKeyError, match=needle):
        generate_private_key("rsa", bits)


@pytest.mark.parametrize("bits", [True, 2048.0, "2048"])
def test_generate_rsa_size_must_be_int(bits: object) -> None:
    with pytest.raises(DkimKeyError, match="integer"):
        generate_private_key("rsa", bits)  # type: ignore[arg-type]


def test_generate_unknown_algorithm() -> None:
    with pytest.raises(DkimKeyError, match="unknown DKIM key algorithm 'dsa'"):
        generate_private_key("dsa")  # type: ignore[arg-type]


def test_other_key_types_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(DkimKeyError, match="unsupported key type"):
        public_key_b64(other)  # type: ignore[arg-type]
    with pytest.raises(DkimKeyError, match="unsupported key type"):
        algorithm_of(other)  # type: ignore[arg-type]


# --- known answers from the published vectors -----------------------------------------------


def test_rfc8463_appendix_a_public_key() -> None:
    key = seed_key("rfc8032_7_1.key")
    assert public_key_b64(key) == RFC8463_P
    assert dkim_txt_value("ed25519", public_key_b64(key)) == f"v=DKIM1; k=ed25519; p={RFC8463_P}"


def test_rfc8463_appendix_a_signature_verifies_against_our_records() -> None:
    """The RFC's own signed message verifies with the records we generate from its keys."""
    message = (DATA / "rfc6376.signed.msg").read_bytes()
    ed_record = dkim_txt_value("ed25519", public_key_b64(seed_key("rfc8032_7_1.key")))
    rsa_key = private_key_from_pem((DATA / "test.private").read_bytes(), None)
    # The RFC's RSA key is 1024 bits: we refuse to publish it, so its record is
    # written out here as the RFC's own example publishes it.
    with pytest.raises(DkimKeyError, match="1024 bits"):
        dkim_txt_value("rsa", public_key_b64(rsa_key))
    rsa_record = f"v=DKIM1; k=rsa; p={public_key_b64(rsa_key)}"
    records = {
        b"brisbane._domainkey.football.example.com.": ed_record,
        b"test._domainkey.football.example.com.": rsa_record,
    }

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return records[name].encode() if name in records else None

    verifier = dkim.DKIM(message)
    assert verifier.verify(idx=0, dnsfunc=dnsfunc)  # a=ed25519-sha256, s=brisbane
    assert verifier.verify(idx=1, dnsfunc=dnsfunc)  # a=rsa-sha256, s=test


def _vectors() -> list[dict]:
    return json.loads((DATA / "dkim-key-records.json").read_text())["records"]


def test_dkimpy_ed25519_vector_public_key() -> None:
    p = public_key_b64(seed_key("ed25519test.key"))
    published = [r for r in _vectors() if r["record"].endswith(p)]
    assert published, "ed25519test.key's public key is among the published records"
    for vector in published:
        assert public_key_matches(seed_key("ed25519test.key"), vector["tags"]["p"])


@pytest.mark.parametrize(
    ("key_file", "bits"),
    [("1024_testkey.key", 1024), ("2048_testkey.key", 2048), ("2048_testkey_PKCS8.key", 2048)],
)
def test_rsa_vector_keys_match_published_records(key_file: str, bits: int) -> None:
    """PKCS#1 and PKCS#8 PEMs load; p= matches both the SPKI and the PKCS#1 record forms."""
    key = private_key_from_pem((DATA / key_file).read_bytes(), None)
    assert key_bits(key) == bits
    mine = public_key_b64(key)
    matching = [r for r in _vectors() if public_key_matches(key, r["tags"].get("p", ""))]
    forms = {r["key_format"].split(" ")[0] for r in matching}
    assert any(r["tags"]["p"] == mine for r in matching), "our SPKI p= is the published one"
    if key_file != "2048_testkey_PKCS8.key":  # only the other two are also published as PKCS#1
        assert forms == {"SubjectPublicKeyInfo", "PKCS#1"}


def _vector_valid(vector: dict) -> bool:
    # "valid" vectors, plus the s=tlsrpt one (a valid key, just not for ordinary mail).
    return vector["expected"].startswith("valid") or vector["expected"].startswith("s=tlsrpt")


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["source"][:40])
def test_published_records(vector: dict) -> None:
    """Every vector parses as a tag-list; parse_key_record agrees with the expected outcome."""
    tags = parse_dkim_txt(vector["record"])
    assert {k: v.replace(" ", "") for k, v in tags.items()} == vector["tags"]
    if _vector_valid(vector):
        record = parse_key_record(vector["record"])
        assert record.bits == vector["key_bits"]
        assert record.algorithm == tags.get("k", "rsa")
        assert public_key_b64(record.public_key).replace("=", "") != ""  # type: ignore[arg-type]
    else:
        # bad v=, unknown k=, truncated DER, corrupt base64, 512-bit key
        with pytest.raises(DkimKeyError):
            parse_key_record(vector["record"])


# --- record values --------------------------------------------------------------------------


def test_record_minimal() -> None:
    assert dkim_txt_value("ed25519", RFC8463_P) == f"v=DKIM1; k=ed25519; p={RFC8463_P}"


def test_record_all_tags_in_order() -> None:
    value = dkim_txt_value(
        "ed25519",
        RFC8463_P,
        testing=True,
        hash_algorithms=["sha256"],
        service="email",
        notes="ops@example.com",
    )
    assert value == (
        f"v=DKIM1; h=sha256; k=ed25519; n=ops@example.com; p={RFC8463_P}; s=email; t=y"
    )
    assert list(parse_dkim_txt(value)) == ["v", "h", "k", "n", "p", "s", "t"]


def test_record_rsa(rsa2048: rsa.RSAPrivateKey) -> None:
    p = public_key_b64(rsa2048)
    assert dkim_txt_value("rsa", p) == f"v=DKIM1; k=rsa; p={p}"


def test_record_revoked() -> None:
    # RFC 6376 §3.6.1: "An empty value means that this public key has been revoked."
    assert dkim_txt_value("rsa", "") == "v=DKIM1; k=rsa; p="
    assert dkim_txt_value("ed25519", "", testing=True) == "v=DKIM1; k=ed25519; p=; t=y"
    record = parse_key_record("v=DKIM1; k=ed25519; p=")
    assert record.revoked and record.public_key is None and record.bits is None


def test_record_notes_are_quoted_printable() -> None:
    value = dkim_txt_value("ed25519", RFC8463_P, notes=' a;b=c\\"é ')
    # ';' must not end the tag, '=' must not start an escape; edges would be stripped.
    assert "n==20a=3Bb=3Dc=5C=22=C3=A9=20;" in value
    assert parse_dkim_txt(value)["n"] == "=20a=3Bb=3Dc=5C=22=C3=A9=20"


def test_record_inner_space_in_notes_kept() -> None:
    value = dkim_txt_value("ed25519", RFC8463_P, notes="rotated 2026-11")
    assert parse_dkim_txt(value)["n"] == "rotated 2026-11"


def test_record_service_list() -> None:
    value = dkim_txt_value("ed25519", RFC8463_P, service="email:tlsrpt")
    assert value.endswith("; s=email:tlsrpt")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"hash_algorithms": ["sha1"]}, "sha1"),
        ({"hash_algorithms": []}, "at least one"),
        ({"service": "web"}, "service type"),
        ({"service": ""}, "service type"),
    ],
)
def test_record_bad_options(kwargs: dict, needle: str) -> None:
    with pytest.raises(DkimKeyError, match=needle):
        dkim_txt_value("ed25519", RFC8463_P, **kwargs)


@pytest.mark.parametrize(
    ("algorithm", "p", "needle"),
    [
        ("ed25519", "not base64!", "base64"),
        ("ed25519", base64.b64encode(b"x" * 31).decode(), "32 octets"),
        ("rsa", RFC8463_P, "not a DER RSA public key"),
        ("dsa", RFC8463_P, "unknown DKIM key algorithm"),
    ],
)
def test_record_bad_p(algorithm: str, p: str, needle: str) -> None:
    with pytest.raises(DkimKeyError, match=needle):
        dkim_txt_value(algorithm, p)  # type: ignore[arg-type]


def test_record_refuses_512_bit_rsa() -> None:
    small = next(r for r in _vectors() if r.get("key_bits") == 512)
    with pytest.raises(DkimKeyError, match="RFC 8301"):
        dkim_txt_value("rsa", small["tags"]["p"])


def test_record_p_whitespace_removed(rsa2048: rsa.RSAPrivateKey) -> None:
    p = public_key_b64(rsa2048)
    folded = " ".join(p[i : i + 64] for i in range(0, len(p), 64))
    assert dkim_txt_value("rsa", folded) == f"v=DKIM1; k=rsa; p={p}"


# --- parsing --------------------------------------------------------------------------------


def test_parse_basic_and_whitespace() -> None:
    assert parse_dkim_txt(" v = DKIM1 ;\tk=rsa;p= ab cd ; ") == {
        "v": "DKIM1",
        "k": "rsa",
        "p": "ab cd",
    }


def test_parse_octodns_escaped() -> None:
    value = dkim_txt_value("ed25519", RFC8463_P, testing=True)
    escaped = value.replace(";", "\\;")
    assert parse_dkim_txt(escaped) == parse_dkim_txt(value)


def test_parse_empty_value_and_trailing_semicolon() -> None:
    assert parse_dkim_txt("v=DKIM1; p=;") == {"v": "DKIM1", "p": ""}


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("", "empty tag-spec"),
        ("v=DKIM1;; p=x", "empty tag-spec at position 2"),
        ("v=DKIM1; p", "no '='"),
        ("1v=x", "invalid tag name"),
        ("v=DKIM1; p=a; p=b", "duplicate tag 'p'"),
        ("v=DKIM1; n=caf\u00e9", "invalid characters"),
    ],
)
def test_parse_bad_syntax(value: str, needle: str) -> None:
    with pytest.raises(DkimKeyError, match=needle):
        parse_dkim_txt(value)


def test_parse_error_does_not_echo_value() -> None:
    secretish = "A" * 40 + "\u00e9"
    with pytest.raises(DkimKeyError) as info:
        parse_dkim_txt(f"v=DKIM1; p={secretish}")
    assert "AAAA" not in str(info.value)


def test_parse_key_record_rules() -> None:
    with pytest.raises(DkimKeyError, match="first"):
        parse_key_record(f"k=ed25519; v=DKIM1; p={RFC8463_P}")
    with pytest.raises(DkimKeyError, match="required"):
        parse_key_record("v=DKIM1; k=ed25519")
    with pytest.raises(DkimKeyError, match="service"):
        parse_key_record(f"k=ed25519; s=web; p={RFC8463_P}")
    record = parse_key_record(f"k=ed25519; s=web:email; t=y:s; h=sha256; p={RFC8463_P}")
    assert record.testing and record.flags == ("y", "s")
    assert record.services == ("web", "email") and record.hash_algorithms == ("sha256",)
    # k= defaults to rsa (RFC 6376 §3.6.1): an Ed25519 p= without k= is then not a valid key.
    with pytest.raises(DkimKeyError, match="RSA"):
        parse_key_record(f"v=DKIM1; p={RFC8463_P}")


# --- matching -------------------------------------------------------------------------------


def test_public_key_matches() -> None:
    a = generate_private_key("ed25519")
    b = generate_private_key("ed25519")
    assert public_key_matches(a, public_key_b64(a))
    assert not public_key_matches(a, public_key_b64(b))
    assert not public_key_matches(a, "")  # revoked
    assert not public_key_matches(a, "%%%")
    assert not public_key_matches(a, public_key_b64(generate_private_key("rsa")))


def test_public_key_from_b64_pkcs1_form(rsa2048: rsa.RSAPrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    pkcs1 = rsa2048.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    p = base64.b64encode(pkcs1).decode()
    assert public_key_b64(public_key_from_b64("rsa", p)) == public_key_b64(rsa2048)
    assert public_key_matches(rsa2048, p)


# --- PEM ------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
@pytest.mark.parametrize("passphrase", [None, b"correct horse"])
def test_pem_round_trip(algorithm: str, passphrase: bytes | None) -> None:
    key = generate_private_key(algorithm)  # type: ignore[arg-type]
    pem = private_key_to_pem(key, passphrase)
    assert pem.startswith(
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----" if passphrase else b"-----BEGIN PRIVATE KEY-----"
    )
    assert keys.pem_is_encrypted(pem) is bool(passphrase)
    loaded = private_key_from_pem(pem, passphrase)
    assert public_key_b64(loaded) == public_key_b64(key)


def test_pem_plain_key_loads_even_with_passphrase() -> None:
    key = generate_private_key("ed25519")
    loaded = private_key_from_pem(private_key_to_pem(key, None), b"unused")
    assert public_key_b64(loaded) == public_key_b64(key)


def _assert_no_key_material(message: str, pem: bytes) -> None:
    assert "PRIVATE KEY" not in message
    for line in pem.decode().splitlines()[1:-1]:
        assert line[:16] not in message


def test_pem_wrong_passphrase() -> None:
    pem = private_key_to_pem(generate_private_key("ed25519"), b"right")
    with pytest.raises(DkimKeyError, match="wrong passphrase") as info:
        private_key_from_pem(pem, b"wrong")
    _assert_no_key_material(str(info.value), pem)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_pem_missing_passphrase() -> None:
    pem = private_key_to_pem(generate_private_key("rsa"), b"right")
    with pytest.raises(DkimKeyError, match="encrypted and no passphrase") as info:
        private_key_from_pem(pem, None)
    _assert_no_key_material(str(info.value), pem)


def test_pem_corrupt() -> None:
    pem = private_key_to_pem(generate_private_key("rsa"), None)
    corrupt = pem[:200] + pem[260:]
    with pytest.raises(DkimKeyError, match="not a valid PEM private key") as info:
        private_key_from_pem(corrupt, None)
    _assert_no_key_material(str(info.value), pem)
    with pytest.raises(DkimKeyError, match="not a valid PEM"):
        private_key_from_pem(b"", None)


def test_pem_other_key_type_refused() -> None:
    from cryptography.hazmat.primitives import serialization

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(DkimKeyError, match="unsupported private key type"):
        private_key_from_pem(pem, None)


def test_pem_empty_passphrase_refused() -> None:
    with pytest.raises(DkimKeyError, match="empty"):
        private_key_to_pem(generate_private_key("ed25519"), b"")


# --- dkimpy interop -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
@pytest.mark.parametrize("testing", [False, True])
def test_dkimpy_sign_verify(algorithm: str, testing: bool) -> None:
    key = generate_private_key(algorithm)  # type: ignore[arg-type]
    record = dkim_txt_value(algorithm, public_key_b64(key), testing=testing)  # type: ignore[arg-type]
    assert sign_and_verify(dkimpy_private_key(key), algorithm, record)


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_dkimpy_revoked_record_fails(algorithm: str) -> None:
    key = generate_private_key(algorithm)  # type: ignore[arg-type]
    revoked = dkim_txt_value(algorithm, "")  # type: ignore[arg-type]
    assert not sign_and_verify(dkimpy_private_key(key), algorithm, revoked)


def test_dkimpy_other_key_fails() -> None:
    key = generate_private_key("ed25519")
    other = dkim_txt_value("ed25519", public_key_b64(generate_private_key("ed25519")))
    assert not sign_and_verify(dkimpy_private_key(key), "ed25519", other)


def test_dkimpy_rsa_4096_and_hash_and_service_tags() -> None:
    key = generate_private_key("rsa", 4096)
    record = dkim_txt_value(
        "rsa", public_key_b64(key), hash_algorithms=["sha256"], service="email", notes="n"
    )
    assert sign_and_verify(dkimpy_private_key(key), "rsa", record)


def test_one_key_size_rule_for_every_route() -> None:
    """check_published_key is the one rule (RFC 8301 §3.2): under 1024 bits refused from
    anyone; 1024-2047 refused for a key we make or are given, a warning for a vendor's."""
    from octodns_mailauth.dkim.keys import WeakKeyError, check_published_key

    def rsa_of(bits: int) -> rsa.RSAPublicKey:
        # Keyless: only the modulus length matters here (cryptography makes no key < 1024).
        return rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 1).public_key()

    for bits in (512, 768, 1023):
        for vendor in (None, "Postmark"):
            with pytest.raises(WeakKeyError, match=f"{bits} bits, under the 1024 bits RFC 8301"):
                check_published_key(rsa_of(bits), vendor=vendor)
        # The verifier's view refuses it too: one floor.
        with pytest.raises(WeakKeyError, match="RFC 8301"):
            parse_key_record(f"v=DKIM1; k=rsa; p={public_key_b64(rsa_of(bits))}")
    for bits in (1024, 2047):
        with pytest.raises(WeakKeyError, match=f"is {bits} bits; a key we publish"):
            check_published_key(rsa_of(bits))
        warning = check_published_key(rsa_of(bits), vendor="Postmark")
        assert warning is not None
        assert f"Postmark made is {bits} bits" in warning and "RFC 8301 §3.2" in warning
        assert parse_key_record(f"v=DKIM1; p={public_key_b64(rsa_of(bits))}").bits == bits
    for key in (rsa_of(2048), rsa_of(4096), ed25519.Ed25519PrivateKey.generate().public_key()):
        assert check_published_key(key) is None
        assert check_published_key(key, vendor="Postmark") is None


def test_the_formats_and_der_loader_are_cryptographys_public_ones() -> None:
    # keys.py takes them from where `serialization` re-exports them from (its import
    # costs every `validate`); a cryptography that moved them must fail here, not drift.
    from cryptography.hazmat.primitives import serialization

    assert keys.Encoding is serialization.Encoding
    assert keys.PublicFormat is serialization.PublicFormat
    assert keys._load_der_public_key is serialization.load_der_public_key


def test_public_keys_need_no_serialization_package() -> None:
    """What `validate` does with keys (decode the state file's p= values, encode
    placeholder keys) leaves cryptography's `serialization` package unimported."""
    import subprocess
    import sys

    code = """
import sys
from octodns_mailauth.dkim import keys
rsa_p = keys.public_key_b64(keys.keyless_rsa_public_key(2048))
ed_p = keys.public_key_b64(keys.generate_private_key("ed25519"))
assert keys.key_bits(keys.public_key_from_b64("rsa", rsa_p)) == 2048
assert keys.public_key_b64(keys.public_key_from_b64("ed25519", ed_p)) == ed_p
print(sorted(m for m in sys.modules if m.startswith("cryptography.hazmat.primitives.serial")))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
