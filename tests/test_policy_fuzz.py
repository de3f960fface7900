"""Hostile input for the policy loader and the compile step: random and
mutated policy text either loads or fails with a PolicyError; compiling what
loads yields records and findings; nothing else ever escapes."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.keysource import KeystoreKeys
from octodns_mailauth.policy.loader import parse_policy

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [p.read_text() for p in sorted((ROOT / "zones" / "mail").glob("*.yaml"))]
CATALOG = load_catalog()
NO_KEYS = KeystoreKeys(None)  # no keystore: DKIM keys become findings, not I/O

# Values a YAML node can take, including the awkward ones.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "203.0.113.5",
            "198.51.100.0/28",
            "2001:db8::/32",
            "::",
            "0.0.0.0/0",
            "reject",
            "none",
            "mailto:x@example.com",
            "microsoft365",
            "sendgrid",
            "amazonses",
            "google",
            "ed25519",
            "rsa",
            "a" * 70,
            "xn--",
            "-bad-",
            "example.com.",
        ]
    ),
)
KEYS = [
    "senders", "spf", "dmarc", "domain", "ttl", "name", "provider", "ip4", "ip6", "a",
    "mx", "include", "dkim", "selector", "algorithm", "bits", "policy", "rua", "all",
    "tenant", "account", "link", "dkim_tokens", "region", "mail_from", "takeover",
    "subdomain_policy", "public_key", "flatten", "return_path", "unaligned_ok",
    "mta_sts", "tls_rpt", "bimi", "parked", "null_mx", "stage", "legacy", "rotate", "names",
    "mode", "max_age", "host", "logo", "logo_file", "decline", "testing", "pct", "prefix",
    "publish_ahead", "verification", "dkim_record",
]  # fmt: skip
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=25,
)


def outcome(text: str) -> None:
    try:
        lp = parse_policy(text, "fuzz.yaml", "fuzz.example")
    except PolicyError as e:
        assert e.findings and all(f.location is not None for f in e.findings)
        assert "Traceback" not in str(e)
        return
    result = compile_policy(lp, CATALOG, NO_KEYS)
    for finding in result.findings:
        assert finding.format()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    outcome(text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_random_structures(tree: object) -> None:
    outcome(yaml.safe_dump(tree))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(min_value=0, max_value=2000), st.text(max_size=6)), max_size=4),
    st.integers(min_value=0, max_value=40),
)
def test_mutated_seeds(seed: str, edits: list[tuple[int, str]], cut: int) -> None:
    text = seed
    for position, insert in edits:
        position %= len(text) + 1
        text = text[:position] + insert + text[position + len(insert) // 2 :]
    if cut:
        text = text[:-cut]
    outcome(text)


# YAML anchors and aliases, spliced into otherwise valid policies: always a
# PolicyError naming them, never a RecursionError or an exponential expansion.
anchor_names = st.text(alphabet="abcxyz", min_size=1, max_size=3)


@st.composite
def with_anchors(draw: st.DrawFn) -> str:
    seed = draw(st.sampled_from(SEEDS))
    lines = seed.splitlines()
    name = draw(anchor_names)
    where = draw(st.integers(min_value=0, max_value=max(len(lines) - 1, 0)))
    form = draw(
        st.sampled_from(
            [
                f"x: &{name} [*{name}]",  # a cycle
                f"x: &{name} [1, 2]\ny: [*{name}, *{name}]",
                f"senders: &{name} [*{name}]",
                f"x: *{name}",  # an alias with no anchor
                "\n".join(  # a small "billion laughs"
                    [f"l0: &l0 [{name}, {name}, {name}, {name}]"]
                    + [
                        f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}]"
                        for i in range(1, 8)
                    ]
                ),
            ]
        )
    )
    if draw(st.booleans()) and lines:
        # Put the anchor on a value inside the seed instead.
        line = lines[where]
        key = line.split(": ", 1)[0]
        if ": " in line and "#" not in key and not line.rstrip().endswith(":"):
            key, value = line.split(": ", 1)
            lines[where] = f"{key}: &{name} {value}"
            return "\n".join(lines) + "\n"
    return form + "\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(with_anchors())
def test_anchors_and_aliases_are_refused(text: str) -> None:
    try:
        parse_policy(text, "fuzz.yaml", "fuzz.example")
    except PolicyError as e:
        assert e.findings and all(f.location is not None for f in e.findings)
        messages = " ".join(f.message for f in e.findings)
        assert "anchors and aliases are not allowed" in messages or "YAML syntax" in messages
        return
    raise AssertionError(f"an anchor or alias was accepted:\n{text}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), trees, st.sampled_from(KEYS))
def test_seed_with_a_value_replaced(seed: str, value: object, key: str) -> None:
    data = yaml.safe_load(seed)
    if data.get("senders"):
        data["senders"][0][key] = value
    else:
        data[key] = value
    outcome(yaml.safe_dump(data))
