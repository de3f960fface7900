"""Policy files -> validated `LoadedPolicy` objects, or errors that point at a line.

Structure is checked by the pydantic models; provider parameters against the
sender catalog.  Semantic rules (conflicts, alignment, lookup limits) belong to
the compile step, which reports them as findings with the same locations.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..findings import Finding, Location, Severity
from ..names import is_hostname, normalize
from .dmarc import LegacyTags
from .models import DkimKey, DmarcPolicySettings, Policy, Sender, SpfPolicy
from .transport import BimiSettings, MtaStsHost, MtaStsSettings, TlsRptSettings
from .yamlpos import KeyPath, LineMap, YamlSyntaxError, load

POLICY_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    path: str
    lines: LineMap
    domain: str

    def location(self, *path: str | int) -> Location:
        return Location(self.path, self.lines.line_for(tuple(path)), key_path(path))


def key_path(path: KeyPath) -> str:
    """('senders', 2, 'dkim') -> 'senders[2].dkim'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# Which model validates the mapping at a given (shape of) key path, for hints.
_MODELS: dict[tuple[str, ...], type[BaseModel]] = {
    (): Policy,
    ("senders", "#"): Sender,
    ("senders", "#", "dkim"): DkimKey,
    ("senders", "#", "dkim", "#"): DkimKey,
    ("spf",): SpfPolicy,
    ("dmarc",): DmarcPolicySettings,
    ("dmarc", "legacy"): LegacyTags,
    ("mta_sts",): MtaStsSettings,
    ("mta_sts", "host"): MtaStsHost,
    ("tls_rpt",): TlsRptSettings,
    ("bimi",): BimiSettings,
}


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    shape = tuple("#" if isinstance(p, int) else p for p in path)
    return _MODELS.get(shape)


def _yaml_path(loc: tuple[Any, ...]) -> KeyPath:
    # pydantic adds union member tags ('bool', 'list[str]', 'function-after[...]')
    # to error locations; they are not keys in the file.
    return tuple(
        p
        for p in loc
        if isinstance(p, int) or not ("[" in p or "(" in p or p in {"bool", "str", "int"})
    )


def _finding_from_error(err: dict[str, Any], path: str, lines: LineMap) -> Finding:
    loc = lines.normalize(_yaml_path(tuple(err["loc"])))
    msg = str(err["msg"])
    hint = None
    kind = err["type"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "extra_forbidden" and loc:
        key = loc[-1]
        model = _model_at(loc[:-1])
        msg = f"unknown key {key!r}"
        if model is not None:
            known = sorted(model.model_fields)
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = (
                (f"did you mean {close[0]!r}? " if close else "")
                + "known keys: "
                + ", ".join(known)
            )
    elif kind == "missing" and loc:
        msg = f"missing required key {loc[-1]!r}"
        loc_for_line = loc[:-1]
        return Finding(
            Severity.ERROR,
            msg,
            Location(path, lines.line_for(loc_for_line), key_path(loc)),
            hint,
            code="policy-schema",
        )
    elif "input" in err and kind in {"enum", "literal_error"}:
        msg = f"{err['input']!r} is not allowed: {msg[0].lower()}{msg[1:]}"
    return Finding(
        Severity.ERROR,
        msg,
        Location(path, lines.line_for(loc), key_path(loc)),
        hint,
        code="policy-schema",
    )


def domain_from_filename(path: Path) -> str:
    name = path.name
    for suffix in POLICY_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return normalize(name)


def parse_policy(text: str, path: str, default_domain: str | None = None) -> LoadedPolicy:
    """Parse and validate policy text; raise PolicyError with every finding."""
    from ..errors import PolicyError

    try:
        data, lines = load(text)
    except YamlSyntaxError as e:
        raise PolicyError(
            [
                Finding(
                    Severity.ERROR,
                    str(e),
                    Location(path, e.line),
                    "check indentation and quoting around that line",
                    code="policy-yaml",
                )
            ]
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            [
                Finding(
                    Severity.ERROR,
                    "a policy file must be a YAML mapping (senders:, spf:, dmarc: ...)",
                    Location(path, 1),
                    code="policy-schema",
                )
            ]
        )
    try:
        policy = Policy.model_validate(data)
    except ValidationError as e:
        raise PolicyError(
            [_finding_from_error(err, path, lines) for err in e.errors()]  # type: ignore[arg-type]
        ) from None
    domain = policy.domain or default_domain
    if not domain or not is_hostname(domain):
        raise PolicyError(
            [
                Finding(
                    Severity.ERROR,
                    f"cannot tell which domain this policy is for (file name gives {domain!r})",
                    Location(path, 1, "domain"),
                    "name the file after the domain (example.com.yaml) or set domain:",
                    code="policy-domain",
                )
            ]
        )
    return LoadedPolicy(policy, path, lines, normalize(domain))


def load_policy_file(path: str | Path) -> LoadedPolicy:
    from ..errors import PolicyError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise PolicyError(
            [
                Finding(
                    Severity.ERROR,
                    f"cannot read policy file: {reason}",
                    Location(str(path)),
                    code="policy-io",
                )
            ]
        ) from None
    return parse_policy(text, str(path), domain_from_filename(path))


def policy_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(POLICY_SUFFIXES))


def load_policy_dir(folder: str | Path) -> list[LoadedPolicy]:
    """Every policy in a folder; all files' errors are collected before raising."""
    from ..errors import PolicyError

    folder = Path(folder)
    if not folder.is_dir():
        raise PolicyError(
            [
                Finding(
                    Severity.ERROR,
                    f"policy folder {folder} does not exist or is not a folder",
                    hint="set `policies:` in the processor config to the folder of policy files",
                    code="policy-io",
                )
            ]
        )
    loaded: list[LoadedPolicy] = []
    errors: list[Finding] = []
    for path in policy_files(folder):
        try:
            loaded.append(load_policy_file(path))
        except PolicyError as e:
            errors.extend(e.findings)
    by_domain: dict[str, LoadedPolicy] = {}
    for lp in loaded:
        if lp.domain in by_domain:
            errors.append(
                Finding(
                    Severity.ERROR,
                    f"a second policy for {lp.domain} (the first is {by_domain[lp.domain].path})",
                    Location(lp.path, 1, "domain"),
                    "keep one policy file per domain",
                    code="policy-duplicate-domain",
                )
            )
        by_domain[lp.domain] = lp
    if errors:
        raise PolicyError(errors)
    return loaded
