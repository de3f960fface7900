"""MailAuthProcessor: octoDNS glue around the compile step and `integration/`."""

from __future__ import annotations

import functools
import gc
import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from octodns.processor.base import BaseProcessor
from octodns.zone import Zone

from .acknowledge import parse_ack
from .context import CompileResult
from .dns.lockfile import NO_LOCK, REFRESH_COMMAND, lock_path
from .errors import KeyUnavailable, MailAuthError, MailAuthProcessorError, PolicyError
from .findings import Finding, Severity
from .integration import merge
from .integration.bulk import FirstPass
from .integration.config import ProcessorSettings, load_config
from .integration.inputs import CompileInputs
from .integration.plan import check_plan, pending_in
from .integration.run import PolicyRun
from .integration.validator import MailAuthZoneValidator
from .keysource import KeystoreKeys, PlaceholderKeys
from .names import at_and_above, normalize
from .policy.loader import LoadedPolicy, load_policy_dir
from .reports.settings import parse_reports_settings
from .zoneview import ZoneView


class MailAuthProcessor(BaseProcessor):
    """Publishes the mail authentication records of a folder of policies.

    Example usage::

      processors:
        mailauth:
          class: octodns_mailauth.MailAuthProcessor
          # This very file: octoDNS tells a processor nothing about the zones, so
          # naming the config lets `octodns-validate` check that every policy has
          # a zone running this processor, and check each zone as sync would.
          config_file: ./config/octodns.yaml
          policies: ./mail           # one policy file per domain
          keys: ./.dkim              # DKIM keystore: 0700, never committed
          # generate_keys: false     # true: generate missing DKIM keys at sync
          # spf_lock: ./mail/spf-lock.json
          # dkim_state: ./mail/dkim-state.yaml
          # catalog: [./senders]     # extra sender catalog folders
          # passphrase_env: OCTODNS_MAILAUTH_KEY_PASSPHRASE
          # lenient: false
          # reports: {db: ./reports.sqlite}  # DMARC report evidence for the rollout gate
      zones:
        example.com.:
          sources: [config]
          processors: [mailauth]
          targets: [route53]

    Built by octoDNS (`octodns-validate` and `octodns-sync` alike), it compiles
    every policy without writing anything and, with `config_file`, refuses a
    policy whose zone is missing or does not run it; its zone validator
    (`integration/validator.py`) makes `octodns-validate` report every conflict
    with a zone's own records (a hand-written SPF value, an MX that MTA-STS does
    not cover, a CNAME clash) in one run.  `process_source_zone` adds a zone's
    records, its policies' and those other policies place in it, and raises
    every conflict together.  Threads and processes: integration/run.py, bulk.py.

    `lenient` (here, per zone, or `--lenient`): octoDNS's record checks are
    relaxed, and a record of ours that conflicts with one of the zone's own is
    left out with a warning (the zone's record is kept); policy errors still fail.
    """

    processed = False  # whether octoDNS has handed it a zone (integration/validator.py)

    def __init__(self, id: str, **settings: Any) -> None:
        # Thousands of policies and results are made here and all stay: each cyclic
        # garbage collection meanwhile would walk every one of them again.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._build(id, settings)
        finally:
            if enabled:
                gc.enable()

    def _build(self, id: str, settings: dict[str, Any]) -> None:
        self.log = logging.getLogger(f"MailAuthProcessor[{id}]")
        try:
            s = ProcessorSettings.check(id, id, settings)
            super().__init__(id, lenient=s.lenient)
            reports = parse_reports_settings(s.reports, f"processors.{id}")
            # Keys generated while planning are written only when the plan is applied
            # (integration/plan.py), never by a plan that is refused or shown.
            self.keys = KeystoreKeys(
                s.keys, passphrase_env=s.passphrase_env, generate=s.generate_keys
            )
            self.inputs = CompileInputs(
                lambda: self.keys,
                policies_dir=s.policies,
                catalog=s.catalog,
                spf_lock=s.spf_lock,  # third-party DNS data (SPF includes), offline
                dkim_state=s.dkim_state,
                reports=reports,  # DMARC report evidence for the rollout gate
            )
            self.inputs.catalog  # noqa: B018 (read now: a bad catalog fails here)
            # Compile once without writing anything, so every policy error surfaces
            # now.  The results are reused for each zone whose records agree with what
            # they read (integration/run.py), by the zone validator and
            # process_source_zone.  With many policies the files are read, and compiled
            # the first time, in worker processes (integration/bulk.py); report
            # evidence is read for the policies' domains, so only once they are known.
            placeholders = PlaceholderKeys(self.keys)
            dry = self._compiler(placeholders)
            first = FirstPass(
                lambda lp: (dry(lp, None), placeholders.used(lp.domain)),
                lambda: self._prepare(s, id),
                fuse=reports is None,
            )
            loaded = load_policy_dir(s.policies, each=first.each)
            self.policies = {lp.domain: lp for lp in loaded}
            self.inputs.domains = list(self.policies)
            if not first.prepared:
                self._prepare(s, id)
        except (MailAuthError, KeyUnavailable) as e:
            raise MailAuthProcessorError(f"{id}: {e}") from None
        self._run = PolicyRun(self.policies, self._compiler(self.keys), dry, placeholders.used)
        placed = self._run.place(first.compile_all)
        # A cause every policy shares is logged once, when a zone first meets it.
        self._run_wide = _run_wide(placed, lock_path(s.spf_lock, s.policies))
        self._said: set[str] = set()
        self._said_lock = threading.Lock()
        errors = [f for result in placed.values() for f in result.errors]
        errors += merge.claims((r for p in placed.values() for r in p.records), {})
        if self.zones is not None:
            errors += self.zones.policy_findings(self.policies.values(), id, str(s.config_file))
        del placed
        if errors:
            raise MailAuthProcessorError(f"{id}: {PolicyError(errors)}")
        if self.zones is not None:
            Zone.register_zone_validator(
                MailAuthZoneValidator(f"mailauth-{id}", self), replace=True
            )
        self.log.info(
            "__init__: %d mail policies from %s, keystore %s, zones from %s",
            len(self.policies),
            s.policies,
            s.keys or "none",
            s.config_file or "the zones octoDNS hands over",
        )

    def _prepare(self, s: ProcessorSettings, id: str) -> None:
        """What every compile shares, read before the first: the SPF lock, DKIM state,
        report evidence, and the config's zones."""
        self.inputs.read()
        self.config = load_config(s.config_file) if s.config_file else None
        self.zones = self.config.zone_map(id) if self.config else None
        self.inputs.zones = self.zones

    @functools.cached_property
    def acknowledged(self) -> frozenset[tuple[str, str]]:
        """The policies' acknowledged destructive changes (integration/plan.py), read
        once: the plan guard asks for every zone."""
        return frozenset(
            parse_ack(entry, lp.domain)
            for lp in self.policies.values()
            for entry in lp.acknowledge
        )

    @functools.cached_property
    def _acknowledged_by_name(self) -> dict[str, frozenset[tuple[str, str]]]:
        index: dict[str, set[tuple[str, str]]] = {}
        for ack in self.acknowledged:
            for name in at_and_above(ack[1]):
                index.setdefault(name, set()).add(ack)
        return {name: frozenset(acks) for name, acks in index.items()}

    def acknowledged_under(self, zone: str) -> frozenset[tuple[str, str]]:
        """The acknowledgements for names at or below `zone`, found by its name
        (the plan guard asks for every zone; scanning them all would be quadratic)."""
        return self._acknowledged_by_name.get(normalize(zone), frozenset())

    def __repr__(self) -> str:
        return f"MailAuthProcessor(id={self.id!r}, policies={sorted(self.policies)!r})"

    # --- octoDNS hooks --------------------------------------------------------------------

    def process_source_zone(self, desired: Any, sources: Any, lenient: bool = False) -> Any:
        lenient = lenient or self.lenient
        # octoDNS validates a zone after processing it (sync, dump): the zone
        # validator then leaves each zone to octoDNS, never reads the others.
        self.processed = True
        self._check_configured(desired)
        plan = self._run.zone(desired, source=self, lenient=lenient)
        errors = plan.refusing(lenient)
        if errors:
            raise MailAuthProcessorError(f"{self.id}: {PolicyError(errors)}")
        self._warn(plan.findings)
        zones = self.zones if self.zones and self.zones.complete else None
        for record in (r for res in plan.results if res.domain in plan.home for r in res.records):
            if zones and zones.zone_of(record.name) not in zones.mine:
                self.log.warning(
                    "%s: %s is in no zone this processor manages here; its owner must publish "
                    "%s. %s %s",
                    record.location,
                    record.name,
                    record.name,
                    record.type,
                    " ".join(f'"{v}"' for v in record.values),
                )
        if not plan.home and not plan.merge.records:
            zone = normalize(desired.name)
            if _receives_mail(desired):  # spoofable: say so where sync output is read
                self.log.warning(
                    "process_source_zone: %s has MX records but no mail policy, zone left as "
                    "is; run `octodns-mailauth init %s --config <config>` to write one",
                    zone,
                    zone,
                )
            else:
                self.log.info("process_source_zone: no mail policy for %s, zone left as is", zone)
        merge.apply(desired, plan.merge, lenient)
        if not _planned_by_octodns():
            self._warn_unstored_keys(desired)
        return desired

    def _warn_unstored_keys(self, zone: Any) -> None:
        """octoDNS calls `process_plan`, which has the keys written when the plan is
        applied, only in `octodns-sync`; `octodns-dump` writes the zone without a
        plan, so a key generated for it would be published and never stored."""
        fresh = sorted(f"{sel} of {domain}" for domain, sel in pending_in(self.keys, zone))
        if fresh:
            self.log.warning(
                "process_source_zone: new DKIM key(s) %s, generated in memory for %s: "
                "stored only when octoDNS applies a plan publishing them "
                "(`octodns-sync --doit`); output written without a plan (`octodns-dump`) "
                "publishes keys nobody holds: run `octodns-mailauth dkim keygen` first",
                ", ".join(fresh),
                normalize(zone.name),
            )

    def zone_findings(self, zone: Any, *, warn: bool = True) -> list[Finding]:
        """Errors `process_source_zone` would raise for `zone` (for the zone
        validator), its warnings logged as it would (unless not `warn`): none for a
        zone that does not run us or that we already processed (octoDNS validates
        zones again after the processors)."""
        if self.zones is None or normalize(zone.name) not in self.zones.mine:
            return []
        if any(getattr(record, "source", None) is self for record in zone.records):
            return []
        plan = self._run.zone(zone, source=self, dry=True)
        # octoDNS knows a zone's `lenient:`, not ours: our conflicts are warnings then.
        errors = plan.refusing(self.lenient)
        if warn:  # `octodns-validate` never runs process_source_zone: they are said here.
            self._warn([f for f in plan.findings if f not in errors])
        return errors

    def process_plan(
        self, plan: Any, sources: Any = None, target: Any = None, lenient: bool = False
    ) -> Any:
        """Refuse destructive mail changes nobody acknowledged (integration/guard.py),
        then write the DKIM keys this plan publishes, unless it is only being shown."""
        if plan is not None:
            check_plan(self, plan, target)
        return plan

    # --- helpers --------------------------------------------------------------------------

    def _warn(self, findings: list[Finding]) -> None:
        for finding in findings:
            if finding.severity is Severity.INFO:
                continue
            if finding.cause in self._run_wide and finding.code in _SUMMARISED:
                with self._said_lock:  # zones run in threads (octoDNS max_workers)
                    said = finding.cause in self._said
                    self._said.add(finding.cause)
                if not said:
                    self.log.warning("%s", self._run_wide[finding.cause])
            else:
                self.log.warning("%s", finding.format())

    def _compiler(self, keys: Any) -> Any:
        def run(lp: LoadedPolicy, view: ZoneView | None) -> CompileResult:
            return self.inputs.compile(lp, view, keys=keys)

        return run

    def _check_configured(self, zone: Any) -> None:
        """A zone running us that the named config does not have: `config_file`
        names another config, and its zone checks would be wrong."""
        name = normalize(zone.name)
        if self.zones is not None and self.zones.complete and name not in self.zones.zones:
            raise MailAuthProcessorError(
                f"{self.id}: zone {name}. runs this processor but is not in the octoDNS config "
                "named by its config_file; set config_file to the config this processor is in"
            )


# The codes the run-wide summary counts: a finding with that cause and another
# code is logged as itself, never folded into a summary that does not mention it.
_SUMMARISED = ("spf-lock-missing", "dkim-target-unverified")


def _run_wide(results: Mapping[str, CompileResult], lock: Path) -> dict[str, str]:
    """What to log, once per run, for each cause the policies' findings share
    (Finding.cause) instead of each of those findings: without an SPF lock file,
    every policy with an include and every delegated DKIM key would say so, 10,000
    identical lines for 10,000 domains.  The counts and first policies say what it
    affects; `octodns-mailauth validate` and `explain` still show each one."""
    found: dict[str, list[Finding]] = {code: [] for code in _SUMMARISED}
    domains: dict[str, list[str]] = {code: [] for code in found}
    for domain, result in results.items():
        for f in result.findings:
            if f.cause == NO_LOCK and f.code in found:
                found[f.code].append(f)
                domains[f.code].append(domain)
    spf, dkim = found.values()
    if not (spf or dkim):
        return {}
    what = []
    if spf:
        what.append(
            "the records SPF includes are not followed, so nested DNS lookups are not counted "
            f"({_policies(domains['spf-lock-missing'])})"
        )
    if dkim:
        what.append(
            f"{len(dkim)} delegated DKIM key(s) at vendors' CNAME targets are unverified "
            f"({_policies(domains['dkim-target-unverified'])})"
        )
    summary = Finding(
        Severity.WARNING,
        f"no SPF lock file ({lock}): {'; '.join(what)}; said once for the run, not per domain",
        None,
        f"run `{REFRESH_COMMAND}` to resolve and record them",
        rfc="; ".join(dict.fromkeys(f[0].rfc for f in (spf, dkim) if f and f[0].rfc)) or None,
        code="spf-lock-missing",
    )
    return {NO_LOCK: summary.format()}


def _policies(domains: Iterable[str], shown: int = 3) -> str:
    """`5 policies: a.example, b.example, c.example and 2 more`."""
    names = list(dict.fromkeys(domains))
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    noun = "policy" if len(names) == 1 else "policies"
    return f"{len(names)} {noun}: {', '.join(names[:shown])}{more}"


def _planned_by_octodns() -> bool:
    """Whether octoDNS's sync is processing the zone (`Manager._populate_and_plan`,
    which plans it with its processors, so `process_plan` follows and writes the keys
    the plan publishes when it is applied).  octoDNS tells a processor nothing of
    its caller; `octodns-dump` (`Manager.dump`) applies the zone with no plan."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "octodns.manager":
            return frame.f_code.co_name == "_populate_and_plan"
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _receives_mail(zone: Any) -> bool:
    """MX records other than a null MX (RFC 7505 `0 .`): the zone takes mail."""
    return any(
        r._type == "MX" and any(str(v.exchange) != "." for v in r.values) for r in zone.records
    )
