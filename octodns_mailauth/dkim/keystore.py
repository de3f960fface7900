"""The private DKIM keystore: the one place that reads and writes private keys on disk.

Layout: ``<root>/<domain>/<selector>.pem``, PKCS#8 PEM, encrypted when the passphrase
environment variable is set. Directories are 0700 and keys 0600 whatever the umask.

A key, once written, is never replaced: publishing a new public key for a selector that mail
was already signed with would break the verification of that mail, so rotation means a new
selector. Writes go to a temporary file that is then hard-linked to the final name; link(2)
fails rather than overwrite, so a key file is either absent or complete. A crash leaves at
worst a stray temporary file, whose name (leading dot, no ``.pem`` suffix) is never read as a
key and which the next ``ensure`` of that selector deletes. ``ensure`` holds
``flock(<root>/.lock)`` (processes) and a threading lock (threads), so concurrent callers
generate one key and all get it back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from .._fs import atomic_write, fsync_dir, locked, read_regular, remove_stray_temps
from ..names import MAX_SELECTOR, InvalidName, check_name, is_selector
from . import keys
from .keys import Algorithm, DkimKeyError, PrivateKey

DEFAULT_PASSPHRASE_ENV = "OCTODNS_MAILAUTH_KEY_PASSPHRASE"
KEY_SUFFIX = ".pem"
LOCK_NAME = ".lock"
DIR_MODE = 0o700
FILE_MODE = 0o600


class KeystoreError(Exception):
    """A keystore problem. The message names the path and never contains key material."""


def _check_name(kind: str, name: str) -> str:
    """The one spelling of a domain or selector on disk (DNS names are
    case-insensitive, file names are not).  LDH labels (names.py) also rule out
    '/', '..' and leading dots, so a name never escapes its directory or looks
    like a temp file; a selector is short enough for its temp file's name."""
    if isinstance(name, str) and not name.isascii():
        # Callers hand over checked names; a U-label here means a path around names.py.
        raise KeystoreError(f"invalid {kind} {name!r}: IDNs go in their xn-- form")
    try:
        normal = check_name(name, kind, min_labels=1)
    except InvalidName as e:
        raise KeystoreError(f"invalid {e}") from None
    if kind == "selector" and not is_selector(normal):
        raise KeystoreError(
            f"invalid selector {name!r}: at most {MAX_SELECTOR} characters (RFC 6376 §3.1 "
            "labels, and a file name the file system can hold)"
        )
    return normal


class Keystore:
    """Private DKIM keys under one root directory."""

    def __init__(
        self,
        root: str | Path,
        *,
        passphrase_env: str = DEFAULT_PASSPHRASE_ENV,
        create: bool = True,
    ) -> None:
        self.root = Path(root)
        self.passphrase_env = passphrase_env
        self._passphrase_checked: bytes | None | bool = False
        if not os.path.lexists(self.root):
            if not create:
                raise KeystoreError(f"keystore {self.root} does not exist")
            try:
                self.root.mkdir(parents=True, mode=DIR_MODE)
            except FileExistsError:
                pass  # created meanwhile by another process: checked below like any other
            except OSError as exc:
                raise KeystoreError(
                    f"cannot create keystore {self.root}: {exc.strerror}"
                ) from None
            else:
                os.chmod(self.root, DIR_MODE)  # mkdir's mode is filtered by the umask
        self._check_dir(self.root, what="keystore")
        try:
            os.listdir(self.root)
        except OSError as exc:
            raise KeystoreError(f"cannot read keystore {self.root}: {exc.strerror}") from None

    def __repr__(self) -> str:
        # Paths and the variable's name only: never the passphrase, never a key.
        return f"Keystore(root={str(self.root)!r}, passphrase_env={self.passphrase_env!r})"

    __str__ = __repr__

    # --- paths ---------------------------------------------------------------------------

    def path_for(self, domain: str, selector: str) -> Path:
        """``<root>/<domain>/<selector>.pem``, after checking both names."""
        return self._domain_dir(domain) / (_check_name("selector", selector) + KEY_SUFFIX)

    def _domain_dir(self, domain: str) -> Path:
        return self.root / _check_name("domain", domain)

    def exists(self, domain: str, selector: str) -> bool:
        path = self.path_for(domain, selector)
        try:
            self._check_dir(path.parent, what="domain key")  # never through a symlink
        except FileNotFoundError:
            return False
        return os.path.lexists(path)

    def domains(self) -> list[str]:
        """The domains with a key folder, sorted."""
        out = []
        for name in os.listdir(self.root):
            with contextlib.suppress(KeystoreError):
                if _check_name("domain", name) == name and not name.startswith("."):
                    out.append(name)
        return sorted(out)

    def selectors(self, domain: str) -> list[str]:
        """The selectors that have a key for ``domain``, sorted."""
        directory = self._domain_dir(domain)
        if os.path.lexists(directory):
            self._check_dir(directory, what="domain key")
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeystoreError(f"cannot list {directory}: {exc.strerror}") from None
        found = []
        for name in names:
            if not name.endswith(KEY_SUFFIX):
                continue  # temporary files and anything else that is not a key
            selector = name[: -len(KEY_SUFFIX)]
            with contextlib.suppress(KeystoreError):
                if _check_name("selector", selector) == selector:
                    found.append(selector)
        return sorted(found)

    # --- reading ---------------------------------------------------------------------------

    def _passphrase(self) -> bytes | None:
        # Read at each use, never stored: the object may be printed or pickled.
        value = os.environ.get(self.passphrase_env)
        if value is None:
            return None
        if not value:
            # An empty secret in CI usually means a missing secret; writing plaintext keys
            # then would be a silent downgrade.
            raise KeystoreError(
                f"{self.passphrase_env} is set but empty: set the passphrase or unset it"
            )
        return value.encode("utf-8")

    def check_passphrase(self) -> None:
        """Every encrypted key must open with the passphrase set now: checked before a
        key is generated, so a wrong or missing passphrase never leaves the store with
        keys under two passphrases (or new keys unencrypted beside encrypted ones)."""
        passphrase = self._passphrase()
        if self._passphrase_checked == passphrase:
            return
        for domain in self.domains():
            for selector in self.selectors(domain):
                path = self.path_for(domain, selector)
                data = self._read_bytes(path)
                if not keys.pem_is_encrypted(data):
                    continue
                if passphrase is None:
                    raise KeystoreError(
                        f"the keystore holds encrypted keys ({path}) but {self.passphrase_env} "
                        "is not set: set it, so new keys are encrypted with the same passphrase"
                    )
                try:
                    keys.private_key_from_pem(data, passphrase)
                except DkimKeyError:
                    raise KeystoreError(
                        f"the passphrase in {self.passphrase_env} does not open {path}: it is "
                        "not this keystore's passphrase (or the file is corrupt); nothing was "
                        "generated, set the keystore's passphrase and rerun"
                    ) from None
        self._passphrase_checked = passphrase

    def _check_dir(self, path: Path, *, what: str) -> None:
        try:
            # lstat: a folder of the store reached through a symbolic link could put keys
            # (or read them) anywhere; the store follows none.
            st = os.lstat(path)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and what == "domain key":
                raise  # no key for that domain: the caller says so
            raise KeystoreError(f"cannot access {what} directory {path}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise KeystoreError(
                f"{what} directory {path} is a symbolic link: the keystore follows none; "
                "point the configuration at the real folder"
            )
        if not stat.S_ISDIR(st.st_mode):
            raise KeystoreError(f"{what} path {path} is not a directory")
        if st.st_mode & 0o077:
            raise KeystoreError(
                f"{what} directory {path} is accessible to other users "
                f"(mode {stat.S_IMODE(st.st_mode):04o}): run `chmod 700 {path}`"
            )

    def load(self, domain: str, selector: str) -> PrivateKey:
        """Read and decrypt one key. The file must not be readable by group or others."""
        key = self.find(domain, selector)
        if key is None:
            raise KeystoreError(f"no DKIM key at {self.path_for(domain, selector)}")
        return key

    def find(self, domain: str, selector: str) -> PrivateKey | None:
        """The stored key, or None when there is none (`exists` then `load` in one
        look at the folder and the file: a run reads thousands of keys)."""
        path = self.path_for(domain, selector)
        data = self._read_bytes(path, missing_ok=True)
        return None if data is None else self._parse_key(path, data)

    def _read_key(self, path: Path) -> PrivateKey:
        data = self._read_bytes(path)
        assert data is not None
        return self._parse_key(path, data)

    def _parse_key(self, path: Path, data: bytes) -> PrivateKey:
        passphrase = self._passphrase()
        if keys.pem_is_encrypted(data) and passphrase is None:
            raise KeystoreError(
                f"private key {path} is encrypted: set {self.passphrase_env} to its passphrase"
            )
        try:
            return keys.private_key_from_pem(data, passphrase)
        except DkimKeyError as exc:
            hint = (
                f" (passphrase from {self.passphrase_env})" if keys.pem_is_encrypted(data) else ""
            )
            raise KeystoreError(f"cannot load {path}: {exc}{hint}") from None

    def _read_bytes(self, path: Path, *, missing_ok: bool = False) -> bytes | None:
        """A key file's bytes: a regular file (no symlink), not readable by others.
        None when it (or its domain's folder) does not exist and `missing_ok`."""
        self._check_dir(self.root, what="keystore")
        try:
            self._check_dir(path.parent, what="domain key")
            # O_NOFOLLOW: a symlink planted in the store must not redirect us to another file.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if missing_ok:
                return None
            raise KeystoreError(f"no DKIM key at {path}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise KeystoreError(f"{path} is a symlink: keys must be regular files") from None
            raise KeystoreError(f"cannot open {path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise KeystoreError(f"{path} is not a regular file")
            if st.st_mode & 0o077:
                raise KeystoreError(
                    f"private key {path} is accessible to other users "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}): run `chmod 600 {path}`"
                )
            return read_regular(fd, st.st_size)
        finally:
            os.close(fd)

    # --- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.root / LOCK_NAME
        try:
            with locked(lock_path, FILE_MODE):
                yield
        except OSError as exc:
            if exc.filename != str(lock_path):
                raise
            raise KeystoreError(f"cannot open lock file {lock_path}: {exc.strerror}") from None

    def _ensure_domain_dir(self, directory: Path) -> None:
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            pass
        except OSError as exc:
            raise KeystoreError(f"cannot create {directory}: {exc.strerror}") from None
        else:
            os.chmod(directory, DIR_MODE)  # umask-independent
            fsync_dir(self.root)
        self._check_dir(directory, what="domain key")

    def ensure(
        self, domain: str, selector: str, algorithm: Algorithm, bits: int = 2048
    ) -> tuple[PrivateKey, bool]:
        """Return ``(key, created)``: the stored key, generated first if there is none.

        An existing key is never replaced; one of another algorithm or RSA size is an error
        (rotate by choosing a new selector). Keys are encrypted at rest when the passphrase
        variable is set.
        """
        try:
            keys.check_algorithm(algorithm)
            if algorithm == "rsa":
                keys.check_rsa_bits(bits)
        except DkimKeyError as exc:
            raise KeystoreError(str(exc)) from None
        path = self.path_for(domain, selector)
        key, created = self._get_or_add(path, lambda: keys.generate_private_key(algorithm, bits))
        why = keys.key_mismatch(key, algorithm, bits)
        if why:
            raise KeystoreError(
                f"{path} already holds {why}: keys are never replaced, use a new selector "
                "for another algorithm or size"
            )
        return key, created

    def import_key(self, domain: str, selector: str, key: PrivateKey) -> bool:
        """Store a key made elsewhere (e.g. read with ``keys.private_key_from_pem``).

        True if stored; False if that very key is already there. A different key under the
        selector is an error: keys are never replaced. Encrypted at rest like ``ensure``.
        """
        try:
            algorithm = keys.algorithm_of(key)
        except DkimKeyError as exc:
            raise KeystoreError(str(exc)) from None
        path = self.path_for(domain, selector)
        stored, created = self._get_or_add(path, lambda: key)
        if keys.public_key_b64(stored) != keys.public_key_b64(key):
            raise KeystoreError(
                f"{path} already holds a different {keys.algorithm_of(stored)} key than the "
                f"{algorithm} key being imported: keys are never replaced, use a new selector"
            )
        return created

    def _get_or_add(
        self, path: Path, make_key: Callable[[], PrivateKey]
    ) -> tuple[PrivateKey, bool]:
        """The key stored at ``path``, else ``make_key()`` written there: ``(key, created)``."""
        passphrase = self._passphrase()  # fail on a bad setting before generating anything
        self._check_dir(self.root, what="keystore")
        with self._locked():
            self._ensure_domain_dir(path.parent)
            # A temp file of this selector may hold key material: remove it.
            remove_stray_temps(path)
            if os.path.lexists(path):
                return self._read_key(path), False
            self.check_passphrase()
            key = make_key()
            pem = keys.private_key_to_pem(key, passphrase)
            try:
                written = atomic_write(path, pem, FILE_MODE, overwrite=False)
            except OSError as exc:
                raise KeystoreError(f"cannot write {path}: {exc.strerror or exc}") from None
            if written:
                return key, True
            # Someone wrote the key between our check and our link (only possible where flock
            # is not honoured, e.g. some network file systems): theirs stays, as link(2) decided.
            return self._read_key(path), False
