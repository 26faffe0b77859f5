"""Safe YAML loading for flow sources, with a line number for every node.

Only ``yaml.SafeLoader`` machinery is used (no arbitrary Python objects). Scalars resolve with the YAML 1.2
core schema that Kestra's Jackson parser effectively follows: ``true``/``false`` are booleans but ``yes``,
``on``, ``no`` stay strings; ``2023-01-01`` and ``11:27:49`` stay strings (no timestamps, no sexagesimal
numbers). A mapping key written twice is an error (Jackson's ``Duplicate field``), mapping keys are always
strings (``1:`` gives the key ``"1"``).

:func:`load_documents` returns one :class:`Document` per YAML document: the plain Python value and a
``lines`` map from a property path (``tasks[1].id``) to its 1-based line.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import yaml

from ..errors import Violation

__all__ = ["Document", "load_documents", "YamlError"]


class YamlError(Exception):
    """The text is not well-formed YAML (or repeats a key); carries the violations found."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        super().__init__("\n".join(str(v) for v in violations))


@dataclasses.dataclass
class Document:
    """One YAML document: its value and the source line of every mapping/sequence entry (by path)."""

    value: Any
    lines: dict[str, int]
    start_line: int
    violations: list[Violation] = dataclasses.field(default_factory=list)  # duplicate keys, bad keys

    def line_of(self, path: str) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return self.start_line
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""


#### The loader #############################################################################################

class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema implicit resolvers."""


_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


def _scalar(node: yaml.ScalarNode) -> Any:
    tag, text = node.tag, node.value
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return text.lower() == "true"
    if tag == "tag:yaml.org,2002:int":
        t = text.replace("_", "")
        if t.startswith(("0o", "0O")):
            return int(t[2:], 8)
        if t.startswith(("0x", "0X")):
            return int(t[2:], 16)
        return int(t)
    if tag == "tag:yaml.org,2002:float":
        low = text.lower().lstrip("+")
        if low in (".inf", "-.inf"):
            return -math.inf if low.startswith("-") else math.inf
        if low == ".nan":
            return math.nan
        return float(text)
    return text  # str, and any other tag (timestamps, binary, custom) kept as the text written


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(node: yaml.Node, path: str, doc: Document) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, f"{path}[{i}]", doc) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                doc.violations.append(Violation(path, "Mapping keys must be scalars", key_node.start_mark.line + 1))
                continue
            key = key_node.value
            if key_node.tag == "tag:yaml.org,2002:merge":
                # `<<: *anchor` merge keys: entries of the merged mapping(s) that are not written here
                merged = _convert(value_node, _join(path, key), doc)
                for m in merged if isinstance(merged, list) else [merged]:
                    if isinstance(m, dict):
                        for k, v in m.items():
                            out.setdefault(k, v)
                continue
            sub = _join(path, key)
            if key in out:
                doc.violations.append(Violation(sub, f"Duplicate field '{key}'", key_node.start_mark.line + 1))
                continue
            doc.lines[sub] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, sub, doc)
        return out
    raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover - the composer yields only these


def _unclosed_flow_start(source: str) -> Any:
    """The mark of the innermost ``[`` or ``{`` still open when the text ends, or None."""
    opened: list[Any] = []
    try:
        for token in yaml.scan(source, Loader=_Loader):
            if isinstance(token, (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken)):
                opened.append(token.start_mark)
            elif isinstance(token, (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken)) and opened:
                opened.pop()
    except yaml.YAMLError:
        pass
    return opened[-1] if opened else None


def load_documents(source: str) -> list[Document]:
    """Every document of ``source`` (``---`` separated). An empty source gives one document whose value is None.

    Raises :class:`YamlError` on a syntax error (with its line).
    """
    loader = _Loader(source)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            doc = Document(None, {}, node.start_mark.line + 1)
            doc.value = _convert(node, "", doc)
            docs.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is not None and not source[mark.index:].strip():
            # the parser ran to the end of the text (an unclosed quote or bracket): the problem starts where
            # the unfinished construct began
            mark = _unclosed_flow_start(source) or exc.context_mark or mark
        elif exc.context_mark is not None and (exc.context or "").startswith("while parsing a flow"):
            mark = exc.context_mark  # a bracket not closed where expected: where it opened
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlError([Violation("", f"Invalid YAML: {msg} (line {line})" if line else f"Invalid YAML: {msg}",
                                   line)]) from None
    except yaml.YAMLError as exc:
        raise YamlError([Violation("", f"Invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if not docs:
        docs.append(Document(None, {}, 1))
    return docs
