"""The rotation edge: advance every rotating key, generating new keys in the
keystore and writing the state file atomically; fixed keys are generated too.

The CLI exposes these as `octodns-mailauth dkim rotate` and `dkim keygen`.
Everything is checked before anything is written: a bad policy, a state whose
`p=` does not match the keystore, or a rotation period the TTL does not allow
writes nothing.  New private keys go to the keystore first, the state file
last, so a crash in between leaves unused keys, never a published selector
without its private key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .._fs import locked
from ..errors import PolicyError
from ..findings import Finding, Location, Severity
from ..policy.loader import LoadedPolicy
from .keys import Algorithm, DkimKeyError, public_key_b64, public_key_matches
from .keystore import Keystore, KeystoreError
from .rotation import (
    Action,
    KeyStatus,
    RotatedKey,
    RotationConfig,
    RotationState,
    apply_due,
    plan_rotation,
)
from .statefile import load_state, save_state


class RotationError(PolicyError):
    """Nothing was written; the findings say why."""


@dataclass(frozen=True)
class RotateReport:
    applied: tuple[Action, ...]  # what this run did
    upcoming: tuple[Action, ...]  # what comes next, soonest first
    switched: tuple[tuple[str, str | None, str], ...]  # (domain, old selector, new selector)
    state_path: Path
    written: bool
    held: tuple[tuple[str, str, str], ...] = ()  # (domain, selector, why DNS lacks it)

    def lines(self) -> list[str]:
        """What a person needs to read: what changed and what the MTA must do."""
        out = [f"{a.domain}: {a.kind} {a.selector or ''}".rstrip() for a in self.applied]
        for domain, selector, why in self.held:
            out.append(
                f"{domain}: NOT activating {selector}: {why}; the MTA keeps its current key. "
                "Publish it (commit the state file, run octodns-sync --doit), then rerun"
            )
        for domain, old, new in self.switched:
            was = f" (was {old})" if old else ""
            out.append(f"{domain}: MTA must now sign with selector {new}{was}")
        if not self.applied:
            out.append("nothing due")
        out += [f"next: {a.domain}: {a.describe()}" for a in self.upcoming[:4]]
        return out


def rotating_entries(policies: Iterable[LoadedPolicy]) -> list[tuple[RotationConfig, Location]]:
    return [
        (RotationConfig.from_policy(lp.domain, key, lp.policy.ttl), where)
        for lp in policies
        for _sender, key, where in lp.dkim_keys()
        if key.rotate is not None
    ]


def advance_rotation(
    policies: Iterable[LoadedPolicy],
    state_path: str | Path,
    keystore: Keystore,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    confirm: Confirm | None = None,
) -> RotateReport:
    """Apply every rotation action due at `now` and write the state file.

    Raises RotationError (nothing written) on any problem.  With `dry_run`,
    reports what would happen and writes nothing (no key is generated either).
    `confirm(domain, selector, algorithm, p)` says why DNS does not serve that
    key yet (None: it does); a key it holds back is not activated this run, so
    the MTA never switches to a selector receivers cannot fetch.  Without
    `confirm` (air-gapped setups) publication is assumed.
    """
    now = now or datetime.now(timezone.utc)
    path = Path(state_path)
    policies = list(policies)
    entries = rotating_entries(policies)
    errors: list[Finding] = []
    for config, where in entries:
        errors += config.findings(where)
    if not path.parent.is_dir():
        errors.append(
            Finding(
                Severity.ERROR,
                f"DKIM state file {path}: folder {path.parent} does not exist",
                code="dkim-state",
            )
        )
    if errors:
        raise RotationError(errors, "DKIM rotation not started")
    # Lock the folder: the state file itself is replaced by rename, so a lock on it
    # would guard a file nobody reads any more.
    with locked(path.parent):
        state = load_state(path, path.parent)
        # Only the domains rotated here: another domain's keys are carried over as
        # they are, and may live on another signing host.
        errors = _check_state_against_keystore(state, keystore, {lp.domain for lp in policies})
        errors += _check_no_lost_keys(state, entries, keystore)
        if errors:
            raise RotationError(errors, "DKIM rotation not started")
        generated: list[tuple[str, str, Algorithm, int]] = []

        def new_key(domain: str) -> object:
            def make(selector: str, algorithm: Algorithm, bits: int) -> str:
                generated.append((domain, selector, algorithm, bits))
                if dry_run:
                    return ""
                try:
                    private, _ = keystore.ensure(domain, selector, algorithm, bits)
                except KeystoreError as e:
                    raise RotationError(
                        [Finding(Severity.ERROR, f"DKIM keystore: {e}", code="dkim-key")],
                        "DKIM rotation stopped, state file not written",
                    ) from None
                return public_key_b64(private)

            return make

        held: list[tuple[str, str, str]] = []

        def may_activate(key: RotatedKey) -> bool:
            why = confirm(key.domain, key.selector, key.algorithm, key.p) if confirm else None
            if why is not None:
                held.append((key.domain, key.selector, why))
            return why is None

        applied: list[Action] = []
        switched: list[tuple[str, str | None, str]] = []
        new_state = state
        for config, _where in entries:
            keys = state.for_prefix(config.domain, config.prefix)

            def taken(selector: str, domain: str = config.domain) -> bool:
                # A selector whose private key exists was used once: never reuse it.
                try:
                    return keystore.exists(domain, selector)
                except KeystoreError:
                    return False

            after, done = apply_due(
                config,
                keys,
                now,
                new_key(config.domain),  # type: ignore[arg-type]
                taken,
                may_activate=may_activate,
            )
            applied += done
            switched += [
                (a.domain, a.replaces, a.selector or "") for a in done if a.kind == "activate"
            ]
            new_state = new_state.with_keys(config.domain, config.prefix, after)
        written = bool(applied) and not dry_run
        if written:
            save_state(new_state, path)
    upcoming = sorted(
        (
            a
            for config, _where in entries
            for a in plan_rotation(
                config, new_state.for_prefix(config.domain, config.prefix), now
            ).actions
            if a.due > now
        ),
        key=lambda a: a.due,
    )
    return RotateReport(
        tuple(applied), tuple(upcoming), tuple(switched), path, written, tuple(held)
    )


Confirm = Callable[[str, str, str, str], "str | None"]
"""(domain, selector, algorithm, p) -> why DNS does not serve that key, or None."""

_ROTATED = re.compile(r"(?P<prefix>.+)-\d{8}[b-z]?-(?:ed|rsa)\Z")


def _check_no_lost_keys(
    state: RotationState,
    entries: list[tuple[RotationConfig, Location]],
    keystore: Keystore,
) -> list[Finding]:
    """A prefix with rotated keys in the keystore but none in the state: the state
    was lost (deleted, emptied, cut short).  Starting over would publish a fresh key
    and drop the selector the MTA signs with; restore the file instead."""
    errors = []
    for config, where in entries:
        if state.for_prefix(config.domain, config.prefix):
            continue
        try:
            found = [
                s
                for s in keystore.selectors(config.domain)
                if (m := _ROTATED.match(s)) and m.group("prefix") == config.prefix
            ]
        except KeystoreError as e:
            errors.append(Finding(Severity.ERROR, f"DKIM keystore: {e}", where, code="dkim-key"))
            continue
        if found:
            errors.append(
                Finding(
                    Severity.ERROR,
                    f"the DKIM state {state.path} has no key for {config.prefix} of "
                    f"{config.domain}, but the keystore holds rotated keys for it "
                    f"({', '.join(found)}): the state file was lost or cut short, and one of "
                    "those keys may be signing mail now",
                    where,
                    "restore the state file from version control (git log -- <file>); a "
                    "rotation never starts over while its keys exist",
                    code="dkim-state-lost",
                )
            )
    return errors


def _check_state_against_keystore(
    state: RotationState, keystore: Keystore, domains: set[str]
) -> list[Finding]:
    """Every p= of `domains` in the state must be the public half of the stored private key."""
    errors = []
    for key in (k for k in state.keys if k.domain in domains):
        where = Location(state.path or "", key.line, key.selector)
        try:
            if not keystore.exists(key.domain, key.selector):
                if key.status in (KeyStatus.PUBLISHED, KeyStatus.ACTIVE):
                    errors.append(
                        Finding(
                            Severity.ERROR,
                            f"no private key for {key.status.value} selector {key.selector} "
                            f"of {key.domain} in {keystore.root}",
                            where,
                            "run the rotation where the keystore is, or restore it",
                            code="dkim-key",
                        )
                    )
                continue
            private = keystore.load(key.domain, key.selector)
        except KeystoreError as e:
            errors.append(Finding(Severity.ERROR, f"DKIM keystore: {e}", where, code="dkim-key"))
            continue
        if not public_key_matches(private, key.p):
            errors.append(
                Finding(
                    Severity.ERROR,
                    f"the published p= of selector {key.selector} does not match its private "
                    f"key {keystore.path_for(key.domain, key.selector)}",
                    where,
                    "restore the state file or the keystore from backup; never edit p= by hand",
                    rfc="RFC 6376 §3.6.1",
                    code="dkim-key-mismatch",
                )
            )
    return errors


def keygen(policies: Iterable[LoadedPolicy], keystore: Keystore) -> list[tuple[str, str, bool]]:
    """Generate the missing keys of fixed selectors: [(domain, selector, created)].
    A selector with `public_key:` is checked, not generated (its key lives elsewhere)."""
    out = []
    errors: list[Finding] = []
    todo = [(lp, key, where) for lp in policies for _s, key, where in lp.dkim_keys()]
    for lp, key, where in todo:
        if key.selector is None:
            continue
        try:
            if key.public_key and not keystore.exists(lp.domain, key.selector):
                continue
            private, created = keystore.ensure(lp.domain, key.selector, key.algorithm, key.bits)
        except (KeystoreError, DkimKeyError) as e:
            errors.append(Finding(Severity.ERROR, f"DKIM keystore: {e}", where, code="dkim-key"))
            continue
        if key.public_key and not public_key_matches(private, key.public_key):
            errors.append(
                Finding(
                    Severity.ERROR,
                    f"public_key of selector {key.selector} does not match its private key",
                    where,
                    "publish the keystore's key or fix the policy",
                    code="dkim-key-mismatch",
                )
            )
            continue
        out.append((lp.domain, key.selector, created))
    if errors:
        raise RotationError(errors, "DKIM key generation failed")
    return out
