"""Recursive DNS lookup accounting for an SPF record (RFC 7208 §4.6.4).

Receivers stop with `permerror` once an evaluation needs more than 10 DNS-querying
terms or more than 2 void lookups, and that limit spans every nested include and
redirect.  A publisher cannot see this from their own record alone, so we walk the
whole tree through a Resolver and count what a receiver would count when no
earlier term matches (the worst case, which is what every non-matching sender
gets).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from ..dns.resolver import TEMPORARY, DnsError, Resolver
from ..findings import Finding, Location, Severity
from ..names import normalize, zone_of
from ..records.spf import Mechanism, SpfRecord, SpfSyntaxError, has_macro, parse, select_records
from .space import SpaceMemo

MAX_DNS_LOOKUPS = 10
MAX_VOID_LOOKUPS = 2
MAX_MX_NAMES = 10
# Stop following includes once this many lookups were counted: a receiver gave up
# long before, and diamond-shaped include graphs could otherwise grow exponentially.
WALK_CAP = 50

SEC_LIMIT = "RFC 7208 §4.6.4"
SEC_INCLUDE = "RFC 7208 §5.2"
SEC_REDIRECT = "RFC 7208 §6.1"
SEC_TEMP = "RFC 7208 §4.4/§5.2"


@dataclass
class LookupTree:
    """One SPF record in the evaluation tree and the lookups its terms cost.

    `own_lookups` counts this record's DNS-querying terms (the include/redirect
    that leads to a child is counted here, in the parent); `total` adds the
    subtree.  Messages carry their RFC section.
    """

    domain: str
    record: str | None = None
    via: str | None = None  # the term that led here, e.g. "include:_spf.google.com"
    own_lookups: int = 0
    void_lookups: int = 0
    children: list[LookupTree] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # each one is a permerror
    temp_errors: list[str] = field(default_factory=list)  # DNS failures: temperror
    notes: list[str] = field(default_factory=list)  # what could not be decided or is advised

    # Set once the analysis has finished this node (_Analysis.finish): verdicts read
    # totals many times and shared vendor subtrees make trees large.
    _total: int | None = field(default=None, repr=False, compare=False)
    _void_total: int | None = field(default=None, repr=False, compare=False)
    # True once finished with no message anywhere in the subtree: the walks that
    # gather messages skip it (most vendor subtrees say nothing).
    _quiet: bool = field(default=False, repr=False, compare=False)

    @property
    def total(self) -> int:
        """DNS-querying terms in this record and everything it includes or redirects to."""
        if self._total is not None:
            return self._total
        total = self.own_lookups
        for child in self.children:  # a loop, not sum(): every verdict walks the tree
            total += child.total
        return total

    @property
    def cost(self) -> int:
        """What this node adds to its parent: the include/redirect term itself plus `total`."""
        return self.total + (1 if self.via else 0)

    @property
    def void_total(self) -> int:
        if self._void_total is not None:
            return self._void_total
        total = self.void_lookups
        for child in self.children:
            total += child.void_total
        return total

    @property
    def exceeded(self) -> bool:
        """More than 10 lookups is permerror; exactly 10 is fine (RFC 7208 §4.6.4)."""
        return self.total > MAX_DNS_LOOKUPS

    @property
    def void_exceeded(self) -> bool:
        return self.void_total > MAX_VOID_LOOKUPS

    def walk(self) -> Iterator[LookupTree]:
        """Every node, depth first, parents before children."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def permerrors(self) -> list[str]:
        """Limit violations, then every nested error, as `findings` words them."""
        return [f.detail() for f in self.findings() if f.severity is Severity.ERROR]

    def all_temp_errors(self) -> list[str]:
        return self._nested("temp_errors")

    def all_notes(self) -> list[str]:
        return self._nested("notes")

    def _nested(self, attr: str, path: tuple[str, ...] = ()) -> list[str]:
        # Each message prefixed by the include path to its record; the path is
        # joined only where there is a message (most records have none).
        path = (*path, self.via) if path else (self.via or self.domain,)
        messages = getattr(self, attr)
        out = [f"{' > '.join(path)}: {msg}" for msg in messages] if messages else []
        for child in self.children:
            if not child._quiet:
                out.extend(child._nested(attr, path))
        return out

    def _nested_all(self) -> tuple[list[str], list[str], list[str]]:
        """`_nested` of errors, temp_errors and notes in one walk of the tree
        (shared vendor subtrees make trees large; most nodes say nothing)."""
        errors: list[str] = []
        temp_errors: list[str] = []
        notes: list[str] = []
        stack: list[tuple[LookupTree, tuple[str, ...]]] = [(self, (self.via or self.domain,))]
        while stack:
            node, path = stack.pop()
            if node.errors or node.temp_errors or node.notes:
                where = " > ".join(path)
                errors.extend(f"{where}: {msg}" for msg in node.errors)
                temp_errors.extend(f"{where}: {msg}" for msg in node.temp_errors)
                notes.extend(f"{where}: {msg}" for msg in node.notes)
            # Reversed onto the stack: children come off it in order, each
            # subtree before the next, as _nested's recursion visits them.
            stack.extend(
                (c, (*path, c.via))  # type: ignore[misc]
                for c in reversed(node.children)
                if not c._quiet
            )
        return errors, temp_errors, notes

    def findings(self, location: Location | None = None) -> list[Finding]:
        """The analysis as Findings: permerrors are errors, DNS failures warnings."""
        out: list[Finding] = []
        if self.exceeded:
            out.append(
                Finding(
                    Severity.ERROR,
                    f"SPF for {self.domain} needs {self.total} DNS lookups "
                    f"(limit {MAX_DNS_LOOKUPS}): receivers return permerror",
                    location,
                    hint="flatten or drop includes; ip4/ip6/all cost nothing",
                    rfc=SEC_LIMIT,
                    code="spf-too-many-lookups",
                )
            )
        if self.void_exceeded:
            out.append(
                Finding(
                    Severity.ERROR,
                    f"SPF for {self.domain} has {self.void_total} void lookups "
                    f"(limit {MAX_VOID_LOOKUPS}): receivers return permerror",
                    location,
                    hint="remove terms naming domains that do not exist or have no records",
                    rfc=SEC_LIMIT,
                    code="spf-too-many-void-lookups",
                )
            )
        errors, temp_errors, notes = self._nested_all()
        groups = (
            (Severity.ERROR, errors, "spf-permerror"),
            (Severity.WARNING, temp_errors, "spf-dns-failure"),
            (Severity.INFO, notes, "spf-note"),
        )
        for severity, messages, code in groups:
            out.extend(Finding(severity, msg, location, code=code) for msg in messages)
        return out


@dataclass(frozen=True)
class _Subtree:
    node: LookupTree  # finished; shared read-only by every tree that reaches it
    total: int  # node.total, kept: it walks the subtree
    domains: frozenset[str]  # the record domains in it, to see a loop through it


class SubtreeMemo(dict[tuple[str, str], _Subtree]):
    """Finished include/redirect subtrees by (target, term): vendor records recur in
    most trees, so analyses over one source of answers walk each of them once.

    `own_zones`: domains whose names some of the analyses answer themselves, not
    from the shared source (the SPF step answers the zone it compiles from that
    zone): a subtree that asked a name under one is not stored."""

    def __init__(self, own_zones: Iterable[str] = ()) -> None:
        super().__init__()
        self.own_zones = frozenset(map(normalize, own_zones))
        # The address-space check's finished targets, under the same rule.
        self.space = SpaceMemo(self.own_zones)


def analyze(
    domain: str, resolver: Resolver, record: str | None = None, *, memo: SubtreeMemo | None = None
) -> LookupTree:
    """Count the lookups a receiver makes evaluating SPF for `domain`.

    With `record`, analyse that text as if published at `domain` (to check a
    record before it is deployed); otherwise fetch the TXT record at `domain`.
    `memo` shares finished subtrees between analyses whose resolvers give the
    same answers throughout (one cache or lock), except under the memo's
    `own_zones`: trees may then share nodes, so treat them as read-only.
    """
    return _Analysis(resolver, memo).root(normalize(domain), record)


def _expand_escapes(domain_spec: str) -> str:
    """Expand the sender-independent macros `%%`, `%_` and `%-` (RFC 7208 §7.2)."""
    if "%" not in domain_spec:
        return domain_spec
    out, i = [], 0
    while i < len(domain_spec):
        pair = domain_spec[i : i + 2]
        if pair in ("%%", "%_", "%-"):
            out.append({"%%": "%", "%_": " ", "%-": "%20"}[pair])
            i += 2
        else:
            out.append(domain_spec[i])
            i += 1
    return "".join(out)


def _name_problem(name: str) -> str | None:
    """Why `name` cannot be a DNS name (RFC 1035 §2.3.4 lengths), or None."""
    if len(name) > 253:
        return "is longer than 253 octets"
    labels = name.split(".")
    if any(not label for label in labels):
        return "has an empty label"
    if any(len(label) > 63 for label in labels):
        return "has a label longer than 63 octets"
    return None


@lru_cache(maxsize=65536)
def _target_of(domain_spec: str) -> tuple[str | None, str | None]:
    """The name a domain-spec queries and why DNS cannot carry it (None when it
    can); (None, None) when it has macros that need a sender.  Cached: the same
    include targets recur in most trees."""
    if has_macro(domain_spec):
        return None, None
    name = normalize(_expand_escapes(domain_spec))
    return name, _name_problem(name)


class _Analysis:
    """One analysis: a per-run answer cache, so each (name, type) is asked once."""

    def __init__(self, resolver: Resolver, memo: SubtreeMemo | None = None) -> None:
        self.resolver = resolver
        self.cache: dict[tuple[str, str], list[str] | DnsError] = {}
        self.counted = 0  # lookups counted so far, in walk order
        self.memo = memo
        self.loops = 0  # loop errors found so far: a subtree with one depends on its path
        self.own_zones = memo.own_zones if memo is not None else frozenset()
        self.owned = 0  # names under own_zones asked: a subtree with one is not stored

    # -- DNS -------------------------------------------------------------

    def ask(self, name: str, rdtype: str) -> list[str]:
        key = (name, rdtype)
        if self.own_zones and zone_of(name, self.own_zones) is not None:
            self.owned += 1
        if key not in self.cache:
            try:
                self.cache[key] = self.resolver.query(name, rdtype)
            except DnsError as err:
                # Without its traceback: that holds this frame, so this analysis
                # (and the compile around it) in a cycle only the GC would free.
                self.cache[key] = err.with_traceback(None)
        answer = self.cache[key]
        if isinstance(answer, DnsError):
            raise answer.again()
        return answer

    def prefetch(self, record: SpfRecord, domain: str) -> None:
        """Hand the resolver every query this record's terms will make, before asking."""
        if self.resolver.offline:
            return  # nothing to gain, and vendor records recur in thousands of trees
        pairs: list[tuple[str, str]] = []
        for mech in record.effective_mechanisms:
            target = self.target(mech.domain_spec, domain)
            if target is not None:
                pairs.extend((target, t) for t in _QUERY_TYPES.get(mech.name, ()))
        if record.effective_redirect:
            target = self.target(record.effective_redirect, domain)
            if target is not None:
                pairs.append((target, "TXT"))
        wanted = [p for p in dict.fromkeys(pairs) if p not in self.cache]
        if wanted:
            self.resolver.prefetch(wanted)

    @staticmethod
    def target(domain_spec: str | None, domain: str) -> str | None:
        """The name a term queries, or None when it needs a sender to expand or is malformed."""
        if domain_spec is None:
            return domain
        name, problem = _target_of(domain_spec)
        return None if problem else name

    # -- records ---------------------------------------------------------

    def root(self, domain: str, record: str | None) -> LookupTree:
        node = LookupTree(domain, record)
        if record is None:
            node.record = self.fetch_record(node, required=False)
        if node.record is not None:
            self.evaluate(node, (domain,))
        self.finish(node)
        return node

    @staticmethod
    def finish(node: LookupTree) -> None:
        """Keep the node's totals: nothing changes it after this (its children are
        finished before it, so each total adds up the children's kept ones)."""
        node._total = node.total
        node._void_total = node.void_total
        node._quiet = not (node.errors or node.temp_errors or node.notes) and all(
            c._quiet for c in node.children
        )

    def fetch_record(self, node: LookupTree, *, required: bool) -> str | None:
        """The SPF record at node.domain; a missing one is an error for include/redirect."""
        section = SEC_REDIRECT if node.via and node.via.startswith("redirect") else SEC_INCLUDE
        try:
            txts = self.ask(node.domain, "TXT")
        except DnsError as err:
            if err.kind in TEMPORARY:
                node.temp_errors.append(f"{err} ({SEC_TEMP})")
                return None
            if err.kind == "missing":
                node.notes.append(f"no stored answer for {node.domain} TXT; not followed")
                return None
            txts = []
        try:
            text = select_records(txts)
        except SpfSyntaxError as err:
            node.errors.append(str(err))
            return None
        if text is None:
            if required:
                node.errors.append(
                    f"{node.domain} has no SPF record: {node.via} gives permerror ({section})"
                )
            else:
                node.notes.append(f"{node.domain} has no SPF record (result none, RFC 7208 §4.5)")
        return text

    def evaluate(self, node: LookupTree, path: tuple[str, ...]) -> None:
        """Count every term a receiver could reach, in order, recursing into includes."""
        assert node.record is not None
        try:
            record = parse(node.record)
        except SpfSyntaxError as err:
            node.errors.append(str(err))
            return
        self.prefetch(record, node.domain)
        for mech in record.effective_mechanisms:
            if mech.queries_dns:
                self.term(node, mech, path)
        if record.redirect and record.all is not None:
            node.notes.append(
                f"redirect={record.redirect} is ignored because the record has 'all' "
                "(RFC 7208 §5.1/§6.1)"
            )
        if record.effective_redirect:
            self.count(node)
            self.follow(node, f"redirect={record.effective_redirect}", record.redirect, path)

    def count(self, node: LookupTree) -> None:
        node.own_lookups += 1
        self.counted += 1

    def term(self, node: LookupTree, mech: Mechanism, path: tuple[str, ...]) -> None:
        self.count(node)
        label = str(mech)
        if mech.name == "ptr":
            node.notes.append(
                f"'{label}' SHOULD NOT be published; its answer depends on the sender "
                "(RFC 7208 §5.5)"
            )
            return
        if mech.name == "include":
            self.follow(node, label, mech.domain_spec, path)
            return
        target = self.checked_target(node, label, mech.domain_spec)
        if target is None:
            return
        if mech.name == "mx":
            self.check_mx(node, label, target)
        else:
            self.check_addresses(
                node, label, target, ("A", "AAAA") if mech.name == "a" else ("A",)
            )

    def checked_target(self, node: LookupTree, label: str, domain_spec: str | None) -> str | None:
        """The name to query, noting macros and erroring on names DNS cannot carry."""
        if domain_spec is None:
            return node.domain
        name, problem = _target_of(domain_spec)
        if name is None:
            node.notes.append(
                f"'{label}' uses macros: counted as 1 lookup but not followed, as expanding "
                "it needs a sender (RFC 7208 §7)"
            )
            return None
        if problem:
            node.errors.append(
                f"'{label}': {name!r} {problem}, so it is not a valid domain name; receivers "
                "return permerror or treat the term as no match (RFC 7208 §4.8, §4.3)"
            )
            return None
        return name

    def void(self, node: LookupTree, label: str, name: str, why: str) -> None:
        node.void_lookups += 1
        node.notes.append(f"'{label}': {name} {why}: a void lookup ({SEC_LIMIT})")

    def dns_failure(self, node: LookupTree, label: str, err: DnsError) -> bool:
        """Record a non-NXDOMAIN failure; False when `err` is NXDOMAIN (a void lookup)."""
        if err.kind in TEMPORARY:
            node.temp_errors.append(f"'{label}': {err} ({SEC_TEMP})")
            return True
        if err.kind != "nxdomain":
            node.notes.append(f"'{label}': {err}; not checked")
            return True
        return False

    def check_addresses(
        self, node: LookupTree, label: str, name: str, rdtypes: tuple[str, ...]
    ) -> None:
        """a/exists: void when the name does not exist or has no address at all.

        An IPv4 sender only asks A and an IPv6 sender only AAAA; we call the term
        void only when neither family answers, so the count holds for both.
        """
        found = False
        for rdtype in rdtypes:
            if found:
                break  # one family answering is enough: not void, so no need to ask more
            try:
                found = bool(self.ask(name, rdtype)) or found
            except DnsError as err:
                if self.dns_failure(node, label, err):
                    return
                self.void(node, label, name, "does not exist (NXDOMAIN)")
                return
        if not found:
            self.void(node, label, name, f"has no {'/'.join(rdtypes)} records")

    def check_mx(self, node: LookupTree, label: str, name: str) -> None:
        """mx: void without MX records; more than 10 MX names is permerror (§4.6.4)."""
        try:
            answers = self.ask(name, "MX")
        except DnsError as err:
            if not self.dns_failure(node, label, err):
                self.void(node, label, name, "does not exist (NXDOMAIN)")
            return
        if not answers:
            self.void(node, label, name, "has no MX records")
            return
        if len(answers) > MAX_MX_NAMES:
            node.errors.append(
                f"'{label}': {name} has {len(answers)} MX records; evaluating more than "
                f"{MAX_MX_NAMES} is a permerror ({SEC_LIMIT})"
            )

    def follow(
        self, node: LookupTree, label: str, domain_spec: str | None, path: tuple[str, ...]
    ) -> None:
        """include/redirect: recurse into the target's record, catching loops."""
        target = self.checked_target(node, label, domain_spec)
        if target is None:
            return
        if target in path:
            self.loops += 1
            loop = " -> ".join([*path, target])
            node.errors.append(
                f"'{label}' loops back ({loop}): evaluation never ends within the "
                f"{MAX_DNS_LOOKUPS}-lookup limit, so receivers return permerror ({SEC_LIMIT})"
            )
            return
        if self.counted > WALK_CAP:
            node.notes.append(f"'{label}' not followed: already past {WALK_CAP} lookups")
            return
        key = (target, label)
        hit = self.memo.get(key) if self.memo is not None else None
        # The same subtree a fresh walk would build: no loop back into this path,
        # and the walk cap not reached inside it.
        if hit and hit.domains.isdisjoint(path) and self.counted + hit.total <= WALK_CAP:
            node.children.append(hit.node)
            self.counted += hit.total
            return
        loops, owned = self.loops, self.owned
        child = LookupTree(target, via=label)
        node.children.append(child)
        child.record = self.fetch_record(child, required=True)
        if child.record is not None:
            self.evaluate(child, (*path, target))
        self.finish(child)
        if (
            self.memo is not None
            and self.loops == loops
            and self.owned == owned
            and self.counted <= WALK_CAP
        ):
            domains = frozenset(n.domain for n in child.walk())
            self.memo[key] = _Subtree(child, child.total, domains)


_QUERY_TYPES: dict[str, tuple[str, ...]] = {
    "include": ("TXT",),
    "a": ("A",),  # AAAA only when A is empty (check_addresses), saving a query
    "mx": ("MX",),
    "exists": ("A",),
}
