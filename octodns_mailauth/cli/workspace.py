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

from ..errors import PolicyError
from ..findings import Finding, Location, Severity
from ..integration.config import ConfigError
from ..integration.inputs import CompileInputs
from ..integration.merge import plan
from ..integration.zonemap import ZoneNames
from ..keysource import KeystoreKeys, PlaceholderKeys
from ..names import normalize
from ..policy.loader import LoadedPolicy, load_policy_file, policy_files, second_policy
from ..records.dkim import key_name
from ..zoneview import zone_view
from .settings import Settings, UsageError, require_policies


@dataclass
class Workspace:
    settings: Settings
    policies: list[LoadedPolicy]
    load_findings: list[Finding] = field(default_factory=list)
    _inputs: CompileInputs | None = None
    _source_zones: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> CompileInputs:
        """The processor's compile inputs (integration/inputs.py), each read on first use."""
        if self._inputs is None:
            settings = self.settings

            def keys() -> PlaceholderKeys:
                inner = KeystoreKeys(
                    settings.keys, passphrase_env=settings.passphrase_env, generate=False
                )
                # Placeholders only where the processor would generate the key; otherwise
                # a missing key is the same error octodns-validate reports.
                generate = settings.generate_keys or settings.octo is None
                return PlaceholderKeys(inner, generate=generate)

            self._inputs = CompileInputs(
                keys,
                policies_dir=self.policies_dir(),
                catalog=self.settings.catalog,
                spf_lock=self.settings.spf_lock,
                dkim_state=self.settings.dkim_state,
                reports=self.settings.reports,
                domains=[lp.domain for lp in self.policies],
                zones=self.settings.zones,
            )
        return self._inputs

    def policies_dir(self) -> Path:
        if self.settings.policies is not None:
            return self.settings.policies
        if self.policies:
            return Path(self.policies[0].path).parent
        return Path.cwd()

    @property
    def keys(self) -> PlaceholderKeys:
        return self.inputs.keys  # type: ignore[return-value]

    @property
    def placeholder_names(self) -> set[str]:
        """The DKIM key names shown with a placeholder p= (no key in the keystore yet)."""
        return {key_name(selector, domain) for domain, selector in self.keys.placeholders}

    def compile(self, lp: LoadedPolicy, zone: Any = None) -> Any:
        """As the processor compiles it.  With an octoDNS config, against the
        records its YAML sources hold for the policy's zone (the view
        `process_source_zone` passes), so zone-dependent checks and the SPF
        split run here too."""
        if zone is None:
            source = self.source_zone(self.zone_for(lp.domain))
            # Nothing in the zone is ours yet.
            zone = None if source is None else zone_view(source.zone, lambda record: False)
        return self.inputs.compile(lp, zone)

    def source_zone(self, zone: str) -> Any:
        """The zone read from the config's YamlProvider sources (cached), or None
        without a config or when the config has no such zone."""
        zones = self.settings.zones
        if self.settings.octo is None or zones is None or zone not in zones.zones:
            return None
        if zone not in self._source_zones:
            try:
                self._source_zones[zone] = self.settings.octo.source_zone(zone, zones)
            except ConfigError as e:
                raise UsageError(str(e)) from None
        return self._source_zones[zone]

    def processor_zones(self) -> list[str]:
        """The configured zones that run our processor (per zone or manager-wide)."""
        return sorted(self.settings.zones.mine) if self.settings.zones else []

    def merge_findings(self, results: list[tuple[LoadedPolicy, Any]]) -> list[Finding]:
        """The processor's merge (`integration.merge.plan`) into each zone read
        from the YAML sources, as `octodns-sync` would: every conflict with a
        hand-written SPF/DMARC, a CNAME beside our records, a different MX."""
        out: list[Finding] = []
        for zone in self.processor_zones():
            source = self.source_zone(zone)
            if source is None:
                continue
            names = ZoneNames(source.zone)
            wanted = [r for _, result in results for r in result.records if r.name in names]
            if wanted:
                out += plan(source.zone, wanted, source=self).findings
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
                        Location(str(self.settings.octo.path)),
                        code="zone-source-not-read",
                    )
                )
        return out

    def require_loaded(self) -> None:
        """For commands that act on every policy: a policy file that failed to
        load stops the command before anything is written (exit 1, as validate)."""
        if self.load_findings:
            raise PolicyError(self.load_findings)

    def policy_for(self, domain: str) -> LoadedPolicy:
        wanted = normalize(domain)
        for lp in self.policies:
            if lp.domain == wanted:
                return lp
        known = ", ".join(sorted(lp.domain for lp in self.policies)) or "none"
        if self.load_findings:
            # The policy may be one of the files that failed to load: show why
            # (file:line: error: ...) and exit 1, not a bare "no policy" (exit 2).
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
        zones = self.settings.zones
        return (zones.zone_of(domain) if zones else None) or domain

    def zone_findings(self) -> list[Finding]:
        """A policy whose zone is missing or does not run the processor (as the processor)."""
        zones = self.settings.zones
        if zones is None:
            return []
        path = str(self.settings.octo.path)
        return zones.policy_findings(self.policies, self.settings.id, path)


def load(settings: Settings, paths: list[str] | None = None) -> Workspace:
    """Every policy in the folder, or the files/folders given.  Policy errors
    become findings (exit 1), a path that does not exist a UsageError (exit 2)."""
    findings: list[Finding] = []
    files: list[Path] = []
    for raw in paths or [require_policies(settings)]:
        path = Path(raw)
        if path.is_dir():
            files += policy_files(path)
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{raw}: no such file or folder")
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
        if first is None:
            by_domain[lp.domain] = lp
        elif Path(first.path).resolve() != Path(lp.path).resolve():  # not one file named twice
            findings.append(second_policy(lp, first))
    return Workspace(settings, list(by_domain.values()), findings)
