"""Hostile input for the SPF and DMARC parsers, seeded from the conformance
records in tests/data: every input gives a result or the parser's own clear
error, never another exception."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octodns_mailauth.records.dmarc import parse_dmarc
from octodns_mailauth.records.spf import SpfSyntaxError, parse, select_records

DATA = Path(__file__).resolve().parent / "data"
SPF_RECORDS = json.loads((DATA / "spf/rfc7208-tests.records.json").read_text())["records"]
SPF_SEEDS = [r["record"] for r in SPF_RECORDS]


def _dmarc_seeds() -> list[str]:
    seeds: set[str] = {"v=DMARC1; p=none", "v=DMARC1; p=reject; sp=none; rua=mailto:a@b.example"}
    for test in json.loads((DATA / "dmarc/dmarc-pkg-test-vectors.json").read_text())["tests"]:
        seeds.update(r for r in test.get("records", []) if isinstance(r, str))
    modules = json.loads((DATA / "dmarc/checkdmarc-test-vectors.json").read_text())["modules"]
    for cases in modules.values():
        for case in cases:
            seeds.update(r for r in case.get("records", []) if "DMARC" in r.upper())
    return sorted(seeds)


DMARC_SEEDS = _dmarc_seeds()
SPF_ALPHABET = "v=spf1 -~+?:/.%{}_ilsodhpcrtva0123456789allincludeip4ip6mxptrexistsredirectexp"
DMARC_ALPHABET = "v=DMARC1; psnqurjectaid:/@.!,mailto%0123456789 \t=;"
SETTINGS = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutate(seed: str, edits: list[tuple[int, int, str]]) -> str:
    text = seed
    for position, drop, insert in edits:
        position %= len(text) + 1
        text = text[:position] + insert + text[position + drop :]
    return text


edits = st.lists(
    st.tuples(st.integers(0, 500), st.integers(0, 4), st.text(max_size=5)), max_size=4
)


def spf_outcome(text: str) -> None:
    try:
        record = parse(text)
    except SpfSyntaxError as e:
        message = str(e)
        assert message and "RFC 7208" in message, message
        return
    # What parses renders back to text that parses to the same record.
    assert parse(str(record)) == record or str(parse(str(record))) == str(record)


@SETTINGS
@given(st.sampled_from(SPF_SEEDS), edits)
def test_spf_parser_on_mutated_records(seed: str, changes: list[tuple[int, int, str]]) -> None:
    spf_outcome(mutate(seed, changes))


@SETTINGS
@given(st.text(alphabet=SPF_ALPHABET, max_size=120).map(lambda t: "v=spf1 " + t))
def test_spf_parser_on_random_terms(text: str) -> None:
    spf_outcome(text)


@SETTINGS
@given(st.lists(st.sampled_from(SPF_SEEDS) | st.text(max_size=30), max_size=4))
def test_spf_record_selection(values: list[str]) -> None:
    try:
        chosen = select_records(values)
    except SpfSyntaxError as e:
        assert "RFC 7208" in str(e)
        return
    assert chosen is None or chosen in values


def dmarc_outcome(text: str) -> None:
    for policy_record in (True, False):
        parsed = parse_dmarc(text, policy_record=policy_record)
        assert isinstance(parsed.valid, bool)
        for problem in parsed.problems:
            assert str(problem)


@SETTINGS
@given(st.sampled_from(DMARC_SEEDS), edits)
def test_dmarc_parser_on_mutated_records(seed: str, changes: list[tuple[int, int, str]]) -> None:
    dmarc_outcome(mutate(seed, changes))


@SETTINGS
@given(st.text(alphabet=DMARC_ALPHABET, max_size=120))
def test_dmarc_parser_on_random_text(text: str) -> None:
    dmarc_outcome(text)


def test_seed_counts() -> None:
    # The seeds are the suites' records; a broken path would make the tests vacuous.
    assert len(SPF_SEEDS) >= 168
    assert len(DMARC_SEEDS) >= 20
