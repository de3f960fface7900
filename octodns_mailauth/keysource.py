"""Where compile gets DKIM public keys: the keystore edge.

`KeystoreKeys` generates a missing key in memory, stored by `commit` (never
replacing one), and checks a public key in the policy against the private key.
It opens the keystore folder only when a key is needed, so validating a
policy writes nothing.  `PlaceholderKeys` never writes: it lets `octodns-validate`
and the CLI compile a policy whose keys are not generated yet.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

from .dkim.keys import (
    DkimKeyError,
    check_published_key,
    generate_private_key,
    key_mismatch,
    keyless_rsa_public_key,
    public_key_b64,
    public_key_matches,
)
from .dkim.keystore import DEFAULT_PASSPHRASE_ENV, Keystore, KeystoreError
from .errors import KeyUnavailable
from .names import at_and_above, normalize
from .policy.dkim import DkimKey


class KeystoreKeys:
    def __init__(
        self,
        root: str | Path | None,
        *,
        passphrase_env: str = DEFAULT_PASSPHRASE_ENV,
        generate: bool = True,
    ) -> None:
        self.root = Path(root) if root is not None else None
        self.passphrase_env = passphrase_env
        self.generate = generate
        # A key generated while planning stays in memory (`pending`) until `commit`,
        # so a plan that is refused, or only shown, writes nothing.
        self.pending: dict[tuple[str, str], Any] = {}
        # The pending keys by every name at or above their domain: a zone's plan
        # finds its own (pending_under) without scanning every pending key, which
        # a first sync of thousands of domains would do once per zone.
        self._pending_by_name: dict[str, dict[tuple[str, str], None]] = {}
        self._pending_lock = threading.Lock()
        self._lock = threading.Lock()  # the store; each domain's keys have a lock of their own
        self._domain_locks: dict[str, threading.Lock] = {}
        self._store: Keystore | None = None
        # Each key is read and parsed once per run: the processor compiles every
        # policy twice (a dry compile in __init__, then the real one).
        self._loaded: dict[tuple[str, str], Any] = {}
        # Fail now, with the reason, if the keystore could never be used.
        if self.root is not None and self.root.exists():
            self.store(create=False)
        elif self.root is not None and not self.root.parent.is_dir():
            raise KeyUnavailable(
                f"DKIM keystore {self.root} cannot be created: its parent folder "
                f"{self.root.parent} does not exist (paths are relative to the working "
                f"directory {Path.cwd()})"
            )

    def __repr__(self) -> str:
        return f"KeystoreKeys(root={str(self.root)!r}, generate={self.generate})"

    def store(self, *, create: bool) -> Keystore | None:
        with self._lock:
            if self._store is None and self.root is not None:
                if not create and not self.root.exists():
                    return None
                try:
                    self._store = Keystore(
                        self.root, passphrase_env=self.passphrase_env, create=create
                    )
                except KeystoreError as e:
                    raise KeyUnavailable(f"DKIM keystore: {e}") from None
            return self._store

    def public_key(self, domain: str, key: DkimKey) -> str:
        if self.root is None:
            if key.public_key:
                return key.public_key
            raise KeyUnavailable(
                f"DKIM selector {key.selector} has no public_key in the policy and no keystore "
                "is configured; set `keys:` in the processor config or paste the p= value as "
                "public_key"
            )
        with self._lock:
            domain_lock = self._domain_locks.setdefault(domain, threading.Lock())
        with domain_lock:
            private = self._loaded.get((domain, key.selector))
            if private is None:
                private = self._private(domain, key)
                if private is None:
                    # The pipeline publishes from the policy; the private key lives elsewhere.
                    return key.public_key  # type: ignore[return-value]
                self._loaded[(domain, key.selector)] = private
        _check_algorithm(private, key)
        if key.public_key and not public_key_matches(private, key.public_key):
            # The same check guards `public_key:` in a policy and `p:` in the rotation state.
            raise KeyUnavailable(
                f"the published public key (p=) of selector {key.selector} does not match the "
                f"private key in the keystore ({self.root}/{domain}/{key.selector}.pem); "
                "publish the keystore's key or fix the policy / state file"
            )
        return public_key_b64(private)

    def _private(self, domain: str, key: DkimKey) -> Any:
        """The stored (or newly generated) private key; None when the policy's
        public_key is to be published without one."""
        try:
            store = self.store(create=False)
            stored = store.find(domain, key.selector) if store is not None else None
            if stored is not None:
                return stored
            if key.public_key:
                return None
            if not self.generate:
                raise KeyUnavailable(
                    f"no DKIM key for selector {key.selector} of {domain} in {self.root}; "
                    "run `octodns-mailauth dkim keygen --config <your octoDNS config>` "
                    "where the keystore lives (or set generate_keys: true when it is on "
                    "this machine)"
                )
            if store is not None:
                store.check_passphrase()  # a wrong one fails now, not after generating
            private = generate_private_key(key.algorithm, key.bits)
            self._add_pending(domain, key.selector, private)
            return private
        except (KeystoreError, DkimKeyError) as e:
            raise KeyUnavailable(str(e)) from None

    def commit(self, selectors: set[tuple[str, str]]) -> list[tuple[str, str]]:
        """Write the pending keys among `selectors` ((domain, selector) pairs) to
        the keystore, before the plan publishing them is applied; the ones written."""
        # Not under self._lock: store() takes it.  The keystore's own lock makes
        # concurrent imports of one key safe (import_key keeps the first, same key).
        todo = sorted(k for k in selectors if k in self.pending)
        if not todo:
            return []
        try:
            store = self.store(create=True)
            assert store is not None
            for domain, selector in todo:
                key = self.pending.get((domain, selector))
                if key is not None:
                    store.import_key(domain, selector, key)
                    self._drop_pending(domain, selector)
        except KeystoreError as e:
            raise KeyUnavailable(f"DKIM keystore: {e}") from None
        return todo

    def pending_under(self, zone: str) -> list[tuple[str, str]]:
        """The pending (domain, selector) pairs of `zone` and the domains below it."""
        with self._pending_lock:
            return list(self._pending_by_name.get(normalize(zone), ()))

    def _add_pending(self, domain: str, selector: str, private: Any) -> None:
        with self._pending_lock:
            self.pending[(domain, selector)] = private
            for name in at_and_above(domain):
                self._pending_by_name.setdefault(name, {})[(domain, selector)] = None

    def _drop_pending(self, domain: str, selector: str) -> None:
        with self._pending_lock:
            self.pending.pop((domain, selector), None)
            for name in at_and_above(domain):
                self._pending_by_name.get(name, {}).pop((domain, selector), None)


def _check_algorithm(private: Any, key: DkimKey) -> None:
    try:  # a weak key first: its fix is a new key, whatever size the policy declares
        check_published_key(private.public_key())
    except DkimKeyError as e:
        raise KeyUnavailable(f"the stored key for selector {key.selector}: {e}") from None
    why = key_mismatch(private, key.algorithm, key.bits)
    if why:
        raise KeyUnavailable(
            f"the stored key for selector {key.selector} is {why} as the policy says; a "
            "selector never changes algorithm or size: use a new selector"
        )


@functools.lru_cache(maxsize=8)
def placeholder_public_key(algorithm: str, bits: int) -> str:
    """A throwaway public key of the right shape, kept in memory only: it lets a
    policy whose key is not generated yet compile (planning, `validate`, `records`).

    RSA: a public key of exactly `bits` bits built from fixed numbers, with no
    private key behind it; generating one would cost `validate` (run at every
    commit) more than everything else it does."""
    if algorithm == "rsa":
        return public_key_b64(keyless_rsa_public_key(bits))
    return public_key_b64(generate_private_key(algorithm, bits))  # type: ignore[arg-type]


class PlaceholderKeys:
    """Public keys where they exist, a placeholder where the key would be generated
    (never stored).  Remembers which (domain, selector) got one, so output can mark
    them.  `generate` defaults to whether `inner` would generate keys."""

    def __init__(self, inner: KeystoreKeys, *, generate: bool | None = None) -> None:
        self.inner = inner
        self.generate = inner.generate and inner.root is not None if generate is None else generate
        self.placeholders: list[tuple[str, str]] = []
        self._domains: set[str] = set()

    def used(self, domain: str) -> bool:
        """Whether `domain` got a placeholder."""
        return domain in self._domains

    def public_key(self, domain: str, key: DkimKey) -> str:
        if not key.public_key and self.generate:
            store = self.inner.store(create=False) if self.inner.root is not None else None
            if store is None or not store.exists(domain, key.selector):
                self.placeholders.append((domain, key.selector))
                self._domains.add(domain)
                return placeholder_public_key(key.algorithm, key.bits)
        # A key that would not be generated is an error now, not at sync time.
        return self.inner.public_key(domain, key)
