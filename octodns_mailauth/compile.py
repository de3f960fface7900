"""The one pure step: a loaded policy -> desired records + findings.

The processor, the CLI and live checks all call this, so they cannot disagree.
No octoDNS types and no I/O here except through the key source it is handed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .catalog import Catalog, CatalogError, Entry, Group, render, resolve_params
from .dkim.keys import DkimKeyError, dkim_txt_value
from .dmarc.record import dmarc_value
from .findings import Finding, Location, Severity
from .names import normalize
from .policy.loader import LoadedPolicy
from .policy.models import DkimKey, Sender
from .records import DesiredRecord
from .spf.build import SpfTerm, order_terms, spf_value

MAX_SPF_LOOKUPS = 10  # RFC 7208 §4.6.4


class KeyUnavailable(Exception):
    """The public half of a DKIM key cannot be had; the text says why and what to do."""


class KeySource(Protocol):
    def public_key(self, domain: str, key: DkimKey) -> str:
        """The base64 `p=` value for this selector, or raise KeyUnavailable."""
        ...


@dataclass
class CompileResult:
    domain: str
    records: list[DesiredRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]


@dataclass
class _Context:
    lp: LoadedPolicy
    catalog: Catalog
    keys: KeySource
    result: CompileResult

    @property
    def domain(self) -> str:
        return self.lp.domain

    @property
    def ttl(self) -> int:
        return self.lp.policy.ttl

    def find(
        self,
        severity: Severity,
        message: str,
        where: Location | None,
        hint: str | None = None,
        *,
        code: str,
        rfc: str | None = None,
    ) -> None:
        self.result.findings.append(Finding(severity, message, where, hint, rfc, code))


def compile_policy(lp: LoadedPolicy, catalog: Catalog, keys: KeySource) -> CompileResult:
    ctx = _Context(lp, catalog, keys, CompileResult(lp.domain))
    _check_sender_names(ctx)
    terms: list[SpfTerm] = []
    for index, sender in enumerate(lp.policy.senders):
        terms.extend(_sender(ctx, index, sender))
    _spf(ctx, terms)
    _dmarc(ctx)
    _check_collisions(ctx)
    return ctx.result


def _check_sender_names(ctx: _Context) -> None:
    seen: dict[str, int] = {}
    for i, sender in enumerate(ctx.lp.policy.senders):
        if sender.name in seen:
            ctx.find(
                Severity.ERROR,
                f"two senders are named {sender.name!r} "
                f"(the first is senders[{seen[sender.name]}])",
                ctx.lp.location("senders", i, "name"),
                "give each sender a unique name",
                code="sender-duplicate",
            )
        seen.setdefault(sender.name, i)


def _sender(ctx: _Context, index: int, sender: Sender) -> list[SpfTerm]:
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
    if sender.provider:
        terms.extend(_provider(ctx, index, sender))
    terms.extend(SpfTerm(f"include:{host}", name) for host in sender.include)
    for k, key in enumerate(sender.dkim):
        _own_dkim(ctx, sender, key, ctx.lp.location("senders", index, "dkim", k))
    if not (terms or sender.dkim or sender.provider):
        ctx.find(
            Severity.WARNING,
            f"sender {name!r} declares nothing: no addresses, provider or DKIM key",
            ctx.lp.location("senders", index),
            "add ip4/ip6, a provider, include or dkim, or remove the sender",
            code="sender-empty",
        )
    return terms


def _net(net: object) -> str:
    # A single address is written without /32 or /128, as people expect to read it.
    text = str(net)
    return text.split("/")[0] if text.endswith(("/32", "/128")) else text


def _provider(ctx: _Context, index: int, sender: Sender) -> list[SpfTerm]:
    assert sender.provider is not None
    where = ctx.lp.location("senders", index, "provider")
    entry = ctx.catalog.get(sender.provider)
    if entry is None:
        ctx.find(
            Severity.ERROR,
            f"unknown provider {sender.provider!r}",
            where,
            "known providers: " + ", ".join(ctx.catalog.ids()) + " (or add a catalog entry)",
            code="provider-unknown",
        )
        return []
    values, problems = resolve_params(entry, ctx.domain, sender.params)
    for param, message in problems:
        loc = ctx.lp.location("senders", index, param)
        if loc.line is None or param not in sender.params:
            loc = ctx.lp.location("senders", index)
            loc = Location(loc.file, loc.line, f"senders[{index}].{param}")
        ctx.find(Severity.ERROR, message, loc, code="provider-param")
    if problems:
        return []
    label = f"sender {sender.name} ({entry.id})"
    if entry.dkim is not None:
        if _group(ctx, entry, entry.dkim, values, label, where, "dkim") is False:
            missing = [p for p in entry.dkim.requires if p not in values]
            ctx.find(
                Severity.WARNING,
                f"{label}: no DKIM records published, so its mail is not signed with "
                f"{ctx.domain} and cannot align under DMARC",
                where,
                "; ".join(f"give {p}: {entry.params[p].help}" for p in missing),
                code="provider-no-dkim",
            )
    if entry.return_path is not None and entry.return_path.requires:
        _group(ctx, entry, entry.return_path, values, label, where, "return-path")
    for group in entry.records:
        _group(ctx, entry, group, values, label, where, None)
    if entry.spf_include:
        return [SpfTerm(f"include:{entry.spf_include}", sender.name)]
    return []


def _group(
    ctx: _Context,
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
            if template.type == "TXT":
                kind = "dkim" if purpose == "dkim" else _txt_kind(value)
            elif template.type == "CNAME":
                value = normalize(value) + "."
            ctx.result.records.append(
                DesiredRecord(name, template.type, ctx.ttl, (value,), owner, kind, where)
            )
    return True


def _txt_kind(value: str) -> str | None:
    from .records import KIND_PATTERNS

    return next((k for k, p in KIND_PATTERNS.items() if k != "dkim" and p.match(value)), None)


def _own_dkim(ctx: _Context, sender: Sender, key: DkimKey, where: Location) -> None:
    try:
        p = ctx.keys.public_key(ctx.domain, key)
    except KeyUnavailable as e:
        ctx.find(Severity.ERROR, str(e), where, code="dkim-key")
        return
    try:
        value = dkim_txt_value(key.algorithm, p, testing=key.testing)
    except DkimKeyError as e:
        ctx.find(Severity.ERROR, f"DKIM selector {key.selector}: {e}", where, code="dkim-key")
        return
    ctx.result.records.append(
        DesiredRecord(
            f"{key.selector}._domainkey.{ctx.domain}",
            "TXT",
            ctx.ttl,
            (value,),
            f"sender {sender.name} (DKIM {key.algorithm})",
            "dkim",
            where,
        )
    )


def _spf(ctx: _Context, terms: list[SpfTerm]) -> None:
    policy = ctx.lp.policy
    unique: list[SpfTerm] = []
    seen: dict[str, SpfTerm] = {}
    for term in terms:
        first = seen.get(term.text)
        if first is not None:
            ctx.find(
                Severity.WARNING,
                f"SPF term {term.text} is asked for by both {first.sender!r} and "
                f"{term.sender!r}; it is published once",
                ctx.lp.location("senders"),
                code="spf-duplicate-term",
            )
            continue
        seen[term.text] = term
        unique.append(term)
    ordered = order_terms(unique)
    lookups = [t for t in ordered if t.costs_lookup]
    if len(lookups) > MAX_SPF_LOOKUPS:
        per_sender: dict[str, int] = {}
        for t in lookups:
            per_sender[t.sender] = per_sender.get(t.sender, 0) + 1
        detail = ", ".join(f"{s}: {n}" for s, n in per_sender.items())
        ctx.find(
            Severity.ERROR,
            f"the SPF record needs {len(lookups)} DNS lookups at the top level alone; "
            f"receivers give up after {MAX_SPF_LOOKUPS} ({detail})",
            ctx.lp.location("senders"),
            "drop senders you no longer use, or list their addresses with ip4/ip6",
            rfc="RFC 7208 §4.6.4",
            code="spf-too-many-lookups",
        )
    value = spf_value(ordered, policy.spf.all)
    ctx.result.records.append(
        DesiredRecord(
            ctx.domain,
            "TXT",
            ctx.ttl,
            (value,),
            "spf",
            "spf",
            ctx.lp.location("spf") if "spf" in _keys(ctx) else ctx.lp.location("senders"),
            takeover=policy.spf.takeover,
        )
    )


def _keys(ctx: _Context) -> set[str]:
    return {p[0] for p in ctx.lp.lines.lines if len(p) == 1 and isinstance(p[0], str)}


def _dmarc(ctx: _Context) -> None:
    settings = ctx.lp.policy.dmarc
    if settings is None:
        ctx.find(
            Severity.WARNING,
            f"no DMARC policy for {ctx.domain}: receivers get no instructions and you get "
            "no reports",
            Location(ctx.lp.path, 1, "dmarc"),
            "add `dmarc: {policy: none, rua: [mailto:...]}` to start monitoring",
            code="dmarc-missing",
        )
        return
    ctx.result.records.append(
        DesiredRecord(
            f"_dmarc.{ctx.domain}",
            "TXT",
            ctx.ttl,
            (dmarc_value(settings),),
            "dmarc",
            "dmarc",
            ctx.lp.location("dmarc"),
            takeover=settings.takeover,
        )
    )


def _check_collisions(ctx: _Context) -> None:
    """Two owners at one (name, type), or a CNAME beside anything: an error,
    never a silent merge (a selector with two keys verifies nothing)."""
    by_name: dict[str, list[DesiredRecord]] = {}
    for record in ctx.result.records:
        by_name.setdefault(record.name, []).append(record)
    for name, records in by_name.items():
        cnames = [r for r in records if r.type == "CNAME"]
        if cnames and len(records) > 1:
            other = next(r for r in records if r is not cnames[0])
            ctx.find(
                Severity.ERROR,
                f"{name}: {cnames[0].owner} needs a CNAME there but {other.owner} needs a "
                f"{other.type} record at the same name",
                other.location or cnames[0].location,
                "give one of them another selector or host name",
                rfc="RFC 1034 §3.6.2",
                code="record-conflict",
            )
            continue
        by_type: dict[tuple[str, str | None], DesiredRecord] = {}
        for r in records:
            first = by_type.get((r.type, r.kind))
            if first is not None and first.owner != r.owner:
                ctx.find(
                    Severity.ERROR,
                    f"{name}: both {first.owner} and {r.owner} claim this {r.type} record",
                    r.location or first.location,
                    "each selector or host name can belong to one sender only",
                    code="record-conflict",
                )
            by_type.setdefault((r.type, r.kind), r)
