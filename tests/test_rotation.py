"""DKIM rotation: the pure plan walked across simulated dates through the
compile step, the state file, and the rotate edge with a real keystore."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.dkim.export import SigningKey, active_signing_keys
from octodns_mailauth.dkim.keys import generate_private_key, public_key_b64
from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.dkim.rotate import RotationError, advance_rotation
from octodns_mailauth.dkim.rotation import (
    KeyStatus,
    RotatedKey,
    RotationConfig,
    RotationState,
    apply_due,
    plan_rotation,
)
from octodns_mailauth.dkim.statefile import load_state, parse_state, render_state, save_state
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.keysource import KeystoreKeys
from octodns_mailauth.policy.loader import parse_policy
from octodns_mailauth.records.dkim import parse_key_record

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)

POLICY = """\
ttl: 3600
senders:
  - name: relay
    ip4: [203.0.113.5]
    dkim: {{rotate: 30d, prefix: relay, algorithms: {algorithms}}}
"""


def policy(algorithms: str = "[ed25519]", text: str = POLICY) -> object:
    return parse_policy(text.format(algorithms=algorithms), "mail/example.com.yaml", "example.com")


def signing(lp: object, path: Path, store: Keystore) -> list[SigningKey]:
    return active_signing_keys([lp], load_state(path, path.parent), store)  # type: ignore[list-item]


def config_of(lp: object) -> RotationConfig:
    key = lp.policy.senders[0].dkim[0]  # type: ignore[attr-defined]
    return RotationConfig.from_policy("example.com", key, 3600)


class FakeKeystore:
    """Makes real public keys (the record builder decodes them) and remembers them."""

    def __init__(self) -> None:
        self.made: dict[str, str] = {}

    def __call__(self, selector: str, algorithm: str, bits: int) -> str:
        assert selector not in self.made, "a selector was given a second key"
        self.made[selector] = public_key_b64(generate_private_key(algorithm, bits))  # type: ignore[arg-type]
        return self.made[selector]


def published(lp: object, state: RotationState, now: datetime) -> dict[str, str]:
    """{selector: p} the compile step publishes ('' = revoked), parsed as a verifier would."""
    result = compile_policy(
        lp,  # type: ignore[arg-type]
        load_catalog([]),
        KeystoreKeys(None),
        now=now,
        dkim_state=state,
    )
    assert not result.errors, [f.format() for f in result.errors]
    out = {}
    for record in result.records:
        if record.kind == "dkim":
            selector = record.name.removesuffix("._domainkey.example.com")
            rec = parse_key_record(record.values[0])
            out[selector] = "" if rec.revoked else public_key_b64(rec.public_key)  # type: ignore[arg-type]
    return out


def rotate(
    lp: object, state: RotationState, now: datetime, fake: FakeKeystore
) -> tuple[RotationState, list[str]]:
    config = config_of(lp)
    keys, applied = apply_due(config, state.for_prefix("example.com", "relay"), now, fake)
    return state.with_keys("example.com", "relay", keys), [a.kind for a in applied]


def test_walk_publishes_exactly_what_each_state_requires() -> None:
    lp = policy()
    fake = FakeKeystore()
    state = RotationState(None)
    p = fake.made
    # Expected timeline from the design: publish_ahead 2d, rotate 30d, retire_for 7d,
    # revoke_for 7d; each command run is the moment its change happens.
    a, b = "relay-20260101-ed", "relay-20260131-ed"
    steps = [
        (T0, ["publish"], lambda: {a: p[a]}, {a: "published"}),
        (T0 + DAY, [], lambda: {a: p[a]}, {a: "published"}),
        (T0 + 2 * DAY, ["activate"], lambda: {a: p[a]}, {a: "active"}),
        (T0 + 29 * DAY, [], lambda: {a: p[a]}, {a: "active"}),
        (T0 + 30 * DAY, ["publish"], lambda: {a: p[a], b: p[b]}, {a: "active", b: "published"}),
        (T0 + 32 * DAY, ["activate"], lambda: {a: p[a], b: p[b]}, {a: "retired", b: "active"}),
        (T0 + 38 * DAY, [], lambda: {a: p[a], b: p[b]}, {a: "retired", b: "active"}),
        (T0 + 39 * DAY, ["revoke"], lambda: {a: "", b: p[b]}, {a: "revoked", b: "active"}),
        (T0 + 46 * DAY, ["remove"], lambda: {b: p[b]}, {b: "active"}),
    ]
    for when, actions, records, statuses in steps:
        state, applied = rotate(lp, state, when, fake)
        assert applied == actions, when
        assert published(lp, state, when) == records(), when
        assert {k.selector: k.status.value for k in state.keys} == statuses, when


def test_dual_algorithms_rotate_together() -> None:
    lp = policy("[ed25519, rsa]")
    fake = FakeKeystore()
    state, _ = rotate(lp, RotationState(None), T0, fake)
    state, _ = rotate(lp, state, T0 + 2 * DAY, fake)
    records = published(lp, state, T0 + 2 * DAY)
    assert set(records) == {"relay-20260101-ed", "relay-20260101-rsa"}
    result = compile_policy(lp, load_catalog([]), KeystoreKeys(None), dkim_state=state)  # type: ignore[arg-type]
    kinds = sorted(
        parse_key_record(r.values[0]).algorithm for r in result.records if r.kind == "dkim"
    )
    assert kinds == ["ed25519", "rsa"]
    assert sorted(k.algorithm for k in state.keys if k.status is KeyStatus.ACTIVE) == [
        "ed25519",
        "rsa",
    ]


@pytest.mark.parametrize("seed", range(6))
def test_active_selector_is_never_revoked_or_removed(seed: int) -> None:
    """Commands run at random moments (sometimes daily, sometimes after months):
    once a key is active, some active key of each algorithm is always published,
    never more than three selectors per algorithm are live (a late run may find
    an old key to revoke and a new one to publish at once), and removed keys
    went through revocation first."""
    rng = random.Random(seed)
    lp = policy("[ed25519, rsa]")
    fake = FakeKeystore()
    state = RotationState(None)
    now = T0
    seen_status: dict[str, list[str]] = {}
    for _ in range(60):
        now += timedelta(hours=rng.choice([1, 12, 24, 24 * 5, 24 * 20, 24 * 90]))
        before_active = {k.selector for k in state.keys if k.status is KeyStatus.ACTIVE}
        state, _ = rotate(lp, state, now, fake)
        records = published(lp, state, now)
        for k in state.keys:
            seen_status.setdefault(k.selector, []).append(k.status.value)
        for selector in before_active:
            # The previously active key is either still active or now retired (published).
            assert selector in records and records[selector] == fake.made[selector]
        for algorithm in ("ed25519", "rsa"):
            live = [k for k in state.keys if k.algorithm == algorithm]
            assert len(live) <= 3
            if any(s.endswith("-ed" if algorithm == "ed25519" else "-rsa") for s in before_active):
                actives = [k for k in live if k.status is KeyStatus.ACTIVE]
                assert len(actives) == 1 and records[actives[0].selector]
    # The walk really rotated: several keys of both algorithms came and went.
    assert len(seen_status) >= 4 and any("active" in h for h in seen_status.values())
    for selector, history in seen_status.items():
        if selector not in {k.selector for k in state.keys}:
            assert history[-1] == "revoked", (selector, history)


def test_daily_runs_keep_at_most_two_selectors_per_algorithm() -> None:
    lp = policy()
    fake = FakeKeystore()
    state = RotationState(None)
    activations = []
    for day in range(200):
        state, applied = rotate(lp, state, T0 + day * DAY, fake)
        if "activate" in applied:
            activations.append(day)
        assert 1 <= len(published(lp, state, T0 + day * DAY)) <= 2
    # One activation at day 2, then one every rotation period.
    assert activations == [2, 32, 62, 92, 122, 152, 182]


def test_plan_lists_next_actions_with_dates() -> None:
    lp = policy()
    fake = FakeKeystore()
    state, _ = rotate(lp, RotationState(None), T0, fake)
    plan = plan_rotation(config_of(lp), state.keys, T0)
    assert [(a.kind, a.selector, a.due) for a in plan.actions] == [
        ("activate", "relay-20260101-ed", T0 + 2 * DAY)
    ]
    assert plan.due(T0) == []
    state, _ = rotate(lp, state, T0 + 2 * DAY, fake)
    plan = plan_rotation(config_of(lp), state.keys, T0 + 2 * DAY)
    assert [(a.kind, a.due) for a in plan.actions] == [("publish", T0 + 30 * DAY)]


def test_overdue_rotation_is_a_warning_not_an_outage() -> None:
    lp = policy()
    fake = FakeKeystore()
    state, _ = rotate(lp, RotationState(None), T0, fake)
    result = compile_policy(
        lp,  # type: ignore[arg-type]
        load_catalog([]),
        KeystoreKeys(None),
        now=T0 + 10 * DAY,
        dkim_state=state,
    )
    assert not result.errors
    dkim = [f for f in result.warnings if (f.code or "").startswith("dkim")]
    assert [f.code for f in dkim] == ["dkim-rotation-due"]
    assert "activate relay-20260101-ed" in dkim[0].message


def test_rotating_key_without_state_is_an_error_with_the_command() -> None:
    result = compile_policy(policy(), load_catalog([]), KeystoreKeys(None))  # type: ignore[arg-type]
    assert [f.code for f in result.errors] == ["dkim-rotation-missing"]
    text = result.errors[0].format()
    assert "mail/example.com.yaml:5" in text and "dkim rotate" in text


@pytest.mark.parametrize(
    "extra, needle",
    [
        ("rotate: 10d", "rotate 10d is shorter than publish_ahead + retire_for + revoke_for"),
        ("rotate: 30d, publish_ahead: 1h", "publish_ahead 1h is shorter than 2x the record TTL"),
        ("rotate: 30d, retire_for: 90m", "retire_for 1h30m is shorter than 2x the record TTL"),
    ],
)
def test_rotation_period_too_short_for_ttl(extra: str, needle: str, tmp_path: Path) -> None:
    text = f"ttl: 3600\nsenders:\n  - name: relay\n    dkim: {{{extra}, prefix: relay}}\n"
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    result = compile_policy(lp, load_catalog([]), KeystoreKeys(None))
    assert any(needle in f.message for f in result.errors), [f.message for f in result.errors]
    assert all(f.location and f.location.line == 4 for f in result.errors)
    # The rotate edge refuses too, and writes nothing at all.
    store = Keystore(tmp_path / "keys")
    with pytest.raises(RotationError) as info:
        advance_rotation([lp], tmp_path / "dkim-state.yaml", store, T0)
    assert needle in str(info.value)
    assert not (tmp_path / "dkim-state.yaml").exists()
    assert store.selectors("example.com") == []


# --- the state file ------------------------------------------------------------------------


def test_state_file_round_trips_and_is_public_only(tmp_path: Path) -> None:
    lp = policy("[ed25519, rsa]")
    fake = FakeKeystore()
    state, _ = rotate(lp, RotationState(None), T0, fake)
    state, _ = rotate(lp, state, T0 + 2 * DAY, fake)
    path = tmp_path / "dkim-state.yaml"
    save_state(state, path)
    text = path.read_text()
    assert "PRIVATE" not in text and "2026-01-03T09:00:00Z" in text
    again = load_state(path, tmp_path / "mail")
    assert again.keys == state.keys
    assert render_state(again) == text


@pytest.mark.parametrize(
    "body, needle, line",
    [
        ("version: 1\nkeys:\n  - {domain: example.com}\n", "missing prefix", 3),
        (
            "version: 1\nkeys:\n  - domain: example.com\n    prefix: relay\n"
            "    selector: 'relay_x'\n    algorithm: ed25519\n    status: active\n"
            "    published: 2026-01-01T00:00:00Z\n    activated: 2026-01-02T00:00:00Z\n"
            "    p: 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n",
            "not a valid selector",
            5,
        ),
        (
            "version: 1\nkeys:\n  - domain: example.com\n    prefix: relay\n"
            "    selector: relay-20260101-ed\n    algorithm: ed25519\n    status: active\n"
            "    published: 2026-01-01T00:00:00Z\n"
            "    p: 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n",
            "needs `activated:`",
            3,
        ),
        (
            "version: 1\nkeys:\n  - domain: example.com\n    prefix: relay\n"
            "    selector: relay-20260101-ed\n    algorithm: ed25519\n    status: published\n"
            "    published: 2026-01-01T00:00:00Z\n    p: 'AAAA'\n",
            "must decode to 32 octets",
            9,
        ),
        ("version: 2\n", "version: 1", 1),
        ("version: 1\nkeys: [\n", "YAML syntax error", 3),
    ],
)
def test_bad_state_file_points_at_the_line(body: str, needle: str, line: int) -> None:
    with pytest.raises(PolicyError) as info:
        parse_state(body, "zones/dkim-state.yaml")
    text = str(info.value)
    assert needle in text, text
    assert f"zones/dkim-state.yaml:{line}" in text, text
    assert "Traceback" not in text


# --- the rotate edge with a real keystore -------------------------------------------------


def test_advance_rotation_writes_keys_then_state(tmp_path: Path) -> None:
    lp = policy("[ed25519, rsa]")
    store = Keystore(tmp_path / "keys")
    path = tmp_path / "dkim-state.yaml"
    report = advance_rotation([lp], path, store, T0)  # type: ignore[list-item]
    assert report.written and [a.kind for a in report.applied] == ["publish", "publish"]
    # What the MTA signs with (`dkim export`): nothing before publish_ahead has passed.
    assert signing(lp, path, store) == []
    assert store.selectors("example.com") == ["relay-20260101-ed", "relay-20260101-rsa"]
    report = advance_rotation([lp], path, store, T0 + 2 * DAY)  # type: ignore[list-item]
    signs = signing(lp, path, store)
    assert {s.selector for s in signs} == {"relay-20260101-ed", "relay-20260101-rsa"}
    assert all(s.key_path.exists() for s in signs)
    assert any("MTA must now sign with selector relay-20260101-ed" in x for x in report.lines())
    # A second run at the same moment has nothing to do and does not rewrite the file.
    before = path.stat().st_mtime_ns
    report = advance_rotation([lp], path, store, T0 + 2 * DAY)  # type: ignore[list-item]
    assert not report.written and path.stat().st_mtime_ns == before
    # Every p= in the state is the stored key's public half.
    for k in load_state(path, tmp_path).keys:
        assert public_key_b64(store.load("example.com", k.selector)) == k.p


def test_advance_rotation_refuses_state_not_matching_keystore(tmp_path: Path) -> None:
    lp = policy()
    store = Keystore(tmp_path / "keys")
    path = tmp_path / "dkim-state.yaml"
    advance_rotation([lp], path, store, T0)  # type: ignore[list-item]
    state = load_state(path, tmp_path)
    other = public_key_b64(generate_private_key("ed25519"))
    forged = RotationState(state.path, tuple(_with_p(k, other) for k in state.keys))
    save_state(forged, path)
    text_before = path.read_text()
    with pytest.raises(RotationError) as info:
        advance_rotation([lp], path, store, T0 + 2 * DAY)  # type: ignore[list-item]
    assert "does not match its private key" in str(info.value)
    assert "dkim-state.yaml:" in str(info.value)
    assert path.read_text() == text_before
    # And the processor's compile refuses to publish it while the keystore is there.
    result = compile_policy(
        lp,  # type: ignore[arg-type]
        load_catalog([]),
        KeystoreKeys(tmp_path / "keys"),
        dkim_state=load_state(path, tmp_path),
    )
    assert [f.code for f in result.errors] == ["dkim-key-mismatch"]
    assert "does not match" in result.errors[0].message
    assert other not in result.errors[0].format()


def _with_p(key: RotatedKey, p: str) -> RotatedKey:
    from dataclasses import replace

    return replace(key, p=p)


def test_state_publishes_without_any_private_key(tmp_path: Path) -> None:
    """The pipeline running octodns-sync has the state file and no keystore."""
    lp = policy()
    store = Keystore(tmp_path / "keys")
    path = tmp_path / "dkim-state.yaml"
    advance_rotation([lp], path, store, T0)  # type: ignore[list-item]
    advance_rotation([lp], path, store, T0 + 2 * DAY)  # type: ignore[list-item]
    state = load_state(path, tmp_path)
    with_store = published(lp, state, T0 + 3 * DAY)
    missing = KeystoreKeys(tmp_path / "nowhere", generate=False)
    result = compile_policy(lp, load_catalog([]), missing, dkim_state=state)  # type: ignore[arg-type]
    assert not result.errors
    assert {r.name.split(".")[0]: r.values for r in result.records if r.kind == "dkim"} == {
        s: (f"v=DKIM1; k=ed25519; p={p}",) for s, p in with_store.items()
    }


def test_state_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lp = policy()
    store = Keystore(tmp_path / "keys")
    path = tmp_path / "dkim-state.yaml"
    advance_rotation([lp], path, store, T0)  # type: ignore[list-item]
    before = path.read_text()

    def crash(*_args: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(OSError):
        advance_rotation([lp], path, store, T0 + 2 * DAY)  # type: ignore[list-item]
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dkim-state.yaml", "keys"]


def test_concurrent_rotations_publish_one_key(tmp_path: Path) -> None:
    import threading

    lp = policy()
    store = Keystore(tmp_path / "keys")
    path = tmp_path / "dkim-state.yaml"
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            advance_rotation([lp], path, Keystore(tmp_path / "keys"), T0)  # type: ignore[list-item]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [k.selector for k in load_state(path, tmp_path).keys] == ["relay-20260101-ed"]
    assert store.selectors("example.com") == ["relay-20260101-ed"]
