"""The example's DKIM rotation as the host that signs example.net's mail holds it.

`zones/dkim-state.yaml` is committed, as a user commits it; the private keys of
its selectors are not (they stay where `dkim rotate` runs), so on a fresh copy
of the example `dkim rotate` and `dkim export` refuse, naming the missing keys.
Tests that need those keys (export, rotate, signing) replay the same rotation
into the example's keystore: the same selectors, states and dates, fresh keys,
and the state file rewritten with their public keys.  This is also how the
committed state was made (with a keystore that was then thrown away).
"""

from __future__ import annotations

from pathlib import Path

from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.dkim.rotate import advance_rotation
from octodns_mailauth.dkim.rotation import RotationState
from octodns_mailauth.dkim.statefile import load_state
from octodns_mailauth.policy.loader import load_policy_dir

STATE = Path("zones/dkim-state.yaml")


def _shape(state: RotationState) -> list[tuple[object, ...]]:
    return [
        (k.domain, k.prefix, k.selector, k.algorithm, k.status, k.published, k.activated)
        for k in state.keys
    ]


def replay_example_rotation(root: Path = Path(".")) -> RotationState:
    """Rebuild the committed rotation (in the example copy at `root`) with keys
    the keystore holds; returns the new state, which differs only in `p=`."""
    state_path, mail = root / STATE, root / "zones" / "mail"
    committed = load_state(state_path, mail)
    assert committed.keys, "the example commits a rotation in progress"
    steps = sorted(
        {k.published for k in committed.keys}
        | {k.activated for k in committed.keys if k.activated is not None}
    )
    state_path.unlink()
    policies = load_policy_dir(mail)
    store = Keystore(root / "zones" / ".dkim")
    for when in steps:  # publishing is assumed: the example's DNS is its zone files
        advance_rotation(policies, state_path, store, when)
    replayed = load_state(state_path, mail)
    assert _shape(replayed) == _shape(committed), "the replay must be the committed rotation"
    assert all(store.exists(k.domain, k.selector) for k in replayed.keys)
    return replayed
