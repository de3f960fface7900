"""Hostile variants of the example policies (zones/mail), generated: every
schema key misspelt at every level, files without a mapping, bad names in
every name-typed field, U-labels and look-alikes, weak keys by every route,
and the messages that used to cascade.

Each variant gives exactly one error naming its cause (or, for a U-label, the
A-label conversion) and nothing is published.  The full set goes through the
processor built from the policy folder, as `octodns-validate` and
`octodns-sync` build it; one variant of each kind goes through
`octodns-validate`, `octodns-mailauth validate --config` and an `octodns-sync`
plan (in-process), which must give the same one message, and one through the
installed entry points.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from octodns.manager import Manager

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.cli import main as cli_main
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.dkim.keys import public_key_b64
from octodns_mailauth.dkim.keystore import Keystore
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.keysource import KeystoreKeys
from octodns_mailauth.policy import load_policy_file, parse_policy
from octodns_mailauth.policy.loader import _MODELS
from octodns_mailauth.processor import MailAuthProcessor, MailAuthProcessorError

ROOT = Path(__file__).resolve().parent.parent
MAIL = ROOT / "zones" / "mail"
SEEDS: dict[str, dict[str, Any]] = {
    p.name: yaml.safe_load(p.read_text()) for p in sorted(MAIL.glob("*.yaml"))
}
CATALOG = load_catalog()
# A 1024-bit RSA key, made once: RFC 8301 allows verifying such keys, we never publish one.
WEAK = rsa.generate_private_key(public_exponent=65537, key_size=1024)


@dataclass(frozen=True)
class Variant:
    id: str
    file: str  # the policy file (in zones/mail) that is replaced
    data: Any = None  # the new content (YAML-dumped), unless `text` is given
    text: str | None = None
    expect: str = ""  # a piece of the one error; "" when the variant must load
    rename: str | None = None  # the file's new name
    a_label: str | None = None  # for U-labels: the A-label the loaded policy holds
    weak_key_file: bool = False  # put a 1024-bit key in the keystore for relay2026r

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

# (file, path to the value, kind); lists get the bad name as their only item.
NAME_FIELDS: list[tuple[str, tuple[Any, ...], str]] = [
    ("example.com.yaml", ("senders", 2, "include"), "fqdn"),
    ("example.com.yaml", ("senders", 2, "return_path"), "fqdn"),
    ("example.com.yaml", ("senders", 2, "dkim", 0, "selector"), "selector"),
    ("example.com.yaml", ("senders", 0, "tenant"), "label"),
    ("example.com.yaml", ("senders", 0, "selector1_target"), "fqdn"),
    ("example.com.yaml", ("senders", 1, "account"), "token"),
    ("example.com.yaml", ("dmarc", "rua"), "mailto"),
    ("example.net.yaml", ("senders", 2, "a"), "fqdn"),
    ("example.net.yaml", ("senders", 1, "mail_from"), "label"),
    ("example.net.yaml", ("senders", 1, "region"), "token"),
    ("example.net.yaml", ("senders", 1, "dkim_tokens"), "token"),
    ("example.net.yaml", ("senders", 0, "dkim_selector"), "selector"),
    ("shop.example.yaml", ("senders", 0, "mx"), "fqdn"),
    ("shop.example.yaml", ("mta_sts", "mx"), "fqdn"),
    ("shop.example.yaml", ("mta_sts", "host"), "cname"),
    ("shop.example.yaml", ("bimi", "selector"), "selector"),
    ("shop.example.yaml", ("tls_rpt", "rua"), "mailto"),
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
        if kind in {"fqdn", "cname", "domain", "mailto"}:
            for how, (bad, expect) in BAD_NAMES.items():
                value = f"mailto:dmarc@{bad}" if kind == "mailto" else bad
                data = _with(file, path, value)
                yield Variant(
                    f"name:{file}:{where}:{how}", file, data, expect=expect, rename=rename
                )
            good = f"mailto:dmarc@{U_NAME}" if kind == "mailto" else U_NAME
            yield Variant(
                f"idn:{file}:{where}", file, _with(file, path, good), rename=rename, a_label=A_NAME
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
    yield Variant("file-name:idn", "parked.example.yaml", parked, rename=U_NAME, a_label=A_NAME)


# --- weak keys, however they arrive; free text; messages that used to cascade -------------


def others() -> Iterator[Variant]:
    def relay_rsa(**changes: Any) -> dict:
        data = _copy(SEEDS["example.com.yaml"])
        data["senders"][2]["dkim"][1].update(changes)
        return data

    com = "example.com.yaml"
    yield Variant("weak:bits", com, relay_rsa(bits=1024), expect="1024")
    weak = relay_rsa(public_key=public_key_b64(WEAK))
    yield Variant("weak:public_key", com, weak, expect="1024 bits")
    yield Variant("weak:key-file", com, SEEDS[com], expect="1024 bits", weak_key_file=True)
    texts = {"escape": "relay\x1b[31m", "bidi": "relay\u202eyaler", "nul": "a\x00b"}
    for how, text in texts.items():
        data = _copy(SEEDS[com])
        data["senders"][2]["name"] = text
        yield Variant(f"free-text:name:{how}", com, data, expect="control character")
    data = _copy(SEEDS[com])
    data["senders"][2]["unaligned_ok"] = "it\x07 cannot"
    yield Variant("free-text:unaligned_ok", com, data, expect="control character")

    data = _copy(SEEDS["example.com.yaml"])
    data["senders"][0]["provider"] = "office365"
    yield Variant("cascade:office365", com, data, expect="did you mean 'microsoft365'")
    data = _copy(SEEDS["example.com.yaml"])
    del data["senders"][0]["tenant"]
    yield Variant("cascade:no-tenant", com, data, expect="needs parameter 'tenant'")
    data = _copy(SEEDS["example.com.yaml"])
    data["dmarc"]["polcy"] = data["dmarc"].pop("policy")
    yield Variant("cascade:polcy", com, data, expect="did you mean 'policy'")
    data = _copy(SEEDS["example.com.yaml"])
    data["senders"][2]["ipv4"] = data["senders"][2].pop("ip4")
    yield Variant("cascade:ipv4", com, data, expect="did you mean 'ip4'")


VARIANTS = [*misspelt_keys(), *unmapped_files(), *bad_names(), *others()]


# --- running a variant ----------------------------------------------------------------------


def _install(variant: Variant, mail: Path, keys: Path) -> Path:
    """Write the variant into a copy of the policy folder; the path it wrote."""
    (mail / variant.file).unlink()
    target = mail / ((variant.rename + ".yaml") if variant.rename else variant.file)
    target.write_text(variant.content(), encoding="utf-8")
    if variant.weak_key_file:
        pem = keys / "example.com" / "relay2026r.pem"
        pem.unlink(missing_ok=True)
        Keystore(keys).import_key("example.com", "relay2026r", WEAK)
    return target


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if ": error: " in line]


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples' keys, made once: the variants differ in policy, not keys."""
    root = tmp_path_factory.mktemp("keystore") / "keys"
    store = Keystore(root)
    made = 0
    for name, seed in SEEDS.items():
        for sender in seed.get("senders") or []:
            keys = sender.get("dkim") or []
            for key in [keys] if isinstance(keys, dict) else keys:
                store.ensure(name[: -len(".yaml")], key["selector"], key.get("algorithm", "rsa"))
                made += 1
    assert made >= 4
    return root


def processor_errors(variant: Variant, tmp: Path, keystore: Path) -> tuple[list[str], Path]:
    """Build the processor over the folder, as octoDNS does for every command."""
    mail, keys = tmp / "mail", tmp / "keys"
    shutil.copytree(MAIL, mail)
    shutil.copytree(keystore, keys)
    path = _install(variant, mail, keys)
    try:
        MailAuthProcessor("mailauth", policies=str(mail), keys=str(keys))
    except MailAuthProcessorError as e:
        return _errors(str(e)), path
    return [], path


def test_the_generator_covers_every_kind() -> None:
    kinds = {v.id.split(":")[0] for v in VARIANTS}
    assert kinds >= {"typo", "empty", "not-a-mapping", "name", "label", "idn", "weak"}
    assert kinds >= {"file-name", "free-text", "cascade", "domain-vs-file"}
    # Every model of the policy had its keys misspelt.
    misspelt = {tuple(v.id.split(":")[2].split(".")) for v in VARIANTS if v.id.startswith("typo")}
    shapes = {tuple("#" if p.isdigit() else p for p in path[:-1]) for path in misspelt}
    assert set(_MODELS) - {("senders", "#", "dkim")} <= shapes
    print(f"\n{len(VARIANTS)} hostile variants generated")
    assert len(VARIANTS) > 250


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_variant_gives_one_clear_error(variant: Variant, tmp_path: Path, keystore: Path) -> None:
    errors, path = processor_errors(variant, tmp_path, keystore)
    if variant.a_label is not None:
        # Accepted, and what is published (and said) holds the A-label only.
        assert errors == [], errors
        lp = load_policy_file(path)
        result = compile_policy(lp, CATALOG, KeystoreKeys(tmp_path / "keys", generate=False))
        said = [lp.domain, *(f.format() for f in result.findings)]
        said += [f"{r.name} {' '.join(r.values)}" for r in result.records]
        assert not any(U_NAME in text for text in said), said
        # Provider parameters are kept as written and converted when rendered.
        held = yaml.safe_dump(lp.policy.model_dump(mode="json"))
        assert any(variant.a_label in text for text in [*said, held]), said
        return
    assert len(errors) == 1, "\n".join(errors)
    (error,) = errors
    assert variant.expect in error
    # file:line, then the key path where the key is known.
    assert ".yaml:" in error.split(": error: ")[0]
    # Short: the cause, the fix, and one parameter's help at most (no repeats).
    assert len(error.split(": error: ", 1)[1]) < 700


# --- the same variants through the real commands ----------------------------------------

# One of each kind; the commands take seconds each, the shared path above is the same code.
REPRESENTATIVE = [
    "typo:example.com.yaml:senders.2.ip4:ip44",
    "typo:example.net.yaml:senders.1.region:regionn",
    "empty:0",
    "domain-vs-file",
    "name:shop.example.yaml:mta_sts.mx:newline",
    "label:example.com.yaml:senders.0.tenant:label64",
    "weak:public_key",
    "cascade:office365",
    "idn:example.com.yaml:dmarc.rua",
]


def _commands(variant: Variant, capsys: pytest.CaptureFixture[str]) -> dict[str, str | None]:
    """Each command's error text, or None when it succeeded."""
    _install(variant, Path("zones/mail"), Path("zones/.dkim"))
    out: dict[str, str | None] = {}
    try:
        Manager("zones/config.yaml").validate_configs()
        out["octodns-validate"] = None
    except MailAuthProcessorError as e:
        out["octodns-validate"] = str(e)
    capsys.readouterr()
    rc = cli_main(["validate", "--config", "zones/config.yaml"])
    printed = capsys.readouterr()
    out["octodns-mailauth validate"] = (printed.out + printed.err) if rc else None
    try:
        Manager("zones/config.yaml").sync(dry_run=True)
        out["octodns-sync"] = None
    except MailAuthProcessorError as e:
        out["octodns-sync"] = str(e)
    return out


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_the_three_commands_agree(
    name: str, example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variant = next(v for v in VARIANTS if v.id == name)
    results = _commands(variant, capsys)
    if variant.a_label is not None:
        assert results == dict.fromkeys(results), results
        assert not list(Path("zones").glob("output/*.zone"))  # a plan writes nothing
        return
    for command, text in results.items():
        assert text is not None, f"{command} accepted {name}"
        errors = _errors(text)
        assert len(errors) == 1, f"{command}: {text}"
        assert variant.expect in errors[0], f"{command}: {text}"
    # The same message, word for word, from each.
    messages = {e.split(": error: ", 1)[1] for t in results.values() for e in _errors(t or "")}
    assert len(messages) == 1, messages
    assert not list(Path("zones").glob("output/*.zone"))


BIN = Path(sys.executable).parent


def test_the_entry_points_exit_non_zero_without_a_traceback_of_ours(example: Path) -> None:
    variant = next(v for v in VARIANTS if v.id == "cascade:polcy")
    _install(variant, Path("zones/mail"), Path("zones/.dkim"))
    ours = subprocess.run(
        [str(BIN / "octodns-mailauth"), "validate", "--config", "zones/config.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ours.returncode != 0 and "Traceback" not in ours.stderr + ours.stdout
    assert "did you mean 'policy'" in ours.stdout + ours.stderr
    for command in (["octodns-validate"], ["octodns-sync"]):
        run = subprocess.run(
            [str(BIN / command[0]), "--config-file", "zones/config.yaml"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode != 0
        assert "unknown key 'polcy'" in run.stderr
    assert not list(Path("zones").glob("output/*.zone"))


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
