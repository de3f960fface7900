"""YAML loading that remembers where each value came from.

pydantic reports errors by key path (`senders.2.dkim.selector`); users need a
line number.  We compose the YAML node tree once, keep a map from key path to
line, and refuse duplicate keys, which PyYAML would otherwise silently merge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]

# A policy is a few kilobytes; the cap keeps a pasted log or a generated file
# from costing minutes and memory before anything useful is said.
MAX_POLICY_BYTES = 1024 * 1024
# Far deeper than any policy; keeps the walk (and construction) off the
# interpreter's recursion limit.
MAX_DEPTH = 32
ANCHOR_MESSAGE = "YAML anchors and aliases are not allowed in policy files"
_ANCHOR_HINT = "write the value out in full where it is needed, without &name or *name"

# libyaml's loader keeps the same marks and is ~10x faster; pre-commit and
# providers with thousands of domains feel the difference.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _core_schema_resolvers() -> dict[str | None, list[tuple[str, re.Pattern[str]]]]:
    """PyYAML resolves plain scalars by YAML 1.1: `yes`/`off` are booleans,
    `1:00:00` and `0xE10` are 3600, `<<` merges mappings.  Policies follow YAML
    1.2's core schema instead, so `parked: yes` is an error, not a guess."""
    keep: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    core = {
        "tag:yaml.org,2002:bool": re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        "tag:yaml.org,2002:int": re.compile(r"^[-+]?[0-9]+$"),
        # A float needs a dot or an exponent, so 3600 stays an int.
        "tag:yaml.org,2002:float": re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?[0-9]+[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        "tag:yaml.org,2002:null": re.compile(r"^(?:~|null|Null|NULL|)$"),
    }
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
        for tag, _regexp in resolvers:
            if tag in core:
                keep.setdefault(first, []).append((tag, core[tag]))
    return keep


class _Loader(_Base):  # type: ignore[misc,valid-type]
    yaml_implicit_resolvers = _core_schema_resolvers()

    # libyaml asks these three of every node, in Python.  With no path resolvers
    # (none are added) PyYAML's versions come down to a lookup by the first
    # character of a plain scalar, in the same order.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], _WILDCARD):
                    if regexp.match(value):
                        return tag
            return self.DEFAULT_SCALAR_TAG  # type: ignore[no-any-return]
        if kind is yaml.SequenceNode:
            return self.DEFAULT_SEQUENCE_TAG  # type: ignore[no-any-return]
        return self.DEFAULT_MAPPING_TAG  # type: ignore[no-any-return]


if _Loader.yaml_path_resolvers:  # resolve() above ignores them; none is ever added
    raise RuntimeError("yamlpos: path resolvers on the policy loader are not supported")
_WILDCARD = tuple(_Loader.yaml_implicit_resolvers.get(None, ()))
_IMPLICIT = {
    first: (*resolvers, *_WILDCARD)
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
    if first is not None
}


class YamlSyntaxError(ValueError):
    def __init__(self, message: str, line: int | None, hint: str | None = None) -> None:
        self.line = line
        self.hint = hint or "check indentation and quoting around that line"
        super().__init__(message)


@dataclass
class LineMap:
    """Key path -> 1-based line of the value (or of the key, for a mapping entry)."""

    lines: dict[KeyPath, int] = field(default_factory=dict)

    def normalize(self, path: KeyPath) -> KeyPath:
        """Map a model path onto the file: `dkim: {...}` is validated as the
        list `dkim[0]`, so drop list indexes the YAML does not have."""
        out: KeyPath = ()
        for part in path:
            if isinstance(part, int) and out + (part,) not in self.lines and out in self.lines:
                continue
            out = out + (part,)
        return out

    def line_for(self, path: KeyPath) -> int | None:
        path = self.normalize(path)
        # pydantic may report a path deeper than the YAML has (a missing key):
        # fall back to the nearest ancestor that exists.
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def load(text: str, max_bytes: int | None = None) -> tuple[Any, LineMap]:
    """Parse one YAML document into plain data and its line map.

    Anchors and aliases are refused on the node tree, before construction: an
    alias can make the tree cyclic (`&a [*a]`) or exponentially large (the
    "billion laughs"), and a policy gains nothing from them.
    """
    # The cap is the caller's: policies are small, a DKIM state file for
    # thousands of domains is not.
    if max_bytes is not None and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise YamlSyntaxError(
            f"the file is larger than {max_bytes // 1024} KiB",
            None,
            "a policy file is a few kilobytes: is this the right file?",
        )
    loader = _Loader(text)
    try:
        _refuse_anchors(text)
        node = loader.get_single_node()
        if node is None:
            return None, LineMap()
        lines = LineMap()
        try:
            data = _walk(node, (), lines, set(), loader)
        except _Unusual:
            # An explicit tag (`!!binary`, `!!set`, ...): PyYAML's own constructor.
            data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = e.problem or str(e)
        if e.context:
            problem = f"{e.context}, {problem}"
        raise YamlSyntaxError(f"YAML syntax error: {problem}", line) from None
    except yaml.YAMLError as e:
        raise YamlSyntaxError(f"YAML syntax error: {e}", None) from None
    finally:
        loader.dispose()
    return data, lines


def _refuse_anchors(text: str) -> None:
    """The first anchor (`&name`) or alias (`*name`) in the text, as an error.

    Only the parser's events say where an anchor is (the composed tree shares
    nodes and forgets names), so scan them; most files contain neither
    character and skip the scan.
    """
    if "&" not in text and "*" not in text:
        return
    for event in yaml.parse(text, Loader=_Loader):
        if getattr(event, "anchor", None) is not None:
            found = "an alias" if isinstance(event, yaml.AliasEvent) else "an anchor"
            raise YamlSyntaxError(
                f"{ANCHOR_MESSAGE} (found {found})",
                event.start_mark.line + 1,
                _ANCHOR_HINT,
            )


_TAG = "tag:yaml.org,2002:"
_SCALARS = {_TAG + t for t in ("int", "float", "bool", "null")}


class _Unusual(Exception):
    """A node the walk does not construct itself."""


def _walk(
    node: yaml.Node, path: KeyPath, lines: LineMap, seen_nodes: set[int], loader: Any
) -> Any:
    """Note each value's line and build the plain data in the same pass (what
    `construct_document` makes, at a fraction of its cost); raise _Unusual at an
    explicit tag, for PyYAML's constructor to handle the whole document."""
    # A node met twice is an alias the scan above did not catch: refuse it rather
    # than walk (or construct) a shared or cyclic tree.
    if id(node) in seen_nodes:
        raise YamlSyntaxError(
            ANCHOR_MESSAGE,
            node.start_mark.line + 1,
            _ANCHOR_HINT,
        )
    seen_nodes.add(id(node))
    if len(path) > MAX_DEPTH:
        raise YamlSyntaxError(
            f"the YAML is nested more than {MAX_DEPTH} levels deep",
            node.start_mark.line + 1,
            "a policy nests a few levels (senders: - dkim: ...): check the brackets",
        )
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _TAG + "map":
            raise _Unusual
        seen: dict[Any, int] = {}
        data: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Unusual  # PyYAML says why such a key cannot be
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise YamlSyntaxError(f"duplicate key '{key}' (first at line {seen[key]})", line)
            seen[key] = line
            lines.lines[path + (key,)] = line
            data[_scalar(key_node, loader)] = _walk(
                value_node, path + (key,), lines, seen_nodes, loader
            )
        return data
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _TAG + "seq":
            raise _Unusual
        items = []
        for i, item in enumerate(node.value):
            lines.lines[path + (i,)] = item.start_mark.line + 1
            items.append(_walk(item, path + (i,), lines, seen_nodes, loader))
        return items
    return _scalar(node, loader)


def _scalar(node: yaml.Node, loader: Any) -> Any:
    if node.tag == _TAG + "str":
        return node.value
    if node.tag in _SCALARS:
        return loader.yaml_constructors[node.tag](loader, node)
    raise _Unusual
