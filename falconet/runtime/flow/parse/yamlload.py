"""Safe YAML loading for flow sources, with a line number for every node.

Only ``yaml.SafeLoader`` machinery is used (no arbitrary Python objects). Scalars resolve with the YAML 1.2
core schema that Kestra's Jackson parser effectively follows: ``true``/``false`` are booleans but ``yes``,
``on``, ``no`` stay strings; ``2023-01-01`` and ``11:27:49`` stay strings (no timestamps, no sexagesimal
numbers). A mapping key written twice is an error (Jackson's ``Duplicate field``), mapping keys are always
strings (``1:`` gives the key ``"1"``).

Hostile documents are refused while they are composed, before anything expands (bounds in
:mod:`falconet.runtime.kernel.limits`): more than ``MAX_SOURCE_CHARS`` characters, nesting deeper than ``MAX_DEPTH``
levels (aliases included), aliases of collections adding more than ``MAX_ALIAS_NODES`` nodes ("billion
laughs"), an alias inside the node it names, an unpaired surrogate escape (``"\\ud800"``). Each is a
:class:`YamlError` naming the line.

:func:`load_documents` returns one :class:`Document` per YAML document: the plain Python value and a
``lines`` map from a property path (``tasks[1].id``) to its 1-based line.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import yaml

from falconet.runtime.kernel.errors import Violation
from falconet.runtime.kernel.limits import MAX_ALIAS_NODES, MAX_DEPTH, MAX_SOURCE_CHARS, SURROGATES, join_surrogates

__all__ = ["Document", "load_documents", "YamlError", "safe_load"]


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

class _Bounded:
    """Scanner and composer mixin enforcing the bounds while a document is read: flow nesting in the scanner,
    nesting and alias expansion in the composer, and scalars holding only real characters (surrogate
    pairs from ``\\u`` escapes joined, an unpaired one refused).

    Every composed node gets its expanded shape (nodes, levels); an alias to a collection adds its target's
    node count to the document's budget and its levels to the current depth, so the check costs one step
    per alias however large the expansion would be."""

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # the scanner checks every open `[`/`{` at each token: deep flow nesting would cost quadratic time
        # before the composer ever sees it
        if self.flow_level >= MAX_DEPTH:  # type: ignore[attr-defined]
            raise yaml.scanner.ScannerError(None, None, f"the document is nested deeper than {MAX_DEPTH} levels",
                                            self.get_mark())  # type: ignore[attr-defined]
        super().fetch_flow_collection_start(token_class)  # type: ignore[misc]

    def compose_document(self) -> yaml.Node:
        self._depth = 0
        self._added = 0
        self._shape: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes once expanded, nesting levels)
        try:
            return super().compose_document()  # type: ignore[misc]
        finally:
            self._shape = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)  # type: ignore[misc]
            shape = self._shape.get(id(node))
            if shape is None:
                raise _error(f"found recursive alias *{event.anchor} (the alias is inside the node it names)",
                             event)
            size, levels = shape
            if levels:
                self._added += size
                if self._added > MAX_ALIAS_NODES:
                    raise _error(f"aliases expand to more than {MAX_ALIAS_NODES} nodes", event)
                if self._depth + levels > MAX_DEPTH:
                    raise _error(f"the document is nested deeper than {MAX_DEPTH} levels (through *{event.anchor})",
                                 event)
            return node
        collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if collection:
            if self._depth >= MAX_DEPTH:
                raise _error(f"the document is nested deeper than {MAX_DEPTH} levels", event)
            self._depth += 1
        try:
            node = super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            if collection:
                self._depth -= 1
        if isinstance(node, yaml.ScalarNode) and SURROGATES.search(node.value):  # from a "\\ud83d…" escape
            try:
                node.value = join_surrogates(node.value)
            except ValueError as exc:
                raise _error(str(exc), event) from None
        size, levels = 1, 0
        if collection:
            children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
            for child in children:
                child_size, child_levels = self._shape[id(child)]
                size += child_size
                levels = max(levels, child_levels)
            levels += 1
        self._shape[id(node)] = (size, levels)
        return node


def _error(problem: str, event: yaml.Event) -> yaml.MarkedYAMLError:
    mark = event.start_mark
    assert mark is None or isinstance(mark, yaml.error.Mark)  # the pure-Python loader's (not LibYAML's) marks
    return yaml.composer.ComposerError(None, None, problem, mark)


def _check_size(source: str) -> None:
    if len(source) > MAX_SOURCE_CHARS:
        raise YamlError([Violation("", f"Invalid YAML: the document exceeds the limit of {MAX_SOURCE_CHARS} "
                                       "characters")])


class _Loader(_Bounded, yaml.SafeLoader):
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

    Raises :class:`YamlError` on a syntax error or a broken bound (with its line).
    """
    _check_size(source)
    docs: list[Document] = []
    loader = None
    try:
        loader = _Loader(source)  # the reader refuses control characters here
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # check_node() said there is one
                break
            doc = Document(None, {}, node.start_mark.line + 1)
            doc.value = _convert(node, "", doc)
            docs.append(doc)
    except yaml.reader.ReaderError as exc:
        line = source.count("\n", 0, exc.position) + 1
        raise YamlError([Violation("", f"Invalid YAML: {_reader_problem(exc)} (line {line})", line)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is not None and not source[mark.index:].strip():
            # the parser ran to the end of the text (an unclosed quote or bracket): the problem starts where
            # the unfinished construct began
            mark = _unclosed_flow_start(source) or exc.context_mark or mark
        elif exc.context_mark is not None and (exc.context or "").startswith("while parsing a flow"):
            mark = exc.context_mark  # a bracket not closed where expected: where it opened
        mark_line = mark.line + 1 if mark is not None else None
        msg = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlError([Violation("", f"Invalid YAML: {msg} (line {mark_line})" if mark_line
                                   else f"Invalid YAML: {msg}", mark_line)]) from None
    except yaml.YAMLError as exc:
        raise YamlError([Violation("", f"Invalid YAML: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not docs:
        docs.append(Document(None, {}, 1))
    return docs


def _reader_problem(exc: yaml.reader.ReaderError) -> str:
    return f"unacceptable character #x{exc.character:04x}: {exc.reason}"


#### Plain data #############################################################################################

class _BoundedSafeLoader(_Bounded, yaml.SafeLoader):
    """PyYAML's SafeLoader (YAML 1.1 scalars) with the bounds: for YAML inputs and the ``yaml()`` function."""


def safe_load(text: str) -> Any:
    """:func:`yaml.safe_load` of one document under the same bounds as flow sources; a broken bound raises
    :class:`yaml.YAMLError` like any other malformed YAML."""
    if len(text) > MAX_SOURCE_CHARS:
        raise yaml.YAMLError(f"the document exceeds the limit of {MAX_SOURCE_CHARS} characters")
    loader = _BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
