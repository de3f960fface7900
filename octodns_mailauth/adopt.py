"""Adopt what a domain already publishes: its SPF, DMARC, DKIM and vendor
records -> a policy that publishes the same (`octodns-mailauth init`).

Pure: the records come in as a zone view (`{(fqdn, type): values}`, TXT as
plain text, the shape `zoneview.zone_view` gives) and the result is data: the
policy as a mapping, what could not be expressed and why, and which published
values the policy now owns.  Vendor knowledge comes from the sender catalog
(its SPF include and record templates, matched in reverse), never from here.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any

from .catalog import Catalog, Entry, RecordTemplate, resolve_params
from .dkim.keys import DkimKeyError, check_published_key, check_rsa_bits, key_bits
from .names import is_subdomain, normalize
from .policy.dmarc import FAILURE_OPTIONS
from .records import txt_kind_matches
from .records.dkim import key_name, parse_dkim_txt, parse_key_record, split_key_name
from .records.dmarc import KNOWN_TAGS, parse_dmarc
from .records.spf import SpfSyntaxError, has_macro, parse, select_records
from .zoneview import ZoneView

__all__ = ["Adoption", "Unexpressed", "adopt"]

OWN_SENDER = "servers"  # the sender for ip4/ip6/a/mx terms and DKIM keys we publish
_WIDEST_PREFIX = {4: 8, 6: 16}  # as policy/models.py: wider is no list of servers
_SPF_ALL = {"-": "fail", "~": "softfail", "?": "neutral"}
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Unexpressed:
    """Something published that the policy cannot say; `blocking` when adopting
    the rest would change what receivers conclude (so nothing of that kind is
    written), otherwise it is left in the zone as it is."""

    what: str  # the term, tag or record, as published
    reason: str
    kind: str  # "spf", "dmarc", "dkim", "vendor"
    blocking: bool = True


@dataclass(frozen=True)
class Owned:
    """A published value the policy now publishes itself (delete it from the zone file)."""

    name: str  # fqdn
    type: str
    value: str  # as text (TXT unescaped)
    why: str


@dataclass
class Adoption:
    domain: str
    policy: dict[str, Any] = field(default_factory=dict)
    unexpressed: list[Unexpressed] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    owned: list[Owned] = field(default_factory=list)
    spf: str | None = None  # the published SPF record, if any
    dmarc: str | None = None

    def blocked(self, kind: str) -> list[Unexpressed]:
        return [u for u in self.unexpressed if u.kind == kind and u.blocking]

    @property
    def spf_expressible(self) -> bool:
        return not self.blocked("spf")


# --- vendor records: catalog templates matched in reverse --------------------------------


@dataclass
class _Template:
    entry: Entry
    template: RecordTemplate
    name_re: re.Pattern[str]
    value_re: re.Pattern[str]
    anchored: bool  # the value has vendor text of its own, so it identifies the vendor
    named: bool  # the name has (a selector's) text of its own


def _regex(
    text: str,
    entry: Entry,
    domain: str,
    expand: bool,
    groups: set[str],
    foreach: str | None,
    wide: str,
    depth: int = 0,
) -> tuple[str, int]:
    """A template -> a regular expression with a named group per parameter, and
    how many letters/digits of vendor text (not the domain) it holds."""
    out: list[str] = []
    literal = 0
    for lit, name, _spec, _conv in _FORMATTER.parse(text):
        if lit:
            out.append(re.escape(lit))
            literal += len(re.sub(r"[^A-Za-z0-9]", "", lit))
        if name is None:
            continue
        if name in ("domain", "domain_dashed"):
            out.append(re.escape(domain if name == "domain" else domain.replace(".", "-")))
            continue
        pname = foreach if name == "item" and foreach else name
        param = entry.params.get(pname)
        if param is None:
            raise ValueError(f"unknown parameter {pname}")
        if expand and name != "item" and param.default is not None and depth < 4:
            if param.default_with and pname in groups:
                out.append(f"(?P={pname})")
                continue
            sub, n = _regex(param.default, entry, domain, expand, groups, foreach, wide, depth + 1)
            if param.default_with:
                # The default applies only with another parameter: capture the value
                # itself too, so the policy states it (Microsoft 365's legacy targets).
                groups.add(pname)
                sub = f"(?P<{pname}>{sub})"
            out.append(sub)
            literal += n
        elif pname in groups:
            out.append(f"(?P={pname})")
        else:
            groups.add(pname)
            pattern = (param.pattern or wide).removeprefix("^").removesuffix("$")
            out.append(f"(?P<{pname}>{pattern})")
    return "".join(out), literal


def _templates(catalog: Catalog, domain: str) -> list[_Template]:
    out: list[_Template] = []
    for entry_id in catalog.ids():
        entry = catalog.entries[entry_id]
        groups = [g for g in (entry.dkim, entry.return_path) if g is not None]
        groups += entry.records
        for group in groups:
            for tpl in group.records:
                for expand in (True, False):
                    try:
                        name_src = "" if tpl.name == "@" else tpl.name
                        name_groups: set[str] = set()
                        name_re, name_literal = _regex(
                            name_src.replace("._domainkey", ""),
                            entry,
                            domain,
                            expand,
                            name_groups,
                            tpl.foreach,
                            "[^.]+",
                        )
                        if "._domainkey" in name_src:
                            name_re += r"\._domainkey"
                        if name_src:
                            name_re += r"\." + re.escape(domain)
                        else:
                            name_re = re.escape(domain)
                        value_re, literal = _regex(
                            tpl.value, entry, domain, expand, set(), tpl.foreach, ".+"
                        )
                    except (ValueError, re.error):
                        continue
                    flags = re.IGNORECASE if tpl.type != "TXT" else 0
                    out.append(
                        _Template(
                            entry,
                            tpl,
                            re.compile(name_re, re.IGNORECASE),
                            re.compile(value_re, flags),
                            literal >= 4,
                            name_literal > 0,
                        )
                    )
    return out


def _match_vendors(
    view: ZoneView, catalog: Catalog, domain: str, identified: set[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[str, str, str]]], list[str]]:
    """Which catalog entries the zone's records show, with the parameters read
    from them.  Returns (entry id -> params, entry id -> its records, notes)."""
    templates = _templates(catalog, domain)
    params: dict[str, dict[str, Any]] = {}
    records: dict[str, list[tuple[str, str, str]]] = {}
    notes: list[str] = []
    claimed: set[tuple[str, str, str]] = set()
    # Anchored templates first (they identify a vendor), then the generic ones
    # (`{dkim_selector}._domainkey TXT {dkim_record}`) of vendors already identified.
    for anchored_pass in (True, False):
        for (name, rtype), values in sorted(view.items()):
            if not is_subdomain(name, domain):
                continue
            for value in values:
                key = (name, rtype, value)
                if key in claimed:
                    continue
                for tpl in templates:
                    if tpl.template.type != rtype or tpl.anchored != anchored_pass:
                        continue
                    if not tpl.anchored and (tpl.entry.id not in identified or not tpl.named):
                        # `{dkim_selector}._domainkey TXT {dkim_record}` fits any key:
                        # only a vendor's own selector name ties a key to it.
                        continue
                    m_name = tpl.name_re.fullmatch(name)
                    m_value = m_name and tpl.value_re.fullmatch(value)
                    if not m_name or not m_value:
                        continue
                    got = {**m_name.groupdict(), **m_value.groupdict()}
                    got = {k: v for k, v in got.items() if v is not None}
                    single = {k: v for k, v in got.items() if not tpl.entry.params[k].list}
                    mine = params.setdefault(tpl.entry.id, {})
                    if any(mine.get(k, v) != v for k, v in single.items()):
                        note = (
                            f"{name} {rtype} {value!r} looks like {tpl.entry.name}'s, but with "
                            "parameters that differ from its other records: left in the zone"
                        )
                        if note not in notes:  # one per record, whichever templates fit it
                            notes.append(note)
                        continue
                    mine.update(single)
                    for k, v in got.items():
                        if k not in single and v not in mine.setdefault(k, []):
                            mine[k].append(v)
                    claimed.add(key)
                    identified.add(tpl.entry.id)
                    records.setdefault(tpl.entry.id, []).append(key)
                    break
    return params, records, notes


# --- SPF ---------------------------------------------------------------------------------


def _adopt_spf(
    out: Adoption,
    record: str,
    includes_by_target: dict[str, Entry],
) -> tuple[dict[str, Any], list[str], list[str], str]:
    """(own sender terms, catalog ids by their include, raw includes, all)."""
    own: dict[str, Any] = {}
    vendors: list[str] = []
    raw: list[str] = []
    try:
        parsed = parse(record)
    except SpfSyntaxError as e:
        out.unexpressed.append(Unexpressed(record, f"the published record is invalid: {e}", "spf"))
        return own, vendors, raw, "fail"

    def refuse(term: Any, reason: str) -> None:
        out.unexpressed.append(Unexpressed(str(term), reason, "spf"))

    for mod in parsed.modifiers:
        if mod.name == "redirect":
            refuse(
                mod,
                "redirect= hands the whole result to another domain's record; the policy "
                "language has no redirect (an include: with its own all differs for mail "
                "the target does not list)",
            )
        elif mod.name == "exp":
            out.notes.append(
                f"SPF {mod}: the explanation string is not kept (receivers use it only in "
                "bounce messages; it does not change who may send)"
            )
        else:
            out.notes.append(f"SPF {mod}: an unknown modifier, which receivers ignore: dropped")
    effective = parsed.effective_mechanisms
    for mech in parsed.mechanisms[len(effective) :]:
        out.notes.append(f"SPF term {mech} after 'all' is never evaluated: dropped")
    all_result = "neutral"
    if parsed.all is None and parsed.redirect is None:
        out.notes.append(
            "the published SPF record has no 'all': its default result is neutral, written "
            "as spf: {all: neutral} (?all)"
        )
    for mech in effective:
        if mech.name == "all":
            if mech.qualifier == "+":
                refuse(mech, "+all lets every host on the internet pass SPF (RFC 7208 §5.1)")
            else:
                all_result = _SPF_ALL[mech.qualifier]
            continue
        if mech.qualifier != "+":
            refuse(
                mech,
                f"the qualifier {mech.qualifier!r} makes the listed hosts "
                f"{'fail' if mech.qualifier == '-' else 'soft-fail or be neutral'}; policy "
                "senders only authorise (pass)",
            )
            continue
        if mech.name in ("ptr", "exists"):
            refuse(
                mech,
                "ptr is slow, unreliable and discouraged (RFC 7208 §5.5)"
                if mech.name == "ptr"
                else "exists: (usually with macros) has no equivalent in the policy language",
            )
            continue
        if mech.name in ("ip4", "ip6"):
            assert mech.network is not None
            network = mech.network
            if network.prefixlen < _WIDEST_PREFIX[network.version]:
                refuse(
                    mech,
                    f"a /{network.prefixlen} covers too much of the address space for a list "
                    "of servers; the policy refuses it (like +all)",
                )
                continue
            text = str(network) if network.num_addresses > 1 else str(network.network_address)
            if mech.address is not None and mech.address != network.network_address:
                out.notes.append(
                    f"SPF {mech}: host bits set; receivers match {network}, written as that"
                )
            own.setdefault(mech.name, [])
            if text not in own[mech.name]:
                own[mech.name].append(text)
            continue
        if mech.name in ("a", "mx"):
            if mech.cidr4 is not None or mech.cidr6 is not None:
                refuse(mech, f"{mech.name} with a prefix length: the policy has no CIDR on a/mx")
                continue
            spec = mech.domain_spec
            if spec is not None and has_macro(spec):
                refuse(mech, "a macro in the domain: the policy names hosts literally")
                continue
            hosts = own.setdefault(mech.name, [])
            host = out.domain if spec is None else normalize(spec)
            if host not in hosts:
                hosts.append(host)
            continue
        # include
        spec = mech.domain_spec or ""
        if has_macro(spec):
            refuse(mech, "a macro in the include target: the policy names includes literally")
            continue
        target = normalize(spec)
        entry = includes_by_target.get(target)
        if entry is not None:
            if entry.id not in vendors:
                vendors.append(entry.id)
        elif target not in raw:
            raw.append(target)
    for key in ("a", "mx"):
        if key in own and own[key] == [out.domain]:
            own[key] = True
    return own, vendors, raw, all_result


# --- DMARC -------------------------------------------------------------------------------


def _adopt_dmarc(out: Adoption, record: str) -> dict[str, Any] | None:
    parsed = parse_dmarc(record)
    if not parsed.valid:
        reasons = "; ".join(p.message for p in parsed.errors)
        out.unexpressed.append(
            Unexpressed(record, f"the published DMARC record is invalid: {reasons}", "dmarc")
        )
        return None
    tags = parsed.tags
    dmarc: dict[str, Any] = {}

    def refuse(tag: str, reason: str) -> None:
        out.unexpressed.append(Unexpressed(f"{tag}={tags[tag]}", reason, "dmarc"))

    policy_names = {"p": "policy", "sp": "subdomain_policy", "np": "nonexistent_policy"}
    # parse_dmarc refused invalid p/sp/np, rua/ruf and fo values: all here are valid.
    for tag, key in policy_names.items():
        if tag in tags:
            dmarc[key] = tags[tag].lower()
    if "policy" not in dmarc:
        if not out.blocked("dmarc"):
            out.unexpressed.append(Unexpressed(record, "no p= tag", "dmarc"))
        return None
    if dmarc.get("subdomain_policy") == dmarc["policy"]:
        del dmarc["subdomain_policy"]  # the default: sp= falls back to p=
    if "psd" in tags and tags["psd"].lower() in ("y", "n"):
        dmarc["public_suffix_domain"] = tags["psd"].lower() == "y"
    if tags.get("t", "").lower() == "y":
        dmarc["testing"] = True
    for tag, key in (("adkim", "dkim_alignment"), ("aspf", "spf_alignment")):
        if tags.get(tag, "r").lower() == "s":
            dmarc[key] = "strict"
    for tag in ("rua", "ruf"):
        if tag in tags:
            dmarc[tag] = [u.strip() for u in tags[tag].split(",")]
    if "fo" in tags:
        names = {v: k for k, v in FAILURE_OPTIONS.items()}
        options = [names[o.strip().lower()] for o in tags["fo"].split(":")]
        if "ruf" not in dmarc:
            out.notes.append(
                f"DMARC fo={tags['fo']} without ruf= has no effect (fo= selects failure "
                "reports, which go to ruf=): not written"
            )
        elif options != ["all_fail"]:  # fo=0 is the default
            dmarc["failure_options"] = list(dict.fromkeys(options))
    legacy: dict[str, Any] = {}
    defaults = {"pct": "100", "rf": "afrf", "ri": "86400"}
    for tag in ("pct", "rf", "ri"):
        if tag not in tags:
            continue
        if tags[tag].strip().lower() == defaults[tag]:
            out.notes.append(
                f"DMARC {tag}={tags[tag]} is the RFC 7489 default (and RFC 9989 removed the "
                "tag): not written"
            )
        elif tag == "rf":
            legacy["rf"] = [f.strip().lower() for f in tags["rf"].split(":")]
        elif tags[tag].isdigit():
            legacy[tag] = int(tags[tag])
        else:
            refuse(tag, "not a number")
    if legacy:
        dmarc["legacy"] = legacy
    for tag in tags:
        if tag not in KNOWN_TAGS and tag not in defaults:
            out.notes.append(f"DMARC tag {tag}= is unknown to receivers: dropped")
    return None if out.blocked("dmarc") else dmarc


# --- DKIM keys ---------------------------------------------------------------------------


def _adopt_dkim_key(
    out: Adoption, selector: str, values: tuple[str, ...]
) -> dict[str, Any] | None:
    name = key_name(selector, out.domain)

    def leave(reason: str) -> None:  # in the zone as it is
        out.unexpressed.append(Unexpressed(name, reason, "dkim", False))

    if len(values) != 1:
        return leave(f"{len(values)} TXT values at one selector")
    value = values[0]
    try:
        key = parse_key_record(value)
        tags = parse_dkim_txt(value)
    except DkimKeyError as e:
        return leave(f"not a usable key record: {e}")
    if key.public_key is None:
        return leave("a revoked key (p= empty): left in the zone as it is")
    entry: dict[str, Any] = {"selector": selector}
    if key.algorithm == "ed25519":
        entry["algorithm"] = "ed25519"
    else:
        bits = key_bits(key.public_key)
        try:
            # The rules a policy's own key meets (policy/dkim.py): adopt no key we would
            # refuse to publish.
            check_published_key(key.public_key)
            check_rsa_bits(bits)
        except DkimKeyError as e:
            return leave(f"{e}; left in the zone: replace it with a new selector")
        entry["algorithm"] = "rsa"
        if bits != 2048:
            entry["bits"] = bits
    entry["public_key"] = key.p
    extra = set(tags) - {"v", "k", "p", "t", "h", "s", "n"}
    if extra or tags.get("h", "sha256") != "sha256" or key.flags not in ((), ("y",)):
        return leave(f"tags the policy cannot write ({', '.join(sorted(extra) or ['h=/t='])})")
    if key.testing:
        entry["testing"] = True
    if "h" in tags:
        entry["hash_algorithms"] = ["sha256"]
    if "s" in tags:
        entry["service"] = list(key.services)
    if "n" in tags:
        entry["notes"] = tags["n"]
    return entry


# --- the whole ---------------------------------------------------------------------------


def adopt(domain: str, view: ZoneView, catalog: Catalog) -> Adoption:
    """The policy that publishes what `view` holds for `domain`."""
    domain = normalize(domain)
    out = Adoption(domain)
    includes_by_target: dict[str, Entry] = {}
    for entry_id in catalog.ids():
        entry = catalog.entries[entry_id]
        if entry.spf_include:
            includes_by_target.setdefault(normalize(entry.spf_include), entry)

    own: dict[str, Any] = {}
    vendors: list[str] = []
    raw: list[str] = []
    all_result = None
    txt = view.get((domain, "TXT"), ())
    near = [t for t in txt if t.lower().startswith("v=spf1")]  # SPF, or meant to be
    try:
        out.spf = select_records(list(txt))
    except SpfSyntaxError as e:
        out.unexpressed.append(Unexpressed(" | ".join(near), str(e), "spf"))
    if out.spf is not None:
        own, vendors, raw, all_result = _adopt_spf(out, out.spf, includes_by_target)
    elif not out.blocked("spf"):
        out.unexpressed.append(
            Unexpressed(
                near[0] if near else f"{domain} TXT",
                (
                    f"{near[0]!r} is not an SPF record receivers accept (v=spf1 must be "
                    "followed by a space)"
                    if near
                    else "no SPF record is published"
                )
                + "; a policy always publishes one (v=spf1 -all without senders), which would "
                "fail mail from servers nobody listed: publish a valid SPF record first, or "
                "write the policy's senders by hand",
                "spf",
            )
        )

    # Vendors: those named by their SPF include, and those whose records show.
    spf_vendors = set(vendors)
    params, vendor_records, notes = _match_vendors(view, catalog, domain, set(vendors))
    out.notes.extend(notes)
    for entry_id in params:
        entry = catalog.entries[entry_id]
        if entry.spf_include and entry_id not in spf_vendors:
            # Its records show, but the published SPF does not name it: as a provider
            # it would add include:<its include>, authorising hosts that are not now.
            for name, rtype, value in vendor_records.get(entry_id, []):
                out.unexpressed.append(
                    Unexpressed(
                        f"{name} {rtype} {value}",
                        f"{entry.name}'s record, but the published SPF record has no "
                        f"include:{entry.spf_include}, which `provider: {entry_id}` would add: "
                        "left in the zone (add the provider yourself if it sends as this domain)",
                        "vendor",
                        False,
                    )
                )
            continue
        if entry_id not in vendors:
            vendors.append(entry_id)
    senders: list[dict[str, Any]] = []
    for entry_id in vendors:
        entry = catalog.entries[entry_id]
        given = _non_default(entry, domain, params.get(entry_id, {}))
        _values, problems = resolve_params(entry, domain, given)
        if problems:
            # A provider we cannot complete: keep its include as it is published and
            # leave its records in the zone.
            why = "; ".join(p.message for p in problems)
            if entry.spf_include and out.spf and entry_id in spf_vendors:
                raw.insert(0, normalize(entry.spf_include))
            for name, rtype, value in vendor_records.get(entry_id, []):
                out.unexpressed.append(
                    Unexpressed(f"{name} {rtype} {value}", f"{entry.name}: {why}", "vendor", False)
                )
            out.notes.append(
                f"{entry.name} is not written as `provider: {entry_id}`: {why}; its SPF "
                "include is kept as a plain include"
            )
            continue
        sender: dict[str, Any] = {"name": entry_id, "provider": entry_id}
        sender.update(given)
        senders.append(sender)
        for name, rtype, value in vendor_records.get(entry_id, []):
            out.owned.append(Owned(name, rtype, value, f"sender {entry_id} ({entry.name})"))

    # DKIM keys published as TXT that no vendor claimed: keys our own servers sign with.
    claimed = {(n, t) for recs in vendor_records.values() for n, t, _v in recs}
    keys = []
    for (name, rtype), values in sorted(view.items()):
        key = split_key_name(name)
        if rtype != "TXT" or key is None or key[1] != domain or (name, rtype) in claimed:
            continue
        selector = key[0]
        if not selector or "*" in selector:
            continue
        key = _adopt_dkim_key(out, selector, values)
        if key is not None:
            keys.append(key)
            out.owned.append(Owned(name, "TXT", values[0], f"sender {OWN_SENDER} (DKIM key)"))
    if own or keys:
        sender = {"name": OWN_SENDER, **own}
        if keys:
            sender["dkim"] = keys
        senders.append(sender)
    for target in raw:
        senders.append({"name": target, "include": [target]})

    policy: dict[str, Any] = {}
    if senders:
        policy["senders"] = senders
    if out.spf is not None and out.spf_expressible:
        policy["spf"] = {"all": all_result or "fail", "takeover": True}
        out.owned.append(Owned(domain, "TXT", out.spf, "spf"))
    dmarc_text = None
    dmarc_values = [
        v for v in view.get((f"_dmarc.{domain}", "TXT"), ()) if txt_kind_matches("dmarc", v)
    ]
    if len(dmarc_values) > 1:
        out.unexpressed.append(
            Unexpressed(
                " | ".join(dmarc_values),
                "several DMARC records: receivers ignore them all (RFC 9989 §4.10)",
                "dmarc",
            )
        )
    elif dmarc_values:
        dmarc_text = dmarc_values[0]
        out.dmarc = dmarc_text
        dmarc = _adopt_dmarc(out, dmarc_text)
        if dmarc is not None:
            dmarc["takeover"] = True
            policy["dmarc"] = dmarc
            out.owned.append(Owned(f"_dmarc.{domain}", "TXT", dmarc_text, "dmarc"))
    out.policy = policy
    return out


def _non_default(entry: Entry, domain: str, given: dict[str, Any]) -> dict[str, Any]:
    """Parameters as a policy writes them: those equal to their default left out."""
    out = {}
    for key, value in given.items():
        param = entry.params[key]
        # A default that applies only with another parameter (Microsoft 365's
        # legacy DKIM targets) is written out: the value is what the zone has.
        if param.default is not None and not param.list and not param.default_with:
            without = {k: v for k, v in given.items() if k != key}
            defaults, _ = resolve_params(entry, domain, without)
            if defaults.get(key) == value:
                continue
        out[key] = value
    return out


def dns_term_order_changed(published: str, compiled: str) -> bool:
    """Whether the DNS-querying terms both records share are evaluated in another
    order.  Results are the same for every sender unless a lookup fails (a void
    lookup, the 10-lookup limit), where receivers may stop at a different term."""

    def order(record: str) -> list[str]:
        try:
            return [str(m).lower() for m in parse(record).mechanisms if m.queries_dns]
        except SpfSyntaxError:
            return []

    before, after = order(published), order(compiled)
    shared = set(before) & set(after)
    return [t for t in before if t in shared] != [t for t in after if t in shared]
