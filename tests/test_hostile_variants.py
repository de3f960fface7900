"""Hostile variants of the example policies (zones/mail), generated: every
schema key misspelt at every level, files without a mapping, bad names in
every name-typed field, U-labels and look-alikes, weak keys by every route,
and the messages that used to cascade.

Each variant goes, in this process, through what `octodns-validate`,
`octodns-mailauth validate --config` and an `octodns-sync` plan run, on a copy
of the example holding it: all three give the same one error naming its cause
and `--doit` publishes nothing (or, for a U-label, all accept its A-label; for
a vendor's short DKIM key, all give the same one warning).  By default a
stratified set (every kind, model, field and way a name goes wrong) takes all
three and the rest `octodns-validate`; the slow run (CI) takes every variant
through all three.  A few go through the installed entry points.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import cli
from conftest import SLOW_ENV
from cryptography.hazmat.primitives.asymmetric import rsa
from octodns.manager import Manager

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.dkim.keys import public_key_b64
from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.keysource import KeystoreKeys
from octodns_mailauth.policy.loader import _MODELS, load_policy_file, parse_policy

ROOT = Path(__file__).resolve().parent.parent
MAIL = ROOT / "zones" / "mail"
SEEDS: dict[str, dict[str, Any]] = {
    p.name: yaml.safe_load(p.read_text()) for p in sorted(MAIL.glob("*.yaml"))
}
CATALOG = load_catalog()
# A 1024-bit RSA key, made once: RFC 8301 allows verifying such keys, we never publish one.
WEAK = rsa.generate_private_key(public_exponent=65537, key_size=1024)
# Vendor DKIM records: 1024 bits (verifiers accept it) and 768 (below RFC 8301's floor;
# keyless, as no library makes such a key: only the modulus length matters here).
VENDOR_RECORDS = {
    bits: f"v=DKIM1; k=rsa; p={public_key_b64(key)}"
    for bits, key in [
        (1024, WEAK.public_key()),
        (768, rsa.RSAPublicNumbers(65537, (1 << 767) | 1).public_key()),
    ]
}


@dataclass(frozen=True)
class Variant:
    id: str
    file: str  # the policy file (in zones/mail) that is replaced
    data: Any = None  # the new content (YAML-dumped), unless `text` is given
    text: str | None = None
    expect: str = ""  # a piece of the one error; "" when the variant must load
    rename: str | None = None  # the file's new name
    a_label: str | None = None  # for U-labels: the A-label the loaded policy holds
    weak_key_file: bool = False  # a 1024-bit key in the keystore for example.com's RSA key
    warn: str = ""  # a piece of the one new warning, for a variant that loads with one
    lock: tuple[tuple[str, str], ...] = ()  # (name, TXT) answers replaced in the SPF lock
    zone: str | None = None  # a zone the config gains (as written there), for a new domain

    @property
    def kind(self) -> str:
        return self.id.split(":")[0]

    def content(self) -> str:
        return self.text if self.text is not None else yaml.safe_dump(self.data, sort_keys=False)


def _copy(data: Any) -> Any:
    return yaml.safe_load(yaml.safe_dump(data))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _misspell(key: str, known: set[str]) -> list[str]:
    """Two typos a person makes: a letter dropped, a letter doubled."""
    out = []
    if len(key) > 3:
        out.append(key[:2] + key[3:])
    out.append(key + key[-1])
    return [t for t in out if t not in known]


# --- every schema key misspelt at every level -------------------------------------------


def _mappings(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], dict]]:
    if isinstance(data, dict):
        yield path, data
        for key, value in data.items():
            yield from _mappings(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _mappings(value, (*path, i))


def _known_at(path: tuple[Any, ...], mapping: dict) -> set[str] | None:
    shape = tuple("#" if isinstance(p, int) else p for p in path)
    model = _MODELS.get(shape)
    if model is None:
        return None
    known = set(model.model_fields)
    entry = CATALOG.get(mapping["provider"]) if "provider" in mapping else None
    return known | set(entry.params) if entry else known


def misspelt_keys() -> Iterator[Variant]:
    # Levels the examples do not use get a mapping of their own to misspell in.
    extra = {
        "example.com.yaml": [(("dmarc", "legacy"), {"pct": 100})],
    }
    for name, seed in SEEDS.items():
        seed = _copy(seed)
        for path, value in extra.get(name, []):
            _get(seed, path[:-1])[path[-1]] = value
        for path, mapping in list(_mappings(seed)):
            known = _known_at(path, mapping)
            if known is None:
                continue
            shape = tuple("#" if isinstance(p, int) else p for p in path)
            fields = set(_MODELS[shape].model_fields)
            # Keys the file has, and schema keys it does not (inserted misspelt).
            for key in [*mapping, *sorted(fields - set(mapping))]:
                for typo in _misspell(key, known):
                    data = _copy(seed)
                    target = _get(data, path)
                    if key in target:
                        target[typo] = target.pop(key)
                    else:
                        target[typo] = "x"
                    where = ".".join(map(str, (*path, key)))
                    yield Variant(f"typo:{name}:{where}:{typo}", name, data, expect=f"'{typo}'")


# --- files without a mapping; a file name and a domain: that disagree ------------------


def unmapped_files() -> Iterator[Variant]:
    for i, text in enumerate(["", "# nothing here\n", "---\n", "--- # c\n...\n", "~\n", "null\n"]):
        yield Variant(f"empty:{i}", "parked.example.yaml", text=text, expect="no settings")
    for i, text in enumerate(["[]\n", "- parked: true\n", "parked\n", "42\n"]):
        yield Variant(f"not-a-mapping:{i}", "parked.example.yaml", text=text, expect="mapping")
    data = {"domain": "example.org", **SEEDS["example.com.yaml"]}
    expect = "named after example.com but domain: says example.org"
    yield Variant("domain-vs-file", "example.com.yaml", data, expect=expect)


# --- names: every name-typed field, every way a name goes wrong -------------------------


def sender(file: str, provider: str | None = None, has: str | None = None) -> int:
    """The index of the example's first sender with `provider` (None: our own servers)
    and key `has`: variants find their place in whatever the example holds now."""
    for i, s in enumerate(SEEDS[file].get("senders") or []):
        if s.get("provider") == provider and (has is None or has in s):
            return i
    raise LookupError(f"{file} has no sender with provider {provider} and {has}: update this")


def rsa_key(file: str) -> tuple[tuple[Any, ...], str]:
    """The path to the first fixed RSA DKIM key of our own servers, and its selector."""
    for i, s in enumerate(SEEDS[file].get("senders") or []):
        keys = s.get("dkim") or []
        for j, key in enumerate([keys] if isinstance(keys, dict) else keys):
            if "provider" not in s and "selector" in key and key.get("algorithm", "rsa") == "rsa":
                at = ("dkim",) if isinstance(keys, dict) else ("dkim", j)
                return ("senders", i, *at), key["selector"]
    raise LookupError(f"{file} has no fixed RSA DKIM key of its own: update this")


COM, NET, SHOP = "example.com.yaml", "example.net.yaml", "shop.example.yaml"
OWN, MS365 = sender(COM), sender(COM, "microsoft365")
# (file, path to the value, kind); lists get the bad name as their only item.
NAME_FIELDS: list[tuple[str, tuple[Any, ...], str]] = [
    (COM, ("senders", OWN, "include"), "fqdn"),
    (COM, ("senders", OWN, "return_path"), "fqdn"),
    (COM, (*rsa_key(COM)[0], "selector"), "selector"),
    (COM, ("senders", MS365, "tenant"), "label"),
    (COM, ("senders", MS365, "selector1_target"), "fqdn"),
    (COM, ("senders", sender(COM, "sendgrid"), "account"), "token"),
    (COM, ("dmarc", "rua"), "mailto"),
    (NET, ("senders", sender(NET), "a"), "fqdn"),
    (NET, ("senders", sender(NET, "amazonses"), "mail_from"), "label"),
    (NET, ("senders", sender(NET, "amazonses"), "region"), "token"),
    (NET, ("senders", sender(NET, "amazonses"), "dkim_tokens"), "token"),
    (NET, ("senders", sender(NET, "google"), "dkim_selector"), "selector"),
    (SHOP, ("senders", sender(SHOP), "mx"), "fqdn"),
    (SHOP, ("mta_sts", "mx"), "fqdn"),
    (SHOP, ("mta_sts", "host"), "cname"),
    (SHOP, ("bimi", "selector"), "selector"),
    (SHOP, ("tls_rpt", "rua"), "mailto"),
    ("parked.example.yaml", ("domain",), "domain"),
]
LONG_NAME = ".".join(["a" * 62] * 4) + ".example.net"  # 264 characters
BAD_NAMES = {
    # how: (bad value, piece of the message)
    "newline": ("mail.example.net\n", "control character"),
    "control": ("mail.exa\x07mple.net", "control character"),
    "del": ("mail.example.net\x7f", "control character"),
    "label64": ("a" * 64 + ".example.net", "63"),
    "name254": (LONG_NAME, "253"),
    "look-alike": ("mail.p\u0430ypal.net", "mixes scripts"),
}
BAD_LABELS = {
    "newline": "relay\n",
    "control": "re\x1blay",
    "label64": "a" * 64,
    "non-ascii": "bl\u00e5b\u00e6r",
}
LISTS = {"include", "a", "mx", "rua", "dkim_tokens"}
U_NAME, A_NAME = "mail.bl\u00e5b\u00e6r.no", "mail.xn--blbr-roah.no"


def _with(file: str, path: tuple[Any, ...], value: Any) -> dict:
    data = _copy(SEEDS[file])
    if path[-1] == "host":
        value = {"cname": value}
    elif path == ("domain",):
        data = {"domain": value, **data}
        return data
    elif path[-1] in LISTS:
        value = [value]
    _get(data, path[:-1])[path[-1]] = value
    return data


def bad_names() -> Iterator[Variant]:
    for file, path, kind in NAME_FIELDS:
        where = ".".join(map(str, path))
        # `domain:` goes in a file not named after a domain, so only the value speaks.
        rename = "policy" if path == ("domain",) else None
        # A policy for a new domain: the config gets its zone, written as a U-label.
        zone = f"{U_NAME}." if path == ("domain",) else None
        if kind in {"fqdn", "cname", "domain", "mailto"}:
            for how, (bad, expect) in BAD_NAMES.items():
                value = f"mailto:dmarc@{bad}" if kind == "mailto" else bad
                data = _with(file, path, value)
                yield Variant(
                    f"name:{file}:{where}:{how}", file, data, expect=expect, rename=rename
                )
            if path == ("mta_sts", "mx"):
                # An MX pattern must match one of the zone's MX hosts (all ASCII in the
                # example): a U-label one added is an error, naming its A-label.
                data = _copy(SEEDS[file])
                data["mta_sts"]["mx"].append(U_NAME)
                yield Variant(f"idn:{file}:{where}", file, data, expect=f"pattern {A_NAME}")
                continue
            good = f"mailto:dmarc@{U_NAME}" if kind == "mailto" else U_NAME
            data = _with(file, path, good)
            yield Variant(
                f"idn:{file}:{where}", file, data, rename=rename, a_label=A_NAME, zone=zone
            )
        else:
            for how, bad in BAD_LABELS.items():
                data = _with(file, path, bad)
                yield Variant(f"label:{file}:{where}:{how}", file, data, expect=path[-1])
    # The file name is where most policies get their domain.
    parked = SEEDS["parked.example.yaml"]
    for how, (bad, expect) in BAD_NAMES.items():
        if how != "name254":  # longer than a file name can be (NAME_MAX)
            yield Variant(
                f"file-name:{how}", "parked.example.yaml", parked, expect=expect, rename=bad
            )
    yield Variant(
        "file-name:idn",
        "parked.example.yaml",
        parked,
        rename=U_NAME,
        a_label=A_NAME,
        zone=f"{U_NAME}.",
    )


# --- weak keys, however they arrive; free text; messages that used to cascade -------------


def others() -> Iterator[Variant]:
    def relay_rsa(**changes: Any) -> dict:
        data = _copy(SEEDS[COM])
        _get(data, rsa_key(COM)[0]).update(changes)
        return data

    com = COM
    yield Variant("weak:bits", com, relay_rsa(bits=1024), expect="1024")
    weak = relay_rsa(public_key=public_key_b64(WEAK))
    yield Variant("weak:public_key", com, weak, expect="1024 bits")
    yield Variant("weak:key-file", com, SEEDS[com], expect="1024 bits", weak_key_file=True)
    # Keys a vendor made, pasted or reached through a CNAME: RFC 8301 §3.2 lets verifiers
    # accept 1024 to 2047 bits (a warning: ask the vendor) and nothing shorter (an error).
    floor = "under the 1024 bits RFC 8301"
    should = "RFC 8301 §3.2 says signers SHOULD use at least 2048"
    for bits, record in VENDOR_RECORDS.items():
        said = {"expect": floor} if bits < 1024 else {"warn": should}
        data = _copy(SEEDS[NET])
        data["senders"][sender(NET, "google")]["dkim_record"] = record
        yield Variant(f"weak:pasted-record:{bits}", "example.net.yaml", data, **said)
        data = _copy(SEEDS[com])
        postmark = {"dkim_selector": "20260101000000pm", "dkim_record": record.split("; ", 1)[1]}
        data["senders"].append({"name": "receipts", "provider": "postmark", **postmark})
        yield Variant(f"weak:catalog-parameter:{bits}", com, data, **said)
        # Delegated: the key is at the vendor's CNAME target, as the lock recorded it.
        said = {"warn": "768 bits, under the 1024" if bits < 1024 else should}
        target = SEEDS[com]["senders"][MS365]["selector1_target"]
        lock = ((target, record),)
        yield Variant(f"weak:delegated:{bits}", com, SEEDS[com], lock=lock, **said)
    texts = {"escape": "relay\x1b[31m", "bidi": "relay\u202eyaler", "nul": "a\x00b"}
    for how, text in texts.items():
        data = _copy(SEEDS[com])
        data["senders"][OWN]["name"] = text
        yield Variant(f"free-text:name:{how}", com, data, expect="control character")
    data = _copy(SEEDS[com])
    data["senders"][OWN]["unaligned_ok"] = "it\x07 cannot"
    yield Variant("free-text:unaligned_ok", com, data, expect="control character")

    data = _copy(SEEDS["example.com.yaml"])
    data["senders"][MS365]["provider"] = "office365"
    yield Variant("cascade:office365", com, data, expect="did you mean 'microsoft365'")
    data = _copy(SEEDS["example.com.yaml"])
    del data["senders"][MS365]["tenant"]
    yield Variant("cascade:no-tenant", com, data, expect="needs parameter 'tenant'")
    data = _copy(SEEDS["example.com.yaml"])
    data["dmarc"]["polcy"] = data["dmarc"].pop("policy")
    yield Variant("cascade:polcy", com, data, expect="did you mean 'policy'")
    data = _copy(SEEDS["example.com.yaml"])
    own = data["senders"][sender(COM, has="ip4")]
    own["ipv4"] = own.pop("ip4")
    yield Variant("cascade:ipv4", com, data, expect="did you mean 'ip4'")


VARIANTS = [*misspelt_keys(), *unmapped_files(), *bad_names(), *others()]


# --- running a variant through the three commands ---------------------------------------
#
# A variant is a copy of the example (zones/, with the DKIM keys made once) holding it, and
# it goes through what each command runs, in this process: `octodns-validate` is
# `Manager(config).validate_configs()` (octodns/cmds/validate.py), `octodns-sync` without
# --doit is `Manager(config).sync(dry_run=True)` (octodns/cmds/sync.py), and
# `octodns-mailauth validate --config` is our `main` (tests/cli_run.py).  A variant that
# fails is also synced with --doit (`dry_run=False`): the target must hold no zone file.
# A few run as real subprocesses below, for the entry points themselves.

CONFIG = "zones/config.yaml"
OUTPUT = Path("zones/output")
COMMANDS = ("octodns-validate", "octodns-mailauth validate", "octodns-sync")


@dataclass
class Said:
    """What one command said: whether it failed, and its text (output, exception, log)."""

    failed: bool
    text: str

    def messages(self, severity: str) -> list[str]:
        """The message of each `file:line: severity: message` line, after checking that
        it names a policy file and line."""
        out = []
        for line in self.text.splitlines():
            where, sep, message = line.partition(f": {severity}: ")
            if sep:
                assert ".yaml:" in where or ".json" in where, line
                # octoDNS names the zone validator that reported it: not our words.
                out.append(re.sub(r", via: mailauth-\S+$", "", message))
        return out


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _octodns(call: Any) -> Said:
    """An octoDNS command: what it raised and what it logged at WARNING."""
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    failed, said = False, []
    try:
        call()
    except Exception as e:  # the command's last words: octoDNS prints it as a traceback
        failed, said = True, [f"{type(e).__name__}: {e}"]
    finally:
        root.removeHandler(handler)
    for record in handler.records:
        if record.levelno >= logging.WARNING:
            said.append(record.getMessage())
        # octodns-validate exits 1 on any warning of these loggers (its FlaggingHandler).
        if record.levelno >= logging.WARNING and record.name.split(".")[0] in ("Record", "Zone"):
            failed = True
    return Said(failed, "\n".join(said))


def run_commands(commands: tuple[str, ...] = COMMANDS) -> dict[str, Said]:
    """Each command over the example in the working directory."""
    said = {}
    if "octodns-validate" in commands:
        said["octodns-validate"] = _octodns(lambda: Manager(CONFIG).validate_configs())
    if "octodns-mailauth validate" in commands:
        ours = cli("validate", "--config", CONFIG)
        said["octodns-mailauth validate"] = Said(ours.returncode != 0, ours.stdout + ours.stderr)
    if "octodns-sync" in commands:
        said["octodns-sync"] = _octodns(lambda: Manager(CONFIG).sync(dry_run=True))
    return said


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Said]]]:
    """The example, whatever zones/ holds now, with every DKIM key it needs made once
    (by a sync that applies, whose zone files are then removed): the variants differ in
    policy, not keys.  Also what each command says of the example itself."""
    root = tmp_path_factory.mktemp("base")
    shutil.copytree(
        ROOT / "zones",
        root / "zones",
        ignore=shutil.ignore_patterns(".dkim", "output", "__pycache__"),
    )
    cwd = Path.cwd()
    os.chdir(root)
    try:
        Manager(CONFIG).sync(dry_run=False)
        made = len(list(Path("zones/.dkim").glob("*/*.pem")))
        assert made >= 4, made
        shutil.rmtree(OUTPUT)
        said = run_commands()
    finally:
        os.chdir(cwd)
    # The example itself is clean in every command: a variant's error is its own.
    for command, s in said.items():
        assert not s.failed and not s.messages("error"), f"{command}: {s.text}"
    yield root, said


def _install(variant: Variant, zones: Path) -> Path:
    """Write the variant into a copy of the example; the policy path it wrote."""
    mail = zones / "mail"
    (mail / variant.file).unlink()
    target = mail / ((variant.rename + ".yaml") if variant.rename else variant.file)
    target.write_text(variant.content(), encoding="utf-8")
    if variant.weak_key_file:
        selector = rsa_key(COM)[1]
        (zones / ".dkim" / "example.com" / f"{selector}.pem").unlink()
        Keystore(zones / ".dkim").import_key("example.com", selector, WEAK)
    if variant.zone:
        config = yaml.safe_load((zones / "config.yaml").read_text())
        config["zones"][variant.zone] = config["zones"]["parked.example."]
        (zones / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
        (zones / "config" / f"{variant.zone}yaml").write_text("--- {}\n", encoding="utf-8")
    if variant.lock:
        lock = mail / "spf-lock.json"
        data = json.loads(lock.read_text())
        for name, txt in variant.lock:
            data["answers"][name]["TXT"] = [txt]
        lock.write_text(json.dumps(data))
    return target


def _stratum(variant: Variant) -> list[tuple[str, ...]]:
    """The groups a default run takes one variant of: every kind; every misspelt model
    and file; every field and every way a name goes wrong.  Few variants outside these
    kinds: all of them."""
    parts = variant.id.split(":")
    if variant.kind == "typo":
        shape = tuple("#" if p.isdigit() else p for p in parts[2].split(".")[:-1])
        return [("typo", parts[1], *shape)]
    if variant.kind in ("name", "label"):
        return [(variant.kind, parts[1], parts[2]), (variant.kind, parts[3])]
    if variant.kind == "idn":
        return [("idn", parts[1])]
    return [(variant.id,)]


def _stratified(variants: list[Variant]) -> list[Variant]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for variant in variants:
        strata = _stratum(variant)
        if not seen.issuperset(strata):
            out.append(variant)
            seen.update(strata)
    return out


DEFAULT = _stratified(VARIANTS)
_DEFAULT_IDS = {v.id for v in DEFAULT}
REST = [v for v in VARIANTS if v.id not in _DEFAULT_IDS]
FULL = bool(os.environ.get(SLOW_ENV))


def test_the_generator_covers_every_kind() -> None:
    kinds = {v.kind for v in VARIANTS}
    assert kinds >= {"typo", "empty", "not-a-mapping", "name", "label", "idn", "weak"}
    assert kinds >= {"file-name", "free-text", "cascade", "domain-vs-file"}
    # Every model of the policy had its keys misspelt.
    misspelt = {tuple(v.id.split(":")[2].split(".")) for v in VARIANTS if v.kind == "typo"}
    shapes = {tuple("#" if p.isdigit() else p for p in path[:-1]) for path in misspelt}
    assert set(_MODELS) - {("senders", "#", "dkim")} <= shapes
    # Weak keys by every route: bits:, public_key:, a key file, a pasted vendor record,
    # a catalog parameter, a delegated key, each at both sizes where both apply.
    weak = {v.id for v in VARIANTS if v.kind == "weak"}
    assert len(weak) == 3 + 3 * len(VENDOR_RECORDS), weak
    # The default run takes every kind and every stratum; the slow run all.
    assert {v.kind for v in DEFAULT} == kinds
    assert set().union(*map(_stratum, VARIANTS)) == set().union(*map(_stratum, DEFAULT))
    per_kind = {k: sum(v.kind == k for v in VARIANTS) for k in sorted(kinds)}
    default = {k: sum(v.kind == k for v in DEFAULT) for k in sorted(kinds)}
    print(f"\n{len(VARIANTS)} hostile variants generated: {per_kind}")
    print(f"default run: {len(DEFAULT)} through all three commands {default},")
    print(f"  the other {len(REST)} through octodns-validate alone")
    print(f"{SLOW_ENV}=1 (CI): all {len(VARIANTS)} through all three commands")
    assert len(VARIANTS) > 250 and 40 <= len(DEFAULT) < len(VARIANTS) / 3


@pytest.mark.parametrize(
    "variant",
    [v if v.id in _DEFAULT_IDS else pytest.param(v, marks=pytest.mark.slow) for v in VARIANTS],
    ids=lambda v: v.id,
)
def test_the_three_commands_agree(
    variant: Variant,
    base: tuple[Path, dict[str, Said]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each command gives the variant's one error, word for word the same, and nothing
    is published (or, for a U-label, all accept it as its A-label; for a vendor's short
    key, all accept it with the same one warning).  The stratified variants run by
    default, all of them in the slow run (CI)."""
    _agree(variant, base, tmp_path, monkeypatch, COMMANDS)


@pytest.mark.parametrize("variant", REST, ids=lambda v: v.id)
def test_the_rest_in_octodns_validate(
    variant: Variant,
    base: tuple[Path, dict[str, Said]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the slow run, the other variants go through `octodns-validate` alone
    (it builds the processor as every command does): each still gives its one error."""
    if FULL:
        pytest.skip("the slow run takes it through all three commands")
    _agree(variant, base, tmp_path, monkeypatch, COMMANDS[:1])


def _agree(
    variant: Variant,
    base: tuple[Path, dict[str, Said]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    commands: tuple[str, ...],
) -> None:
    root, clean = base
    shutil.copytree(root / "zones", tmp_path / "zones")
    monkeypatch.chdir(tmp_path)
    path = _install(variant, Path("zones"))
    loads = variant.a_label is not None or bool(variant.warn)
    said = run_commands(commands)
    new_warnings = {
        command: [w for w in s.messages("warning") if w not in clean[command].messages("warning")]
        for command, s in said.items()
    }
    if not loads:
        for command, s in said.items():
            assert s.failed, f"{command} accepted {variant.id}: {s.text}"
            errors = s.messages("error")
            assert len(errors) == 1, f"{command}: {s.text}"
            assert variant.expect in errors[0], f"{command}: {s.text}"
            # Short: the cause, the fix, one parameter's help at most (no repeats).
            assert len(errors[0]) < 700, errors[0]
        messages = {s.messages("error")[0] for s in said.values()}
        assert len(messages) == 1, messages  # the same message, word for word
        if commands != COMMANDS:
            return
        # And `octodns-sync --doit` publishes nothing.
        doit = _octodns(lambda: Manager(CONFIG).sync(dry_run=False))
        assert doit.failed and doit.messages("error") == [*messages], doit.text
        assert not list(OUTPUT.glob("*.zone"))
        return
    for command, s in said.items():
        assert not s.failed and not s.messages("error"), f"{command}: {s.text}"
    # Said alike: the same new warnings, in each command.
    assert len({tuple(w) for w in new_warnings.values()}) == 1, new_warnings
    warnings = new_warnings["octodns-validate"]
    if variant.warn:
        assert len(warnings) == 1 and variant.warn in warnings[0], warnings
        return
    # A U-label: accepted, and what is planned and said holds the A-label only.
    assert variant.a_label is not None
    # Our words name the A-label (file names are as written, and octoDNS's own lines
    # show zones decoded).
    assert not any(U_NAME in w for s in said.values() for w in s.messages("warning")), said
    lp = load_policy_file(path)
    result = compile_policy(lp, CATALOG, KeystoreKeys(Path("zones/.dkim"), generate=False))
    records = [f"{r.name} {' '.join(r.values)}" for r in result.records]
    assert not any(U_NAME in text for text in [lp.domain, *records]), records
    if commands != COMMANDS:
        return
    # Published: `--doit` writes the zone files with the A-label, never the U-label.
    doit = _octodns(lambda: Manager(CONFIG).sync(dry_run=False))
    assert not doit.failed, doit.text
    published = "\n".join(
        line
        for f in OUTPUT.glob("*.zone")
        for line in f.read_text(encoding="utf-8").splitlines()
        if not line.startswith(";")  # octodns-bind's comments show names decoded
    )
    assert U_NAME not in published
    if any(variant.a_label in text for text in records):
        assert variant.a_label in published
    else:  # a provider parameter kept as written, converted where it is rendered
        held = yaml.safe_dump(lp.policy.model_dump(mode="json"))
        assert variant.a_label in held, held


def test_every_variant_has_been_through_the_three_commands_in_ci() -> None:
    """The slow run (CI) takes every variant; the default run every stratum."""
    slow = [v for v in VARIANTS if v.id not in _DEFAULT_IDS]
    assert len(slow) + len(DEFAULT) == len(VARIANTS) and slow


BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "name", ["cascade:polcy", "weak:catalog-parameter:1024", "idn:example.com.yaml:dmarc.rua"]
)
def test_the_entry_points_agree_without_a_traceback_of_ours(
    name: str, base: tuple[Path, dict[str, Said]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed entry points, as a user runs them: the same words as in-process."""
    variant = next(v for v in VARIANTS if v.id == name)
    shutil.copytree(base[0] / "zones", tmp_path / "zones")
    monkeypatch.chdir(tmp_path)
    _install(variant, Path("zones"))
    runs = {
        command: subprocess.run(
            [str(BIN / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=300,
        )
        for command, argv in {
            "octodns-validate": ["octodns-validate", "--config-file", CONFIG],
            "octodns-mailauth validate": ["octodns-mailauth", "validate", "--config", CONFIG],
            "octodns-sync": ["octodns-sync", "--config-file", CONFIG],
        }.items()
    }
    in_process = run_commands()
    for command, run in runs.items():
        text = run.stdout + run.stderr
        assert (run.returncode != 0) == in_process[command].failed, f"{command}: {text}"
        if variant.expect:
            assert variant.expect in text, f"{command}: {text}"
            # The same message as in-process, once.
            (message,) = in_process[command].messages("error")
            assert text.count(message) == 1, f"{command}: {text}"
        elif variant.warn:
            assert variant.warn in text, f"{command}: {text}"
        else:  # a U-label, accepted: our words name its A-label
            assert not any(U_NAME in w for w in Said(False, text).messages("warning")), text
        if command == "octodns-mailauth validate":
            assert "Traceback" not in text
    assert not list(OUTPUT.glob("*.zone"))


def test_a_u_label_policy_loads_as_its_a_label() -> None:
    lp = parse_policy("parked: true\n", "bl\u00e5b\u00e6r.no.yaml", "bl\u00e5b\u00e6r.no")
    assert lp.domain == "xn--blbr-roah.no"
    with pytest.raises(PolicyError, match="mixes scripts"):
        parse_policy("parked: true\n", "x.yaml", "p\u0430ypal.com")


def test_markdown_cells_escape_table_syntax_and_html() -> None:
    from octodns_mailauth.cli.render import md_table

    table = md_table(["sender", "value"], [["a|b <img src=x> &amp;", "`v=spf1 a|b`"]])
    row = table.splitlines()[2]
    assert row == "| a\\|b &lt;img src=x&gt; &amp;amp; | `v=spf1 a\\|b` |"
    assert "<" not in table and row.count(" | ") == 1
