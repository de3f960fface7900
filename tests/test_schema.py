"""The shipped JSON Schema (schema/mailauth-policy.schema.json) for editors.

It must equal what the pydantic models generate, so it cannot drift; and an
independent JSON Schema validator must accept the example policies and reject
the mistakes the loader rejects.  Regenerate it with
`octodns-mailauth schema -o schema/mailauth-policy.schema.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from octodns_mailauth.cli.schema import policy_schema, schema_text
from octodns_mailauth.policy.models import Policy

SHIPPED = ROOT / "schema" / "mailauth-policy.schema.json"
jsonschema = pytest.importorskip("jsonschema")


def test_shipped_schema_matches_the_models() -> None:
    assert SHIPPED.read_text() == schema_text(), (
        "schema/mailauth-policy.schema.json is stale: run "
        "`octodns-mailauth schema -o schema/mailauth-policy.schema.json`"
    )


def test_schema_is_generated_from_the_models() -> None:
    schema = policy_schema()
    assert set(schema["properties"]) == set(Policy.model_fields)
    assert schema["additionalProperties"] is False  # unknown top-level keys: completion helps
    sender = schema["$defs"]["Sender"]
    # Provider parameters (tenant, account, ...) sit beside the declared keys.
    assert sender.get("additionalProperties", True) is not False
    jsonschema.Draft202012Validator.check_schema(schema)


def _policies() -> list[Path]:
    return sorted((ROOT / "zones" / "mail").glob("*.yaml"))


@pytest.mark.parametrize("path", _policies(), ids=lambda p: p.name)
def test_example_policies_validate(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SHIPPED.read_text()))
    data = yaml.safe_load(path.read_text())
    assert [e.message for e in validator.iter_errors(data)] == []


@pytest.mark.parametrize(
    "policy, why",
    [
        ({"senders": [{"name": "x"}], "spff": {}}, "unknown top-level key"),
        ({"senders": [{"provider": "google"}]}, "sender without a name"),
        ({"ttl": 10}, "ttl below 60"),
        ({"spf": {"all": "pass"}}, "not a qualifier"),
        ({"senders": [{"name": "x", "ipv4": ["192.0.2.1"]}]}, "a misspelt key, no provider"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(policy: dict, why: str) -> None:
    from octodns_mailauth.errors import PolicyError
    from octodns_mailauth.policy.loader import parse_policy

    validator = jsonschema.Draft202012Validator(policy_schema())
    assert list(validator.iter_errors(policy)), why
    with pytest.raises(PolicyError):
        parse_policy(yaml.safe_dump(policy), "x.yaml", "example.com")


def test_single_items_where_the_loader_takes_them() -> None:
    """`include: x` and `dkim: {...}` (one item, no list) are valid policy files, so
    the schema must not flag them in the editor."""
    from octodns_mailauth.policy.loader import parse_policy

    policy = {
        "senders": [
            {
                "name": "relay",
                "ip4": "192.0.2.1",
                "include": "spf.vendor.example",
                "dkim": {"selector": "s1", "algorithm": "ed25519"},
            }
        ]
    }
    parse_policy(yaml.safe_dump(policy), "x.yaml", "example.com")  # the loader accepts it
    validator = jsonschema.Draft202012Validator(policy_schema())
    assert [e.message for e in validator.iter_errors(policy)] == []
    policy["senders"][0]["dkim"] = "s1"  # neither a key nor a list of keys
    assert list(validator.iter_errors(policy))


def test_schema_knows_each_providers_parameters() -> None:
    # The compile step refuses `tennant:` (provider parameters are the catalog's);
    # the schema tells the editor the same.
    from octodns_mailauth.catalog import load_catalog
    from octodns_mailauth.compile import compile_policy
    from octodns_mailauth.keysource import KeystoreKeys
    from octodns_mailauth.policy.loader import parse_policy

    validator = jsonschema.Draft202012Validator(policy_schema())
    sender = {
        "name": "x",
        "provider": "microsoft365",
        "tenant": "contoso",
        "dkim_targets": "legacy",
    }
    assert list(validator.iter_errors({"senders": [sender]})) == []
    typo = {
        "name": "x",
        "provider": "microsoft365",
        "tennant": "contoso",
        "dkim_targets": "legacy",
    }
    assert list(validator.iter_errors({"senders": [typo]}))
    lp = parse_policy(yaml.safe_dump({"senders": [typo]}), "x.yaml", "example.com")
    result = compile_policy(lp, load_catalog(), KeystoreKeys(None))
    assert [f.code for f in result.errors] == ["provider-param"]
