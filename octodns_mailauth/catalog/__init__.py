"""The sender catalog: what each mail provider needs in DNS, as data.

Entries are YAML files (`<id>.yaml`) shipped here; users add their own in the
same format by pointing the processor (or CLI) at a folder.  A user entry with
the id of a shipped one replaces it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import MailAuthError
from ..policy.yamlpos import YamlSyntaxError, load
from ..redact import shown

BUILTIN_DIR = Path(__file__).parent


class CatalogError(MailAuthError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict):
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

    requires: list[str] = Field(default_factory=list)
    records: list[RecordTemplate] = Field(default_factory=list)


class DkimSpec(Group):
    d: str = Field("{domain}", description="the d= domain the provider signs with")
    default_d: str | None = Field(
        None,
        description="the d= it signs with while custom DKIM is not set up (its records "
        "not published or signing not yet enabled), e.g. '{tenant}.onmicrosoft.com'; "
        "a template, named in alignment messages",
    )
    selectors: list[str] = Field(
        default_factory=list, description="selector names, to detect two senders claiming one"
    )


class ReturnPathSpec(Group):
    default: str = Field(description="the MAIL FROM domain when no custom one is set up")
    domain: str | None = Field(None, description="the custom MAIL FROM domain (a template)")


class Entry(_Strict):
    id: str
    name: str
    docs: str | None = None
    params: dict[str, Param] = Field(default_factory=dict)
    spf_include: str | None = None
    dkim: DkimSpec | None = None
    return_path: ReturnPathSpec | None = None
    records: list[Group] = Field(default_factory=list, description="any other records it needs")


class Catalog:
    def __init__(self, entries: Mapping[str, Entry]) -> None:
        self.entries = dict(entries)

    def get(self, provider: str) -> Entry | None:
        return self.entries.get(provider.lower())

    def ids(self) -> list[str]:
        return sorted(self.entries)


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
        raise CatalogError(
            f"{where}: catalog entry: {'.'.join(map(str, loc))}: {err['msg']}"
        ) from None
    if entry.id != path.stem:
        raise CatalogError(f"{path}: catalog entry id {entry.id!r} must match the file name")
    return entry


@lru_cache(maxsize=1)
def _builtin() -> dict[str, Entry]:
    return {p.stem: _load_entry(p) for p in sorted(BUILTIN_DIR.glob("*.yaml"))}


def load_catalog(extra_dirs: Iterable[str | Path] = ()) -> Catalog:
    entries = dict(_builtin())
    for folder in extra_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise CatalogError(f"{folder}: sender catalog folder does not exist")
        for path in sorted(folder.glob("*.yaml")):
            entries[path.stem] = _load_entry(path)
    return Catalog(entries)


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


def resolve_params(
    entry: Entry, domain: str, given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The template values for an entry: {domain}, {domain_dashed}, and each
    parameter given or defaulted.  Returns (values, problems) where a problem is
    (param, message); unknown parameters are problems too."""
    values: dict[str, Any] = {"domain": domain, "domain_dashed": domain.replace(".", "-")}
    problems: list[tuple[str, str]] = []
    for key in given:
        if key not in entry.params:
            known = ", ".join(sorted(entry.params)) or "none"
            problems.append(
                (key, f"unknown parameter {key!r} for provider {entry.id} (it takes: {known})")
            )
    for key, param in entry.params.items():
        if key in given:
            value = given[key]
            if param.list:
                value = [value] if isinstance(value, str) else value
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    problems.append((key, f"{key} must be a list of strings"))
                    continue
                items = value
            else:
                if not isinstance(value, str | int):
                    problems.append((key, f"{key} must be a string"))
                    continue
                value = str(value)
                items = [value]
            bad = [v for v in items if param.pattern and not re.fullmatch(param.pattern, v)]
            if bad:
                # shown(): the value may be a pasted private key, bound for CI logs.
                problems.append((key, f"{key}={shown(bad[0])} does not look right: {param.help}"))
                continue
            values[key] = value
    # Defaults may refer to given params, so they render after them.
    for key, param in entry.params.items():
        if param.default_with and key in given and param.default_with in given:
            problems.append(
                (key, f"give either {key} or {param.default_with}, not both: {param.help}")
            )
    for key, param in entry.params.items():
        if param.default_with and param.default_with not in values:
            continue  # no default without the parameter that chooses it
        if key not in values and param.default is not None:
            try:
                values[key] = render(param.default, values)
            except CatalogError:
                pass  # depends on a missing param; the group that needs it reports
    for key, param in entry.params.items():
        if param.required and key not in values and key not in dict(problems):
            problems.append((key, f"provider {entry.id} needs parameter {key!r}: {param.help}"))
    return values, problems
