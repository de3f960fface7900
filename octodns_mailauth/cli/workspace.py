"""Load policies and compile them the way the processor does, for the CLI.

The same compile step, catalog, SPF lock and keystore as `MailAuthProcessor`,
so the CLI cannot disagree with what `octodns-sync` publishes.  The CLI never
writes a key: where the keystore has none yet, a placeholder of the right
shape stands in and the output says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..findings import Finding, Location, Severity
from ..keysource import KeystoreKeys, PlaceholderKeys
from ..policy.loader import LoadedPolicy
from .settings import Settings, UsageError, require_policies


@dataclass
class Workspace:
    settings: Settings
    policies: list[LoadedPolicy]
    load_findings: list[Finding] = field(default_factory=list)
    _catalog: Any = None
    _resolver: Any = None
    _resolver_loaded: bool = False
    _dkim_state: Any = None
    _keys: PlaceholderKeys | None = None
    _source_zones: dict[str, Any] = field(default_factory=dict)
    _evidence: dict[str, Any] | None = None

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
            from ..dns.lockfile import open_lock

            self._resolver = open_lock(self.settings.spf_lock, self.policies_dir())
            self._resolver_loaded = True
        return self._resolver

    @property
    def dkim_state(self) -> Any:
        if self._dkim_state is None:
            from ..dkim.statefile import load_state

            self._dkim_state = load_state(self.settings.dkim_state, self.policies_dir())
        return self._dkim_state

    @property
    def keys(self) -> PlaceholderKeys:
        if self._keys is None:
            inner = KeystoreKeys(
                self.settings.keys,
                passphrase_env=self.settings.passphrase_env,
                generate=False,
            )
            # Placeholders only where the processor would generate the key; otherwise a
            # missing key is the same error octodns-validate reports.
            generate = self.settings.generate_keys or self.settings.config is None
            self._keys = PlaceholderKeys(inner, generate=generate)
        return self._keys

    def compile(self, lp: LoadedPolicy, zone: Any = None) -> Any:
        """As the processor compiles it.  With an octoDNS config, against the
        records its YAML sources hold for the policy's zone (the view
        `process_source_zone` passes), so zone-dependent checks and the SPF
        split run here too."""
        from ..compile import compile_policy

        if zone is None:
            zone = self.zone_view_for(lp.domain)
        return compile_policy(
            lp,
            self.catalog,
            self.keys,
            self.resolver,
            zone,
            dkim_state=self.dkim_state,
            evidence=self.evidence_for(lp.domain),
        )

    def evidence_for(self, domain: str) -> Any:
        """The DMARC report evidence for a domain (reports/store.py), read once per
        run; None when no reports database is configured."""
        if self.settings.reports is None:
            return None
        if self._evidence is None:
            from ..reports.store import read_evidence

            self._evidence = read_evidence(
                self.settings.reports, [lp.domain for lp in self.policies]
            )
        if domain not in self._evidence:
            from ..reports.store import read_evidence

            self._evidence.update(read_evidence(self.settings.reports, [domain]))
        return self._evidence[domain]

    def source_zone(self, zone: str) -> Any:
        """The zone read from the config's YamlProvider sources (cached), or None
        without a config or when the config has no such zone."""
        from .sources import read_zone

        if self.settings.raw is None:
            return None
        if zone not in self._source_zones:
            self._source_zones[zone] = read_zone(self.settings.raw, self.settings.config, zone)
        return self._source_zones[zone]

    def zone_view_for(self, domain: str) -> Any:
        from ..zoneview import zone_view

        source = self.source_zone(self.zone_for(domain))
        if source is None:
            return None
        return zone_view(source.zone, lambda record: False)  # nothing in it is ours yet

    def processor_zones(self) -> list[str]:
        """The configured zones that run our processor (per zone or manager-wide)."""
        raw = self.settings.raw or {}
        pid = self.settings.processor_id
        manager = raw.get("manager") if isinstance(raw.get("manager"), dict) else {}
        everywhere = pid in (manager.get("processors") or []) or pid in (
            manager.get("post_processors") or []
        )
        out = []
        for name, conf in (raw.get("zones") or {}).items():
            procs = conf.get("processors") if isinstance(conf, dict) else None
            if everywhere or pid in (procs or []):
                out.append(str(name).rstrip(".").lower())
        return out

    def merge_findings(self, results: list[tuple[LoadedPolicy, Any]]) -> list[Finding]:
        """Run the processor's own merge (conflict checks: hand-written SPF/DMARC,
        CNAME beside our records, a different MX) on each zone read from the
        YAML sources, as `octodns-sync` would.  Empty without a config."""
        if self.settings.raw is None:
            return []
        out: list[Finding] = []
        for zone in self.processor_zones():
            wanted = [
                r
                for lp, result in results
                if not result.errors
                for r in result.records
                if self.zone_for(r.name) == zone
            ]
            source = self.source_zone(zone) if wanted else None
            if source is None:
                continue
            finding = _merge_check(self.settings, source.zone.copy(), wanted)
            if finding is not None:
                out.append(finding)
        return out

    def source_findings(self) -> list[Finding]:
        """Info: zones whose non-YAML sources the CLI did not read."""
        out = []
        for zone in self.processor_zones():
            source = self.source_zone(zone)
            if source is not None and source.skipped:
                out.append(
                    Finding(
                        Severity.INFO,
                        f"zone {zone}: sources {', '.join(source.skipped)} are not YamlProvider "
                        "sources and were not read; conflicts with their records show only "
                        "at octodns-sync",
                        Location(str(self.settings.config)),
                        code="zone-source-not-read",
                    )
                )
        return out

    def policy_for(self, domain: str) -> LoadedPolicy:
        from ..names import normalize

        wanted = normalize(domain)
        for lp in self.policies:
            if lp.domain == wanted:
                return lp
        known = ", ".join(sorted(lp.domain for lp in self.policies)) or "none"
        if self.load_findings:
            # The policy may be one of the files that failed to load: show why
            # (file:line: error: ...) and exit 1, not a bare "no policy" (exit 2).
            from ..errors import PolicyError

            files = sorted({f.location.file for f in self.load_findings if f.location})
            raise PolicyError(
                [
                    *self.load_findings,
                    Finding(
                        Severity.ERROR,
                        f"no policy for {wanted} loaded from {self.policies_dir()}: "
                        f"{len(files) or len(self.load_findings)} policy file(s) failed to load "
                        f"({', '.join(files) or 'see above'}); loaded: {known}",
                        None,
                        "fix the errors above, then run this again",
                        code="policy-not-loaded",
                    ),
                ]
            )
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
        mine = set(self.processor_zones())
        pid = self.settings.processor_id
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
            elif self.settings.raw is not None and (zone := self.zone_for(lp.domain)) not in mine:
                # The processor refuses this too: nothing would be published.
                out.append(
                    Finding(
                        Severity.ERROR,
                        f"policy for {lp.domain} but its zone {zone}. in {self.settings.config} "
                        f"does not run the processor {pid!r}, so nothing would be published",
                        Location(lp.path, 1),
                        f"add `processors: [{pid}]` to zone {zone}.",
                        code="policy-no-zone",
                    )
                )
        return out


def load(settings: Settings, paths: list[str] | None = None) -> Workspace:
    """Every policy in the folder, or the files/folders given.  Policy errors
    become findings (exit 1), a path that does not exist a UsageError (exit 2)."""
    from ..errors import PolicyError
    from ..policy.loader import load_policy_file, policy_files, second_policy

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
            findings.append(second_policy(lp, first))
            continue
        by_domain[lp.domain] = lp
        loaded.append(lp)
    return Workspace(settings, loaded, findings)


_CONFLICT = re.compile(
    r"^[^:]*: (?:(?P<file>.+?):(?P<line>\d+): )?error: (?P<message>.*?)(?:; hint: (?P<hint>.*))?$",
    re.DOTALL,
)


def _merge_check(settings: Settings, zone: Any, wanted: list[Any]) -> Finding | None:
    """The processor's `_merge` on a copy of the zone; its error as a Finding."""
    from types import SimpleNamespace

    from ..processor import MailAuthProcessorError, _merge

    # `_merge` only needs an id and an identity for "records we added".
    proc = SimpleNamespace(id=settings.processor_id or "mailauth")
    try:
        _merge(proc, zone, wanted, False)  # type: ignore[arg-type]
    except MailAuthProcessorError as e:
        m = _CONFLICT.match(str(e))
        if m is None:
            return Finding(Severity.ERROR, str(e), Location(str(settings.config)))
        where = (
            Location(m["file"], int(m["line"])) if m["file"] else Location(str(settings.config))
        )
        return Finding(Severity.ERROR, m["message"], where, m["hint"], code="zone-merge-conflict")
    except Exception as e:  # noqa: BLE001 - octoDNS record validation, as sync would fail
        return Finding(
            Severity.ERROR,
            f"zone {zone.name}: octoDNS rejects the merged records: {e}",
            Location(str(settings.config)),
            code="zone-merge-invalid",
        )
    return None
