"""The sender catalog: what each mail provider needs in DNS, as data.

Entries are YAML files (`<id>.yaml`) shipped here; users add their own in the
same format by pointing the processor (or CLI) at a folder.  A user entry with
the id of a shipped one replaces it.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import MailAuthError
from ..names import InvalidName, check_name, check_selector, is_label
from ..policy.base import empty_dict, empty_list
from ..policy.yamlpos import YamlSyntaxError, load
from ..redact import shown

BUILTIN_DIR = Path(__file__).parent


class CatalogError(MailAuthError):
    pass


class _Strict(BaseModel):
    # Built on first use, once for Entry (see policy/base.py).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# What each parameter type accepts; every value is checked against its type
# (and `pattern`, if any) before it reaches a record.
ParamType = Literal["fqdn", "label", "selector", "token", "dkim_record"]
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,255}\Z")
# A TXT value pasted from a console: printable ASCII, no zone-file syntax
# beyond what DKIM uses (`;` separates tags, quotes and parentheses never).
_DKIM_RECORD = re.compile(r"[\x20-\x7e]{1,4096}\Z")
_DKIM_FORBIDDEN = set('"()\\')


class Param(_Strict):
    type: ParamType = Field(
        description="fqdn: a DNS name (a CNAME target); label: one DNS label; selector: a "
        "DKIM selector; token: an account id or verification code (letters, digits, - and "
        "_); dkim_record: a DKIM key record's text"
    )
    help: str = Field(description="what the value is and where in the vendor's console to find it")
    required: bool = False
    default: str | None = Field(None, description="a template over {domain} and other params")
    default_with: str | None = Field(
        None,
        description="the default applies only when this other parameter is given (e.g. "
        "Microsoft 365's legacy DKIM targets): without either the parameter is missing",
    )
    pattern: str | None = Field(None, description="a regular expression the value must match")
    list: bool = Field(False, description="the value is a list (e.g. Amazon SES DKIM tokens)")


class RecordTemplate(_Strict):
    name: str = Field(description="relative to the policy domain; '@' for the apex")
    type: Literal["CNAME", "TXT", "MX"]
    value: str
    foreach: str | None = Field(None, description="a list parameter; {item} is each element")


class Group(_Strict):
    """Records published only when all `requires` parameters are given."""

    requires: list[str] = Field(default_factory=empty_list)
    records: list[RecordTemplate] = Field(default_factory=empty_list)


class DkimSpec(Group):
    d: str = Field("{domain}", description="the d= domain the provider signs with")
    default_d: str | None = Field(
        None,
        description="the d= it signs with while custom DKIM is not set up (its records "
        "not published or signing not yet enabled), e.g. '{tenant}.onmicrosoft.com'; "
        "a template, named in alignment messages",
    )
    selectors: list[str] = Field(
        default_factory=empty_list,
        description="selector names, to detect two senders claiming one",
    )


class ReturnPathSpec(Group):
    default: str = Field(description="the MAIL FROM domain when no custom one is set up")
    domain: str | None = Field(None, description="the custom MAIL FROM domain (a template)")


class Entry(_Strict):
    id: str
    name: str
    aliases: list[str] = Field(
        default_factory=empty_list,
        description="other names people use for it (office365): a did-you-mean, never accepted",
    )
    docs: str | None = None
    params: dict[str, Param] = Field(default_factory=empty_dict)
    spf_include: str | None = None
    dkim: DkimSpec | None = None
    return_path: ReturnPathSpec | None = None
    records: list[Group] = Field(
        default_factory=empty_list, description="any other records it needs"
    )


class Catalog:
    """Entries by id.  Shipped entries are read when first asked for: a policy
    names a few providers, and `validate` runs at every commit.  Entries from
    user folders are read (and checked) when the catalog is made."""

    def __init__(self, entries: Mapping[str, Entry], builtin: Iterable[str] = ()) -> None:
        self._entries = dict(entries)
        self._unread = {i for i in builtin if i not in self._entries}

    @property
    def entries(self) -> dict[str, Entry]:
        for entry_id in sorted(self._unread):
            self._entries[entry_id] = _builtin_entry(entry_id)
        self._unread.clear()
        return self._entries

    def get(self, provider: str) -> Entry | None:
        entry_id = provider.lower()
        if entry_id in self._unread:
            self._entries[entry_id] = _builtin_entry(entry_id)
            self._unread.discard(entry_id)
        return self._entries.get(entry_id)

    def ids(self) -> list[str]:
        return sorted({*self._entries, *self._unread})

    def suggest(self, provider: str) -> str | None:
        """The entry an unknown provider name probably means: by alias, else by spelling."""
        wanted = provider.lower()
        for entry in self.entries.values():
            if wanted in (a.lower() for a in entry.aliases):
                return entry.id
        close = difflib.get_close_matches(wanted, self.ids(), n=1)
        return close[0] if close else None


def _load_entry(path: Path) -> Entry:
    try:
        data, lines = load(path.read_text(encoding="utf-8"))
    except YamlSyntaxError as e:
        raise CatalogError(f"{path}:{e.line or 1}: catalog entry: {e}") from None
    except OSError as e:
        raise CatalogError(f"{path}: cannot read catalog entry: {e.strerror}") from None
    try:
        entry = Entry.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        where = f"{path}:{lines.line_for(loc) or 1}"
        msg = err["msg"]
        if err["type"] == "missing" and loc[-1] == "type":
            msg = "every parameter declares its type: " + ", ".join(get_args(ParamType))
        raise CatalogError(f"{where}: catalog entry: {'.'.join(map(str, loc))}: {msg}") from None
    # Names and help are printed in terminals and Markdown: plain text only.
    texts = [
        ("name", entry.name),
        *((f"params.{k}.help", p.help) for k, p in entry.params.items()),
    ]
    for key, text in texts:
        bad = next((c for c in text if not c.isprintable() and c not in "\n "), None)
        if bad is not None:
            raise CatalogError(f"{path}: catalog entry: {key}: control character U+{ord(bad):04X}")
    if entry.id != path.stem:
        raise CatalogError(f"{path}: catalog entry id {entry.id!r} must match the file name")
    return entry


@cache  # the shipped entries: a fixed, small set
def _builtin_entry(entry_id: str) -> Entry:
    return _load_entry(BUILTIN_DIR / f"{entry_id}.yaml")


@lru_cache(maxsize=1)
def _builtin_ids() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")))


def load_catalog(extra_dirs: Iterable[str | Path] = ()) -> Catalog:
    entries: dict[str, Entry] = {}
    for folder in extra_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise CatalogError(f"{folder}: sender catalog folder does not exist")
        for path in sorted(folder.glob("*.yaml")):
            entries[path.stem] = _load_entry(path)
    return Catalog(entries, _builtin_ids())


class _Template(string.Formatter):
    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        if key not in kwargs:
            raise CatalogError(f"template names unknown parameter {{{key}}}")
        return kwargs[key]


_FORMATTER = _Template()


def render(template: str, values: Mapping[str, Any]) -> str:
    parts = _plain_fields(template)
    if parts is None:
        return _FORMATTER.format(template, **values)
    out = []
    for literal, key in parts:
        out.append(literal)
        if key is not None:
            if key not in values:
                raise CatalogError(f"template names unknown parameter {{{key}}}")
            out.append(str(values[key]))
    return "".join(out)


@lru_cache(maxsize=4096)
def _plain_fields(template: str) -> tuple[tuple[str, str | None], ...] | None:
    """(literal, field) pairs when every field is a plain `{name}`, else None (the
    Formatter then renders it).  Parsed once per template: string.Formatter
    re-parses on every call, and each policy renders dozens of templates."""
    parts = []
    for literal, key, spec, conversion in _FORMATTER.parse(template):
        if spec or conversion or (key is not None and not key.isidentifier()):
            return None
        parts.append((literal, key))
    return tuple(parts)


class ParamProblem(NamedTuple):
    param: str
    message: str
    hint: str | None = None


def check_param(param: Param, key: str, value: str) -> str:
    """One value of a parameter, checked against its type and pattern and
    normalised (names: lower case, A-labels, no trailing dot); ValueError
    says what is wrong.  shown(): a value may be a pasted private key."""
    if param.type == "fqdn":
        try:
            value = check_name(value, key, service_labels=True)
        except InvalidName as e:
            raise ValueError(str(e)) from None
    elif param.type == "label" and not is_label(value):
        raise ValueError(f"{key}: {shown(value)} is not one DNS label (letters, digits, -)")
    elif param.type == "selector":
        try:
            value = check_selector(value, key)
        except InvalidName as e:
            raise ValueError(str(e)) from None
    elif param.type == "token" and not _TOKEN.match(value):
        raise ValueError(f"{key}: {shown(value)} is not an id (letters, digits, - and _)")
    elif param.type == "dkim_record" and (
        not _DKIM_RECORD.match(value) or _DKIM_FORBIDDEN & set(value)
    ):
        raise ValueError(
            f"{key}: {shown(value)} is not a DKIM record's text (printable characters, "
            "no quotes, parentheses or backslashes)"
        )
    if param.pattern and not re.fullmatch(param.pattern, value):
        raise ValueError(f"{key}: {shown(value)} does not look right")
    return value


def resolve_params(
    entry: Entry, domain: str, given: Mapping[str, Any], other_keys: Iterable[str] = ()
) -> tuple[dict[str, Any], list[ParamProblem]]:
    """The template values for an entry: {domain}, {domain_dashed}, and each
    parameter given or defaulted, every one checked against its type.  Unknown
    parameters are problems too, with a did-you-mean over the entry's
    parameters and `other_keys` (the sender's own keys)."""
    values: dict[str, Any] = {"domain": domain, "domain_dashed": domain.replace(".", "-")}
    problems: list[ParamProblem] = []
    for key in given:
        if key not in entry.params:
            close = difflib.get_close_matches(str(key), [*entry.params, *other_keys], n=1)
            known = ", ".join(sorted(entry.params)) or "none"
            problems.append(
                ParamProblem(
                    key,
                    f"unknown key {shown(key)} for provider {entry.id}",
                    (f"did you mean {close[0]!r}? " if close else "")
                    + f"{entry.id} takes: {known}",
                )
            )
    for key, param in entry.params.items():
        if key not in given:
            continue
        value = given[key]
        if param.list:
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(ParamProblem(key, f"{key} must be a list of text values"))
                continue
        elif isinstance(value, str | int) and not isinstance(value, bool):
            value = str(value)
        else:
            problems.append(ParamProblem(key, f"{key} must be text, not {shown(value)}"))
            continue
        try:
            if param.list:
                values[key] = [check_param(param, key, v) for v in value]
            else:
                values[key] = check_param(param, key, value)
        except ValueError as e:
            problems.append(ParamProblem(key, str(e), param.help))
    # Defaults may refer to given params, so they render after them, and are
    # checked like given values (a tenant name becomes part of a CNAME target).
    for key, param in entry.params.items():
        if param.default_with and key in given and param.default_with in given:
            problems.append(
                ParamProblem(
                    key, f"give either {key} or {param.default_with}, not both", param.help
                )
            )
    blocked: set[str] = set()
    for key, param in entry.params.items():
        if param.default_with and param.default_with not in values:
            continue  # no default without the parameter that chooses it
        if key not in values and param.default is not None:
            try:
                values[key] = check_param(param, key, render(param.default, values))
            except CatalogError:
                blocked.add(key)  # depends on a missing parameter, reported as such
            except ValueError as e:
                problems.append(ParamProblem(key, str(e), param.help))
    wrong = {p.param for p in problems}
    unknown = [k for k in given if k not in entry.params]
    missing = [
        key
        for key, param in entry.params.items()
        if param.required
        and key not in values
        and key not in wrong
        # A misspelt required parameter is reported once, as the unknown key.
        and not difflib.get_close_matches(key, unknown, n=1)
    ]
    # One whose default waits for another missing parameter is that one's consequence.
    if problems or any(k not in blocked for k in missing):
        missing = [k for k in missing if k not in blocked]
    for key in missing:
        problems.append(
            ParamProblem(
                key, f"provider {entry.id} needs parameter {key!r}", entry.params[key].help
            )
        )
    return values, problems
