"""The senders step: each declared sender's SPF terms, catalog records, own
DKIM keys, and the identifiers its mail carries (for alignment)."""

from __future__ import annotations

from collections.abc import Iterable

from .catalog import CatalogError, Entry, Group, render, resolve_params
from .context import CompileContext, SenderFacts, SpfTerm
from .dkim.keys import DkimKeyError, WeakKeyError, check_published_key
from .findings import Location, Severity
from .names import normalize
from .policy.models import Sender
from .records import kind_of
from .records.base import DesiredRecord
from .records.dkim import parse_key_record
from .redact import redact


def senders_step(ctx: CompileContext) -> None:
    _check_names(ctx)
    for index, sender in enumerate(ctx.lp.policy.senders):
        _sender(ctx, index, sender)


def _check_names(ctx: CompileContext) -> None:
    seen: dict[str, int] = {}
    for i, sender in enumerate(ctx.lp.policy.senders):
        if sender.name in seen:
            ctx.find(
                Severity.ERROR,
                f"two senders are named {sender.name!r} "
                f"(the first is senders[{seen[sender.name]}])",
                ctx.location("senders", i, "name"),
                "give each sender a unique name",
                code="sender-duplicate",
            )
        seen.setdefault(sender.name, i)


def _sender(ctx: CompileContext, index: int, sender: Sender) -> None:
    terms: list[SpfTerm] = []
    name = sender.name
    for net in sender.ip4:
        terms.append(SpfTerm(f"ip4:{_net(net)}", name))
    for net in sender.ip6:
        terms.append(SpfTerm(f"ip6:{_net(net)}", name))
    for mech, value in (("a", sender.a), ("mx", sender.mx)):
        if value is True:
            terms.append(SpfTerm(mech, name))
        elif isinstance(value, list):
            terms.extend(SpfTerm(f"{mech}:{host}", name) for host in value)
    facts = SenderFacts(name, index, None, sender.return_path, [], ctx.location("senders", index))
    if sender.provider:
        terms.extend(_provider(ctx, index, sender, facts))
    elif facts.mail_from is None:
        facts.mail_from = ctx.domain  # our own servers send with our own envelope
    terms.extend(SpfTerm(f"include:{host}", name, sender.flatten) for host in sender.include)
    if not (terms or sender.dkim or sender.provider):
        ctx.find(
            Severity.WARNING,
            f"sender {name!r} declares nothing: no addresses, provider or DKIM key",
            ctx.location("senders", index),
            "add ip4/ip6, a provider, include or dkim, or remove the sender",
            code="sender-empty",
        )
    ctx.spf_terms.extend(terms)
    ctx.result.senders.append(facts)


def _net(net: object) -> str:
    # A single address is written without /32 or /128, as people expect to read it.
    text = str(net)
    return text.split("/")[0] if text.endswith(("/32", "/128")) else text


def _provider(
    ctx: CompileContext, index: int, sender: Sender, facts: SenderFacts
) -> list[SpfTerm]:
    assert sender.provider is not None
    where = ctx.location("senders", index, "provider")
    entry = ctx.catalog.get(sender.provider)
    if entry is None:
        close = ctx.catalog.suggest(sender.provider)
        ctx.find(
            Severity.ERROR,
            f"unknown provider {sender.provider!r}",
            where,
            (f"did you mean {close!r}? " if close else "")
            + "known providers: "
            + ", ".join(ctx.catalog.ids())
            + " (or add a catalog entry)",
            code="provider-unknown",
        )
        facts.complete = False
        return []
    facts.provider = entry
    values, problems = resolve_params(entry, ctx.domain, sender.params, Sender.model_fields)
    for problem in problems:
        loc = ctx.location("senders", index, problem.param)
        if problem.param not in sender.params:
            loc = Location(loc.file, loc.line, f"senders[{index}].{problem.param}")
        ctx.find(Severity.ERROR, problem.message, loc, problem.hint, code="provider-param")
    if problems:
        facts.complete = False
        return []
    facts.params = values
    label = f"sender {sender.name} ({entry.id})"
    if entry.dkim is not None:
        first = len(ctx.result.records)
        if _group(ctx, entry, entry.dkim, values, label, where, "dkim"):
            facts.dkim_domains.append(normalize(render(entry.dkim.d, values)))
            cnames = [r for r in ctx.result.records[first:] if r.type == "CNAME"]
            if cnames:  # the provider holds these keys: dkim/delegation.py checks them
                facts.delegated = [(r.name, r.values[0].rstrip(".")) for r in cnames]
                facts.delegated_d = facts.dkim_domains[-1]
        else:
            missing = [p for p in entry.dkim.requires if p not in values]
            ctx.find(
                Severity.WARNING,
                f"{label}: no DKIM records published, so its mail is not signed with "
                f"{ctx.domain} and cannot align under DMARC",
                where,
                "; ".join(f"give {p}: {entry.params[p].help}" for p in missing),
                code="provider-no-dkim",
            )
    if facts.mail_from is None and entry.return_path is not None:
        rp = entry.return_path
        if rp.domain and _group(ctx, entry, rp, values, label, where, "return-path"):
            facts.mail_from = normalize(render(rp.domain, values))
        else:
            facts.mail_from = normalize(render(rp.default, values))
    for group in entry.records:
        _group(ctx, entry, group, values, label, where, None)
    if entry.spf_include:
        return [SpfTerm(f"include:{entry.spf_include}", sender.name, sender.flatten)]
    return []


# The vendor holds the private key: only the vendor can make a longer one.
_NEW_VENDOR_KEY = (
    "ask {vendor} for a 2048-bit key (or rotate the DKIM key in its console, choosing 2048 "
    "bits) and paste the new record"
)


def _group(
    ctx: CompileContext,
    entry: Entry,
    group: Group,
    values: dict[str, object],
    owner: str,
    where: Location,
    purpose: str | None,
) -> bool:
    """Publish a catalog record group if its required params are given."""
    if any(p not in values for p in group.requires):
        return False
    for template in group.records:
        items: Iterable[object] = [None]
        if template.foreach:
            items = values.get(template.foreach) or []  # type: ignore[assignment]
        for item in items:
            env = dict(values, item=item) if item is not None else values
            try:
                rel = render(template.name, env)
                value = render(template.value, env)
            except CatalogError as e:
                ctx.find(Severity.ERROR, f"catalog entry {entry.id}: {e}", where, code="catalog")
                continue
            name = ctx.domain if rel in ("", "@") else f"{rel}.{ctx.domain}".lower()
            kind = None
            if template.type == "TXT" and purpose == "dkim":
                kind = "dkim"
                try:
                    key = parse_key_record(value).public_key
                    weak = check_published_key(key, vendor=entry.name) if key else None
                    severity = Severity.WARNING  # a vendor's 1024-2047-bit key still verifies
                except WeakKeyError as e:
                    weak, severity = str(e), Severity.ERROR
                except DkimKeyError as e:
                    # A pasted key that no verifier could use fails every signature.
                    ctx.find(
                        Severity.ERROR,
                        f"{owner}: the DKIM record for {rel} is not usable: {redact(str(e))}",
                        where,
                        "copy the whole TXT value again from the provider's console",
                        rfc="RFC 6376 §3.6.1",
                        code="dkim-record-invalid",
                    )
                    continue
                if weak:
                    state = "weak" if severity is Severity.WARNING else "not usable"
                    ctx.find(
                        severity,
                        f"{owner}: the DKIM record for {rel} is {state}: {weak}",
                        where,
                        _NEW_VENDOR_KEY.format(vendor=entry.name),
                        rfc="RFC 8301 §3.2",
                        code="dkim-key-weak",
                    )
                    if severity is Severity.ERROR:
                        continue
            elif template.type == "TXT":
                kind = kind_of(value)
            elif template.type == "CNAME":
                value = normalize(value) + "."
            ctx.add(DesiredRecord(name, template.type, ctx.ttl, (value,), owner, kind, where))
    return True
