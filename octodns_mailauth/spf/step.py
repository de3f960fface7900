"""The SPF step: the senders' terms -> the SPF record(s) the policy publishes.

For each name (the policy domain, `spf.names`, own-server return paths) it
builds the record, flattens includes when asked or needed, splits it when too
long, then analyses the result as a receiver would (RFC 7208 §4.6.4) through
the lock file, so nested lookups count.  SPF records other steps emit (a
catalog's bounce host) are analysed too.  The apex tree is kept in
`ctx.result.details.spf` for `explain`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations

from ..context import CompileContext, SpfTerm
from ..dns.lockfile import NO_LOCK, REFRESH_COMMAND
from ..dns.resolver import DnsError, Resolver
from ..findings import Location, Severity
from ..names import is_subdomain, normalize
from ..policy.dmarc import DmarcPolicy
from ..policy.spf import SpfAll, SpfFlatten
from ..records import txt_kind_matches
from ..records.base import DesiredRecord
from ..records.spf import QUALIFIER, SpfSyntaxError, build, parse, select_records
from .flatten import Flattened, collapse, flatten_include, network_term
from .lookups import MAX_DNS_LOOKUPS, SEC_LIMIT, LookupTree, analyze
from .size import SEC_SIZE, SIZE_GUIDELINE, anchored, answer_size, split_record
from .space import address_space


class ZoneLayer(Resolver):
    """Answers names under the policy domain from the zone and our own records
    (they are not in the lock: we publish them), everything else from the lock.
    Keeps the third-party (name, type) pairs the lock lacked, for one finding.
    Delegated DKIM targets under the domain are checked through it too."""

    source = "the zone"  # in messages about names under the domain (dkim/delegation.py)

    def __init__(self, ctx: CompileContext, inner: Resolver | None) -> None:
        self.ctx = ctx
        self.inner = inner
        self.memo = ctx.spf_memo
        self.offline = inner is None or inner.offline
        self.extra: dict[str, list[str]] = {}  # name -> TXT values we are about to publish
        self.missing: dict[tuple[str, str], None] = {}
        self.used_inner = False  # did anything depend on the lock (for the staleness check)
        self.asked_own: set[str] = set()  # names under the domain asked so far

    def own(self, name: str) -> bool:
        return is_subdomain(name, self.ctx.domain)

    def query(self, name: str, rdtype: str) -> list[str]:
        name, rdtype = normalize(name), rdtype.upper()
        if self.own(name):
            self.asked_own.add(name)
            return self._own(name, rdtype)
        if self.inner is None:
            self.missing[(name, rdtype)] = None
            raise DnsError(name, rdtype, "missing", "no SPF lock file")
        self.used_inner = True
        try:
            return self.inner.query(name, rdtype)
        except DnsError as err:
            if err.kind == "missing":
                self.missing[(name, rdtype)] = None
            raise

    def _own(self, name: str, rdtype: str) -> list[str]:
        answers: list[str] = []
        exists = False
        if rdtype == "TXT" and name in self.extra:
            return list(self.extra[name])
        for rtype, values in self.ctx.zone.at(name).items():
            exists = True
            if rtype == rdtype:
                answers.extend(values)
        for record in self.ctx.result.records:
            if record.name == name:
                exists = True
                if record.type == rdtype:
                    answers.extend(record.values)
        if name in self.extra:
            exists = True
        if exists:
            return answers
        if not self.ctx.zone:  # compiled without the zone: we cannot know
            raise DnsError(name, rdtype, "missing", "the zone's records are not known here")
        raise DnsError(name, rdtype, "nxdomain")

    def resolved_at(self, name: str) -> datetime | None:
        """When the lock resolved `name` (for flattening messages)."""
        return None if self.inner is None else self.inner.resolved_at(name)

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        if self.inner is not None:
            self.inner.prefetch([(n, t) for n, t in pairs if not self.own(normalize(n))])


def spf_step(ctx: CompileContext) -> None:
    if ctx.result.details.parked:
        return  # the parked step publishes `v=spf1 -all` itself
    layer = ZoneLayer(ctx, ctx.resolver)
    trees: dict[str, LookupTree] = {}
    apex_where = ctx.location("spf") if ctx.has_key("spf") else ctx.location("senders")
    apex = _publish(ctx, layer, ctx.domain, _unique(ctx, ctx.spf_terms), apex_where)
    trees[ctx.domain] = apex
    for name, terms, where in _other_names(ctx):
        trees[name] = _publish(ctx, layer, name, terms, where)
    # SPF records other steps publish (a catalog's MAIL FROM host): analyse them too.
    for record in list(ctx.result.records):
        if record.kind == "spf" and record.owner != "spf" and record.name not in trees:
            tree = analyze(record.name, layer, record.values[0], memo=layer.memo)
            trees[record.name] = tree
            _tree_findings(ctx, tree, record.location)
    _check_all(ctx, apex_where)
    _check_zone(ctx, trees)
    _lock_findings(ctx, layer, apex_where)
    ctx.result.details.spf = apex


def order_terms(terms: list[SpfTerm]) -> list[SpfTerm]:
    """ip4/ip6 first: a receiver stops at the first match, and address terms
    cost no DNS lookup, so our own servers are judged without any."""
    rank = {"ip4": 0, "ip6": 1, "a": 2, "mx": 3, "include": 4}
    return sorted(terms, key=lambda t: rank.get(t.mechanism, 5))


def _unique(ctx: CompileContext, terms: list[SpfTerm]) -> list[SpfTerm]:
    unique: list[SpfTerm] = []
    seen: dict[str, SpfTerm] = {}
    for term in terms:
        first = seen.get(term.text)
        if first is not None:
            if first.sender != term.sender:
                ctx.find(
                    Severity.WARNING,
                    f"SPF term {term.text} is asked for by both {first.sender!r} and "
                    f"{term.sender!r}; it is published once",
                    ctx.location("senders"),
                    code="spf-duplicate-term",
                )
            if term.flatten and not first.flatten:
                seen[term.text] = unique[unique.index(first)] = term
            continue
        seen[term.text] = term
        unique.append(term)
    return unique


def _other_names(ctx: CompileContext) -> list[tuple[str, list[SpfTerm], Location]]:
    """`spf.names` entries, then own-server senders whose return path is another
    name under the domain (RFC 7208 §2.4: SPF is checked for the MAIL FROM domain)."""
    policy = ctx.lp.policy
    by_sender: dict[str, list[SpfTerm]] = {}
    for term in ctx.spf_terms:
        by_sender.setdefault(term.sender, []).append(term)
    out: list[tuple[str, list[SpfTerm], Location]] = []
    taken = {r.name for r in ctx.result.records if r.kind == "spf"} | {ctx.domain}
    for rel, senders in policy.spf.names.items():
        name = rel if rel.endswith("." + ctx.domain) else f"{rel}.{ctx.domain}"
        where = ctx.location("spf", "names", rel)
        if "." in rel and not rel.endswith("." + ctx.domain):
            ctx.find(
                Severity.ERROR,
                f"spf.names: {rel} is not under {ctx.domain}",
                where,
                "name a host under the policy domain, e.g. bounce",
                code="spf-name-outside",
            )
            continue
        terms: list[SpfTerm] = []
        for sender in senders:
            if sender not in {s.name for s in policy.senders}:
                ctx.find(
                    Severity.ERROR,
                    f"spf.names.{rel}: no sender is named {sender!r}",
                    where,
                    "known senders: " + ", ".join(s.name for s in policy.senders),
                    code="spf-name-sender",
                )
            terms.extend(by_sender.get(sender, []))
        if name in taken:
            ctx.find(
                Severity.ERROR,
                f"spf.names.{rel}: {name} already gets an SPF record from a sender's catalog "
                "entry",
                where,
                "remove it from spf.names",
                code="spf-name-taken",
            )
            continue
        users = [s.name for s in ctx.result.senders if s.mail_from == name]
        if not users:
            ctx.find(
                Severity.WARNING,
                f"SPF at {name}: no sender uses it as its return-path (MAIL FROM) domain, so "
                "receivers never check it",
                where,
                f"set return_path: {name} on the sender that bounces there, or remove it",
                rfc="RFC 7208 §2.4",
                code="spf-no-mail-use",
            )
        taken.add(name)
        out.append((name, _unique(ctx, terms), where))
    for facts in ctx.result.senders:
        rp = facts.mail_from
        if facts.provider is not None or rp is None or rp in taken:
            continue
        if not rp.endswith("." + ctx.domain):
            continue
        taken.add(rp)
        terms = by_sender.get(facts.name, [])
        where = ctx.location("senders", facts.index, "return_path")
        out.append((rp, _unique(ctx, terms), where))
    return out


# --- one record ----------------------------------------------------------------------


def _publish(
    ctx: CompileContext, layer: ZoneLayer, name: str, terms: list[SpfTerm], where: Location
) -> LookupTree:
    spf = ctx.lp.policy.spf
    closing = f"{QUALIFIER[spf.all]}all"
    ordered = order_terms(terms)
    draft = build([*(t.text for t in ordered), closing])
    before = analyze(name, layer, draft, memo=layer.memo)
    ordered = _flatten(ctx, layer, name, ordered, before, where)
    # Size: other TXT values at the name share its 450-octet budget.
    others = [v for v in ctx.zone.get((name, "TXT"), ()) if not txt_kind_matches("spf", v)]
    split = split_record(name, [t.text for t in ordered], closing, answer_size("", others))
    for chain_name, value in split.records:
        layer.extra[chain_name] = [value]
    top = split.records[0][1]
    if split.extra_lookups:
        size = answer_size(name, [build([*(t.text for t in ordered), closing])])
        ctx.find(
            Severity.INFO,
            f"the SPF record at {name} would be {size + answer_size('', others)} octets with "
            f"the other TXT values there (guideline {SIZE_GUIDELINE}); split into "
            + ", ".join(n for n, _ in split.records[1:])
            + f" (+{split.extra_lookups} lookup(s))",
            where,
            rfc=SEC_SIZE,
            code="spf-split",
        )
    elif answer_size(name, [top, *others]) > SIZE_GUIDELINE:
        ctx.find(
            Severity.WARNING,
            f"TXT records at {name} total {answer_size(name, [top, *others])} octets; "
            f"RFC 7208 asks for under {SIZE_GUIDELINE} so the answer fits one UDP packet",
            where,
            "remove unused TXT values at that name",
            rfc=SEC_SIZE,
            code="spf-size",
        )
    # The draft's analysis is the published record's when the record is the
    # draft, unsplit, and nothing asked about `name` itself: publishing sets only
    # `name`'s TXT in the layer (an analysis rooted there never asks that: it
    # would be a loop), but a name with a record exists, so its A or MX asked
    # before answered NXDOMAIN and now answers no data.
    same = top == draft and len(split.records) == 1 and name not in layer.asked_own
    tree = before if same else analyze(name, layer, top, memo=layer.memo)
    _check_space(ctx, layer, name, top, where)
    per_sender = lookups_by_sender(
        tree, _senders_of(ordered, name), {n for n, _ in split.records[1:]}
    )
    if name == ctx.domain:
        ctx.result.details.spf_per_sender = per_sender
    for chain_name, value in split.records:
        owner = "spf"
        rec_where = where
        ctx.add(
            DesiredRecord(
                chain_name,
                "TXT",
                ctx.ttl,
                (value,),
                owner,
                "spf",
                rec_where,
                takeover=spf.takeover if chain_name == name else False,
            )
        )
    if tree.exceeded:
        _too_many(ctx, name, tree, per_sender, where, {n for n, _ in split.records[1:]})
    _tree_findings(ctx, tree, where, skip_limit=True)
    return tree


def _check_space(
    ctx: CompileContext, layer: ZoneLayer, name: str, record: str, where: Location
) -> None:
    """The union of every range the record lets pass, its own terms, flattened
    ones and (through the lock) its includes: all of IPv4 or IPv6 is +all in
    disguise, whatever the split; past the policy's ceiling is worth a look."""
    memo = layer.memo.space if layer.memo is not None else None
    space = address_space(name, record, layer, memo=memo)
    why = space.everyone()
    if why:
        ctx.find(
            Severity.ERROR,
            f"the SPF record at {name} lets every host pass: {why}; that is '+all' "
            "(anyone can send as this domain)",
            where,
            "list the addresses your senders use; if a flattened vendor answer is this wide, "
            "keep its include instead and tell the vendor",
            rfc="RFC 7208 §5.1",
            code="spf-pass-all",
        )
        return
    ceiling = ctx.lp.policy.spf.address_ceiling
    for version, prefix in ((4, ceiling.ip4), (6, ceiling.ip6)):
        if space.wider_than(version, prefix):
            ctx.find(
                Severity.WARNING,
                f"the SPF record at {name} lets {space.addresses(version):,} IPv{version} "
                f"addresses pass ({space.share(version):.4%} of IPv{version}), more than one "
                f"/{prefix} (spf.address_ceiling.ip{version})",
                where,
                "check which sender is that wide; raise the ceiling if it is expected",
                code="spf-address-ceiling",
            )


def _flatten(
    ctx: CompileContext,
    layer: ZoneLayer,
    name: str,
    ordered: list[SpfTerm],
    tree: LookupTree,
    where: Location,
) -> list[SpfTerm]:
    """Replace the includes that ask for it (a sender's `flatten: true`, or every
    one with `flatten: always`) by the ranges the lock lists.  With
    `flatten: auto`, also choose which other includes to flatten: the plan that
    fits the lookup limit counting the `include:_spfN` links its own size split
    adds, with the fewest split records, then the fewest includes flattened (an
    include left alone follows its vendor's changes by itself)."""
    mode = ctx.lp.policy.spf.flatten
    includes = [t for t in ordered if t.mechanism == "include"]
    wanted = [t for t in includes if t.flatten or mode is SpfFlatten.always]
    results = {t.text: flatten_include(t.text.split(":", 1)[1], layer) for t in wanted}
    if mode is SpfFlatten.auto:
        optional = [t for t in includes if t.text not in results]
        for term in optional:
            results[term.text] = flatten_include(term.text.split(":", 1)[1], layer)
        flattenable = [t for t in optional if results[t.text].ok]
        plan = _plan_auto(ctx, layer, name, ordered, [*wanted, *flattenable], results, tree)
        chosen = set(plan.flattened)
        wanted.extend(t for t in flattenable if t.text in chosen)
        if plan.lookups > MAX_DNS_LOOKUPS:
            # No plan fits: say why each include that could have helped was not flattened.
            wanted.extend(t for t in optional if not results[t.text].ok)
    if not wanted:
        return ordered
    for term in wanted:
        result = results[term.text]
        if not result.ok:
            ctx.find(
                Severity.WARNING,
                f"{term.text} (sender {term.sender!r}) is not flattened: "
                + "; ".join(result.problems),
                where,
                f"run `{REFRESH_COMMAND}` if the lock lacks it; otherwise keep the include",
                code="spf-flatten-failed",
            )
            continue
        when = result.resolved.strftime("%Y-%m-%d %H:%M UTC") if result.resolved else "unknown"
        ctx.find(
            Severity.INFO,
            f"{term.text} (sender {term.sender!r}) flattened into {len(result.networks)} "
            f"address range(s)"
            + (f" and {len(result.kept)} kept term(s)" if result.kept else "")
            + f", from the SPF lock as resolved {when}",
            where,
            f"run `{REFRESH_COMMAND}` to pick up upstream changes",
            code="spf-flattened",
        )
    return _flattened_terms(ordered, [t for t in wanted if results[t.text].ok], results)


def _flattened_terms(
    ordered: list[SpfTerm], done: list[SpfTerm], results: dict[str, Flattened]
) -> list[SpfTerm]:
    """`ordered` with the `done` includes replaced by their ranges and kept terms."""
    if not done:
        return ordered
    networks: list = []
    kept: list[SpfTerm] = []
    for term in done:
        networks.extend(results[term.text].networks)
        kept.extend(SpfTerm(k, term.sender) for k in results[term.text].kept)
    texts = {t.text for t in done}
    label = "flattened " + ",".join(dict.fromkeys(t.sender for t in done))
    out = [t for t in ordered if t.text not in texts]
    present = {t.text for t in out}
    flat = [SpfTerm(network_term(n), label) for n in collapse(networks)]
    out.extend(t for t in flat if t.text not in present)
    out.extend(t for t in kept if t.text not in present)
    return order_terms(list({t.text: t for t in out}.values()))


@dataclass(frozen=True)
class FlattenPlan:
    """One choice of includes to flatten and what the published record then costs."""

    flattened: tuple[str, ...]  # the optional include terms flattened
    lookups: int  # DNS lookups of the published record, split links included
    split_records: int  # chained `_spfN` records the size split adds

    def key(self) -> tuple[int, int, int, int]:
        """Fitting plans first, then the fewest split records, then the fewest
        includes flattened, then the fewest lookups."""
        fits = 0 if self.lookups <= MAX_DNS_LOOKUPS else 1
        return (fits, self.split_records, len(self.flattened), self.lookups)


EXHAUSTIVE_PLANS = 10  # up to this many optional includes every subset is tried (1024)


def _plan_auto(
    ctx: CompileContext,
    layer: ZoneLayer,
    name: str,
    ordered: list[SpfTerm],
    candidates: list[SpfTerm],
    results: dict[str, Flattened],
    tree: LookupTree,
) -> FlattenPlan:
    """The best plan over the includes `candidates` (those asked for by the
    policy always flattened, the others optional).  Each plan is judged as
    published: flattened, split to size, and its lookups counted as a receiver
    would.  So auto succeeds whenever flattening everything (`always`) would,
    since that plan is among those tried."""
    forced = [t for t in candidates if t.flatten or ctx.lp.policy.spf.flatten is SpfFlatten.always]
    optional = [t for t in candidates if t not in forced]
    closing = f"{QUALIFIER[ctx.lp.policy.spf.all]}all"
    others = [v for v in ctx.zone.get((name, "TXT"), ()) if not txt_kind_matches("spf", v)]
    others_size = answer_size("", others)

    def judge(chosen: tuple[SpfTerm, ...]) -> FlattenPlan:
        terms = _flattened_terms(ordered, [*forced, *chosen], results)
        split = split_record(name, [t.text for t in terms], closing, others_size)
        saved = dict(layer.extra)
        for chain_name, value in split.records[1:]:
            layer.extra[chain_name] = [value]
        try:
            lookups = analyze(name, layer, split.records[0][1], memo=layer.memo).total
        finally:
            layer.extra = saved
        return FlattenPlan(tuple(t.text for t in chosen), lookups, split.extra_lookups)

    nothing = judge(())
    if nothing.lookups <= MAX_DNS_LOOKUPS and not nothing.split_records:
        return nothing  # fits as it is: nothing to flatten, nothing to split
    if len(optional) <= EXHAUSTIVE_PLANS:
        subsets: Iterable[tuple[SpfTerm, ...]] = (
            combo for k in range(len(optional) + 1) for combo in combinations(optional, k)
        )
    else:
        # Too many to try all: the costliest first, one more at a time.
        cost = {c.via: c.cost for c in tree.children if c.via}
        ranked = sorted(optional, key=lambda t: -cost.get(t.text, 1))
        subsets = (tuple(ranked[:k]) for k in range(len(ranked) + 1))
    best = nothing
    for chosen in subsets:
        if chosen:
            plan = judge(chosen)
            if plan.key() < best.key():
                best = plan
    return best


SPLIT_RECORDS = "split records"  # the include:_spfN links a size split adds
UNATTRIBUTED = "other"


def _canonical(term: str) -> str:
    """A term as the parser prints it, so it matches the lookup tree's `via`."""
    try:
        record = parse(build([term]))
    except SpfSyntaxError:
        return term
    return str(record.mechanisms[0]) if record.mechanisms else term


def _senders_of(terms: list[SpfTerm], name: str) -> dict[str, str]:
    """Term text -> the sender that asked for it, also as the term reads once
    a split moved it into a chained record (`a` becomes `a:<name>`)."""
    out: dict[str, str] = {}
    for term in terms:
        out[_canonical(term.text)] = term.sender
        out.setdefault(_canonical(anchored(term.text, name)), term.sender)
    return out


def lookups_by_sender(
    tree: LookupTree, sender_of: dict[str, str], chain: set[str] = frozenset()
) -> dict[str, int]:
    """The tree's lookups per sender, adding up to `tree.total`.

    Each DNS-querying term of the record costs 1 plus the subtree it leads to,
    and belongs to the sender that asked for it.  The records a size split
    chains (`chain`) are not a sender's: the `include:_spfN` link costs one
    lookup of its own (shown as "split records"), and the terms moved into
    the chained record are charged to their senders as if they stayed on top.
    Anything left over (a subtree the walk gave up on) is "other", so the
    numbers always sum to the total the tree shows."""
    out: dict[str, int] = {}

    def add(who: str, n: int) -> None:
        out[who] = out.get(who, 0) + n

    def visit(node: LookupTree) -> None:
        if node.record is None:
            return
        try:
            record = parse(node.record)
        except SpfSyntaxError:
            return
        children = {c.via: c for c in node.children}
        labels = [str(m) for m in record.effective_mechanisms if m.queries_dns]
        if record.effective_redirect:
            labels.append(f"redirect={record.effective_redirect}")
        for label in labels:
            child = children.pop(label, None)
            if child is not None and child.domain in chain:
                add(SPLIT_RECORDS, 1)
                visit(child)
            else:
                add(sender_of.get(label, UNATTRIBUTED), child.cost if child else 1)

    visit(tree)
    left = tree.total - sum(out.values())
    if left:
        add(UNATTRIBUTED, left)
    return {who: n for who, n in out.items() if n}


def _too_many(
    ctx: CompileContext,
    name: str,
    tree: LookupTree,
    per: dict[str, int],
    where: Location,
    chain: set[str] = frozenset(),  # type: ignore[assignment]
) -> None:
    """`per` is the published tree's count per sender: it adds up to the total."""
    ranked = sorted(per.items(), key=lambda x: -x[1])
    detail = ", ".join(f"{s}: {n}" for s, n in ranked)
    costly = [s for s, n in ranked if n > 1 and s not in (UNATTRIBUTED, SPLIT_RECORDS)]
    if ctx.lp.policy.spf.flatten is not SpfFlatten.never:
        hint = (
            "no choice of includes to flatten fits: the best plan still needs "
            + _remaining(tree, chain)
            + "; drop senders you no longer use, list their addresses with ip4/ip6, or "
            "remove other TXT values at the name so the record needs fewer split records"
        )
    else:
        hint = (
            "set `flatten: true` on "
            + (f"sender {costly[0]!r}" if costly else "the costliest sender")
            + ", or `spf: {flatten: auto}` in the policy, to replace includes by their "
            "addresses from the SPF lock; or drop senders you no longer use"
        )
    ctx.find(
        Severity.ERROR,
        f"the SPF record at {name} needs {tree.total} DNS lookups; receivers return "
        f"permerror past {MAX_DNS_LOOKUPS} (lookups per sender: {detail})",
        where,
        hint,
        rfc=SEC_LIMIT,
        code="spf-too-many-lookups",
    )


def _remaining(tree: LookupTree, chain: set[str]) -> str:
    """What the published record still looks up, by kind: includes left (they
    could not be flattened: see the warnings), other lookup terms (a, mx,
    exists... which flattening keeps), and the links of the size split."""
    includes: list[str] = []
    terms: list[str] = []
    links = 0
    for node in tree.walk():
        if node is not tree and node.domain not in chain:
            continue
        children = {c.via: c for c in node.children}
        try:
            record = parse(node.record or "")
        except SpfSyntaxError:
            continue
        for mech in record.effective_mechanisms:
            if not mech.queries_dns:
                continue
            label = str(mech)
            child = children.get(label)
            if child is not None and child.domain in chain:
                links += 1
            elif mech.name == "include":
                includes.append(f"{label} ({child.cost if child else 1})")
            else:
                terms.append(label)
    parts = [f"{tree.total} lookups"]
    if includes:
        parts.append("includes not flattened: " + ", ".join(includes))
    if terms:
        parts.append("terms flattening keeps: " + ", ".join(terms))
    if links:
        parts.append(f"{links} split record link(s)")
    return "; ".join(parts)


def _tree_findings(
    ctx: CompileContext,
    tree: LookupTree,
    where: Location | None,
    *,
    skip_limit: bool = False,
) -> None:
    for finding in tree.findings(where):
        if skip_limit and finding.code == "spf-too-many-lookups":
            continue
        if finding.code == "spf-note" and "no stored answer" in finding.message:
            continue  # reported once, with the refresh hint, by _lock_findings
        if finding.code == "spf-note" and ("SHOULD NOT be published" in finding.message):
            continue  # reported below as a warning
        ctx.result.findings.append(finding)
    seen: dict[str, str] = {}
    for node in tree.walk():
        path = node.via or node.domain
        if node.via and node.domain in seen:
            ctx.find(
                Severity.WARNING,
                f"{node.domain} is included twice in the SPF tree of {tree.domain} (as "
                f"{seen[node.domain]} and again as {path}); the second costs "
                f"{node.cost} lookup(s) for nothing",
                where,
                "drop one of the includes that lead there",
                rfc=SEC_LIMIT,
                code="spf-duplicate-include",
            )
        seen.setdefault(node.domain, path)
        if node.record is None:
            continue
        try:
            record = parse(node.record)
        except SpfSyntaxError:
            continue
        for mech in record.effective_mechanisms:
            if mech.name == "all" and mech.qualifier == "+" and node.via:
                ctx.find(
                    Severity.ERROR,
                    f"{node.via} in the SPF tree of {tree.domain} ends in '+all': every host "
                    "on the internet passes SPF for this domain",
                    where,
                    "remove that include, and ask its owner to fix their record",
                    rfc="RFC 7208 §5.1",
                    code="spf-pass-all",
                )
            if mech.name == "ptr":
                ctx.find(
                    Severity.WARNING,
                    f"'{mech}' in {node.via or tree.domain}: ptr is slow, unreliable and "
                    "SHOULD NOT be published",
                    where,
                    "list the sender's addresses with ip4/ip6 instead",
                    rfc="RFC 7208 §5.5",
                    code="spf-ptr",
                )


def _check_all(ctx: CompileContext, where: Location) -> None:
    """`?all` says nothing about unlisted hosts; with DMARC at enforcement that
    is almost always an oversight."""
    spf, dmarc = ctx.lp.policy.spf, ctx.lp.policy.dmarc
    if spf.all is not SpfAll.neutral or dmarc is None:
        return
    if dmarc.policy in (DmarcPolicy.quarantine, DmarcPolicy.reject):
        ctx.find(
            Severity.WARNING,
            f"SPF ends in '?all' (neutral) while DMARC asks receivers to "
            f"{dmarc.policy.value} failing mail: unlisted hosts get no SPF verdict",
            ctx.location("spf", "all") if ctx.has_key("spf", "all") else where,
            "use all: fail (-all) or softfail (~all)",
            rfc="RFC 7208 §8.2",
            code="spf-neutral-all",
        )


def _check_zone(ctx: CompileContext, trees: dict[str, LookupTree]) -> None:
    """Several v=spf1 records at one name of the zone: a permerror for every
    receiver (RFC 7208 §3.2/§4.5).  Names we publish at are the processor's
    merge rules' business (it names both origins); here the others."""
    for name, values in ctx.zone.under(ctx.domain, "TXT").items():
        if name in trees:
            continue
        try:
            select_records(list(values))
        except SpfSyntaxError:
            ctx.find(
                Severity.WARNING,
                f"{name} has {sum(txt_kind_matches('spf', v) for v in values)} v=spf1 "
                "records in the zone: receivers return permerror",
                None,
                "keep one SPF record per name",
                rfc="RFC 7208 §3.2",
                code="spf-two-records",
            )
    for name in trees if ctx.lp.policy.spf.takeover else ():
        if any(txt_kind_matches("spf", v) for v in ctx.zone.get((name, "TXT"), ())):
            ctx.find(
                Severity.INFO,
                f"the hand-written SPF record at {name} is replaced (spf.takeover)",
                None,
                code="spf-takeover",
            )


def _lock_findings(ctx: CompileContext, layer: ZoneLayer, where: Location) -> None:
    third_party = [(n, t) for n, t in layer.missing]
    if third_party:
        # explain shows "not counted" rather than a number that leaves these out.
        ctx.result.details.spf_not_followed = sorted({n for n, _ in third_party})
        names = ", ".join(f"{n} {t}" for n, t in third_party[:8])
        more = f" and {len(third_party) - 8} more" if len(third_party) > 8 else ""
        if ctx.resolver is None:
            message = (
                f"no SPF lock file, so the records SPF includes are not followed ({names}"
                f"{more}): nested DNS lookups are not counted"
            )
        else:
            message = (
                f"{ctx.resolver.source} has no answer for {names}{more}: those includes are "
                "not followed, so nested DNS lookups are not counted"
            )
        ctx.find(
            Severity.WARNING,
            message,
            where,
            f"run `{REFRESH_COMMAND}` to record them",
            rfc=SEC_LIMIT,
            code="spf-lock-missing",
            cause=NO_LOCK if ctx.resolver is None else None,
        )
    if ctx.resolver is not None and layer.used_inner:
        oldest = ctx.resolver.oldest()
        max_age = timedelta(days=ctx.lp.policy.spf.lock_max_age_days)
        if oldest is not None and ctx.now - oldest > max_age:
            ctx.find(
                Severity.WARNING,
                f"{ctx.resolver.source} was resolved {oldest:%Y-%m-%d} "
                f"({(ctx.now - oldest).days} days ago, more than "
                f"{max_age.days}): vendors' address ranges may have changed",
                where,
                f"run `{REFRESH_COMMAND}` and review the diff",
                code="spf-lock-stale",
            )
