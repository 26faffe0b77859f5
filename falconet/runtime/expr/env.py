"""The sandboxed Jinja environment that runs translated Pebble templates.

Attribute and item access (``a.b``, ``a['b']``) never reach Python attributes: maps are looked up by key,
lists by index, map entries expose ``key``/``value``, loop objects their counters, strings their
``length``. Anything else is undefined — so ``''.__class__`` and friends cannot escape the sandbox.
Only Pebble/Kestra filters, tests and functions exist; Jinja's built-ins are removed.
"""
from __future__ import annotations

import math
from decimal import Decimal
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from jinja2 import pass_environment
from jinja2.runtime import Context, LoopContext
from jinja2.utils import missing
from jinja2.sandbox import SandboxedEnvironment

from falconet.runtime.expr.base import ExpressionError, PebbleUndefined, UndefinedUse, check_defined
from falconet.runtime.expr.output import to_output_string

#### Values #################################################################################################


class Entry:
    """A map entry seen while iterating a map in ``{% for e in map %}``: ``e.key`` and ``e.value``.
    Prints like Java's ``Map.Entry`` (``key=value``)."""

    __slots__ = ("key", "value")

    def __init__(self, key: Any, value: Any):
        self.key, self.value = key, value

    def __str__(self) -> str:
        return f"{to_output_string(self.key)}={to_output_string(self.value)}"

    def __json__(self) -> dict[str, Any]:
        return {str(self.key): self.value}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and (self.key, self.value) == (other.key, other.value)

    __hash__ = None  # type: ignore[assignment]


_LOOP_ATTRS = frozenset({"index0", "revindex0", "first", "last", "length", "index", "revindex"})


def lookup(env: "PebbleEnvironment", obj: Any, key: Any) -> Any:
    """``obj.key`` / ``obj[key]`` under Pebble's rules; a miss is a :class:`PebbleUndefined` named ``key``."""
    if type(obj) is dict:                            # fast path: most lookups are plain dict keys
        try:
            return obj[key]
        except (KeyError, TypeError, UndefinedUse):  # UndefinedUse: the key is undefined (hashing it fails)
            pass
    if isinstance(obj, PebbleUndefined):
        return obj
    if isinstance(key, PebbleUndefined):             # block[missing].child is defined → false
        return key
    if isinstance(obj, Mapping):
        try:
            return obj[key]
        except (KeyError, TypeError):
            pass
        if isinstance(key, (int, float)) and not isinstance(key, bool):
            text = to_output_string(key)
            if text in obj:
                return obj[text]
    elif isinstance(obj, (list, tuple, str)):
        if isinstance(key, bool):
            pass
        elif isinstance(key, int):
            if 0 <= key < len(obj):
                return obj[key]
        elif isinstance(key, slice):
            return obj[key]
        elif isinstance(key, str):
            if key.isdigit() and int(key) < len(obj):
                return obj[int(key)]
            if key in ("size", "length"):
                return len(obj)
            if key == "empty" and not isinstance(obj, str):
                return not obj
    elif isinstance(obj, Entry):
        if key == "key":
            return obj.key
        if key == "value":
            return obj.value
    elif isinstance(obj, LoopContext):
        if key in _LOOP_ATTRS:
            return getattr(obj, key)
    return env.undefined(obj=obj, name=str(key))


#### Operator helpers (targets of the Pebble translation) ###################################################

def _bool(value: Any) -> bool:
    check_defined(value)
    if isinstance(value, str):
        return value != "" and value.lower() != "false"
    return bool(value)


def _isset(value: Any) -> bool:
    return not isinstance(value, PebbleUndefined) and value is not None


def _isdef(value: Any) -> bool:
    return not isinstance(value, PebbleUndefined)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _eq(a: Any, b: Any) -> bool:
    """Pebble's ``==``: numbers by value (``1 == 1.0``), otherwise ``equals`` (no bool/number mixing)."""
    check_defined(a)
    check_defined(b)
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Entry) or isinstance(b, Entry):
        return a == b
    return bool(a == b)


def _contains(container: Any, item: Any) -> bool:
    """Pebble's ``contains``: substring, list membership (or all members of a list), map key."""
    check_defined(container)
    check_defined(item)
    if container is None:
        return False
    if isinstance(container, str):
        return to_output_string(item) in container
    if isinstance(container, Mapping):
        try:
            return item in container
        except TypeError:
            return False
    if isinstance(container, (list, tuple, set, frozenset)):
        if isinstance(item, (list, tuple)):
            return all(_member(container, i) for i in item)
        return _member(container, item)
    raise ExpressionError(f"`contains` is not supported on a value of type {type(container).__name__}")


def _member(container: Iterable[Any], item: Any) -> bool:
    return any(_eq_quiet(c, item) for c in container)


def _eq_quiet(a: Any, b: Any) -> bool:
    try:
        return _eq(a, b)
    except (TypeError, ValueError):
        return False


def _concat(*parts: Any) -> str:
    return "".join(to_output_string(check_defined(p)) for p in parts)


MAX_RANGE = 1_000_000          # a sandboxed template must not allocate unbounded lists


def _range(start: Any, end: Any, step: Any = 1) -> list[Any]:
    """Inclusive range like Pebble's ``a..b`` and ``range(a, b, step)``; chars for one-letter strings."""
    check_defined(start)
    check_defined(end)
    if isinstance(start, str) and isinstance(end, str) and len(start) == 1 and len(end) == 1:
        return [chr(c) for c in _range(ord(start), ord(end), step)]
    try:
        step = int(step)
        if step == 0:
            raise ExpressionError("range: the increment must not be 0")
        a, b = int(start), int(end)
    except (TypeError, ValueError):
        raise ExpressionError(f"range: expected numbers, got {start!r} and {end!r}") from None
    values = range(a, b + (1 if step > 0 else -1), step)
    if len(values) > MAX_RANGE:
        raise ExpressionError(f"range: {len(values)} values is more than the limit of {MAX_RANGE}")
    return list(values)


def _arith_error(op: str, a: Any, b: Any) -> ExpressionError:
    return ExpressionError(f"Unable to compute {to_output_string(a)!r} {op} {to_output_string(b)!r}: "
                           "invalid operands for a mathematical operation")


def _add(a: Any, b: Any) -> Any:
    """Pebble's ``+``: numbers; a list plus an item (or a list); two strings are concatenated."""
    check_defined(a)
    check_defined(b)
    if _is_number(a) and _is_number(b):
        return a + b
    if isinstance(a, list):
        return a + b if isinstance(b, list) else [*a, b]
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    raise _arith_error("+", a, b)


def _sub(a: Any, b: Any) -> Any:
    """Pebble's ``-``: numbers; a list minus an item (or the items of a list)."""
    check_defined(a)
    check_defined(b)
    if _is_number(a) and _is_number(b):
        return a - b
    if isinstance(a, list):
        drop = b if isinstance(b, list) else [b]
        return [x for x in a if not any(_eq_quiet(x, d) for d in drop)]
    raise _arith_error("-", a, b)


def _mul(a: Any, b: Any) -> Any:
    """Pebble's ``*``: numbers only (no string or list repetition)."""
    check_defined(a)
    check_defined(b)
    if _is_number(a) and _is_number(b):
        return a * b
    raise _arith_error("*", a, b)


def _div(a: Any, b: Any) -> Any:
    """Java semantics: integer division truncates toward zero; ``/ 0`` on integers is an error."""
    check_defined(a)
    check_defined(b)
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
        if b == 0:
            raise ExpressionError("/ by zero")
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    try:
        return a / b
    except ZeroDivisionError:
        return math.copysign(math.inf, a) if a else math.nan
    except TypeError:
        raise ExpressionError(f"Unable to divide {to_output_string(a)!r} by {to_output_string(b)!r}") from None


def _mod(a: Any, b: Any) -> Any:
    """Java's remainder: the sign follows the dividend."""
    check_defined(a)
    check_defined(b)
    try:
        if isinstance(a, int) and isinstance(b, int):
            if b == 0:
                raise ExpressionError("/ by zero")
            r = abs(a) % abs(b)
            return r if a >= 0 else -r
        return math.fmod(a, b)
    except TypeError:
        raise ExpressionError(f"Unable to compute {to_output_string(a)!r} % {to_output_string(b)!r}") from None


def _iter(value: Any) -> list[Any]:
    """What ``{% for %}`` walks: list items, map entries, nothing for null, a scalar once."""
    check_defined(value)
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [Entry(k, v) for k, v in value.items()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


@pass_environment
def _loop(env: "PebbleEnvironment", obj: Any, attr: str) -> Any:
    """``loop.index``/``loop.revindex``: 0-based on a for-loop (Pebble), a plain lookup on a variable."""
    if isinstance(obj, LoopContext):
        return obj.index0 if attr == "index" else obj.revindex0
    return lookup(env, obj, attr)


_ARITH = {"+": lambda a, b: _add(a, b), "-": lambda a, b: _sub(a, b), "*": lambda a, b: _mul(a, b),
          "/": lambda a, b: _div(a, b), "%": lambda a, b: _mod(a, b)}


def _arith(first: Any, *rest: Any) -> Any:
    """A left-associative chain ``first op1 x1 op2 x2 …`` of one precedence level (``+ -`` or ``* / %``)."""
    result = first
    for i in range(0, len(rest), 2):
        result = _ARITH[rest[i]](result, rest[i + 1])
    return result


HELPERS: dict[str, Callable[..., Any]] = {
    "__f_bool": _bool, "__f_isset": _isset, "__f_isdef": _isdef, "__f_eq": _eq, "__f_contains": _contains,
    "__f_concat": _concat, "__f_range": _range, "__f_arith": _arith,
    "__f_div": _div, "__f_mod": _mod, "__f_iter": _iter,
    "__f_loop": _loop,
}


#### Environment ############################################################################################

def _finalize(value: Any) -> str:
    if type(value) is str:
        return value
    return to_output_string(check_defined(value))


class PebbleContext(Context):
    """A render context whose parent is the caller's variables mapping itself (never copied); ``__f_*``
    helper names resolve to the environment's globals first, so variables cannot shadow them."""

    def resolve_or_missing(self, key: str) -> Any:
        if key[:4] == "__f_":
            return self.environment.globals.get(key, missing)
        if key in self.vars:
            return self.vars[key]
        if key in self.parent:
            return self.parent[key]
        return missing

    def get_all(self) -> dict[str, Any]:
        merged = dict(self.parent)
        merged.update(self.vars)
        return merged


class PebbleEnvironment(SandboxedEnvironment):
    """Jinja configured like Kestra's Pebble engine: strict variables, no autoescape, newlines kept."""

    def __init__(self) -> None:
        super().__init__(
            undefined=PebbleUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
            cache_size=0,
            auto_reload=False,
        )
        self.filters.clear()
        self.tests.clear()
        self.globals.clear()
        self.globals.update(HELPERS)

    def make_context(self, template: Any, variables: Mapping[str, Any]) -> PebbleContext:
        """A fresh context for one render of ``template`` (a compiled Jinja template) over ``variables``."""
        # jinja2 types a context's parent as a dict; a Mapping is all Context reads
        return PebbleContext(self, variables, template.name, template.blocks)  # type: ignore[arg-type]

    def getattr(self, obj: Any, attribute: str) -> Any:
        return lookup(self, obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return lookup(self, obj, argument)
