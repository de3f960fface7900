"""YAML loading that remembers where each value came from.

pydantic reports errors by key path (`senders.2.dkim.selector`); users need a
line number.  We compose the YAML node tree once, keep a map from key path to
line, and refuse duplicate keys, which PyYAML would otherwise silently merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]

# libyaml's loader keeps the same marks and is ~10x faster; pre-commit and
# providers with thousands of domains feel the difference.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlSyntaxError(ValueError):
    def __init__(self, message: str, line: int | None) -> None:
        self.line = line
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


def load(text: str) -> tuple[Any, LineMap]:
    """Parse one YAML document into plain data and its line map."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, LineMap()
        lines = LineMap()
        _walk(node, (), lines)
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


def _walk(node: yaml.Node, path: KeyPath, lines: LineMap) -> None:
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise YamlSyntaxError(f"duplicate key '{key}' (first at line {seen[key]})", line)
            seen[key] = line
            lines.lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines)
