"""What every compile of a run shares, built in one place for the processor and
the CLI: the sender catalog, the SPF lock (the offline resolver), the committed
DKIM rotation state and the DMARC report evidence, each read on first use and
once per run, and `compile` with them.  The DKIM key source is the caller's
(the processor generates keys, the CLI shows placeholders): a factory for it is
passed in, called on first use too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog import Catalog, load_catalog
from ..compile import compile_policy
from ..context import CompileResult, KeySource
from ..dkim.statefile import load_state
from ..dns.lockfile import open_lock
from ..policy.loader import LoadedPolicy
from ..zoneview import ZoneView
from .zonemap import ZoneMap

if TYPE_CHECKING:
    from ..reports.store import EvidenceInput


class CompileInputs:
    def __init__(
        self,
        keys: Callable[[], KeySource],
        *,
        policies_dir: Path,
        catalog: Sequence[str] = (),
        spf_lock: Path | None = None,
        dkim_state: Path | None = None,
        reports: Any = None,  # reports.settings.ReportsSettings, or None
        domains: Iterable[str] = (),
        zones: ZoneMap | None = None,
    ) -> None:
        """`domains`: the policies' domains, whose report evidence is read in one go.
        `zones`: the config's zones, when known (what this config publishes itself)."""
        self._keys_factory = keys
        self.policies_dir = policies_dir
        self._catalog_dirs = list(catalog)
        self._spf_lock = spf_lock
        self._dkim_state_path = dkim_state
        self.reports = reports
        self.domains = list(domains)
        self.zones = zones
        self._lock = threading.Lock()
        self._read: dict[str, Any] = {}  # what was read so far, by name
        self._evidence: dict[str, EvidenceInput] | None = None

    def _once(self, what: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if what not in self._read:
                self._read[what] = make()
            return self._read[what]

    @property
    def keys(self) -> Any:
        return self._once("keys", self._keys_factory)

    @property
    def catalog(self) -> Catalog:
        return self._once("catalog", lambda: load_catalog(self._catalog_dirs))  # type: ignore[no-any-return]

    @property
    def resolver(self) -> Any:
        """The offline SPF lock (None when there is none yet)."""
        return self._once("resolver", lambda: open_lock(self._spf_lock, self.policies_dir))

    @property
    def dkim_state(self) -> Any:
        return self._once("state", lambda: load_state(self._dkim_state_path, self.policies_dir))

    def evidence_for(self, domain: str) -> EvidenceInput | None:
        """The DMARC report evidence for a domain (reports/store.py), read once per
        run for all the policies; None when no reports database is configured."""
        if self.reports is None:
            return None
        # Lazy: sqlite3 and the store only when a reports database is configured.
        from ..reports.store import read_evidence

        with self._lock:
            if self._evidence is None:
                self._evidence = read_evidence(self.reports, self.domains)
            if domain not in self._evidence:
                self._evidence.update(read_evidence(self.reports, [domain]))
            return self._evidence[domain]

    def read(self) -> None:
        """Read everything now, so a bad catalog, lock, state or database fails here."""
        self.catalog, self.resolver, self.dkim_state  # noqa: B018
        if self.domains:
            self.evidence_for(self.domains[0])

    def compile(
        self,
        lp: LoadedPolicy,
        zone: ZoneView | None = None,
        *,
        keys: KeySource | None = None,
        now: datetime | None = None,
    ) -> CompileResult:
        """`compile_policy` with this run's inputs (and `keys` in place of its own)."""
        result = compile_policy(
            lp,
            self.catalog,
            keys or self.keys,
            self.resolver,
            zone,
            now=now,
            dkim_state=self.dkim_state,
            evidence=self.evidence_for(lp.domain),
        )
        # A DMARC report authorization this config publishes needs nobody's action.
        return self.zones.settle_report_authorizations(result) if self.zones else result
