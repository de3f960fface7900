"""MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file, the
`mta-sts` host record, and the check of the mx patterns against the zone's MX.

The policy file is rendered by a pure function; `write_policy_files` is the one
place it touches disk, for the CLI and script/demo to call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from ._fs import atomic_write
from .context import CompileContext, CompileResult
from .findings import Severity
from .names import normalize
from .outcome import MtaStsDetail
from .policy.loader import LoadedPolicy
from .policy.transport import MtaStsMode, MtaStsSettings
from .records import mtasts, mx
from .records.base import DesiredRecord

WELL_KNOWN = Path(".well-known") / "mta-sts.txt"
MIN_SENSIBLE_MAX_AGE = 86400  # RFC 8461 §3.2: "typically in the range of weeks or greater"
ID_LENGTH = 32  # RFC 8461 §3.1: id is 1*32(ALPHA / DIGIT)


def render_policy(settings: MtaStsSettings) -> str:
    """The policy file text (RFC 8461 §3.2): `key: value` lines ending in LF."""
    lines = ["version: STSv1", f"mode: {settings.mode.value}"]
    lines += [f"mx: {pattern}" for pattern in settings.mx]
    lines.append(f"max_age: {settings.max_age}")
    return "\n".join(lines) + "\n"


def policy_id(policy_text: str) -> str:
    """An `id` that changes exactly when the policy file changes: a content
    hash, so nobody has to remember to bump it (RFC 8461 §3.1)."""
    return hashlib.sha256(policy_text.encode("utf-8")).hexdigest()[:ID_LENGTH]


def pattern_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: `*.example.com` matches exactly one leftmost label
    (`mx.example.com`, not `example.com` nor `a.b.example.com`)."""
    pattern, host = normalize(pattern), normalize(host)
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return pattern == host


def mta_sts_step(ctx: CompileContext) -> None:
    settings = ctx.lp.policy.mta_sts
    if settings is None:
        return
    policy = ctx.lp.policy
    if (policy.parked or policy.null_mx) and settings.mode is not MtaStsMode.none:
        what = "parked" if policy.parked else "declared null MX"
        ctx.find(
            Severity.ERROR,
            f"{ctx.domain} is {what}: it receives no mail, so an MTA-STS policy in mode "
            f"{settings.mode.value} protects nothing",
            ctx.location("mta_sts", "mode"),
            "remove mta_sts, or set mode: none while withdrawing it",
            rfc="RFC 7505 §3",
            code="mta-sts-no-mx",
        )
        return
    text = render_policy(settings)
    ctx.add(
        DesiredRecord(
            f"_mta-sts.{ctx.domain}",
            "TXT",
            ctx.ttl,
            (mtasts.build(policy_id(text)),),
            "mta-sts",
            "mta-sts",
            ctx.location("mta_sts"),
        )
    )
    host = f"mta-sts.{ctx.domain}"
    ctx.result.details.mta_sts = MtaStsDetail(text, policy_id(text))
    _host_records(ctx, settings, host)
    _check_max_age(ctx, settings)
    _check_mx(ctx, settings)


def _host_records(ctx: CompileContext, settings: MtaStsSettings, host: str) -> None:
    where = ctx.location("mta_sts", "host")
    if settings.host is None:
        zone_has_host = any((host, t) in ctx.zone for t in ("A", "AAAA", "CNAME"))
        if ctx.zone and not zone_has_host:
            ctx.find(
                Severity.WARNING,
                f"{host} has no A, AAAA or CNAME record in the zone: senders cannot fetch "
                "the policy file, so the policy has no effect",
                ctx.location("mta_sts"),
                f"serve the policy at https://{host}/{WELL_KNOWN.as_posix()} and add the "
                "host to the zone, or set mta_sts.host: {cname: ...}",
                rfc="RFC 8461 §3.3",
                code="mta-sts-no-host",
            )
        return
    if settings.host.cname:
        ctx.add(
            DesiredRecord(
                host, "CNAME", ctx.ttl, (settings.host.cname + ".",), "mta-sts", None, where
            )
        )
        return
    for rtype, addresses in (("A", settings.host.ip4), ("AAAA", settings.host.ip6)):
        if addresses:
            values = tuple(str(a) for a in addresses)
            ctx.add(DesiredRecord(host, rtype, ctx.ttl, values, "mta-sts", None, where))


def _check_max_age(ctx: CompileContext, settings: MtaStsSettings) -> None:
    if settings.mode is MtaStsMode.enforce and 0 < settings.max_age < MIN_SENSIBLE_MAX_AGE:
        ctx.find(
            Severity.WARNING,
            f"max_age {settings.max_age} is under a day: senders refetch the policy so "
            "often that an attacker who blocks the fetch can strip it",
            ctx.location("mta_sts", "max_age"),
            "use 604800 (a week) or more once the policy is stable",
            rfc="RFC 8461 §3.2",
            code="mta-sts-short-max-age",
        )


def _check_mx(ctx: CompileContext, settings: MtaStsSettings) -> None:
    """Every pattern must cover an MX and every MX must be covered; otherwise
    senders in enforce mode refuse to deliver (RFC 8461 §4.1, §5)."""
    if settings.mode is MtaStsMode.none or not ctx.zone:
        # An empty view means the zone is not known yet (validate time):
        # the check runs again when the processor sees the zone.
        return
    severity = Severity.ERROR if settings.mode is MtaStsMode.enforce else Severity.WARNING
    effect = (
        "senders refuse to deliver to it"
        if severity is Severity.ERROR
        else "senders will report failures for it (and refuse it once mode is enforce)"
    )
    # The zone's own MX plus any a sender's catalog entry publishes here.
    values = list(ctx.zone.get((ctx.domain, "MX"), ()))
    values += [
        v for r in ctx.result.records if r.name == ctx.domain and r.type == "MX" for v in r.values
    ]
    hosts = list(dict.fromkeys(mx.exchanges(values)))
    if not hosts:
        ctx.find(
            severity,
            f"{ctx.domain} has no MX records in the zone, so the MTA-STS mx patterns "
            "cover nothing",
            ctx.location("mta_sts", "mx"),
            "add the MX records to the zone, or remove mta_sts",
            rfc="RFC 8461 §4.1",
            code="mta-sts-mx-mismatch",
        )
        return
    for i, pattern in enumerate(settings.mx):
        if not any(pattern_matches(pattern, h) for h in hosts):
            ctx.find(
                severity,
                f"mx pattern {pattern} matches none of the zone's MX hosts ({', '.join(hosts)})",
                ctx.location("mta_sts", "mx", i),
                "fix the pattern (a * matches exactly one leftmost label) or remove it",
                rfc="RFC 8461 §4.1",
                code="mta-sts-mx-mismatch",
            )
    for h in hosts:
        if not any(pattern_matches(p, h) for p in settings.mx):
            ctx.find(
                severity,
                f"MX host {h} is not covered by any MTA-STS mx pattern, so {effect}",
                ctx.location("mta_sts", "mx"),
                f"add mx: {h} (or a *. pattern covering it) to mta_sts",
                rfc="RFC 8461 §4.1",
                code="mta-sts-mx-mismatch",
            )


# --- the policy file on disk ---------------------------------------------------------------


def policy_files(items: Iterable[CompileResult | LoadedPolicy]) -> dict[str, str]:
    """domain -> policy file text, for every compiled result or loaded policy
    that has an MTA-STS policy."""
    out: dict[str, str] = {}
    for item in items:
        if isinstance(item, CompileResult):
            if item.details.mta_sts is not None:
                out[item.domain] = item.details.mta_sts.policy
        elif item.policy.mta_sts is not None:
            out[item.domain] = render_policy(item.policy.mta_sts)
    return out


def write_policy_files(
    items: Iterable[CompileResult | LoadedPolicy], out_dir: str | Path
) -> list[Path]:
    """Write `<out_dir>/<domain>/.well-known/mta-sts.txt` for each domain with
    an MTA-STS policy, atomically (a reader never sees half a file), and
    return the paths written.  The folder is what `https://mta-sts.<domain>/`
    serves as its document root."""
    written = []
    for domain, text in sorted(policy_files(items).items()):
        path = Path(out_dir) / domain / WELL_KNOWN
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text, 0o644)  # served by a web server: world-readable is the point
        written.append(path)
    return written
