"""Recursive lookup accounting (RFC 7208 §4.6.4) over a StaticResolver."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from static_resolver import StaticResolver

from octodns_mailauth.cli.render import spf_tree_lines
from octodns_mailauth.dns.resolver import DnsError
from octodns_mailauth.findings import Severity
from octodns_mailauth.spf.lookups import LookupTree, SubtreeMemo, analyze

A = ["192.0.2.1"]


def zone(records: dict[str, str], extra: dict[tuple[str, str], list[str]] | None = None):
    """TXT records by name, plus raw answers; every TXT name also gets an A record."""
    data: dict[tuple[str, str], list[str]] = {(n, "TXT"): [t] for n, t in records.items()}
    data.update({(n, "A"): A for n in records})
    data.update(extra or {})
    return StaticResolver(data)


def includes(n: int, prefix: str = "inc") -> str:
    return " ".join(f"include:{prefix}{i}.example.com" for i in range(n))


def test_counts_only_dns_terms() -> None:
    tree = analyze(
        "example.com",
        zone({}, {("example.com", "MX"): ["10 mx.example.com."], ("example.com", "A"): A}),
        "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx ptr exists:e.example.com -all "
        "exp=x.example.com",
    )
    assert tree.own_lookups == 4  # a mx ptr exists; ip4 ip6 all exp are free
    assert tree.total == 4


def test_nested_includes_add_up_and_render() -> None:
    res = zone(
        {
            "example.com": "v=spf1 include:_spf.google.com include:b.example.com -all",
            "_spf.google.com": "v=spf1 include:n1.google.com include:n2.google.com "
            "include:n3.google.com ~all",
            "n1.google.com": "v=spf1 ip4:192.0.2.0/24 ~all",
            "n2.google.com": "v=spf1 ip6:2001:db8::/32 ~all",
            "n3.google.com": "v=spf1 ip4:198.51.100.0/24 ~all",
            "b.example.com": "v=spf1 a mx -all",
        },
        {("b.example.com", "MX"): ["10 mx.example.com."]},
    )
    tree = analyze("example.com", res)
    assert tree.record == "v=spf1 include:_spf.google.com include:b.example.com -all"
    assert (tree.own_lookups, tree.total, tree.exceeded, bool(tree.permerrors())) == (
        2,
        7,
        False,
        False,
    )
    google, b = tree.children
    assert (google.domain, google.via, google.own_lookups, google.total) == (
        "_spf.google.com",
        "include:_spf.google.com",
        3,
        3,
    )
    assert b.total == 2
    assert spf_tree_lines(tree) == [
        "example.com  7 lookups (limit 10), 0 void lookups (limit 2)",
        "  include:_spf.google.com  4 lookups",
        "    include:n1.google.com  1 lookup",
        "    include:n2.google.com  1 lookup",
        "    include:n3.google.com  1 lookup",
        "  include:b.example.com  3 lookups",
    ]


def test_exactly_ten_is_ok_eleven_is_permerror() -> None:
    records = {f"inc{i}.example.com": "v=spf1 ip4:192.0.2.1 -all" for i in range(11)}
    ten = analyze("example.com", zone(records), f"v=spf1 {includes(10)} -all")
    assert (ten.total, ten.exceeded, bool(ten.permerrors())) == (10, False, False)
    eleven = analyze("example.com", zone(records), f"v=spf1 {includes(11)} -all")
    assert (eleven.total, eleven.exceeded, bool(eleven.permerrors())) == (11, True, True)
    assert "needs 11 DNS lookups" in eleven.permerrors()[0]
    assert "RFC 7208 §4.6.4" in eleven.permerrors()[0]


def test_limit_spans_nested_records() -> None:
    res = zone(
        {
            "example.com": "v=spf1 a include:a.example.com redirect=r.example.com",
            "a.example.com": "v=spf1 a a a a ?all",
            "r.example.com": "v=spf1 include:b.example.com a -all",
            "b.example.com": "v=spf1 a a ~all",
        }
    )
    tree = analyze("example.com", res)
    # example: a include redirect (3) + a.example: 4 + r: include a (2) + b: 2 = 11
    assert tree.total == 11 and tree.exceeded
    assert [c.via for c in tree.children] == ["include:a.example.com", "redirect=r.example.com"]


def test_redirect_ignored_with_all_and_terms_after_all() -> None:
    res = zone({"r.example.com": "v=spf1 a a a a a a a a a a a -all"})
    tree = analyze("example.com", res, "v=spf1 redirect=r.example.com ?all a mx include:x.example")
    assert (tree.total, tree.children, bool(tree.permerrors())) == (0, [], False)
    assert any("is ignored because the record has 'all'" in n for n in tree.notes)
    assert res.queries == []


def test_void_lookups() -> None:
    res = StaticResolver(
        {("nodata.example.com", "TXT"): ["hello"], ("v6only.example.com", "AAAA"): ["2001:db8::1"]}
    )
    two = analyze("example.com", res, "v=spf1 a:nx.example.com mx:nodata.example.com -all")
    assert (two.void_total, two.void_exceeded, bool(two.permerrors())) == (2, False, False)
    three = analyze(
        "example.com",
        res,
        "v=spf1 a:nx.example.com mx:nodata.example.com exists:nodata.example.com "
        "a:v6only.example.com -all",
    )
    assert (three.void_total, three.void_exceeded, bool(three.permerrors())) == (3, True, True)
    assert "3 void lookups" in three.permerrors()[0]


def test_void_lookups_add_up_across_includes() -> None:
    res = zone({"i.example.com": "v=spf1 a:nx1.example.com a:nx2.example.com -all"})
    tree = analyze("example.com", res, "v=spf1 include:i.example.com a:nx3.example.com -all")
    assert tree.void_lookups == 1 and tree.children[0].void_lookups == 2
    assert tree.void_total == 3 and tree.permerrors()


@pytest.mark.parametrize(("count", "permerror"), [(10, False), (11, True)])
def test_mx_names_limit(count: int, permerror: bool) -> None:
    mx = [f"{i} mx{i}.example.com." for i in range(count)]
    tree = analyze("example.com", StaticResolver({("example.com", "MX"): mx}), "v=spf1 mx -all")
    assert tree.total == 1
    assert bool(tree.permerrors()) is permerror
    if permerror:
        assert "11 MX records" in tree.errors[0]


@pytest.mark.parametrize(
    ("records", "loop"),
    [
        ({"e1.example.com": "v=spf1 ip4:1.1.1.1 redirect=e1.example.com"}, "e1.example.com"),
        (
            {
                "e2.example.com": "v=spf1 include:e3.example.com",
                "e3.example.com": "v=spf1 include:E2.example.com.",
            },
            "e2.example.com -> e3.example.com -> e2.example.com",
        ),
    ],
)
def test_loops(records: dict[str, str], loop: str) -> None:
    root = next(iter(records))
    tree = analyze(root, zone(records))
    assert tree.permerrors()
    assert any(loop in e and "loops back" in e for e in tree.permerrors())


def test_diamond_is_counted_twice_but_asked_once() -> None:
    res = zone(
        {
            "a.example.com": "v=spf1 include:shared.example.com",
            "b.example.com": "v=spf1 include:shared.example.com",
            "shared.example.com": "v=spf1 a -all",
        }
    )
    tree = analyze("example.com", res, "v=spf1 include:a.example.com include:b.example.com -all")
    assert tree.total == 6 and not tree.permerrors()
    assert len(res.queries) == len(set(res.queries))


def test_include_target_without_record_or_broken() -> None:
    res = zone(
        {
            "broken.example.com": "v=spf1 include +all",
            "notspf.example.com": "v=spf10 -all",
        },
        {("twice.example.com", "TXT"): ["v=spf1 -all", "v=spf1 ~all"]},
    )
    for target, fragment in [
        ("nx.example.com", "has no SPF record: include:nx.example.com gives permerror"),
        ("notspf.example.com", "has no SPF record"),
        ("broken.example.com", "SPF term 'include' is invalid: 'include' requires"),
        ("twice.example.com", "2 'v=spf1' records"),
    ]:
        tree = analyze("example.com", res, f"v=spf1 include:{target} -all")
        assert tree.permerrors(), target
        (message,) = tree.permerrors()
        assert message.startswith(f"example.com > include:{target}: ") and fragment in message
        assert "RFC 7208 §" in message


def test_redirect_to_none_is_permerror() -> None:
    tree = analyze("example.com", zone({}), "v=spf1 redirect=nx.example.com")
    assert tree.permerrors()
    assert "RFC 7208 §6.1" in tree.permerrors()[0]


def test_macros_counted_not_followed() -> None:
    res = zone({})
    tree = analyze(
        "example.com",
        res,
        "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} include:_spf.%{d2} a:%%.example.com -all",
    )
    assert tree.total == 3 and tree.children == []
    assert sum("uses macros" in n for n in tree.notes) == 2
    assert ("%.example.com", "A") in res.queries  # %% expands without a sender


def test_invalid_dns_name_is_an_error() -> None:
    tree = analyze("example.com", zone({}), "v=spf1 a:mail.example...com -all")
    assert tree.total == 1 and tree.permerrors()
    assert "empty label" in tree.errors[0]


class FailingResolver(StaticResolver):
    def __init__(self, failing: dict[str, str]) -> None:
        super().__init__({("ok.example.com", "TXT"): ["v=spf1 -all"]})
        self.failing = failing
        self.prefetched: list[list[tuple[str, str]]] = []

    def query(self, name: str, rdtype: str) -> list[str]:
        if name in self.failing:
            self.queries.append((name, rdtype))
            raise DnsError(name, rdtype, self.failing[name])
        return super().query(name, rdtype)

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.prefetched.append(list(pairs))


def test_dns_failures_are_temperrors_not_permerrors() -> None:
    res = FailingResolver({"slow.example.com": "timeout", "lock.example.com": "missing"})
    tree = analyze(
        "example.com",
        res,
        "v=spf1 include:slow.example.com a:slow.example.com include:lock.example.com -all",
    )
    assert not tree.permerrors()
    assert len(tree.all_temp_errors()) == 2
    assert any("no stored answer" in n for n in tree.all_notes())
    assert tree.void_total == 0


def test_prefetch_before_queries_and_each_pair_once() -> None:
    res = FailingResolver({})
    analyze(
        "example.com",
        res,
        "v=spf1 a mx:ok.example.com include:ok.example.com exists:ok.example.com a "
        "redirect=ok.example.com",
    )
    # AAAA is asked only when A is empty, so it is not prefetched.
    assert res.prefetched[0] == [
        ("example.com", "A"),
        ("ok.example.com", "MX"),
        ("ok.example.com", "TXT"),
        ("ok.example.com", "A"),
    ]
    assert len(res.queries) == len(set(res.queries))


def test_root_without_record_is_none_not_error() -> None:
    tree = analyze("Example.COM.", zone({}))
    assert tree.domain == "example.com"
    assert (tree.record, bool(tree.permerrors()), tree.total) == (None, False, 0)
    assert "result none" in tree.notes[0]


def test_root_syntax_error_and_given_record_skips_fetch() -> None:
    res = zone({"example.com": "v=spf1 -all"})
    tree = analyze("example.com", res, "v=spf1 a:museum -all")
    assert tree.permerrors() and "a:museum" in tree.errors[0]
    assert res.queries == []


def test_findings() -> None:
    res = zone({f"inc{i}.example.com": "v=spf1 a:nx.example.com -all" for i in range(11)})
    tree = analyze("example.com", res, f"v=spf1 {includes(11)} -all")
    codes = {f.code: f for f in tree.findings()}
    assert codes["spf-too-many-lookups"].severity is Severity.ERROR
    assert codes["spf-too-many-lookups"].rfc == "RFC 7208 §4.6.4"
    assert "22 DNS lookups" in codes["spf-too-many-lookups"].message
    assert codes["spf-too-many-void-lookups"].severity is Severity.ERROR
    assert isinstance(tree, LookupTree)


def test_shared_subtrees_are_the_trees_a_fresh_walk_builds() -> None:
    """A memo walks a subtree reached from many roots once and shares it;
    every tree must still be exactly what analysing that root alone gives, also
    where a loop runs through the subtree or the walk cap cuts it short."""
    leaves = {f"leaf{i}.example": "v=spf1 ip4:192.0.2.1 -all" for i in range(30)}
    records = {
        **leaves,
        "a.example": "v=spf1 include:v.example include:loop1.example -all",
        "b.example": "v=spf1 include:v.example ~all",
        "v.example": "v=spf1 include:v2.example a:v.example mx:v.example -all",
        "v2.example": "v=spf1 ip4:192.0.2.0/24 -all",
        # A loop inside a subtree, and one back into the root's own path.
        "loop1.example": "v=spf1 include:loop2.example -all",
        "loop2.example": "v=spf1 include:loop1.example -all",
        "c.example": "v=spf1 include:loop2.example -all",
        "self.example": "v=spf1 include:back.example -all",
        "back.example": "v=spf1 include:self.example -all",
        # wide.example costs 30; reached a second time past 20 lookups, the cap
        # (50) stops following inside it, so the first walk may not be reused.
        "wide.example": "v=spf1 " + " ".join(f"include:{n}" for n in leaves) + " -all",
        "wide2.example": "v=spf1 include:wide.example -all",
        "cap.example": "v=spf1 include:wide.example include:wide2.example -all",
    }
    roots = ["a.example", "b.example", "c.example", "self.example", "back.example"]
    roots += ["cap.example", "wide2.example", "loop1.example"]
    res = zone(records)
    memo = SubtreeMemo()
    shared = {root: analyze(root, res, memo=memo) for root in roots}
    for root in roots:
        alone = analyze(root, res)
        got = shared[root]
        assert spf_tree_lines(got) == spf_tree_lines(alone), root
        assert (got.total, got.void_total) == (alone.total, alone.void_total), root
        assert got.permerrors() == alone.permerrors(), root
        assert got.all_notes() == alone.all_notes(), root
    # It did share: b.example's include is the very node a.example's walk built.
    assert shared["b.example"].children[0] is shared["a.example"].children[0]
    assert any("not followed" in n for n in shared["cap.example"].all_notes())
    assert any("loops back" in e for e in shared["self.example"].permerrors())


def test_a_shared_subtree_is_not_reused_where_it_would_loop() -> None:
    # v2.example's own record is a leaf, so the subtree of v.example stored from
    # b.example's walk has no loop; a draft record at v2.example that includes
    # v.example does loop (v2 -> v -> v2), and must say so as a fresh walk does.
    res = zone(
        {
            "b.example": "v=spf1 include:v.example ~all",
            "v.example": "v=spf1 include:v2.example -all",
            "v2.example": "v=spf1 ip4:192.0.2.0/24 -all",
        }
    )
    memo = SubtreeMemo()
    analyze("b.example", res, memo=memo)
    assert memo  # the subtree was stored
    draft = "v=spf1 include:v.example -all"
    got = analyze("v2.example", res, draft, memo=memo)
    assert spf_tree_lines(got) == spf_tree_lines(analyze("v2.example", res, draft))
    assert any("loops back" in e for e in got.permerrors())


def test_a_shared_subtree_never_carries_a_resolvers_own_answers() -> None:
    """Each compile answers names under its own domain from its zone (the SPF
    step's ZoneLayer); a memo shared between compiles over one lock stores no
    subtree that asked a name under any of those domains, as another compile
    would get another answer there."""
    records = {
        "vendor.example": "v=spf1 include:spf.own.example include:leaf.example -all",
        "spf.own.example": "v=spf1 ip4:192.0.2.0/24 -all",  # what the world sees
        "leaf.example": "v=spf1 ip4:198.51.100.0/24 -all",
        "new.example": "v=spf1 ip4:203.0.113.0/24 -all",
    }

    class Owning(StaticResolver):
        """Answers own.example's names itself, as a compile of own.example does."""

        def query(self, name: str, rdtype: str) -> list[str]:
            if name == "spf.own.example" and rdtype == "TXT":
                return ["v=spf1 include:new.example -all"]  # the draft about to be published
            return super().query(name, rdtype)

    shared, owning = zone(records), Owning({(n, "TXT"): [t] for n, t in records.items()})
    record = "v=spf1 include:vendor.example -all"
    alone = spf_tree_lines(analyze("own.example", owning, record))
    assert "new.example" in "\n".join(alone)  # its own answer

    memo = SubtreeMemo(own_zones={"own.example"})
    analyze("other.example", shared, record, memo=memo)
    assert ("vendor.example", "include:vendor.example") not in memo  # it asked spf.own.example
    assert ("leaf.example", "include:leaf.example") in memo  # nothing of own.example
    assert spf_tree_lines(analyze("own.example", owning, record, memo=memo)) == alone
    # Without own_zones the other compile's answer would be shared, wrongly.
    unaware = SubtreeMemo()
    analyze("other.example", shared, record, memo=unaware)
    assert spf_tree_lines(analyze("own.example", owning, record, memo=unaware)) != alone
