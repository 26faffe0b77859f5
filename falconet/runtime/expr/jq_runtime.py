"""Values, operators and builtins of the jq subset (see :mod:`.jq`). Programs are closures
``value -> iterator of outputs``; errors are :class:`JqError`."""
from __future__ import annotations

import functools
import json
import math
from typing import Any, Callable, Iterator

from falconet.runtime.expr import safe_regex
from falconet.runtime.expr.base import ExpressionError

Program = Callable[[Any], Iterator[Any]]


class JqError(ExpressionError):
    """A jq program failed to compile or to run."""


#### Runtime helpers ########################################################################################

def _chain(a: Iterator[Any], b: Iterator[Any]) -> Iterator[Any]:
    yield from a
    yield from b


def _then(first: Program, second: Program) -> Program:
    return lambda v: (out for mid in first(v) for out in second(mid))


def _try(prog: Program, v: Any) -> Iterator[Any]:
    try:
        yield from list(prog(v))
    except JqError:
        return


def _truthy(v: Any) -> bool:
    return v is not None and v is not False


def _type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    raise JqError(f"Unsupported value type {type(v).__name__}")


_ORDER = {"null": 0, "boolean": 1, "number": 2, "string": 3, "array": 4, "object": 5}


def _sort_key(v: Any) -> Any:
    t = _type(v)
    if t == "array":
        return (_ORDER[t], [_sort_key(x) for x in v])
    if t == "object":
        keys = sorted(v)
        return (_ORDER[t], keys, [_sort_key(v[k]) for k in keys])
    return (_ORDER[t], v if t != "null" else 0)


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: op(_sort_key(a), _sort_key(b))


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": _cmp(lambda a, b: a == b), "!=": _cmp(lambda a, b: a != b), "<": _cmp(lambda a, b: a < b),
    "<=": _cmp(lambda a, b: a <= b), ">": _cmp(lambda a, b: a > b), ">=": _cmp(lambda a, b: a >= b),
}


def _binary(left: Program, right: Program, fn: Callable[[Any, Any], Any]) -> Program:
    return lambda v: (fn(a, b) for b in right(v) for a in left(v))


def _num(v: Any) -> int | float:
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 53:
        return int(v)
    return v


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    if _type(a) == _type(b) and _type(a) in ("number", "string", "array"):
        return a + b
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **b}
    raise JqError(f"{_type(a)} and {_type(b)} cannot be added")


def _sub(a: Any, b: Any) -> Any:
    if _type(a) == "number" and _type(b) == "number":
        return a - b
    if isinstance(a, list) and isinstance(b, list):
        return [x for x in a if x not in b]
    raise JqError(f"{_type(a)} and {_type(b)} cannot be subtracted")


def _mul(a: Any, b: Any) -> Any:
    if _type(a) == "number" and _type(b) == "number":
        return a * b
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _mul(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
        return out
    raise JqError(f"{_type(a)} and {_type(b)} cannot be multiplied")


def _div(a: Any, b: Any) -> Any:
    if _type(a) == "number" and _type(b) == "number":
        if b == 0:
            raise JqError(f"{a} and {b} cannot be divided because the divisor is zero")
        return _num(a / b)
    if isinstance(a, str) and isinstance(b, str):
        return a.split(b) if a else []
    raise JqError(f"{_type(a)} and {_type(b)} cannot be divided")


def _mod(a: Any, b: Any) -> Any:
    if _type(a) == "number" and _type(b) == "number":
        if int(b) == 0:
            raise JqError(f"{a} and {b} cannot be divided because the divisor is zero")
        r = abs(int(a)) % abs(int(b))
        return r if a >= 0 else -r
    raise JqError(f"{_type(a)} and {_type(b)} cannot be divided")


def _neg(v: Any) -> Any:
    if _type(v) != "number":
        raise JqError(f"{_type(v)} cannot be negated")
    return -v


def _as_key(k: Any) -> str:
    if not isinstance(k, str):
        raise JqError(f"Object keys must be strings, got {_type(k)}")
    return k


def _index(v: Any, k: Any) -> Any:
    if v is None:
        return None
    if isinstance(k, str):
        if isinstance(v, dict):
            return v.get(k)
        raise JqError(f'Cannot index {_type(v)} with "{k}"')
    if isinstance(k, (int, float)) and not isinstance(k, bool):
        if isinstance(v, list):
            i = int(math.floor(k))
            if i < 0:
                i += len(v)
            return v[i] if 0 <= i < len(v) else None
        raise JqError(f"Cannot index {_type(v)} with number")
    raise JqError(f"Cannot index {_type(v)} with {_type(k)}")


def _index_const(key: Any) -> Program:
    return lambda v: iter([_index(v, key)])


def _slice(v: Any, lo: Any, hi: Any) -> Any:
    if v is None:
        return None
    if not isinstance(v, (list, str)):
        raise JqError(f"Cannot index {_type(v)} with object")
    return v[None if lo is None else int(lo):None if hi is None else int(hi)]


def _iterate(v: Any) -> Iterator[Any]:
    if isinstance(v, list):
        return iter(list(v))
    if isinstance(v, dict):
        return iter(list(v.values()))
    raise JqError(f"Cannot iterate over {_type(v)}" + ("" if v is None else f" ({json.dumps(v)})"))


def _recurse(v: Any) -> Iterator[Any]:
    yield v
    if isinstance(v, (list, dict)):
        for child in (v if isinstance(v, list) else v.values()):
            yield from _recurse(child)


def _length(v: Any) -> Any:
    if v is None:
        return 0
    if isinstance(v, bool):
        raise JqError("boolean has no length")
    if isinstance(v, (int, float)):
        return abs(v)
    return len(v)


def _keys(v: Any, sort: bool = True) -> list[Any]:
    if isinstance(v, dict):
        return sorted(v) if sort else list(v)
    if isinstance(v, list):
        return list(range(len(v)))
    raise JqError(f"{_type(v)} has no keys")


def _tostring(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _tonumber(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    try:
        return _num(float(v)) if any(c in v for c in ".eE") else int(v)
    except (TypeError, ValueError):
        raise JqError(f"Cannot parse '{v}' as a number") from None


def _test(v: Any, pattern: Any) -> bool:
    """``test(re)``: whether the string matches the regex anywhere (RE2: linear time, see safe_regex)."""
    if not isinstance(v, str):
        raise JqError(f"{_type(v)} ({_tostring(v)}) cannot be matched, as it is not a string")
    try:
        return safe_regex.compile(pattern).search(v) is not None
    except safe_regex.RegexError as exc:
        raise JqError(str(exc)) from None


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in a and _contains(a[k], bv) for k, bv in b.items())
    if isinstance(a, list) and isinstance(b, list):
        return all(any(_contains(x, y) for x in a) for y in b)
    if isinstance(a, str) and isinstance(b, str):
        return b in a
    if _type(a) == _type(b):
        return a == b
    raise JqError(f"{_type(a)} and {_type(b)} cannot have their containment checked")


def _flatten(v: list[Any], depth: float = math.inf) -> list[Any]:
    out: list[Any] = []
    for x in v:
        if isinstance(x, list) and depth > 0:
            out.extend(_flatten(x, depth - 1))
        else:
            out.append(x)
    return out


def _paths(v: Any, prefix: list[Any]) -> Iterator[list[Any]]:
    if isinstance(v, dict):
        items: Any = v.items()
    elif isinstance(v, list):
        items = enumerate(v)
    else:
        return
    for k, child in items:
        yield prefix + [k]
        yield from _paths(child, prefix + [k])


def _unary(fn: Callable[[Any], Any]) -> Callable[[], Program]:
    return lambda: (lambda v: iter([fn(v)]))


def _with_arg(fn: Callable[[Any, Any], Any]) -> Callable[[Program], Program]:
    return lambda arg: (lambda v: (fn(v, a) for a in arg(v)))


def _by(fn: Callable[[list[Any], Callable[[Any], Any]], Any]) -> Callable[[Program], Program]:
    return lambda f: (lambda v: iter([fn(_require_list(v), lambda x: [_sort_key(y) for y in f(x)])]))


def _require_list(v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise JqError(f"Cannot iterate over {_type(v)}")
    return v


def _group_by(v: list[Any], key: Callable[[Any], Any]) -> list[list[Any]]:
    groups: list[list[Any]] = []
    last: Any = object()
    for x in sorted(v, key=key):
        k = key(x)
        if groups and k == last:
            groups[-1].append(x)
        else:
            groups.append([x])
            last = k
    return groups


def _unique_by(v: list[Any], key: Callable[[Any], Any]) -> list[Any]:
    return [g[0] for g in _group_by(v, key)]


def _from_entries(v: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in _require_list(v):
        key = next((e[k] for k in ("key", "k", "name", "Name", "Key", "K") if k in e), None)
        out[key if isinstance(key, str) else _tostring(key)] = e.get("value", e.get("v"))
    return out


def _error(v: Any, msg: Any = None) -> Any:
    raise JqError(str(msg if msg is not None else v))


_BUILTINS: dict[tuple[str, int], Callable[..., Program]] = {
    ("length", 0): _unary(_length),
    ("keys", 0): _unary(_keys),
    ("keys_unsorted", 0): _unary(lambda v: _keys(v, sort=False)),
    ("values", 0): lambda: (lambda v: iter([v] if v is not None else [])),
    ("not", 0): _unary(lambda v: not _truthy(v)),
    ("type", 0): _unary(_type),
    ("tostring", 0): _unary(_tostring),
    ("tonumber", 0): _unary(_tonumber),
    ("tojson", 0): _unary(lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False)),
    ("fromjson", 0): _unary(lambda v: json.loads(v)),
    ("ascii_downcase", 0): _unary(lambda v: v.lower()),
    ("ascii_upcase", 0): _unary(lambda v: v.upper()),
    ("empty", 0): lambda: (lambda v: iter(())),
    ("error", 0): lambda: (lambda v: iter([_error(v)])),
    ("error", 1): _with_arg(_error),
    ("add", 0): _unary(lambda v: functools.reduce(_add, _require_list(v) if not isinstance(v, dict)
                                                  else list(v.values()), None)),
    ("first", 0): _unary(lambda v: _index(v, 0)),
    ("last", 0): _unary(lambda v: _index(v, -1)),
    ("first", 1): lambda f: (lambda v: iter(next(((x,) for x in f(v)), ()))),
    ("sort", 0): _unary(lambda v: sorted(_require_list(v), key=_sort_key)),
    ("unique", 0): _unary(lambda v: _unique_by(_require_list(v), _sort_key)),
    ("reverse", 0): _unary(lambda v: v[::-1] if v is not None else []),
    ("min", 0): _unary(lambda v: min(_require_list(v), key=_sort_key) if v else None),
    ("max", 0): _unary(lambda v: max(_require_list(v), key=_sort_key) if v else None),
    ("to_entries", 0): _unary(lambda v: [{"key": k, "value": _index(v, k)} for k in _keys(v, sort=False)]),
    ("from_entries", 0): _unary(_from_entries),
    ("flatten", 0): _unary(lambda v: _flatten(_require_list(v))),
    ("flatten", 1): _with_arg(lambda v, d: _flatten(_require_list(v), d)),
    ("floor", 0): _unary(lambda v: math.floor(v)),
    ("ceil", 0): _unary(lambda v: math.ceil(v)),
    ("round", 0): _unary(lambda v: math.floor(v + 0.5)),
    ("sqrt", 0): _unary(lambda v: _num(math.sqrt(v))),
    ("abs", 0): _unary(lambda v: abs(v)),
    ("any", 0): _unary(lambda v: any(_truthy(x) for x in _require_list(v))),
    ("all", 0): _unary(lambda v: all(_truthy(x) for x in _require_list(v))),
    ("paths", 0): lambda: (lambda v: _paths(v, [])),
    ("map", 1): lambda f: (lambda v: iter([[y for x in _iterate(v) for y in f(x)]])),
    ("map_values", 1): lambda f: (lambda v: iter([{k: y for k, x in v.items() for y in list(f(x))[:1]}
                                                   if isinstance(v, dict) else
                                                   [y for x in _require_list(v) for y in list(f(x))[:1]]])),
    ("select", 1): lambda f: (lambda v: (v for c in f(v) if _truthy(c))),
    ("with_entries", 1): lambda f: (lambda v: iter([_from_entries(
        [y for x in [{"key": k, "value": val} for k, val in v.items()] for y in f(x)])])),
    ("has", 1): _with_arg(lambda v, k: (k in v) if isinstance(v, dict) else 0 <= k < len(_require_list(v))),
    ("in", 1): _with_arg(lambda v, o: (v in o) if isinstance(o, dict) else 0 <= v < len(_require_list(o))),
    ("contains", 1): _with_arg(_contains),
    ("inside", 1): _with_arg(lambda v, o: _contains(o, v)),
    ("startswith", 1): _with_arg(lambda v, s: v.startswith(s)),
    ("endswith", 1): _with_arg(lambda v, s: v.endswith(s)),
    ("ltrimstr", 1): _with_arg(lambda v, s: v[len(s):] if isinstance(v, str) and v.startswith(s) else v),
    ("rtrimstr", 1): _with_arg(lambda v, s: v[:-len(s)] if isinstance(v, str) and s and v.endswith(s) else v),
    ("split", 1): _with_arg(lambda v, s: v.split(s) if v else []),
    ("join", 1): _with_arg(lambda v, s: s.join("" if x is None else x if isinstance(x, str) else _tostring(x)
                                              for x in _require_list(v))),
    ("test", 1): _with_arg(lambda v, r: _test(v, r)),
    ("index", 1): _with_arg(lambda v, s: (v.find(s) if v.find(s) >= 0 else None) if isinstance(v, str)
                            else _index(v, s)),
    ("range", 1): lambda n: (lambda v: (i for m in n(v) for i in range(int(m)))),
    ("range", 2): lambda a, b: (lambda v: (i for lo in a(v) for hi in b(v) for i in range(int(lo), int(hi)))),
    ("sort_by", 1): _by(lambda v, key: sorted(v, key=key)),
    ("group_by", 1): _by(_group_by),
    ("unique_by", 1): _by(_unique_by),
    ("min_by", 1): _by(lambda v, key: min(v, key=key) if v else None),
    ("max_by", 1): _by(lambda v, key: max(v, key=key) if v else None),
}
