"""Policy files -> validated `LoadedPolicy` objects, or errors that point at a line.

Structure is checked by the pydantic models; provider parameters against the
sender catalog.  Semantic rules (conflicts, alignment, lookup limits) belong to
the compile step, which reports them as findings with the same locations.
"""

from __future__ import annotations

import difflib
import functools
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .._fs import read_regular
from ..errors import PolicyError
from ..findings import Finding, Location, Severity
from ..names import InvalidName, check_name
from ..redact import redact, shown
from .dmarc import LegacyTags
from .models import DkimKey, DmarcPolicySettings, Policy, Sender, SpfPolicy
from .transport import BimiSettings, MtaStsHost, MtaStsSettings, TlsRptSettings
from .yamlpos import MAX_POLICY_BYTES, KeyPath, LineMap, YamlSyntaxError, load

POLICY_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    path: str
    lines: LineMap
    domain: str

    def location(self, *path: str | int) -> Location:
        return Location(self.path, self.lines.line_for(tuple(path)), key_path(path))

    def dkim_keys(self) -> Iterator[tuple[Sender, DkimKey, Location]]:
        """Every sender's `dkim:` entries, each with where it is written."""
        for s, sender in enumerate(self.policy.senders):
            for k, key in enumerate(sender.dkim):
                yield sender, key, self.location("senders", s, "dkim", k)

    @property
    def acknowledge(self) -> tuple[str, ...]:
        return tuple(self.policy.acknowledge)


class DeferredPolicy(LoadedPolicy):
    """A policy another process parsed and checked from `text`: parsed here again,
    from the same text, only when something reads it.  A run over thousands of
    policies whose first compile happened in worker processes reuses those
    results and rarely does; sending every parsed policy back costs more."""

    def __init__(self, text: str, path: str, domain: str, acknowledge: tuple[str, ...]) -> None:
        # Not the dataclass's fields: `policy` and `lines` are read on first use.
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "_acknowledge", acknowledge)

    @functools.cached_property
    def _parsed(self) -> LoadedPolicy:
        lp = parse_policy(self.text, self.path, domain_from_filename(Path(self.path)))
        assert lp.domain == self.domain, (lp.domain, self.domain)  # the same text, parsed
        return lp

    @property  # type: ignore[override]
    def policy(self) -> Policy:
        return self._parsed.policy

    @property  # type: ignore[override]
    def lines(self) -> LineMap:
        return self._parsed.lines

    @property
    def acknowledge(self) -> tuple[str, ...]:
        return self._acknowledge  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        return self._parsed == other

    def __hash__(self) -> int:
        return hash(self._parsed)

    def __repr__(self) -> str:
        return f"DeferredPolicy(path={self.path!r}, domain={self.domain!r})"


def key_path(path: KeyPath) -> str:
    """('senders', 2, 'dkim') -> 'senders[2].dkim'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# Which model validates the mapping at a given (shape of) key path, for hints.
_MODELS: dict[tuple[str, ...], type[BaseModel]] = {
    (): Policy,
    ("senders", "#"): Sender,
    ("senders", "#", "dkim"): DkimKey,
    ("senders", "#", "dkim", "#"): DkimKey,
    ("spf",): SpfPolicy,
    ("dmarc",): DmarcPolicySettings,
    ("dmarc", "legacy"): LegacyTags,
    ("mta_sts",): MtaStsSettings,
    ("mta_sts", "host"): MtaStsHost,
    ("tls_rpt",): TlsRptSettings,
    ("bimi",): BimiSettings,
}


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    shape = tuple("#" if isinstance(p, int) else p for p in path)
    return _MODELS.get(shape)


def _yaml_path(loc: tuple[Any, ...]) -> KeyPath:
    # pydantic adds union member tags ('bool', 'list[str]', 'function-after[...]')
    # to error locations; they are not keys in the file.
    return tuple(
        p
        for p in loc
        if isinstance(p, int) or not ("[" in p or "(" in p or p in {"bool", "str", "int"})
    )


# An example of a valid value per key, for hints on type errors.
_EXAMPLES: dict[str, str] = {
    "ttl": "ttl: 3600 (seconds, 60 to 604800)",
    "bits": "bits: 2048 (2048 to 4096)",
    "max_age": "max_age: 604800 (seconds, at most 31557600)",
    "lock_max_age_days": "lock_max_age_days: 30",
    "pct": "pct: 100",
    "ri": "ri: 86400",
    "ip4": "ip4: [203.0.113.5, 198.51.100.0/28]",
    "ip6": "ip6: ['2001:db8::25', '2001:db8:1::/48']",
    "senders": "senders: [{name: office, provider: microsoft365, tenant: contoso}]",
    "spf": "spf: {all: fail}",
    "dmarc": "dmarc: {stage: monitor, rua: [mailto:dmarc@example.com]}",
    "mta_sts": "mta_sts: {mode: testing, mx: [mx1.example.com]}",
    "tls_rpt": "tls_rpt: {rua: [mailto:tls-reports@example.com]}",
    "bimi": "bimi: {logo: https://example.com/logo.svg}",
    "host": "host: {cname: mta-sts.hosting.example.net}",
    "legacy": "legacy: {pct: 100}",
    "dkim": "dkim: {selector: relay2026a, algorithm: ed25519}",
    "names": "names: {bounce: [relay]}",
    "unaligned_ok": "unaligned_ok: 'the ticketing system sends with its own MAIL FROM'",
    "rotate": "rotate: 90d",
    "publish_ahead": "publish_ahead: 2d",
    "retire_for": "retire_for: 7d",
    "revoke_for": "revoke_for: 7d",
    "a": "a: true, or a: [mail.example.com]",
    "mx": "mx: true, or mx: [example.com]",
}
_IP_KINDS = {
    "ip_v4_network": "an IPv4 address or CIDR range",
    "ip_v6_network": "an IPv6 address or CIDR range",
    "ip_v4_address": "an IPv4 address",
    "ip_v6_address": "an IPv6 address",
    "ip_any_network": "an IP address or CIDR range",
    "ip_any_address": "an IP address",
}
_LIMITS = {
    "greater_than_equal": ("ge", "greater than or equal to"),
    "greater_than": ("gt", "greater than"),
    "less_than_equal": ("le", "less than or equal to"),
    "less_than": ("lt", "less than"),
}


def _key_name(loc: KeyPath) -> str:
    """The YAML key an error is about: `ip6` for senders[0].ip6[1]."""
    return next((str(p) for p in reversed(loc) if isinstance(p, str)), "the policy")


# Keys whose name means something else elsewhere (`mx` of a sender vs of MTA-STS).
_PATH_EXAMPLES: dict[tuple[str, str], str] = {
    ("mta_sts", "mx"): "mx: [mx1.example.com, '*.mail.example.net']",
}


def _example(key: str, fallback: str, loc: KeyPath = ()) -> str:
    shaped = _PATH_EXAMPLES.get((str(loc[0]), key)) if loc else None
    if shaped is not None:
        return f"write e.g. {shaped}"
    return f"write e.g. {_EXAMPLES[key]}" if key in _EXAMPLES else fallback


def _typed_message(kind: str, key: str, err: dict[str, Any]) -> tuple[str, str] | None:
    """(message, hint) for a pydantic type/limit error, naming the key; None for
    error types the model's own message already explains."""
    got = shown(err.get("input"))
    ctx = err.get("ctx") or {}
    if key in {"a", "mx"} and kind in {"bool_type", "bool_parsing", "list_type"}:
        # `true | [names]`: one message for both halves of the union.
        return f"{key} must be true, false or a list of host names, not {got}", _example(key, "")
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"{key} must be a whole number, not {got}", _example(key, f"write e.g. {key}: 10")
    if kind in _LIMITS:
        bound, words = _LIMITS[kind]
        return (
            f"{key} is {got}: it must be {words} {ctx.get(bound)}",
            _example(key, f"use a value {words} {ctx.get(bound)}"),
        )
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return (
            f"{key} must be a mapping of settings, not {got}",
            _example(key, f"write {key}: followed by indented key: value lines")
            + (f", or remove {key}: to leave it out" if err.get("input") is None else ""),
        )
    if kind in _IP_KINDS:
        return (
            f"{key}: {got} is not {_IP_KINDS[kind]}",
            _example(key, "write the address in its usual notation")
            + (
                "; IPv4 addresses go under ip4:, IPv6 under ip6:"
                if kind.startswith(("ip_v4", "ip_v6"))
                else ""
            ),
        )
    if kind in {"bool_type", "bool_parsing"}:
        return (
            f"{key} must be true or false, not {got}",
            f"write {key}: true or {key}: false (unquoted; yes/no/1/0 are not accepted)",
        )
    if kind in {"string_type", "string_too_short"}:
        return f"{key} must be text, not {got}", _example(key, f"write {key}: 'some text'")
    if kind in {"list_type", "tuple_type", "set_type"}:
        return f"{key} must be a list, not {got}", _example(key, f"write {key}: [first, second]")
    if kind in {"float_parsing", "float_type", "timedelta_type", "timedelta_parsing"}:
        return f"{key} is not valid: {got}", _example(key, "write e.g. 90d, 12w or 36h")
    return None


def _finding_from_error(err: dict[str, Any], path: str, lines: LineMap) -> Finding:
    loc = lines.normalize(_yaml_path(tuple(err["loc"])))
    # Messages may quote what the user wrote, which may be a pasted key.
    msg = redact(str(err["msg"]))
    hint = None
    kind = err["type"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    typed = _typed_message(kind, _key_name(loc), err)
    if typed is not None:
        msg, hint = typed
    elif kind == "unknown_key":
        # A model's own check of its extra keys (Sender): the key joins the path.
        loc = (*loc, (err.get("ctx") or {}).get("key", "?"))
        kind = "extra_forbidden"
    if kind == "extra_forbidden" and loc and typed is None:
        key = loc[-1]
        model = _model_at(loc[:-1])
        msg = f"unknown key {shown(key)}"
        if model is not None:
            known = sorted(model.model_fields)
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = (
                (f"did you mean {close[0]!r}? " if close else "")
                + "known keys: "
                + ", ".join(known)
            )
    elif kind == "missing" and loc:
        msg = f"missing required key {loc[-1]!r}"
        loc_for_line = loc[:-1]
        return Finding(
            Severity.ERROR,
            msg,
            Location(path, lines.line_for(loc_for_line), key_path(loc)),
            _example(str(loc[-1]), "add it") if isinstance(loc[-1], str) else None,
            code="policy-schema",
        )
    elif "input" in err and kind in {"enum", "literal_error"}:
        msg = f"{shown(err['input'])} is not allowed: {msg[0].lower()}{msg[1:]}"
    elif kind == "value_error" and loc and _key_name(loc) in _EXAMPLES:
        # Our validators explain the problem; add a known-good value to copy.
        hint = _example(_key_name(loc), "", loc)
    return Finding(
        Severity.ERROR,
        msg,
        Location(path, lines.line_for(loc), key_path(loc)),
        hint,
        code="policy-schema",
    )


def domain_from_filename(path: Path) -> str:
    name = path.name
    for suffix in POLICY_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def parse_policy(text: str, path: str, default_domain: str | None = None) -> LoadedPolicy:
    """Parse and validate policy text; raise PolicyError with every finding."""
    try:
        data, lines = load(text, MAX_POLICY_BYTES)
    except YamlSyntaxError as e:
        raise PolicyError.one(str(e), Location(path, e.line), e.hint, code="policy-yaml") from None
    if not isinstance(data, dict) or not data:
        # An empty file is no policy: read as one without senders it would
        # publish `v=spf1 -all` and delete the domain's DKIM and DMARC.
        raise PolicyError.one(
            "the policy file holds no settings"
            if data is None or data == {}
            else "a policy file must be a YAML mapping (senders:, spf:, dmarc: ...)",
            Location(path, 1),
            "list the senders (senders:, spf:, dmarc: ...); a domain that sends no "
            "mail says `parked: true`",
            code="policy-schema",
        )
    try:
        policy = Policy.model_validate(data)
    except ValidationError as e:
        findings = [_finding_from_error(err, path, lines) for err in e.errors()]  # type: ignore[arg-type]
        # A union (`a: true | [names]`) reports once per member: say it once.
        raise PolicyError(list(dict.fromkeys(findings))) from None
    return LoadedPolicy(policy, path, lines, _domain(policy, path, lines, default_domain))


def _domain(policy: Policy, path: str, lines: LineMap, from_file: str | None) -> str:
    """The policy's domain: `domain:` (already checked) or the file name; a file
    named after one domain whose `domain:` says another is an error."""

    def error(message: str, hint: str) -> PolicyError:
        where = Location(path, lines.line_for(("domain",)) or 1, "domain")
        return PolicyError([Finding(Severity.ERROR, message, where, hint, code="policy-domain")])

    file_domain: str | None = None
    reason = "it is not a domain name"
    if from_file:
        try:
            file_domain = check_name(from_file, "the file name")
        except InvalidName as e:
            reason = str(e)
    if policy.domain is not None:
        if file_domain is not None and file_domain != policy.domain:
            raise error(
                f"the file is named after {file_domain} but domain: says {policy.domain}",
                f"rename the file to {policy.domain}.yaml, or correct domain:",
            )
        return policy.domain
    if file_domain is None:
        raise error(
            f"cannot tell which domain this policy is for: {reason}",
            "name the file after the domain (example.com.yaml) or set domain:",
        )
    return file_domain


def load_policy_file(path: str | Path) -> LoadedPolicy:
    path = Path(path)
    return parse_policy(read_policy_file(path), str(path), domain_from_filename(path))


def read_policy_file(path: Path) -> str:
    """A policy file's text; PolicyError when it cannot be one."""
    try:
        # Never read a FIFO or device (they need not end): the file is checked
        # where it was opened (without blocking on a pipe), so it cannot be swapped
        # between the check and the read.  One byte past the cap tells an
        # oversized file apart.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PolicyError.one(
                    f"{path.name} is named like a policy file but is not a regular file "
                    "(a folder, device or pipe)",
                    Location(str(path)),
                    "policy folders hold one <domain>.yaml file per domain: rename or move it",
                    code="policy-io",
                )
            raw = read_regular(fd, st.st_size, MAX_POLICY_BYTES + 1)
        finally:
            os.close(fd)
        if len(raw) > MAX_POLICY_BYTES:
            raise PolicyError.one(
                f"the policy file is larger than {MAX_POLICY_BYTES // 1024} KiB",
                Location(str(path), 1),
                "a policy file is a few kilobytes: is this the right file?",
                code="policy-io",
            )
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise PolicyError.one(
            f"cannot read policy file: {reason}",
            Location(str(path)),
            code="policy-io",
        ) from None


def policy_files(folder: str | Path) -> list[Path]:
    """Every `*.yaml`/`*.yml` entry in the folder, files or not: load_policy_file
    refuses one that is not a regular file, so a folder named like a policy is
    an error rather than a domain silently left out."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.name.endswith(POLICY_SUFFIXES))


def second_policy(lp: LoadedPolicy, first: LoadedPolicy) -> Finding:
    return Finding(
        Severity.ERROR,
        f"a second policy for {lp.domain} (the first is {first.path})",
        Location(lp.path, 1, "domain"),
        "keep one policy file per domain",
        code="policy-duplicate-domain",
    )


def load_policy_dir(
    folder: str | Path,
    *,
    each: Callable[[Callable[[Path], Any], list[Path]], list[Any]] | None = None,
) -> list[LoadedPolicy]:
    """Every policy in a folder; all files' errors are collected before raising.
    `each(load, paths)`: how the files are loaded, in order (integration/bulk.py
    spreads them over worker processes); an exception it returns is raised."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PolicyError.one(
            f"policy folder {folder} does not exist or is not a folder",
            hint="set `policies:` in the processor config to the folder of policy files",
            code="policy-io",
        )
    loaded: list[LoadedPolicy] = []
    errors: list[Finding] = []
    paths = policy_files(folder)
    for outcome in (each or _each_here)(_load_or_findings, paths):
        if isinstance(outcome, LoadedPolicy):
            loaded.append(outcome)
        elif isinstance(outcome, Exception):
            raise outcome
        else:
            errors.extend(outcome)
    by_domain: dict[str, LoadedPolicy] = {}
    for lp in loaded:
        if lp.domain in by_domain:
            errors.append(second_policy(lp, by_domain[lp.domain]))
        by_domain[lp.domain] = lp
    if errors:
        raise PolicyError(errors)
    return loaded


def _load_or_findings(path: Path) -> LoadedPolicy | list[Finding]:
    """One file's policy, or its errors (plain data, for a worker process to send)."""
    try:
        return load_policy_file(path)
    except PolicyError as e:
        return list(e.findings)


def _each_here(load: Callable[[Path], Any], paths: list[Path]) -> list[Any]:
    return [load(path) for path in paths]
