"""Policy settings for DMARC (RFC 9989, which obsoletes RFC 7489).

Each field reads as a mail admin says it; its description names the tag it
becomes, so `validate` errors and the JSON Schema both teach the mapping.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from ..dmarc.uri import ReportUriError, parse_report_uri
from ..names import mailto_to_ascii
from .base import Strings, _Strict, empty_list, refuse_unknown_key


# Declared from the most lenient to the strictest (RFC 9989 §4.7); a comment, not a
# docstring, which would become the JSON Schema's description.
class DmarcPolicy(str, Enum):
    none = "none"
    quarantine = "quarantine"
    reject = "reject"

    @property
    def strength(self) -> int:
        """Its place in that order: none 0, quarantine 1, reject 2."""
        return list(DmarcPolicy).index(self)

    def weaker(self) -> DmarcPolicy:
        """One step more lenient (none stays none): what t=y makes of it."""
        return list(DmarcPolicy)[max(self.strength - 1, 0)]


class Stage(str, Enum):
    """The rollout stage: monitor (p=none) -> quarantine -> reject."""

    monitor = "monitor"
    quarantine = "quarantine"
    reject = "reject"

    @property
    def policy(self) -> DmarcPolicy:
        return DmarcPolicy.none if self is Stage.monitor else DmarcPolicy(self.value)


class Alignment(str, Enum):
    relaxed = "relaxed"  # r: organizational domains match (RFC 9989 §4.4)
    strict = "strict"  # s: exact FQDN match


# fo= options (RFC 9989 §4.7, RFC 9991): readable name -> tag character.
FAILURE_OPTIONS: dict[str, str] = {
    "all_fail": "0",  # report when every mechanism fails to give an aligned pass
    "any_fail": "1",  # report when any mechanism fails to give an aligned pass
    "dkim_fail": "d",  # report any DKIM failure, aligned or not
    "spf_fail": "s",  # report any SPF failure, aligned or not
}


class LegacyTags(_Strict):
    """RFC 7489 tags RFC 9989 removed (App. C.5.2).  Receivers that follow RFC 9989
    ignore them; publish them only for old receivers, knowing they are flagged."""

    pct: StrictInt | None = Field(
        None, ge=0, le=100, description="pct=: percentage of failing mail the policy applies to"
    )
    rf: Strings | None = Field(None, description="rf=: failure report formats (afrf)")
    ri: StrictInt | None = Field(
        None, ge=1, le=4294967295, description="ri=: requested aggregate report interval, seconds"
    )

    @field_validator("rf")
    @classmethod
    def _rf(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = [v.lower() for v in value]
        for v in out:
            if v not in ("afrf", "iodef"):
                raise ValueError(f"rf={v!r} is not a report format: write afrf (RFC 7489 §6.3)")
        return out


def _check_report_uri(uri: str) -> str:
    try:
        uri = mailto_to_ascii(uri, "a DMARC report address")
        parse_report_uri(uri)
    except ReportUriError as e:
        raise ValueError(str(e)) from None
    return uri


class DmarcPolicySettings(_Strict):
    policy: DmarcPolicy | None = Field(
        None,
        description="p=: none, quarantine or reject; or give `stage` instead (RFC 9989 §4.7)",
    )
    stage: Stage | None = Field(
        None,
        description="p= as a rollout stage: monitor (p=none), quarantine, reject; the "
        "tool reports what blocks the next stage",
    )
    subdomain_policy: DmarcPolicy | None = Field(
        None, description="sp=: policy for subdomains (defaults to policy)"
    )
    nonexistent_policy: DmarcPolicy | None = Field(
        None,
        description="np=: policy for subdomains that do not exist (defaults to "
        "subdomain_policy, then policy; RFC 9989 §4.7)",
    )
    public_suffix_domain: StrictBool | None = Field(
        None,
        description="psd=: true (psd=y) if this domain is a public suffix operator's, "
        "false (psd=n) to declare it the organizational domain; omit for psd=u "
        "(RFC 9989 §4.7, §4.10.2)",
    )
    testing: StrictBool = Field(
        False,
        description="t=y: receivers apply one step less (reject as quarantine, quarantine "
        "as none) while you test (RFC 9989 §4.7)",
    )
    rua: Strings = Field(
        default_factory=empty_list,
        description="rua=: aggregate report URIs (mailto:); outside this organizational "
        "domain the destination must authorize them (RFC 9990)",
    )
    ruf: Strings = Field(
        default_factory=empty_list,
        description="ruf=: failure report URIs (mailto:; RFC 9991); same authorization rule",
    )
    failure_options: Strings = Field(
        default_factory=empty_list,
        description="fo=: when to send failure reports: all_fail (0), any_fail (1), "
        "dkim_fail (d), spf_fail (s)",
    )
    dkim_alignment: Alignment = Field(Alignment.relaxed, description="adkim=: relaxed or strict")
    spf_alignment: Alignment = Field(Alignment.relaxed, description="aspf=: relaxed or strict")
    legacy: LegacyTags | None = Field(
        None,
        description="RFC 7489 tags removed by RFC 9989 (pct, rf, ri), published only when "
        "set here and always flagged",
    )
    takeover: StrictBool = Field(
        False, description="replace a hand-written v=DMARC1 record already in the zone"
    )

    @field_validator("rua", "ruf")
    @classmethod
    def _uris(cls, value: list[str]) -> list[str]:
        return [_check_report_uri(uri) for uri in value]

    @field_validator("failure_options")
    @classmethod
    def _fo(cls, value: list[str]) -> list[str]:
        chars = {v: k for k, v in FAILURE_OPTIONS.items()}
        out: list[str] = []
        for item in value:
            name = chars.get(str(item), str(item))
            if name not in FAILURE_OPTIONS:
                raise ValueError(
                    f"{item!r} is not a failure report option: use "
                    + ", ".join(FAILURE_OPTIONS)
                    + " (fo= 0, 1, d, s)"
                )
            if name in out:
                raise ValueError(f"failure option {name!r} is listed twice")
            out.append(name)
        if "all_fail" in out and "any_fail" in out:
            raise ValueError("all_fail (fo=0) and any_fail (fo=1) contradict each other: keep one")
        return out

    @model_validator(mode="before")
    @classmethod
    def _policy_from_stage(cls, data: Any) -> Any:
        # `stage` is p= said as a rollout step; fill `policy` from it so every reader
        # of `settings.policy` sees p= whichever way the file says it.
        if not isinstance(data, dict):
            return data
        if data.get("policy") is None and data.get("stage") is None:
            refuse_unknown_key(data, cls.model_fields)
            raise ValueError(
                "missing required key 'policy': give `policy: none|quarantine|reject` or "
                "`stage: monitor|quarantine|reject`"
            )
        stage = data.get("stage")
        if isinstance(stage, str) and stage in Stage.__members__:
            implied = Stage(stage).policy.value
            if data.get("policy") is None:
                data = dict(data, policy=implied)
            elif str(data["policy"]) != implied:
                raise ValueError(
                    f"stage {stage} means p={implied}, but policy says {data['policy']}: "
                    "keep one of them"
                )
        return data

    @property
    def p(self) -> DmarcPolicy:
        """The p= value (`policy`, or the one `stage` implies)."""
        assert self.policy is not None  # filled from `stage` by _policy_from_stage
        return self.policy

    @property
    def current_stage(self) -> Stage:
        return Stage.monitor if self.p is DmarcPolicy.none else Stage(self.p.value)

    @property
    def sp(self) -> DmarcPolicy:
        """The sp= receivers apply (RFC 9989 §4.7: defaults to p)."""
        return self.subdomain_policy or self.p

    @property
    def np(self) -> DmarcPolicy:
        """The np= receivers apply (RFC 9989 §4.7: defaults to sp, then p)."""
        return self.nonexistent_policy or self.sp

    @property
    def fo(self) -> str:
        return ":".join(FAILURE_OPTIONS[o] for o in self.failure_options)
