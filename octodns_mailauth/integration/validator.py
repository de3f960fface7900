"""A ZoneValidator, so `octodns-validate` reports what `octodns-sync` would refuse.

octoDNS runs zone validators in `octodns-validate` over each zone's
YamlProvider records, and in `octodns-sync` after the processors.  This one
asks its processor what the zone would get (`MailAuthProcessor.zone_findings`)
and returns every error as one reason, so all of a zone's conflicts show in
one run.  `octodns-validate` stops at the first zone that fails: there the
reasons also carry every other zone's errors, each naming its zone, so one run
shows all zones' (see `_other_zones`), each error once a run (with `--all`
octoDNS goes on, and a zone does not repeat what the first carried).  It holds
its processor weakly: octoDNS keeps zone validators in a process-wide registry,
and a dropped processor must not keep validating.
"""

from __future__ import annotations

import weakref
from typing import Any

from octodns.record.validator import ValidationReason
from octodns.zone.validator import ZoneValidator

from ..names import normalize
from .config import ConfigError


class MailAuthZoneValidator(ZoneValidator):
    def __init__(self, id: str, processor: Any) -> None:
        super().__init__(id)  # no sets: active whatever sets the config enables
        self._processor = weakref.ref(processor)
        # (zone, error) pairs given so far in this run: when octoDNS goes on after a
        # failing zone (`--all`), one that zone carried is not given again by its own.
        self._said: set[tuple[str, str]] = set()
        self._validated: set[str] = set()  # the zones of this run

    def validate(self, zone: Any) -> list[ValidationReason]:
        processor = self._processor()
        if processor is None:
            return []
        name = normalize(zone.name)
        if name in self._validated:  # octoDNS validates each zone once a run: a new run
            self._validated.clear()
            self._said.clear()
        self._validated.add(name)
        errors = [(name, f.format()) for f in processor.zone_findings(zone)]
        if errors and not processor.processed:
            errors += self._other_zones(processor, name)
        errors = [e for e in dict.fromkeys(errors) if e not in self._said]
        self._said.update(errors)
        return [self._reason(text if z == name else f"zone {z}.: {text}") for z, text in errors]

    def _other_zones(self, processor: Any, name: str) -> list[tuple[str, str]]:
        """The errors of every other zone octoDNS would validate after failing at
        `name`: those running the processor, read from their YAML sources as
        `octodns-validate` reads them, except alias and lenient zones and those
        that turn this check off.  Only with no processor run yet (octoDNS
        validates processed zones one by one).  None when `name` is lenient, or
        a zone octoDNS validates before it fails too: both happen only when
        octoDNS goes on (`--all`, `lenient:`), and then the first failing zone
        carries the list (a dynamic zone each: octoDNS lists them in no fixed order)."""
        config, zones = processor.config, processor.zones
        if config.zone_conf(name).get("lenient"):
            return []
        out: list[tuple[str, str]] = []
        before = True
        for other in config.zone_names():
            conf = config.zone_conf(other)
            if other == name:
                before = False
                continue
            if other not in zones.mine or conf.get("alias") or conf.get("lenient"):
                continue
            try:
                source = config.source_zone(other, zones).zone
            except ConfigError as e:  # octoDNS fails there too: say it now
                errors = [str(e)]
            else:
                if self.id in source.disabled_zone_validators:
                    continue
                errors = [f.format() for f in processor.zone_findings(source, warn=False)]
            if errors and before and config.is_static(other):
                return []
            out += [(other, error) for error in errors]
        return out

    def _reason(self, text: str) -> ValidationReason:
        return ValidationReason(text, validator_id=self.id)
