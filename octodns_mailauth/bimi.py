"""BIMI (draft-brand-indicators-for-message-identification): the
`<selector>._bimi` TXT record, the DMARC enforcement it depends on, and basic
SVG Tiny PS checks of a local copy of the logo.

Reading the logo file is the one side effect: it sits beside the policy file
and, like the policy, is input the user wrote.
"""

from __future__ import annotations

import re
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

from .context import CompileContext
from .findings import Location, Severity
from .policy.dmarc import DmarcPolicy
from .policy.transport import BimiSettings
from .records import bimi
from .records.base import DesiredRecord

SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
MAX_LOGO_BYTES = 32 * 1024  # the BIMI group's limit, which receivers apply

# SVG Tiny PS (draft-svg-tiny-ps-abrotman) forbids these elements outright.
_FORBIDDEN = {
    "script": "scripts",
    "image": "raster (or any embedded) images",
    "foreignObject": "foreign objects",
    "animate": "animation",
    "animateColor": "animation",
    "animateMotion": "animation",
    "animateTransform": "animation",
    "set": "animation",
}
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_STYLESHEET = re.compile(rb"<\?xml-stylesheet", re.IGNORECASE)
_URL_REF = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.IGNORECASE)


def svg_problems(data: bytes) -> list[str]:
    """What keeps this SVG from being SVG Tiny PS, in words; [] if nothing.

    Not a full profile validator: the checks receivers reject logos for most.
    """
    # A DTD is how entity-expansion attacks start, and Tiny PS has none.
    if _DTD.search(data):
        return ["it has a DOCTYPE or ENTITY declaration; SVG Tiny PS documents have none"]
    if _STYLESHEET.search(data):
        return ["it links an external stylesheet (<?xml-stylesheet?>); keep styles inside"]
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        return [f"it is not well-formed XML ({e})"]
    problems = []
    if root.tag != f"{SVG_NS}svg":
        return [f"the root element is {_local(root.tag)!r} (or not in the SVG namespace), not svg"]
    if root.get("version") != "1.2":
        problems.append(f'the root needs version="1.2" (found {root.get("version")!r})')
    if root.get("baseProfile") != "tiny-ps":
        problems.append(
            f'the root needs baseProfile="tiny-ps" (found {root.get("baseProfile")!r})'
        )
    for attr in ("x", "y"):
        if attr in root.attrib:
            problems.append(f"the root svg element must not have an {attr}= attribute")
    title = root.find(f"{SVG_NS}title")
    if title is None or not (title.text or "").strip():
        problems.append("it needs a <title> naming the brand, as a child of the root svg")
    seen: set[str] = set()
    for element in root.iter():
        name = _local(element.tag)
        if name in _FORBIDDEN and name not in seen:
            seen.add(name)
            problems.append(f"it contains <{name}>: {_FORBIDDEN[name]} are not allowed")
        for key, value in element.attrib.items():
            attr = _local(key)
            if attr.lower().startswith("on"):
                problems.append(f"<{name}> has an event handler {attr}=: scripts are not allowed")
            elif (key == XLINK_HREF or attr == "href") and not value.startswith("#"):
                problems.append(
                    f"<{name}> refers to {value!r}: external references are not allowed"
                )
            elif _URL_REF.search(value):
                problems.append(f"<{name}> {attr}= refers outside the file: not allowed")
        if name == "style" and element.text and _URL_REF.search(element.text):
            problems.append("a <style> refers outside the file: not allowed")
    return problems


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def bimi_step(ctx: CompileContext) -> None:
    settings = ctx.lp.policy.bimi
    if settings is None:
        return
    name = f"{settings.selector}._bimi.{ctx.domain}"
    value = bimi.build(settings.logo, settings.authority, decline=settings.decline)
    record = DesiredRecord(name, "TXT", ctx.ttl, (value,), "bimi", "bimi", ctx.location("bimi"))
    if settings.decline:
        ctx.add(record)  # declining needs no DMARC enforcement and no logo
        return
    ok = _check_dmarc(ctx)
    ok = _check_logo_file(ctx, settings) and ok
    if not settings.authority:
        ctx.find(
            Severity.INFO,
            "no authority (a=): the largest mailbox providers show the logo only with a "
            "Verified or Common Mark Certificate",
            ctx.location("bimi"),
            "add authority: https://.../vmc.pem once you have one",
            code="bimi-no-authority",
        )
    if ok:
        ctx.add(record)


def _check_dmarc(ctx: CompileContext) -> bool:
    """Receivers ignore BIMI unless DMARC is at enforcement for the domain and
    its subdomains (BIMI draft, "Authentication Requirements")."""
    policy = ctx.lp.policy
    dmarc = policy.dmarc
    hint = (
        "set dmarc: {policy: quarantine} (or reject, or stage: quarantine), with no "
        "subdomain_policy of none"
    )
    if policy.parked:
        ctx.find(
            Severity.ERROR,
            f"{ctx.domain} is parked: it sends no mail, so it has no use for a BIMI logo",
            ctx.location("bimi"),
            "remove bimi, or use decline: true",
            code="bimi-parked",
        )
        return False
    if dmarc is None:
        ctx.find(
            Severity.ERROR,
            "BIMI needs a DMARC policy at enforcement, and this policy has no dmarc",
            ctx.location("bimi"),
            hint,
            code="bimi-dmarc-not-enforced",
        )
        return False
    p, sub = dmarc.p, dmarc.sp
    weak = [
        f"{label} is {value.value}"
        for label, value in (("policy", p), ("subdomain_policy", sub))
        if value is DmarcPolicy.none
    ]
    key = "policy" if p is DmarcPolicy.none else "subdomain_policy"
    # RFC 9989 §4.7: t=y applies quarantine as none, so it is not enforcement.
    if not weak and dmarc.testing and DmarcPolicy.quarantine in (p, sub):
        weak, key = ["testing is true, which applies quarantine as none (t=y)"], "testing"
    if weak:
        if key == "testing":
            # policy is already quarantine: the fix is the t=y flag, not p=.
            hint = (
                "remove testing: true from dmarc, or set policy: reject (which t=y applies "
                "as quarantine)"
            )
        ctx.find(
            Severity.ERROR,
            f"BIMI is ignored unless DMARC is at enforcement, but {' and '.join(weak)}",
            _dmarc_location(ctx, key),
            hint,
            code="bimi-dmarc-not-enforced",
        )
        return False
    pct = dmarc.legacy.pct if dmarc.legacy is not None else None
    if pct is not None and pct < 100:
        # BIMI requires the policy to apply to all failing mail: pct=100 (or none).
        ctx.find(
            Severity.ERROR,
            f"BIMI is ignored unless DMARC applies to all mail, but legacy pct is {pct}",
            ctx.location("dmarc", "legacy", "pct"),
            "remove pct from dmarc.legacy (RFC 9989 has no pct=), or set pct: 100",
            code="bimi-dmarc-not-enforced",
        )
        return False
    return True


def _dmarc_location(ctx: CompileContext, key: str) -> Location:
    # p= may be written as `stage:`; point at whichever key the file has.
    for candidate in (key, "stage") if key == "policy" else (key,):
        if ctx.has_key("dmarc", candidate):
            return ctx.location("dmarc", candidate)
    return ctx.location("dmarc")


def _check_logo_file(ctx: CompileContext, settings: BimiSettings) -> bool:
    if settings.logo_file is None:
        return True
    where = ctx.location("bimi", "logo_file")
    # Relative to the policy file's folder, not the working directory.
    path = Path(ctx.lp.path).parent / settings.logo_file
    try:
        # stat before open: opening a FIFO blocks, and a device (/dev/zero) never
        # ends; read one byte past the limit so an oversized logo is told apart.
        if not stat.S_ISREG(path.stat().st_mode):
            ctx.find(
                Severity.ERROR,
                f"the logo file {path} is not a regular file",
                where,
                "point logo_file at the .svg file, relative to the policy file's folder",
                code="bimi-logo-unreadable",
            )
            return False
        with path.open("rb") as f:
            data = f.read(MAX_LOGO_BYTES + 1)
    except OSError as e:
        ctx.find(
            Severity.ERROR,
            f"cannot read the logo file {path}: {e.strerror}",
            where,
            "logo_file is relative to the policy file's folder",
            code="bimi-logo-unreadable",
        )
        return False
    if len(data) > MAX_LOGO_BYTES:
        ctx.find(
            Severity.ERROR,
            f"logo {path} is larger than {MAX_LOGO_BYTES // 1024} KiB; receivers refuse "
            "larger SVG Tiny PS logos",
            where,
            "simplify the paths or remove metadata and comments",
            code="bimi-logo-large",
        )
        return False
    problems = svg_problems(data)
    for problem in problems:
        ctx.find(
            Severity.ERROR,
            f"logo {path} is not SVG Tiny PS: {problem}",
            where,
            "export the logo as SVG Tiny PS (see bimigroup.org, 'Creating BIMI SVG logo files')",
            rfc="draft-svg-tiny-ps-abrotman",
            code="bimi-logo-invalid",
        )
    return not problems
