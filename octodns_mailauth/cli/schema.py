"""`schema`: the JSON Schema of a policy file, from the pydantic models, for
yaml-language-server and other editors (validation and completion)."""

from __future__ import annotations

import argparse
import json
from typing import Any, get_args

from pydantic import BaseModel

from .._fs import atomic_write
from ..catalog import load_catalog
from ..policy.base import OneOrMany
from ..policy.models import Policy
from .exitcodes import EXIT_OK

SCHEMA_ID = (
    "https://raw.githubusercontent.com/octodns-mailauth/octodns-mailauth/main/"
    "schema/mailauth-policy.schema.json"
)


def _models() -> dict[str, type]:
    """Every policy model class by name (as pydantic names them in `$defs`)."""
    out: dict[str, type] = {}
    todo: list[type] = [BaseModel]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("octodns_mailauth.policy"):
                out.setdefault(sub.__name__, sub)
    return out


def _single_item(prop: dict[str, Any]) -> dict[str, Any] | None:
    """The item schema of an array property (possibly inside an optional anyOf)."""
    for alt in [prop, *prop.get("anyOf", [])]:
        if alt.get("type") == "array" and "items" in alt:
            return dict(alt["items"])
    return None


def _one_or_many(info: Any) -> bool:
    """A field typed with policy.base.OneOrMany (alone or inside `| None`)."""
    nested = [getattr(a, "__metadata__", ()) for a in get_args(info.annotation)]
    return OneOrMany in info.metadata or any(OneOrMany in m for m in nested)


def _accept_single_items(schema: dict[str, Any]) -> None:
    """The models let a list field take one bare item (`include: x`, `dkim: {...}`)
    through a `mode="before"` validator or `OneOrMany`, which the schema cannot see;
    without this, editors would flag valid policy files."""
    models = _models()
    defs = schema.get("$defs", {})
    targets = [("Policy", schema), *defs.items()]
    for name, definition in targets:
        model = models.get(name)
        if model is None:
            continue
        decorators = model.__pydantic_decorators__.field_validators.values()  # type: ignore[attr-defined]
        before = {f for d in decorators if d.info.mode == "before" for f in d.info.fields}
        before |= {f for f, info in model.model_fields.items() if _one_or_many(info)}
        for field, prop in definition.get("properties", {}).items():
            item = _single_item(prop) if field in before else None
            if item is None:
                continue
            keep = {k: v for k, v in prop.items() if k in ("default", "description", "title")}
            if "anyOf" in prop:
                alternatives = list(prop["anyOf"])
            else:
                alternatives = [{k: v for k, v in prop.items() if k not in keep}]
            definition["properties"][field] = {**keep, "anyOf": [*alternatives, item]}


def _sender_keys(schema: dict[str, Any]) -> None:
    """The keys a sender may have, as the loader sees them: its own, plus its
    provider's parameters (shipped catalog), so editors flag `ipv4:` or
    `tennant:` as the loader does."""
    sender = schema["$defs"]["Sender"]
    fields = sorted(sender["properties"])
    rules: list[dict[str, Any]] = [
        {"if": {"not": {"required": ["provider"]}}, "then": {"propertyNames": {"enum": fields}}}
    ]
    catalog = load_catalog()
    for pid in catalog.ids():
        entry = catalog.entries[pid]
        text: dict[str, Any] = {"type": ["string", "integer"]}
        texts = {"type": "array", "items": {"type": "string"}}
        params = {
            k: {
                "description": p.help,
                **({"anyOf": [{"type": "string"}, texts]} if p.list else text),
            }
            for k, p in sorted(entry.params.items())
        }
        rules.append(
            {
                "if": {"required": ["provider"], "properties": {"provider": {"const": pid}}},
                "then": {"properties": params, "propertyNames": {"enum": fields + sorted(params)}},
            }
        )
    sender["allOf"] = rules


def policy_schema() -> dict[str, Any]:
    schema = Policy.model_json_schema()
    _accept_single_items(schema)
    _sender_keys(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "octodns-mailauth policy",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def schema_text() -> str:
    return json.dumps(policy_schema(), indent=2, sort_keys=True) + "\n"


def run(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.output:
        atomic_write(args.output, text, 0o644)  # editors may read it while we write
    else:
        print(text, end="")
    return EXIT_OK
