"""Load policies and compile them the way the processor does, for the CLI.

The same compile step, catalog, SPF lock and keystore as `MailAuthProcessor`,
so the CLI cannot disagree with what `octodns-sync` publishes.  The CLI never
writes a key: where the keystore has none yet, a placeholder of the right
shape stands in and the output says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..findings import Finding, Location, Severity
from ..policy.loader import LoadedPolicy
from .settings import Settings, UsageError, require_policies


class CliKeys:
    """Public keys from the keystore or the policy; a placeholder (never stored)
    where the processor would generate a key.  Remembers which selectors used one."""

    def __init__(self, settings: Settings) -> None:
        from ..keysource import KeystoreKeys

        self.inner = KeystoreKeys(
            settings.keys, passphrase_env=settings.passphrase_env, generate=False
        )
        self.placeholders: list[tuple[str, str]] = []

    def public_key(self, domain: str, key: Any) -> str:
        from ..keysource import _placeholder

        if not key.public_key:
            store = self.inner.store(create=False) if self.inner.root is not None else None
            if store is None or not store.exists(domain, key.selector):
                self.placeholders.append((domain, key.selector))
                return _placeholder(key.algorithm, key.bits)
        return self.inner.public_key(domain, key)


@dataclass
class Workspace:
    settings: Settings
    policies: list[LoadedPolicy]
    load_findings: list[Finding] = field(default_factory=list)
    _catalog: Any = None
    _resolver: Any = None
    _resolver_loaded: bool = False
    _dkim_state: Any = None
    _keys: CliKeys | None = None

    @property
    def catalog(self) -> Any:
        if self._catalog is None:
            from ..catalog import load_catalog

            self._catalog = load_catalog(self.settings.catalog)
        return self._catalog

    def policies_dir(self) -> Path:
        if self.settings.policies is not None:
            return self.settings.policies
        if self.policies:
            return Path(self.policies[0].path).parent
        return Path.cwd()

    @property
    def resolver(self) -> Any:
        """The offline SPF lock (or None when there is none yet)."""
        if not self._resolver_loaded:
            from ..spf.lock import open_lock

            self._resolver = open_lock(self.settings.spf_lock, self.policies_dir())
            self._resolver_loaded = True
        return self._resolver

    @property
    def dkim_state(self) -> Any:
        if self._dkim_state is None:
            from ..dkim.rotation import load_rotation_state

            self._dkim_state = load_rotation_state(self.settings.dkim_state, self.policies_dir())
        return self._dkim_state

    @property
    def keys(self) -> CliKeys:
        if self._keys is None:
            self._keys = CliKeys(self.settings)
        return self._keys

    def compile(self, lp: LoadedPolicy, zone: Any = None) -> Any:
        from ..compile import compile_policy

        return compile_policy(
            lp, self.catalog, self.keys, self.resolver, zone, dkim_state=self.dkim_state
        )

    def policy_for(self, domain: str) -> LoadedPolicy:
        from ..names import normalize

        wanted = normalize(domain)
        for lp in self.policies:
            if lp.domain == wanted:
                return lp
        known = ", ".join(sorted(lp.domain for lp in self.policies)) or "none"
        raise UsageError(f"no policy for {wanted} in {self.policies_dir()} (policies: {known})")

    def zone_for(self, domain: str) -> str:
        """The configured zone holding `domain` (longest suffix), else the domain."""
        from ..names import relative_to

        best = None
        for zone in self.settings.zones or []:
            if relative_to(domain, zone) is not None and (best is None or len(zone) > len(best)):
                best = zone
        return best or domain

    def zone_findings(self) -> list[Finding]:
        """A policy for a domain no configured zone contains (as the processor checks)."""
        from ..names import relative_to

        if self.settings.zones is None:
            return []
        out = []
        for lp in self.policies:
            if not any(relative_to(lp.domain, z) is not None for z in self.settings.zones):
                out.append(
                    Finding(
                        Severity.ERROR,
                        f"policy for {lp.domain} but no zone in {self.settings.config} "
                        "contains it",
                        Location(lp.path, 1),
                        f"add {lp.domain}. under zones: with this processor, or remove the file",
                        code="policy-no-zone",
                    )
                )
        return out


def load(settings: Settings, paths: list[str] | None = None) -> Workspace:
    """Every policy in the folder, or the files/folders given.  Policy errors
    become findings (exit 1), a path that does not exist a UsageError (exit 2)."""
    from ..errors import PolicyError
    from ..policy.loader import load_policy_file, policy_files

    loaded: list[LoadedPolicy] = []
    findings: list[Finding] = []
    targets: list[tuple[Path, bool]] = []
    if paths:
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                targets.append((path, True))
            elif path.is_file():
                targets.append((path, False))
            else:
                raise UsageError(f"{raw}: no such file or folder")
    else:
        targets.append((require_policies(settings), True))
    files: list[Path] = []
    for path, is_dir in targets:
        files.extend(policy_files(path) if is_dir else [path])
    # File by file (not load_policy_dir), so one broken file does not hide the
    # compile findings of all the others.
    by_domain: dict[str, LoadedPolicy] = {}
    for path in files:
        try:
            lp = load_policy_file(path)
        except PolicyError as e:
            findings.extend(e.findings)
            continue
        first = by_domain.get(lp.domain)
        if first is not None:
            if Path(first.path).resolve() == Path(lp.path).resolve():
                continue  # the same file named twice
            findings.append(
                Finding(
                    Severity.ERROR,
                    f"a second policy for {lp.domain} (the first is {first.path})",
                    Location(lp.path, 1, "domain"),
                    "keep one policy file per domain",
                    code="policy-duplicate-domain",
                )
            )
            continue
        by_domain[lp.domain] = lp
        loaded.append(lp)
    return Workspace(settings, loaded, findings)
