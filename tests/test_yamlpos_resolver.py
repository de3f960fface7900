"""The policy loader's fast tag resolution (policy/yamlpos.py) gives the tag PyYAML's
own resolver gives on the same loader, for every kind of plain scalar."""

from __future__ import annotations

import random
import string

import pytest
import yaml

from octodns_mailauth.policy.yamlpos import _Loader

EDGES = [
    "", "~", "null", "Null", "NULL", "nul", "true", "True", "yes", "on", "off", "no",
    "0", "-0", "+1", "017", "0o17", "0x1F", "0b101", "1_000", "1:00:00", "3600",
    "1.5", ".5", "5.", "1e3", "1E-3", "-1.5e+3", ".inf", "-.Inf", ".nan", ".NaN",
    "2026-11-30", "2026-11-30T12:00:00Z", "=", "<<", "a: b", "@x", "-", "--",
    "v=spf1 include:_spf.example ~all", "mailto:dmarc@example.com", "ed25519",
]  # fmt: skip


def _both(value: str, implicit: tuple[bool, bool]) -> tuple[str, str]:
    loader = _Loader("")
    try:
        theirs = yaml.resolver.BaseResolver.resolve(loader, yaml.ScalarNode, value, implicit)
        return loader.resolve(yaml.ScalarNode, value, implicit), theirs
    finally:
        loader.dispose()


@pytest.mark.parametrize("implicit", [(True, False), (False, True), (True, True), (False, False)])
def test_scalar_tags_are_pyyamls(implicit: tuple[bool, bool]) -> None:
    rnd = random.Random(7)
    alphabet = string.ascii_letters + string.digits + ".-+_:~=<@ eEx"
    values = EDGES + [
        "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 8))) for _ in range(3000)
    ]
    differ = [v for v in values if len(set(_both(v, implicit))) > 1]
    assert differ == []
    # Not only strings: the edges include every implicit kind the loader knows.
    tags = {_both(v, implicit)[0] for v in EDGES}
    assert len(tags) >= (5 if implicit[0] else 1), tags


def test_sequences_and_mappings_are_pyyamls() -> None:
    loader = _Loader("")
    for kind in (yaml.SequenceNode, yaml.MappingNode):
        want = yaml.resolver.BaseResolver.resolve(loader, kind, None, (True, False))
        assert loader.resolve(kind, None, (True, False)) == want
    loader.dispose()
