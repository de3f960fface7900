"""MailAuthProcessor: octoDNS glue around the compile step.

It loads every policy when octoDNS builds it (so `octodns-validate` fails fast),
and in `process_source_zone` adds the compiled records to the zone, merging
with what the zone already holds by the rules in README "Merging".
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from octodns.context import ContextDict
from octodns.processor.base import BaseProcessor, ProcessorException
from octodns.record import Record

from .catalog import CatalogError, load_catalog
from .compile import CompileResult, KeyUnavailable, compile_policy
from .context import ZoneView
from .dkim.statefile import load_state
from .dns.lockfile import open_lock
from .dns.resolver import Resolver
from .errors import MailAuthError, PolicyError
from .findings import Finding, Location, Severity
from .keysource import KeystoreKeys, PlaceholderKeys
from .policy.loader import LoadedPolicy, load_policy_dir
from .records import DesiredRecord, escape_txt, txt_kind_matches, unescape_txt
from .reports.settings import parse_reports_settings
from .reports.store import read_evidence


class MailAuthProcessorError(ProcessorException):
    """Raised for any policy, keystore or merge problem; the text is the message."""


class MailAuthProcessor(BaseProcessor):
    def __init__(
        self,
        id: str,
        policies: str,
        keys: str | None = None,
        catalog: str | list[str] | None = None,
        generate_keys: bool = False,
        passphrase_env: str = "OCTODNS_MAILAUTH_KEY_PASSPHRASE",
        spf_lock: str | None = None,
        dkim_state: str | None = None,
        reports: Any = None,
    ) -> None:
        super().__init__(id)
        self.log = logging.getLogger(f"MailAuthProcessor[{id}]")
        self._lock = threading.Lock()
        self._compiled: dict[tuple[str, bool], CompileResult] = {}
        self._dynamic = False
        if not isinstance(generate_keys, bool):
            # octoDNS passes config values as written; "false" (or env/VAR) is truthy.
            raise MailAuthProcessorError(
                f"{id}: generate_keys must be true or false, not {generate_keys!r}"
            )
        try:
            extra = [catalog] if isinstance(catalog, str) else list(catalog or [])
            self.catalog = load_catalog(extra)
            self.policies = {lp.domain: lp for lp in load_policy_dir(policies)}
            self.keys = KeystoreKeys(keys, passphrase_env=passphrase_env, generate=generate_keys)
            # Third-party DNS data (SPF includes) comes from the lock file, offline.
            self.resolver: Resolver | None = open_lock(spf_lock, policies)
            self.dkim_state = load_state(dkim_state, policies)
            # DMARC report evidence for the rollout gate, read once (reports/store.py).
            self.evidence: dict[str, Any] = {}
            settings = parse_reports_settings(reports, f"processors.{id}")
            if settings is not None:
                self.evidence = read_evidence(settings, self.policies)
        except (PolicyError, CatalogError, MailAuthError, KeyUnavailable) as e:
            raise MailAuthProcessorError(f"{id}: {e}") from None
        # Compile once without writing anything, so every policy error surfaces now.
        probe = PlaceholderKeys(self.keys)
        errors: list[Finding] = self._check_zones_configured()
        self._foreign: dict[str, list[str]] = {}
        self._home: dict[str, list[str]] = {}
        claimed: dict[tuple[str, str, str | None], DesiredRecord] = {}
        for lp in self.policies.values():
            self._home.setdefault(self._zone_for(lp.domain), []).append(lp.domain)
            result = compile_policy(
                lp,
                self.catalog,
                probe,
                self.resolver,
                dkim_state=self.dkim_state,
                evidence=self.evidence.get(lp.domain),
            )
            errors.extend(result.errors)
            errors.extend(_claims(result.records, claimed))
            home = self._zone_for(lp.domain)
            for zone in {self._zone_for(r.name) for r in result.records} - {home}:
                self._foreign.setdefault(zone, []).append(lp.domain)
        if errors:
            raise MailAuthProcessorError(f"{id}: {PolicyError(errors)}")
        self.log.info(
            "__init__: %d mail policies from %s, keystore %s",
            len(self.policies),
            policies,
            keys or "none",
        )

    def __repr__(self) -> str:
        return f"MailAuthProcessor(id={self.id!r}, policies={sorted(self.policies)!r})"

    # --- octoDNS hooks --------------------------------------------------------------------

    def process_source_zone(self, desired: Any, sources: Any, lenient: bool = False) -> Any:
        zone = desired.name.rstrip(".").lower()
        if self._dynamic and zone not in self._zone_set:
            with self._lock:
                self._zone_set.add(zone)
                self._home = {}
                for domain in self.policies:
                    self._home.setdefault(self._zone_for(domain), []).append(domain)
        wanted: list[DesiredRecord] = []
        home = [self.policies[d] for d in self._home.get(zone, ())]
        for lp in home:
            result = self._compile(lp, _zone_view(self, desired))
            for finding in result.findings:
                if finding.severity is Severity.WARNING:
                    self.log.warning("%s", finding.format())
            if result.errors:
                raise MailAuthProcessorError(f"{self.id}: {PolicyError(result.errors)}")
            for record in result.records:
                target = self._zone_for(record.name)
                if target == zone:
                    wanted.append(record)
                elif self._configured_zones is not None and target not in self._configured_zones:
                    self.log.warning(
                        "%s: %s is in no zone this processor manages here; its owner must "
                        "publish %s %s %s",
                        record.location,
                        record.name,
                        record.name + ".",
                        record.type,
                        " ".join(f'"{v}"' for v in record.values),
                    )
        # Records other policies place in this zone (a DMARC report authorization
        # for a destination we also manage, say).
        for domain in self._foreign.get(zone, ()):
            result = self._compile(self.policies[domain], None)
            wanted += [r for r in result.records if self._zone_for(r.name) == zone]
        if not home and not wanted:
            if _receives_mail(desired):  # spoofable: say so where sync output is read
                self.log.warning(
                    "process_source_zone: %s has MX records but no mail policy, zone left as "
                    "is; run `octodns-mailauth init %s --config <config>` to write one",
                    zone,
                    zone,
                )
            else:
                self.log.info("process_source_zone: no mail policy for %s, zone left as is", zone)
            return desired
        _merge(self, desired, wanted, lenient)
        return desired

    # --- helpers --------------------------------------------------------------------------

    def _compile(self, lp: LoadedPolicy, view: ZoneView | None) -> CompileResult:
        # Cached, so alias zones and repeated plans ask the keystore once; the lock
        # makes two threads planning at once generate a missing key only once.
        key = (lp.domain, view is None)
        with self._lock:
            result = self._compiled.get(key)
            if result is None:
                result = compile_policy(
                    lp,
                    self.catalog,
                    self.keys,
                    self.resolver,
                    view,
                    dkim_state=self.dkim_state,
                    evidence=self.evidence.get(lp.domain),
                )
                if not result.errors:
                    self._compiled[key] = result
            return result

    def _zone_for(self, name: str) -> str:
        """The zone a name belongs to: the longest configured zone that is a
        suffix of it (walking up its labels, so thousands of zones cost
        nothing).  Built without a Manager, the policy domains stand in."""
        zones = self._zone_set
        labels = name.split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            if candidate in zones:
                return candidate
        return name

    @property
    def _configured_zones(self) -> set[str] | None:
        return getattr(self, "_my_zones", None)

    def _check_zones_configured(self) -> list[Finding]:
        config = _config_of_constructing_manager()
        if config is None:
            # Built outside octoDNS: the policy domains stand in for the zones.
            self._zone_set: set[str] = set(self.policies)
            self._my_zones: set[str] | None = None
            return []
        if any("*" in str(z) for z in config["zones"]):
            # Dynamic zones are expanded by octoDNS only at sync time: learn the
            # zones as they are processed (see process_source_zone).
            self._dynamic = True
            self._zone_set = set()
            self._my_zones = None
            return []
        zones = {str(z).rstrip(".").lower(): (c or {}) for z, c in config["zones"].items()}
        manager = config.get("manager") or {}
        everywhere = self.id in (manager.get("processors") or []) or self.id in (
            manager.get("post_processors") or []
        )
        self._zone_set = set(zones)
        self._my_zones = {
            z for z, c in zones.items() if everywhere or self.id in (c.get("processors") or [])
        }
        out = []
        for lp in self.policies.values():
            zone = self._zone_for(lp.domain)
            if zone not in self._zone_set:
                problem = f"policy for {lp.domain} but no zone in the octoDNS config contains it"
                hint = f"add {lp.domain}. under zones: with this processor, or remove the file"
            elif zone not in self._my_zones:
                problem = (
                    f"policy for {lp.domain} but its zone {zone}. does not run the processor "
                    f"{self.id!r}, so nothing would be published"
                )
                hint = f"add `processors: [{self.id}]` to zone {zone}. in the octoDNS config"
            else:
                continue
            out.append(
                Finding(Severity.ERROR, problem, Location(lp.path, 1), hint, code="policy-no-zone")
            )
        return out


def _config_of_constructing_manager() -> dict[str, Any] | None:
    """The octoDNS config we are being built for (its zones and manager settings).

    octoDNS hands processors only their own settings, yet "a policy for a zone
    that is not in the config" must fail at construction, when `octodns-validate`
    runs.  The Manager building us is on the stack (`_config_processors`) and has
    already read its zones; we look, and quietly skip the check when built any
    other way.  tests/test_processor.py pins this against the real Manager.
    """
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if type(candidate).__name__ == "Manager" and hasattr(candidate, "config"):
            config = candidate.config or {}
            return {"zones": config.get("zones") or {}, "manager": config.get("manager") or {}}
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _zone_view(proc: MailAuthProcessor, zone: Any) -> ZoneView:
    """The zone's own records (not ours), as text, for checks that depend on
    them (MX patterns, parked-domain conflicts); shared with the CLI."""
    from .zoneview import zone_view

    return zone_view(zone, lambda record: _ours(proc, record))


# --- merging into the zone ---------------------------------------------------------------


def _merge(
    proc: MailAuthProcessor, zone: Any, records: list[DesiredRecord], lenient: bool
) -> None:
    existing: dict[tuple[str, str], Any] = {}
    by_name: dict[str, list[Any]] = {}
    for record in zone.records:
        existing[(record.name, record._type)] = record
        by_name.setdefault(record.name, []).append(record)
    zone_name = zone.name.rstrip(".").lower()
    claimed: dict[tuple[str, str, str | None], DesiredRecord] = {}
    for want in records:
        name = want.relative_name(zone_name)
        here = by_name.get(name, [])
        _check_cname_rules(proc, want, name, here, zone_name)
        clash = _claims([want], claimed)
        if clash:
            raise MailAuthProcessorError(f"{proc.id}: {clash[0].format()}")
        current = existing.get((name, want.type))
        data: dict[str, Any] = {"type": want.type, "ttl": want.ttl}
        foreign = current is not None and not _ours(proc, current)
        if want.type == "TXT":
            data["values"] = _merge_txt(proc, want, current, zone_name)
            if foreign:
                data["ttl"] = current.ttl  # not ours to change
        elif want.type == "CNAME":
            if (
                current is not None
                and not _ours(proc, current)
                and current.value != want.values[0]
            ):
                raise _conflict(proc, want, current, "a different CNAME")
            data["value"] = want.values[0]
            if foreign:
                data["ttl"] = current.ttl
        else:
            if current is not None and not _ours(proc, current):
                mine = sorted(want.values)
                theirs = sorted(_value_text(v) for v in current.values)
                if mine != theirs:
                    raise _conflict(proc, want, current, f"a different {want.type} record")
                data["ttl"] = current.ttl  # the same record, already theirs
            data["values"] = [_octodns_value(want.type, v) for v in want.values]
        context = f"{want.location or proc.id} ({want.owner})"
        record = Record.new(
            zone, name, ContextDict(data, context=context), source=proc, lenient=lenient
        )
        zone.add_record(record, replace=True, lenient=lenient)
        # A second record of ours at this name (a vendor's TXT beside our SPF)
        # must merge with this one, not replace it.
        existing[(name, want.type)] = record
        if record not in by_name.setdefault(name, []):
            by_name[name].append(record)


def _receives_mail(zone: Any) -> bool:
    """MX records other than a null MX (RFC 7505 `0 .`): the zone takes mail."""
    return any(
        r._type == "MX" and any(str(v.exchange) != "." for v in r.values) for r in zone.records
    )


def _octodns_value(rtype: str, text: str) -> Any:
    if rtype == "MX":
        preference, exchange = text.split()
        return {"preference": int(preference), "exchange": exchange}
    return text


def _ours(proc: MailAuthProcessor, record: Any) -> bool:
    return getattr(record, "source", None) is proc


def _value_text(value: Any) -> str:
    if hasattr(value, "exchange"):
        return f"{value.preference} {value.exchange}"
    return str(value)


def _merge_txt(
    proc: MailAuthProcessor, want: DesiredRecord, current: Any, zone_name: str
) -> list[str]:
    """Our value(s), escaped for octoDNS, plus every value of another kind
    already at the name, kept byte for byte (never unescaped and re-escaped,
    which would change `\\DDD` escapes we do not own)."""
    ours = [escape_txt(v) for v in want.values]
    if current is None:
        return ours
    keep: list[str] = []
    clashing: list[str] = []
    for raw in current.values:
        raw = str(raw)
        text = unescape_txt(raw)
        if want.kind and txt_kind_matches(want.kind, text):
            if text not in want.values:
                clashing.append(text)
        else:
            keep.append(raw)
    if clashing and not _ours(proc, current) and not want.takeover:
        raise _conflict(
            proc,
            want,
            current,
            f"a hand-written {want.kind or 'TXT'} value {clashing[0]!r}",
            hint=_takeover_hint(want),
        )
    return keep + [v for v in ours if v not in keep]


def _claims(
    records: list[DesiredRecord], claimed: dict[tuple[str, str, str | None], DesiredRecord]
) -> list[Finding]:
    """Two policies (a domain's and its subdomain's, say) wanting one record is
    an error, never a silent last-writer-wins.  TXT values of no managed kind
    (verification tokens) may share a name."""
    out = []
    for want in records:
        if want.type == "TXT" and want.kind is None:
            continue
        first = claimed.setdefault((want.name, want.type, want.kind), want)
        if first is not want and _policy_of(first) != _policy_of(want):
            out.append(
                Finding(
                    Severity.ERROR,
                    f"{want.owner} wants the {want.kind or want.type} record at {want.name}, "
                    f"which the policy {_policy_of(first)} also publishes ({first.owner})",
                    want.location,
                    "let one policy own that name",
                    code="record-claimed-twice",
                )
            )
    return out


def _policy_of(record: DesiredRecord) -> str:
    return record.location.file if record.location else "?"


def _takeover_hint(want: DesiredRecord) -> str:
    if want.kind == "spf":
        return "remove it from the zone, or set `spf: {takeover: true}` in the policy"
    if want.kind == "dmarc":
        return "remove it from the zone, or set `dmarc: {takeover: true}` in the policy"
    if want.kind == "dkim":
        return "remove it from the zone or choose another selector"
    setting = {"mta-sts": "mta_sts", "tlsrpt": "tls_rpt", "bimi": "bimi"}.get(want.kind or "")
    if setting:
        return f"remove the hand-written record from the zone, or `{setting}:` from the policy"
    return "remove it from the zone, or the setting that publishes it from the policy"


def _check_cname_rules(
    proc: MailAuthProcessor, want: DesiredRecord, name: str, here: list[Any], zone_name: str
) -> None:
    foreign = [r for r in here if not _ours(proc, r)]
    if want.type == "CNAME":
        other = next((r for r in foreign if r._type != "CNAME"), None)
        if other is not None:
            raise _conflict(
                proc, want, other, f"a {other._type} record (a CNAME must stand alone)"
            )
    else:
        cname = next((r for r in foreign if r._type == "CNAME"), None)
        if cname is not None:
            raise _conflict(proc, want, cname, "a CNAME (a CNAME must stand alone)")


def _conflict(
    proc: MailAuthProcessor, want: DesiredRecord, theirs: Any, what: str, hint: str | None = None
) -> MailAuthProcessorError:
    origin = getattr(theirs, "context", None) or (
        f"source {theirs.source.id}" if getattr(theirs, "source", None) else "the zone"
    )
    where = f"{want.location}: " if want.location else ""
    text = (
        f"{proc.id}: {where}error: {want.owner} wants a {want.type} record at {want.name}, "
        f"but the zone already has {what} there (from {origin})"
    )
    if hint:
        text += f"; hint: {hint}"
    return MailAuthProcessorError(text)
