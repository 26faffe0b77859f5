"""Kestra's ``filters[FIELD][OPERATION]=VALUE`` query syntax, and strict query parameters.

Kestra 1.x search and by-query routes take a list of ``QueryFilter`` (Kestra's ``QueryFilter``,
``QueryFilterFormatBinder``): ``filters[namespace][PREFIX]=company``, ``filters[state][IN]=FAILED,KILLED``,
``filters[labels][EQUALS][team]=data``, ``filters[timeRange][EQUALS]=PT24H``; its 2.0 SDK also sends groups,
``filters[or][0][flowId][EQUALS]=a&filters[or][1][flowId][EQUALS]=b`` (one nesting level:
``filters[and][0][or][1][…]``). Each resource accepts Kestra's fields, each field Kestra's operations.

:func:`parse` reads the whole query string of a route: every ``filters[…]`` key becomes a :class:`Leaf` of
the returned :class:`Group`; any other key must be one the route declares (its paging, legacy and action
parameters). Nothing is ever dropped: an unknown parameter, field or operation, a malformed key, an
operation the field does not support or a field the resource does not support is a 400 naming it; a value
that does not convert (a state, a date, a duration, a level, a regex) is a 422.

:meth:`Group.matches` evaluates the filters on one document through the route's *accessors*
(field name → function of the document), so every resource filters with the same semantics:

- strings: EQUALS/NOT_EQUALS, IN/NOT_IN (comma-separated values), CONTAINS, STARTS_WITH, ENDS_WITH,
  PREFIX (``a.b`` matches ``a.b`` and ``a.b.c``), REGEX (RE2 syntax, linear time: a hostile pattern
  cannot stall the server);
- dates (``startDate``, ``endDate``, ``updated``): the comparison operations; ``timeRange`` = a
  ``java.time.Duration`` becomes ``startDate >= now - range`` (``<=`` for NOT_EQUALS), as Kestra does;
- ``labels``: EQUALS (every given label present), NOT_EQUALS (none present), IN (any present), NOT_IN
  (none present), CONTAINS (a label of that key whose value contains the given text);
- ``q``: EQUALS = the text appears (case-insensitively) in one of the resource's searchable strings;
- ``level``: EQUALS = at least this level (Kestra's ``minLevel``), NOT_EQUALS = below it.
"""
from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from falconet.runtime.expr import safe_regex
from falconet.runtime.kernel.errors import BadRequest, InvalidEntity, Violation
from falconet.runtime.kernel.execution import now, parse_instant
from falconet.sdk.logs import LogLevel
from falconet.http.api import params

OPS = ("EQUALS", "NOT_EQUALS", "GREATER_THAN", "LESS_THAN", "GREATER_THAN_OR_EQUAL_TO",
       "LESS_THAN_OR_EQUAL_TO", "IN", "NOT_IN", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "REGEX", "PREFIX")

_EQ = ("EQUALS", "NOT_EQUALS")
_TEXT = ("EQUALS", "NOT_EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "IN", "NOT_IN")
_DATE = ("GREATER_THAN_OR_EQUAL_TO", "GREATER_THAN", "LESS_THAN_OR_EQUAL_TO", "LESS_THAN", "EQUALS", "NOT_EQUALS")

#: field (as the query spells it) -> the operations Kestra supports on it
FIELDS: dict[str, tuple[str, ...]] = {
    "q": _EQ,
    "scope": _EQ,
    "namespace": ("EQUALS", "NOT_EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "REGEX", "IN", "NOT_IN", "PREFIX"),
    "kind": ("EQUALS", "NOT_EQUALS", "IN", "NOT_IN"),
    "labels": ("EQUALS", "NOT_EQUALS", "IN", "NOT_IN", "CONTAINS"),
    "flowId": ("EQUALS", "NOT_EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "REGEX", "IN", "NOT_IN", "PREFIX"),
    "updated": _DATE,
    "startDate": _DATE,
    "endDate": _DATE,
    "state": ("EQUALS", "NOT_EQUALS", "IN", "NOT_IN"),
    "timeRange": ("EQUALS", "NOT_EQUALS"),
    "triggerExecutionId": _TEXT,
    "triggerId": _TEXT,
    "triggerState": _EQ,
    "executionId": _TEXT,
    "childFilter": _EQ,
    "workerId": _TEXT,
    "existingOnly": _EQ,
    "level": _EQ,
    "path": ("EQUALS", "NOT_EQUALS", "IN"),
    "parentPath": ("EQUALS", "NOT_EQUALS", "STARTS_WITH"),
    "version": _EQ,
}

#: resource -> the fields Kestra accepts on it (``timeRange`` wherever ``startDate`` is)
RESOURCES: dict[str, tuple[str, ...]] = {
    "FLOW": ("labels", "namespace", "q", "scope", "flowId"),
    "NAMESPACE": ("existingOnly",),
    "EXECUTION": ("q", "scope", "flowId", "startDate", "endDate", "timeRange", "state", "labels",
                  "triggerExecutionId", "childFilter", "namespace", "kind"),
    "LOG": ("q", "scope", "namespace", "startDate", "endDate", "timeRange", "flowId", "triggerId", "level",
            "executionId"),
    "TRIGGER": ("q", "scope", "namespace", "workerId", "flowId", "startDate", "endDate", "timeRange",
                "triggerId", "triggerState"),
    "KV_METADATA": ("q", "namespace", "updated"),
    "NAMESPACE_FILE_METADATA": ("q", "namespace", "path", "parentPath", "version", "updated"),
}

#: parameters every search route takes besides its filters
PAGING = frozenset({"page", "size", "sort"})

MAX_FILTERS = 64            # filter keys in one query string
MAX_VALUE = 4096            # characters of one filter value
MAX_REGEX = 1000            # characters of one REGEX pattern
SYSTEM_NAMESPACE = "system"

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


#### Parsed filters #########################################################################################

@dataclasses.dataclass(frozen=True)
class Leaf:
    """One ``filters[field][op]`` condition. ``value``: a tuple of strings (IN/NOT_IN split at commas), a
    dict for labels, a datetime for dates, a compiled RE2 pattern for REGEX."""

    field: str
    op: str
    value: Any


@dataclasses.dataclass(frozen=True)
class Group:
    """Conditions joined by ``and`` (every one holds) or ``or`` (at least one holds)."""

    logical: str
    children: tuple["Leaf | Group", ...] = ()

    def __bool__(self) -> bool:
        return bool(self.children)

    def leaves(self) -> Iterable[Leaf]:
        for child in self.children:
            if isinstance(child, Group):
                yield from child.leaves()
            else:
                yield child

    def matches(self, doc: Any, accessors: Mapping[str, Callable[[Any], Any]]) -> bool:
        """Whether ``doc`` satisfies the group (an empty ``and`` group matches everything)."""
        results = (child.matches(doc, accessors) if isinstance(child, Group) else _test(child, accessors, doc)
                   for child in self.children)
        return all(results) if self.logical == "and" else any(results)


#### Parsing ################################################################################################

def parse(args: Any, resource: str, allowed: Iterable[str] = ()) -> Group:
    """The ``filters[…]`` of a query string as an ``and`` group; 400 for any other key not in ``allowed``.

    ``args`` is a werkzeug ``MultiDict``. Values of a repeated key are all kept."""
    allowed = set(allowed)
    fields = RESOURCES[resource]
    tree: dict[Any, Any] = {}
    count = 0
    for key in args.keys():
        if not key.startswith("filters["):
            if key not in allowed:
                raise BadRequest(f"Unknown query parameter '{key}'" + _expected(sorted(allowed)))
            continue
        count += 1
        if count > MAX_FILTERS:
            raise BadRequest(f"Too many filters (at most {MAX_FILTERS})")
        segments = _segments(key)
        _insert(tree, segments, key, args.getlist(key))
    return _build("and", tree, fields, depth=0)


def parse_json(items: Any, resource: str, name: str = "filters") -> Group:
    """An ``and`` group from a JSON body's ``[{"field", "operation", "value"}]`` (Kestra 2.0's
    ``DeleteTriggersByQueryRequest`` and friends); the same checks as :func:`parse`."""
    if items is None:
        return Group("and")
    if not isinstance(items, list) or len(items) > MAX_FILTERS:
        raise InvalidEntity([Violation(name, f"expected a list of at most {MAX_FILTERS} filters")])
    children: list[Leaf | Group] = []
    for index, item in enumerate(items):
        key = f"{name}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("field"), str) \
                or not isinstance(item.get("operation"), str):
            raise InvalidEntity([Violation(key, "expected {\"field\", \"operation\", \"value\"}")])
        value = item.get("value")
        node: dict[str, Any] = {"key": key, "values": [], "labels": {}}
        if isinstance(value, dict):
            node["labels"] = {str(k): str(v) for k, v in value.items()}
        elif isinstance(value, list):
            node["values"] = [",".join(str(v) for v in value)]
        elif value is not None:
            node["values"] = [str(value).lower() if isinstance(value, bool) else str(value)]
        children.append(_leaf(item["field"], item["operation"], node, RESOURCES[resource]))
    return Group("and", tuple(children))


def check_params(args: Any, allowed: Iterable[str]) -> None:
    """400 for a query parameter not in ``allowed`` (``filters[…]`` included: for routes without filters)."""
    allowed = set(allowed)
    for key in args.keys():
        if key not in allowed:
            raise BadRequest(f"Unknown query parameter '{key}'" + (
                f" (expected one of: {', '.join(sorted(allowed))})" if allowed else " (this route takes none)"))


def _expected(names: Sequence[str]) -> str:
    return f" (expected filters[FIELD][OPERATION] or one of: {', '.join(names)})" if names else \
        " (expected filters[FIELD][OPERATION])"


def _segments(key: str) -> list[str]:
    rest = key[len("filters"):]
    segments = _SEGMENT.findall(rest)
    if "".join(f"[{s}]" for s in segments) != rest or not segments:
        raise BadRequest(f"Malformed filter parameter '{key}': expected filters[FIELD][OPERATION]")
    return segments


def _insert(tree: dict[Any, Any], segments: list[str], key: str, values: list[str]) -> None:
    """Nest the key: ``("and"|"or", index)`` nodes for groups, ``(field, op)`` leaves with their values
    (labels: ``(labels, op)`` collects ``{label key: value}``)."""
    head = segments[0]
    if head in ("and", "or"):
        if len(segments) < 3 or not segments[1].isdigit() or len(segments[1]) > 4:
            raise BadRequest(f"Malformed filter parameter '{key}': expected filters[{head}][INDEX][FIELD][OPERATION]")
        sub = tree.setdefault(("group", head, int(segments[1])), {})
        _insert(sub, segments[2:], key, values)
        return
    if len(segments) < 2 or len(segments) > 3:
        raise BadRequest(f"Malformed filter parameter '{key}': expected filters[FIELD][OPERATION]")
    field, op = segments[0], segments[1]
    entry = tree.setdefault(("leaf", field, op), {"key": key, "values": [], "labels": {}})
    if len(segments) == 3:
        if not segments[2]:
            raise BadRequest(f"Malformed filter parameter '{key}': empty key")
        entry["labels"][segments[2]] = values[0] if values else ""
    else:
        entry["values"].extend(values)


def _build(logical: str, tree: dict[Any, Any], fields: tuple[str, ...], depth: int) -> Group:
    if depth > 2:
        raise BadRequest("Filter groups are limited to one level of nesting")
    children: list[Leaf | Group] = []
    groups: dict[str, list[Leaf | Group]] = {}
    for node_key in sorted(tree, key=lambda k: tuple(str(p) for p in k)):
        node = tree[node_key]
        if node_key[0] == "group":
            _, sub_logical, _index = node_key
            inner = _build("and", node, fields, depth + 1)
            part: Leaf | Group = inner.children[0] if len(inner.children) == 1 else inner
            groups.setdefault(sub_logical, []).append(part)
        else:
            _, field, op = node_key
            children.append(_leaf(field, op, node, fields))
    for sub_logical, parts in groups.items():
        children.append(Group(sub_logical, tuple(parts)))
    return Group(logical, tuple(children))


def _leaf(field: str, op: str, node: dict[str, Any], fields: tuple[str, ...]) -> Leaf:
    key = node["key"]
    if field not in FIELDS:
        raise BadRequest(f"Unknown filter field '{field}' in '{key}' (supported: {', '.join(fields)})")
    if op not in OPS:
        raise BadRequest(f"Unknown filter operation '{op}' in '{key}' (operations: {', '.join(OPS)})")
    if field not in fields:
        raise BadRequest(f"Filter field '{field}' is not supported here (supported: {', '.join(fields)})")
    if op not in FIELDS[field]:
        raise BadRequest(f"Operation {op} is not supported for field {field}. Supported operations are "
                         f"{', '.join(FIELDS[field])}")
    values: list[str] = node["values"]
    labels: dict[str, str] = node["labels"]
    if labels and field != "labels":
        raise BadRequest(f"Malformed filter parameter '{key}': only labels take a key")
    for text in [*values, *labels, *labels.values()]:
        if len(text) > MAX_VALUE:
            raise BadRequest(f"Filter value of '{key}' is too long (at most {MAX_VALUE} characters)")
    if field == "labels":
        return Leaf(field, op, _label_value(key, op, values, labels))
    if op in ("IN", "NOT_IN") or field in ("state", "scope", "kind", "triggerState"):
        items = tuple(v.strip() for raw in values for v in raw.strip("[]").split(",") if v.strip())
    else:
        items = tuple(values)
    if not items:
        raise InvalidEntity([Violation(key, "must not be empty")])
    return typed_leaf(field, op, key, items)


def _label_value(key: str, op: str, values: list[str], labels: dict[str, str]) -> dict[str, str]:
    """``{key: value}`` from nested keys or from ``key:value`` items (comma-separated for IN/NOT_IN)."""
    out = dict(labels)
    for raw in values:
        items = raw.split(",") if op in ("IN", "NOT_IN") else [raw]
        for item in items:
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                raise InvalidEntity([Violation(key, f"Invalid label '{item}': expected 'key:value'")])
            out[name.strip()] = value.strip()
    if not out:
        raise InvalidEntity([Violation(key, "must not be empty")])
    return out


def typed_leaf(field: str, op: str, key: str, items: tuple[str, ...]) -> Leaf:
    """The filter leaf of ``field`` with its value typed (a compiled regex, a date, an enum member…)."""
    if op == "REGEX":
        return Leaf(field, op, compile_regex(key, items[0]))
    if field in ("startDate", "endDate", "updated"):
        return Leaf(field, op, params.parse_datetime(key, items[0]))
    if field == "timeRange":
        span = params.parse_java_duration(key, items[0])
        return Leaf("startDate", "LESS_THAN_OR_EQUAL_TO" if op == "NOT_EQUALS" else "GREATER_THAN_OR_EQUAL_TO",
                    now() - abs(span))
    if field == "state":
        return Leaf(field, op, tuple(params.parse_state(key, v) for v in items))
    if field == "triggerState":
        states = tuple(v.upper() for v in items)
        if any(s not in ("ENABLED", "DISABLED") for s in states):
            raise params.convert_error(key, ",".join(items), "not one of ENABLED, DISABLED")
        return Leaf(field, op, states)
    if field == "level":
        level = LogLevel.parse(items[0])
        if level is None:
            raise params.convert_error(key, items[0], f"not one of {', '.join(LogLevel.names())}")
        return Leaf(field, op, level.name)
    if field == "childFilter":
        value = items[0].upper()
        if value not in ("CHILD", "MAIN"):
            raise params.convert_error(key, items[0], "not one of CHILD, MAIN")
        return Leaf(field, op, value)
    if field == "scope":
        scopes = tuple(v.upper() for v in items)
        if any(s not in ("USER", "SYSTEM") for s in scopes):
            raise params.convert_error(key, ",".join(items), "not one of USER, SYSTEM")
        return Leaf(field, op, scopes)
    if field == "kind":
        return Leaf(field, op, tuple(v.upper() for v in items))
    return Leaf(field, op, items)


def compile_regex(name: str, pattern: str) -> Any:
    """A linear-time RE2 pattern (422 when invalid or longer than :data:`MAX_REGEX`)."""
    if len(pattern) > MAX_REGEX:
        raise InvalidEntity([Violation(name, f"the regular expression is longer than {MAX_REGEX} characters")])
    try:
        return safe_regex.compile(pattern)
    except safe_regex.RegexError as exc:
        raise InvalidEntity([Violation(name, f"invalid regular expression: {exc.reason}")]) from None


#### Evaluation #############################################################################################

def _test(leaf: Leaf, accessors: Mapping[str, Callable[[Any], Any]], doc: Any) -> bool:
    getter = accessors.get(leaf.field)
    if getter is None:  # a route declared a field it cannot evaluate: refuse rather than ignore
        raise BadRequest(f"Filter field '{leaf.field}' is not supported here")
    actual = getter(doc)
    op, value = leaf.op, leaf.value
    if leaf.field == "labels":
        return _test_labels(op, value, actual or ())
    if leaf.field == "q":
        texts = [t.lower() for t in (actual or ()) if isinstance(t, str)]
        found = any(value[0].lower() in t for t in texts)
        return found if op == "EQUALS" else not found
    if leaf.field == "level":
        rank, floor = LogLevel.parse(str(actual)), LogLevel[value]
        return (rank is not None and rank >= floor) if op == "EQUALS" else (rank is None or rank < floor)
    if isinstance(value, datetime):
        return _test_date(op, value, actual)
    if op == "REGEX":
        return isinstance(actual, str) and value.search(actual) is not None
    if isinstance(value, str):
        value = (value,)
    if op in ("NOT_EQUALS", "NOT_IN"):
        return actual is None or str(actual) not in value
    if actual is None:
        return False
    text = str(actual)
    if op in ("EQUALS", "IN"):
        return text in value
    if op == "CONTAINS":
        return value[0] in text
    if op == "STARTS_WITH":
        return text.startswith(value[0])
    if op == "ENDS_WITH":
        return text.endswith(value[0])
    if op == "PREFIX":
        return text == value[0] or text.startswith(value[0] + ".")
    raise BadRequest(f"Operation {op} is not supported for field {leaf.field}")


def _test_date(op: str, value: datetime, actual: Any) -> bool:
    if isinstance(actual, str):
        try:
            actual = parse_instant(actual)
        except ValueError:
            actual = None
    if not isinstance(actual, datetime):
        return op == "NOT_EQUALS"
    return {
        "EQUALS": actual == value, "NOT_EQUALS": actual != value,
        "GREATER_THAN": actual > value, "GREATER_THAN_OR_EQUAL_TO": actual >= value,
        "LESS_THAN": actual < value, "LESS_THAN_OR_EQUAL_TO": actual <= value,
    }[op]


def _test_labels(op: str, wanted: dict[str, str], actual: Iterable[Any]) -> bool:
    have = {(str(k), str(v)) for k, v in _pairs(actual)}
    pairs = set(wanted.items())
    if op == "EQUALS":
        return pairs <= have
    if op == "IN":
        return bool(pairs & have)
    if op in ("NOT_EQUALS", "NOT_IN"):
        return not pairs & have
    # CONTAINS: every given key has a label whose value contains the given text
    return all(any(k == key and text in v for k, v in have) for key, text in wanted.items())


def _pairs(labels: Iterable[Any]) -> Iterable[tuple[Any, Any]]:
    for label in labels:
        if isinstance(label, dict):
            yield label.get("key"), label.get("value")
        elif isinstance(label, (tuple, list)) and len(label) == 2:
            yield label[0], label[1]


#### Accessors shared by resources ##########################################################################

def scope_of(namespace: Any) -> str:
    """``SYSTEM`` for the system namespace and its children, ``USER`` otherwise."""
    ns = namespace if isinstance(namespace, str) else ""
    return "SYSTEM" if ns == SYSTEM_NAMESPACE or ns.startswith(SYSTEM_NAMESPACE + ".") else "USER"


def dig(doc: Any, path: str) -> Any:
    """``doc["a"]["b"]`` for ``"a.b"``; None when a step is missing."""
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc
