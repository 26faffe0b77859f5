"""How values print: Kestra's (Pebble + Jackson) rules for turning a rendered value into a string.

* ``None`` → ``""``; booleans → ``true``/``false``; ints as written; floats like Java's ``Double.toString``
  (``1.0``, ``1.0E-4``, ``1.0E20``); ``Decimal`` as written.
* maps and lists → compact JSON in Jackson's style (``{"a":1,"b":[1,2]}``, non-ASCII kept as is).
* datetimes → ISO-8601 like Java's ``Instant``/``LocalDateTime``/``LocalDate`` ``toString`` (aware values are
  printed as UTC instants ending in ``Z``).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from decimal import Decimal
from collections.abc import Mapping
from typing import Any


#### Scalars ################################################################################################

def java_double(value: float) -> str:
    """Java's ``Double.toString``: plain notation in [1e-3, 1e7), else ``d.dddE±n``; always a fraction part."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(value)
        if "e" in text or "E" in text:           # repr can still choose exponents (e.g. 1e-03 never, but be safe)
            text = format(value, "f")
        return text if "." in text else text + ".0"
    sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    exponent = len(digits) - 1 + int(exp)
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{exponent}"


def iso_datetime(value: _dt.datetime) -> str:
    """Java ``Instant.toString`` for aware datetimes (converted to UTC, ``Z``), ``LocalDateTime.toString``
    for naive ones: seconds always, fraction only when non-zero, in groups of 3 digits."""
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        frac = f"{value.microsecond:06d}"
        text += "." + (frac[:3] if frac.endswith("000") else frac)
    return text + ("Z" if value.tzinfo is not None else "")


#### JSON ###################################################################################################

def _json_default(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return iso_datetime(value)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "__json__"):
        return value.__json__()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_encode_str = json.encoder.py_encode_basestring


def _write(value: Any, out: list[str]) -> None:
    """Recursive JSON writer, used only when a float needs Java's exponent notation."""
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(java_double(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(_encode_str(k if isinstance(k, str) else "null" if k is None else to_output_string(k)))
            out.append(":")
            _write(v, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _write(v, out)
        out.append("]")
    else:
        _write(_json_default(value), out)


_FAST = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default, allow_nan=True)


def _has_odd_float(value: Any) -> bool:
    if isinstance(value, float):
        return not (1e-3 <= abs(value) < 1e7 or value == 0)
    if isinstance(value, Mapping):
        return any(_has_odd_float(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_odd_float(v) for v in value)
    return False


def to_json(value: Any) -> str:
    """Compact JSON the way Kestra's Jackson mapper writes it."""
    try:
        if _has_odd_float(value):
            out: list[str] = []
            _write(value, out)
            return "".join(out)
        return _FAST.encode(value)
    except (TypeError, ValueError) as exc:
        from falconet.runtime.expr.base import ExpressionError
        raise ExpressionError(f"Unable to serialize value to JSON: {exc}") from None


#### Print rule #############################################################################################

def to_output_string(value: Any) -> str:
    """The text a rendered value prints as (see module docstring)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, (Mapping, list, tuple)):
        return to_json(value)
    if isinstance(value, _dt.datetime):
        return iso_datetime(value)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return to_json(list(value))
    return str(value)


_FALSE_STRINGS = frozenset({"false", "0", "-0", ""})


def is_truthy(value: Any) -> bool:
    """Kestra's one truthiness rule (``TruthUtils``) for every condition: the value's rendered text,
    trimmed, is false when it is ``false``, ``0``, ``-0`` or empty (and for null); anything else is
    true — ``False``, ``0.0`` and ``no`` included (case-sensitive, as Kestra compares strings)."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    text = value if isinstance(value, str) else to_output_string(value)
    return text.strip() not in _FALSE_STRINGS
