"""A ZoneValidator, so `octodns-validate` reports what `octodns-sync` would refuse.

octoDNS runs zone validators in `octodns-validate` over each zone's
YamlProvider records, and in `octodns-sync` after the processors.  This one
asks its processor what the zone would get (`MailAuthProcessor.zone_findings`)
and returns every error as one reason, so all of a zone's conflicts show in
one run.  It holds its processor weakly: octoDNS keeps zone validators in a
process-wide registry, and a dropped processor must not keep validating.
"""

from __future__ import annotations

import weakref
from typing import Any

from octodns.record.validator import ValidationReason
from octodns.zone.validator import ZoneValidator


class MailAuthZoneValidator(ZoneValidator):
    def __init__(self, id: str, processor: Any) -> None:
        super().__init__(id)  # no sets: active whatever sets the config enables
        self._processor = weakref.ref(processor)

    def validate(self, zone: Any) -> list[ValidationReason]:
        processor = self._processor()
        if processor is None:
            return []
        return [
            ValidationReason(finding.format(), validator_id=self.id)
            for finding in processor.zone_findings(zone)
        ]
