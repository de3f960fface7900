"""The private keystore: permissions, no-overwrite, encryption at rest, crash safety, races.

Signing interop goes through dkimpy with the key as stored on disk, verified against the exact
record text dkim_txt_value() produces.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import dkim
import pytest
from dkimpy_key import dkimpy_private_key

from octodns_mailauth.dkim import keys
from octodns_mailauth.dkim.keys import algorithm_of, key_bits, private_key_to_pem, public_key_b64
from octodns_mailauth.dkim.keystore import DEFAULT_PASSPHRASE_ENV, Keystore, KeystoreError
from octodns_mailauth.records.dkim import dkim_txt_value

ENV = DEFAULT_PASSPHRASE_ENV
DOMAIN = "example.com"
MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: stored keys\r\n"
    b"Message-ID: <2@example.com>\r\n"
    b"\r\n"
    b"Hello.\r\n"
)
SIG_ALG = {"ed25519": b"ed25519-sha256", "rsa": b"rsa-sha256"}
IS_ROOT = os.geteuid() == 0


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def key_files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


def assert_clean_error(message: str, *secrets: bytes | str) -> None:
    """The message holds no PEM and no line of any given secret."""
    assert "PRIVATE KEY" not in message
    for secret in secrets:
        text = secret.decode() if isinstance(secret, bytes) else secret
        for line in text.splitlines():
            if len(line) >= 8 and not line.startswith("-----"):
                assert line[:16] not in message


@pytest.fixture(autouse=True)
def no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keys")


@pytest.fixture
def umask():
    """Set a umask for the test and restore the previous one."""
    saved = os.umask(0o022)  # the only way to read the umask is to set it
    try:
        yield os.umask
    finally:
        os.umask(saved)


# --- the root and the layout ---------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277])
def test_permissions_independent_of_umask(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    ks = Keystore(tmp_path / "keys")
    ks.ensure(DOMAIN, "sel", "ed25519")
    assert mode(ks.root) == 0o700
    assert mode(ks.root / DOMAIN) == 0o700
    assert mode(ks.path_for(DOMAIN, "sel")) == 0o600
    assert mode(ks.root / ".lock") == 0o600


def test_missing_root_without_create(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match=f"keystore {tmp_path / 'nope'} does not exist"):
        Keystore(tmp_path / "nope", create=False)
    assert not (tmp_path / "nope").exists()


def test_existing_root_with_create_false(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir(mode=0o700)
    os.chmod(tmp_path / "keys", 0o700)
    assert Keystore(tmp_path / "keys", create=False).selectors(DOMAIN) == []


@pytest.mark.parametrize("wide", [0o755, 0o750, 0o701])
def test_wide_root_refused(tmp_path: Path, wide: int) -> None:
    root = tmp_path / "keys"
    root.mkdir()
    os.chmod(root, wide)
    with pytest.raises(KeystoreError, match=f"chmod 700 {root}"):
        Keystore(root)


def test_root_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(KeystoreError, match="is not a directory"):
        Keystore(tmp_path / "file")


@pytest.mark.skipif(IS_ROOT, reason="root can read any directory")
def test_unreadable_root(tmp_path: Path) -> None:
    root = tmp_path / "keys"
    root.mkdir()
    os.chmod(root, 0o300)
    try:
        with pytest.raises(KeystoreError, match=f"cannot read keystore {root}"):
            Keystore(root)
    finally:
        os.chmod(root, 0o700)


def test_unlistable_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same path as test_unreadable_root, reachable when the tests run as root.
    def denied(path: object) -> list[str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "listdir", denied)
    with pytest.raises(KeystoreError, match="cannot read keystore .*: Permission denied"):
        Keystore(tmp_path / "keys")


def test_path_for(store: Keystore) -> None:
    assert (
        store.path_for("Example.COM.", "Sel-1.2026") == store.root / "example.com/sel-1.2026.pem"
    )
    assert (
        store.path_for("xn--bcher-kva.example", "s") == store.root / "xn--bcher-kva.example/s.pem"
    )


@pytest.mark.parametrize(
    "selector",
    ["", "..", "../x", "a/b", ".hidden", "a..b", "-a", "a-", "a_b", "sélecteur", "a" * 64, "a b"],
)
def test_bad_selector(store: Keystore, selector: str) -> None:
    with pytest.raises(KeystoreError, match="invalid selector"):
        store.path_for(DOMAIN, selector)


@pytest.mark.parametrize("domain", ["", ".", "..", "../etc", "a/b", "ex ample.com", "bücher.de"])
def test_bad_domain(store: Keystore, domain: str) -> None:
    with pytest.raises(KeystoreError, match="invalid domain"):
        store.path_for(domain, "sel")


def test_repr_has_no_secrets(store: Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "hunter2-passphrase")
    key, _ = store.ensure(DOMAIN, "sel", "ed25519")
    pem = private_key_to_pem(key, None)
    for text in (repr(store), str(store)):
        assert "hunter2" not in text
        assert_clean_error(text, pem)
        assert str(store.root) in text and ENV in text


# --- ensure ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "bits"), [("ed25519", 2048), ("rsa", 2048), ("rsa", 4096)])
def test_ensure_creates_then_returns_same_key(store: Keystore, algorithm: str, bits: int) -> None:
    key, created = store.ensure(DOMAIN, "sel", algorithm, bits)  # type: ignore[arg-type]
    assert created
    assert algorithm_of(key) == algorithm
    if algorithm == "rsa":
        assert key_bits(key) == bits
    path = store.path_for(DOMAIN, "sel")
    before = path.read_bytes()
    inode = os.stat(path).st_ino
    assert before.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, plain

    again, created_again = store.ensure(DOMAIN, "sel", algorithm, bits)  # type: ignore[arg-type]
    assert not created_again
    assert public_key_b64(again) == public_key_b64(key)
    assert path.read_bytes() == before and os.stat(path).st_ino == inode
    assert public_key_b64(store.load(DOMAIN, "sel")) == public_key_b64(key)
    assert store.exists(DOMAIN, "sel") and store.exists("EXAMPLE.com", "SEL")


def test_ensure_other_algorithm_refused(store: Keystore) -> None:
    store.ensure(DOMAIN, "sel", "ed25519")
    before = store.path_for(DOMAIN, "sel").read_bytes()
    with pytest.raises(KeystoreError, match="already holds an ed25519 key, not rsa"):
        store.ensure(DOMAIN, "sel", "rsa")
    assert store.path_for(DOMAIN, "sel").read_bytes() == before


def test_ensure_other_rsa_size_refused(store: Keystore) -> None:
    store.ensure(DOMAIN, "sel", "rsa", 2048)
    before = store.path_for(DOMAIN, "sel").read_bytes()
    with pytest.raises(KeystoreError, match="already holds an RSA key of 2048 bits, not 3072"):
        store.ensure(DOMAIN, "sel", "rsa", 3072)
    assert store.path_for(DOMAIN, "sel").read_bytes() == before


@pytest.mark.parametrize(("bits", "needle"), [(1024, "RFC 8301"), (8192, "too large")])
def test_ensure_bad_size_writes_nothing(store: Keystore, bits: int, needle: str) -> None:
    with pytest.raises(KeystoreError, match=needle):
        store.ensure(DOMAIN, "sel", "rsa", bits)
    assert key_files(store.root / DOMAIN) == []


def test_ensure_unknown_algorithm(store: Keystore) -> None:
    with pytest.raises(KeystoreError, match="unknown DKIM key algorithm"):
        store.ensure(DOMAIN, "sel", "dsa")  # type: ignore[arg-type]


def test_selectors(store: Keystore) -> None:
    assert store.selectors(DOMAIN) == []
    for selector in ("b2026", "a2025", "x.y"):
        store.ensure(DOMAIN, selector, "ed25519")
    store.ensure("other.example", "c", "ed25519")
    directory = store.root / DOMAIN
    # Leftovers and strangers are not keys.
    (directory / ".b2026.pem.0123456789abcdef.tmp").write_bytes(b"partial")
    (directory / "README").write_text("x")
    (directory / "Upper.pem").write_text("x")
    assert store.selectors(DOMAIN) == ["a2025", "b2026", "x.y"]
    assert store.selectors("other.example") == ["c"]


def test_wide_domain_dir_refused(store: Keystore) -> None:
    store.ensure(DOMAIN, "sel", "ed25519")
    os.chmod(store.root / DOMAIN, 0o755)
    with pytest.raises(KeystoreError, match=f"chmod 700 {store.root / DOMAIN}"):
        store.load(DOMAIN, "sel")
    with pytest.raises(KeystoreError, match="chmod 700"):
        store.ensure(DOMAIN, "sel2", "ed25519")


def test_import_key(store: Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    data = Path(__file__).parent / "data" / "dkim"
    legacy = keys.private_key_from_pem((data / "2048_testkey.key").read_bytes(), None)  # PKCS#1
    monkeypatch.setenv(ENV, "pw")
    assert store.import_key(DOMAIN, "legacy", legacy) is True
    path = store.path_for(DOMAIN, "legacy")
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert mode(path) == 0o600
    assert public_key_b64(store.load(DOMAIN, "legacy")) == public_key_b64(legacy)
    assert store.import_key(DOMAIN, "legacy", legacy) is False  # same key: nothing to do
    with pytest.raises(KeystoreError, match="already holds a different rsa key"):
        store.import_key(DOMAIN, "legacy", keys.generate_private_key("ed25519"))
    assert public_key_b64(store.load(DOMAIN, "legacy")) == public_key_b64(legacy)


def test_import_other_key_type_refused(store: Keystore) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(KeystoreError, match="unsupported key type"):
        store.import_key(DOMAIN, "sel", ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]
    assert not store.exists(DOMAIN, "sel")


# --- load -----------------------------------------------------------------------------------


def test_load_missing(store: Keystore) -> None:
    with pytest.raises(KeystoreError, match="no DKIM key at .*example.com/sel.pem"):
        store.load(DOMAIN, "sel")
    store.ensure(DOMAIN, "other", "ed25519")
    with pytest.raises(KeystoreError, match="no DKIM key at"):
        store.load(DOMAIN, "sel")


@pytest.mark.parametrize("wide", [0o644, 0o640, 0o604, 0o660])
def test_load_world_readable_refused(store: Keystore, wide: int) -> None:
    store.ensure(DOMAIN, "sel", "rsa")
    path = store.path_for(DOMAIN, "sel")
    os.chmod(path, wide)
    with pytest.raises(KeystoreError, match=f"chmod 600 {path}") as info:
        store.load(DOMAIN, "sel")
    assert_clean_error(str(info.value), path.read_bytes())
    os.chmod(path, 0o400)  # read-only for the owner is as private as 0600
    store.load(DOMAIN, "sel")


def test_load_symlink_refused(store: Keystore, tmp_path: Path) -> None:
    key, _ = store.ensure(DOMAIN, "real", "ed25519")
    os.symlink(store.path_for(DOMAIN, "real"), store.path_for(DOMAIN, "link"))
    with pytest.raises(KeystoreError, match="is a symlink"):
        store.load(DOMAIN, "link")


def test_load_corrupt(store: Keystore) -> None:
    store.ensure(DOMAIN, "sel", "rsa")
    path = store.path_for(DOMAIN, "sel")
    good = path.read_bytes()
    path.write_bytes(good[:300] + good[400:])
    with pytest.raises(KeystoreError, match=f"cannot load {path}: not a valid PEM") as info:
        store.load(DOMAIN, "sel")
    assert_clean_error(str(info.value), good)
    # ensure must not "repair" it by generating over it either.
    with pytest.raises(KeystoreError, match="not a valid PEM"):
        store.ensure(DOMAIN, "sel", "rsa")
    assert path.read_bytes() == good[:300] + good[400:]


# --- encryption at rest ---------------------------------------------------------------------


def test_encrypted_at_rest(store: Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "s3cret passphrase")
    key, created = store.ensure(DOMAIN, "sel", "ed25519")
    assert created
    pem = store.path_for(DOMAIN, "sel").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert public_key_b64(store.load(DOMAIN, "sel")) == public_key_b64(key)
    again, created = store.ensure(DOMAIN, "sel", "ed25519")
    assert not created and public_key_b64(again) == public_key_b64(key)


def test_encrypted_missing_passphrase(store: Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "s3cret")
    store.ensure(DOMAIN, "sel", "rsa")
    monkeypatch.delenv(ENV)
    path = store.path_for(DOMAIN, "sel")
    with pytest.raises(KeystoreError, match=f"{path} is encrypted: set {ENV}") as info:
        store.load(DOMAIN, "sel")
    assert_clean_error(str(info.value), path.read_bytes())
    with pytest.raises(KeystoreError, match=f"set {ENV}"):
        store.ensure(DOMAIN, "sel", "rsa")


def test_encrypted_wrong_passphrase(store: Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "right")
    store.ensure(DOMAIN, "sel", "ed25519")
    monkeypatch.setenv(ENV, "wrong")
    path = store.path_for(DOMAIN, "sel")
    with pytest.raises(KeystoreError, match="wrong passphrase") as info:
        store.load(DOMAIN, "sel")
    message = str(info.value)
    assert str(path) in message and ENV in message and "right" not in message
    assert_clean_error(message, path.read_bytes())


def test_empty_passphrase_refused(store: Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "")
    with pytest.raises(KeystoreError, match=f"{ENV} is set but empty"):
        store.ensure(DOMAIN, "sel", "ed25519")
    assert key_files(store.root / DOMAIN) == []


def test_custom_passphrase_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY_PASS", "pw")
    ks = Keystore(tmp_path / "k", passphrase_env="MY_KEY_PASS")
    ks.ensure(DOMAIN, "sel", "ed25519")
    assert keys.pem_is_encrypted(ks.path_for(DOMAIN, "sel").read_bytes())
    monkeypatch.delenv("MY_KEY_PASS")
    with pytest.raises(KeystoreError, match="set MY_KEY_PASS"):
        ks.load(DOMAIN, "sel")


def test_plain_key_still_loads_once_passphrase_set(
    store: Keystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = store.ensure(DOMAIN, "old", "ed25519")
    monkeypatch.setenv(ENV, "new passphrase")
    assert public_key_b64(store.load(DOMAIN, "old")) == public_key_b64(key)
    store.ensure(DOMAIN, "new", "ed25519")
    assert keys.pem_is_encrypted(store.path_for(DOMAIN, "new").read_bytes())


# --- dkimpy: sign with the stored key, verify against our record ---------------------------


def _verify(privkey: bytes, algorithm: str, selector: str, record: str) -> bool:
    signature = dkim.sign(
        MESSAGE,
        selector.encode(),
        DOMAIN.encode(),
        privkey=privkey,
        linesep=b"\r\n",
        signature_algorithm=SIG_ALG[algorithm],
    )
    name = f"{selector}._domainkey.{DOMAIN}.".encode()

    def dnsfunc(qname: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if qname == name else None

    return bool(dkim.verify(signature + MESSAGE, dnsfunc=dnsfunc))


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
@pytest.mark.parametrize("passphrase", [None, "at rest"])
def test_dkimpy_signs_with_stored_key(
    store: Keystore, monkeypatch: pytest.MonkeyPatch, algorithm: str, passphrase: str | None
) -> None:
    if passphrase:
        monkeypatch.setenv(ENV, passphrase)
    store.ensure(DOMAIN, "s2026", algorithm)  # type: ignore[arg-type]
    # A fresh store object, as a later run would have: everything comes from disk.
    key = Keystore(store.root, create=False).load(DOMAIN, "s2026")
    record = dkim_txt_value(algorithm, public_key_b64(key))  # type: ignore[arg-type]
    assert _verify(dkimpy_private_key(key), algorithm, "s2026", record)
    if algorithm == "rsa" and not passphrase:
        # The file as stored is itself a PEM dkimpy can sign with.
        pem = store.path_for(DOMAIN, "s2026").read_bytes()
        assert _verify(pem, algorithm, "s2026", record)
    revoked = dkim_txt_value(algorithm, "")  # type: ignore[arg-type]
    assert not _verify(dkimpy_private_key(key), algorithm, "s2026", revoked)


# --- crash safety ---------------------------------------------------------------------------


def test_link_failure_leaves_no_key_and_no_temp(
    store: Keystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_link(src: object, dst: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "link", broken_link)
    path = store.path_for(DOMAIN, "sel")
    with pytest.raises(KeystoreError, match=f"cannot write {path}: Input/output error"):
        store.ensure(DOMAIN, "sel", "ed25519")
    assert key_files(store.root / DOMAIN) == []
    monkeypatch.undo()
    key, created = store.ensure(DOMAIN, "sel", "ed25519")
    assert created and store.load(DOMAIN, "sel") is not None


def test_no_hardlinks_falls_back_to_rename(
    store: Keystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    key, created = store.ensure(DOMAIN, "sel", "ed25519")
    assert created
    assert key_files(store.root / DOMAIN) == ["sel.pem"]
    assert mode(store.path_for(DOMAIN, "sel")) == 0o600
    again, created = store.ensure(DOMAIN, "sel", "ed25519")
    assert not created and public_key_b64(again) == public_key_b64(key)


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from octodns_mailauth.dkim.keystore import Keystore

    point = sys.argv[2]
    if point == "before-link":
        def link(src, dst):
            os.kill(os.getpid(), signal.SIGKILL)
        os.link = link
    elif point == "mid-write":
        real_write = os.write
        def write(fd, data):
            real_write(fd, bytes(data[: len(data) // 2]))
            os.kill(os.getpid(), signal.SIGKILL)
        os.write = write
    Keystore(sys.argv[1]).ensure("example.com", "sel", sys.argv[3])
    """
)


@pytest.mark.parametrize("point", ["before-link", "mid-write"])
@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_sigkill_during_write(store: Keystore, point: str, algorithm: str) -> None:
    """A process killed mid-ensure leaves no key (never a partial one); ensure then works."""
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH_SCRIPT, str(store.root), point, algorithm],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    directory = store.root / DOMAIN
    leftovers = key_files(directory)
    assert len(leftovers) == 1 and leftovers[0].startswith(".sel.pem.")
    assert leftovers[0].endswith(".tmp")
    assert not store.exists(DOMAIN, "sel")
    assert store.selectors(DOMAIN) == []
    with pytest.raises(KeystoreError, match="no DKIM key"):
        store.load(DOMAIN, "sel")

    key, created = store.ensure(DOMAIN, "sel", algorithm)  # type: ignore[arg-type]
    assert created
    # The leftover (possibly key material) was removed under the lock.
    assert key_files(directory) == ["sel.pem"]
    assert public_key_b64(store.load(DOMAIN, "sel")) == public_key_b64(key)


def test_racer_without_lock_wins_link(store: Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    """If another writer slips in between our check and our link, its key is kept and returned.

    flock makes this impossible between keystores that honour it; link(2) is what still
    guarantees no overwrite where flock is not honoured (some network file systems).
    """
    racer = keys.generate_private_key("ed25519")
    real_generate = keys.generate_private_key

    def generate_while_racer_writes(algorithm: str, bits: int = 2048):  # type: ignore[no-untyped-def]
        path = store.path_for(DOMAIN, "sel")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, private_key_to_pem(racer, None))
        os.close(fd)
        return real_generate(algorithm, bits)  # type: ignore[arg-type]

    monkeypatch.setattr(keys, "generate_private_key", generate_while_racer_writes)
    key, created = store.ensure(DOMAIN, "sel", "ed25519")
    assert not created
    assert public_key_b64(key) == public_key_b64(racer)
    assert key_files(store.root / DOMAIN) == ["sel.pem"]


# --- concurrency ----------------------------------------------------------------------------


def test_ensure_waits_for_the_file_lock(store: Keystore) -> None:
    """ensure takes flock(<root>/.lock): while another process holds it, nothing is written."""
    import fcntl

    fd = os.open(store.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another descriptor: conflicts like another process
    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (store.ensure(DOMAIN, "sel", "ed25519"), done.set()), daemon=True
    )
    try:
        worker.start()
        assert not done.wait(0.5), "ensure ran while the lock was held"
        assert not store.exists(DOMAIN, "sel")
    finally:
        os.close(fd)  # releases the lock
    assert done.wait(30)
    assert store.exists(DOMAIN, "sel")


def test_threads_ensure_one_key(store: Keystore) -> None:
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        key, created = store.ensure(DOMAIN, "sel", "rsa")
        results.append((public_key_b64(key), created))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 8
    assert len({pub for pub, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert key_files(store.root / DOMAIN) == ["sel.pem"]


def _process_worker(root: str, barrier, queue) -> None:  # type: ignore[no-untyped-def]
    # Its own Keystore, as a separate octoDNS run would have.
    ks = Keystore(root)
    barrier.wait()
    key, created = ks.ensure(DOMAIN, "sel", "rsa", 2048)
    queue.put((public_key_b64(key), created))


@pytest.mark.parametrize("passphrase", [None, "shared"])
def test_processes_ensure_one_key(
    store: Keystore, monkeypatch: pytest.MonkeyPatch, passphrase: str | None
) -> None:
    if passphrase:
        monkeypatch.setenv(ENV, passphrase)  # inherited by the spawned children
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier = ctx.Barrier(n)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(str(store.root), barrier, queue))
        for _ in range(n)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in range(n)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert len({pub for pub, _ in results}) == 1, "every process got the same key"
    assert sum(created for _, created in results) == 1, "exactly one process generated it"
    assert key_files(store.root / DOMAIN) == ["sel.pem"]
    assert public_key_b64(store.load(DOMAIN, "sel")) == results[0][0]
