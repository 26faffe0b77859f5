"""Collection, number, serialization, jq and date filters (registered into :data:`.registry.FILTERS`)."""
from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import yaml as _yaml

from falconet.runtime.expr import dates
from falconet.runtime.expr.base import ExpressionError, PebbleUndefined
from falconet.runtime.expr.output import to_json, to_output_string
from falconet.runtime.expr.registry import is_empty, java_class, register_filter
from falconet.runtime.expr.registry import text as _text


#### Collections ############################################################################################

@register_filter("default", "d", lenient=True)
def _default(value: Any, default: Any = None) -> Any:
    """The default when the value is undefined or empty: null, a blank string, an empty list or map (Pebble)."""
    if isinstance(value, PebbleUndefined) or is_empty(value):
        return default
    return value


@register_filter("first")
def _first(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value[:1] if value else None
    if isinstance(value, Mapping):
        value = list(value.values())
    seq = list(value)
    return seq[0] if seq else None


@register_filter("last")
def _last(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value[-1:] if value else None
    if isinstance(value, Mapping):
        value = list(value.values())
    seq = list(value)
    return seq[-1] if seq else None


@register_filter("length")
def _length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, Mapping, set)):
        return len(value)
    return len(_text(value))


@register_filter("join")
def _join(value: Any, separator: Any = "") -> Any:
    if value is None:
        return None
    items = value.values() if isinstance(value, Mapping) else value
    return _text(separator).join(_text(v) for v in items)


@register_filter("keys")
def _keys(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, (list, tuple)):
        return list(range(len(value)))
    raise ExpressionError(f"The 'keys' filter can only be applied to maps, not {type(value).__name__}.")


@register_filter("values")
def _values(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.values())
    raise ExpressionError(f"The 'values' filter can only be applied to maps, not {type(value).__name__}.")


@register_filter("merge")
def _merge(value: Any, items: Any = None) -> Any:
    if value is None:
        return items
    if isinstance(value, Mapping):
        if not isinstance(items, Mapping):
            raise ExpressionError("The 'merge' filter can only merge a map with another map.")
        return {**value, **items}
    if isinstance(value, (list, tuple)):
        if isinstance(items, Mapping):
            raise ExpressionError("The 'merge' filter cannot merge a list with a map.")
        return [*value, *(items if isinstance(items, (list, tuple)) else [items])]
    raise ExpressionError(f"The 'merge' filter cannot be applied to {type(value).__name__}.")


@register_filter("reverse")
def _reverse(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value[::-1]
    return list(value)[::-1]


def _sort_values(value: Any, reverse: bool) -> Any:
    if value is None:
        return None
    try:
        return sorted(value, reverse=reverse)
    except TypeError:
        raise ExpressionError("The 'sort' filter needs values of one comparable type") from None


@register_filter("sort")
def _sort(value: Any) -> Any:
    return _sort_values(value, False)


@register_filter("rsort")
def _rsort(value: Any) -> Any:
    return _sort_values(value, True)


@register_filter("slice")
def _slice(value: Any, fromIndex: Any = 0, toIndex: Any = None) -> Any:  # noqa: N803 - Pebble's names
    if value is None:
        return None
    seq = value if isinstance(value, str) else list(value)
    end = len(seq) if toIndex is None else int(toIndex)
    start = int(fromIndex)
    if start < 0 or end > len(seq) or start > end:
        raise ExpressionError(f"slice: indexes {start}..{end} are out of range for a length of {len(seq)}")
    return seq[start:end]


@register_filter("flatten")
def _flatten(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ExpressionError("The 'flatten' filter can only be applied to lists.")
    out: list[Any] = []
    for item in value:
        out.extend(item) if isinstance(item, (list, tuple)) else out.append(item)
    return out


@register_filter("chunk")
def _chunk(value: Any, size: Any = None) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ExpressionError("The 'chunk' filter can only be applied to lists.")
    if not isinstance(size, int) or size <= 0:
        raise ExpressionError("The 'chunk' filter expects a positive integer as argument 'size'.")
    return [list(value[i:i + size]) for i in range(0, len(value), size)]


@register_filter("distinct")
def _distinct(value: Any) -> Any:
    if value is None:
        return None
    out: list[Any] = []
    for item in value:
        if item not in out:
            out.append(item)
    return out


#### Numbers ################################################################################################

@register_filter("abs")
def _abs(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return abs(value)
    raise ExpressionError(f"The 'abs' filter needs a number, got '{_text(value)}'")


_NUMBER_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfFlL]?$|^[+-]?0[xX][0-9a-fA-F]+$")


@register_filter("number")
def _number(value: Any, type: Any = None) -> Any:  # noqa: A002 - Pebble's argument name
    """Parse a string into a number (``INT``/``LONG``/``BIGINTEGER`` → int, ``FLOAT``/``DOUBLE`` → float,
    ``BIGDECIMAL`` → Decimal, no type → int when integral text, else float)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ExpressionError("'number' filter can only be applied to String. Actual type was: "
                              + java_class(value))
    text = value.strip()
    if not _NUMBER_TEXT.match(text):
        raise ExpressionError(f"{text} is not a valid number.")
    kind = (type or "").upper()
    try:
        if text.lower().startswith(("0x", "-0x", "+0x")):
            number: Any = int(text, 16)
            return float(number) if kind in ("FLOAT", "DOUBLE") else number
        body = text.rstrip("dDfFlL")
        if kind in ("INT", "LONG", "BIGINTEGER"):
            return int(body)
        if kind in ("FLOAT", "DOUBLE"):
            return float(body)
        if kind == "BIGDECIMAL":
            return Decimal(body)
        if re.fullmatch(r"[+-]?\d+", body):
            return int(body)
        return float(body)
    except (ValueError, InvalidOperation):
        raise ExpressionError(f"{text} is not a valid number of type {kind or 'Number'}.") from None


@register_filter("numberformat", "numberFormat")
def _numberformat(value: Any, format: Any = None) -> Any:  # noqa: A002 - Pebble's argument name
    """Java ``DecimalFormat`` patterns: ``0``/``#`` digits, ``,`` grouping, ``.`` fraction, ``%``; HALF_EVEN."""
    if value is None:
        return None
    if format is None:
        return _text(value)
    pattern = _text(format).split(";")[0]
    prefix = re.sub(r"[0#,.].*", "", pattern, flags=re.DOTALL)  # before the first digit symbol
    suffix = re.sub(r".*[0#,.]", "", pattern, flags=re.DOTALL)  # after the last one
    core = pattern[len(prefix):len(pattern) - len(suffix)]
    number = Decimal(str(value))
    if "%" in prefix + suffix:
        number *= 100
    int_part, _, frac_part = core.partition(".")
    min_frac, max_frac = frac_part.count("0"), len(frac_part.replace(",", ""))
    min_int = int_part.replace(",", "").count("0")
    grouping = len(int_part) - int_part.rfind(",") - 1 if "," in int_part else 0
    quantized = number.quantize(Decimal(1).scaleb(-max_frac), rounding=ROUND_HALF_EVEN)
    sign = "-" if quantized < 0 else ""
    digits = f"{abs(quantized):f}"
    whole, _, frac = digits.partition(".")
    frac = frac.rstrip("0").ljust(min_frac, "0")
    whole = whole.lstrip("0").rjust(min_int, "0")
    if grouping:
        groups: list[str] = []
        while len(whole) > grouping:
            groups.insert(0, whole[-grouping:])
            whole = whole[:-grouping]
        whole = ",".join([whole, *groups]) if whole else ",".join(groups)
    text = whole + ("." + frac if frac else "")
    return f"{sign}{prefix}{text or '0'}{suffix}"


#### Serialization ##########################################################################################

@register_filter("toJson", "json", "jsonEncode")
def _to_json(value: Any) -> str:
    return to_json(value)


@register_filter("string")
def _string(value: Any) -> Any:
    return None if value is None else _text(value)


def _ion_symbol(key: str) -> str:
    if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", key) and key not in ("null", "true", "false", "nan"):
        return key
    return "'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_ion(value: Any) -> str:
    """Ion text the way Jackson's Ion mapper writes a JSON-like value (``{a:1,b:"x",c:[1.5e0]}``)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "+inf" if value > 0 else "-inf"
        mantissa, _, exp = repr(value).partition("e")
        return f"{mantissa}e{int(exp) if exp else 0}"
    if isinstance(value, Decimal):
        text = str(value)
        return text if "." in text or "E" in text.upper() else text + "."
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, _dt.datetime):
        return to_output_string(value)
    if isinstance(value, _dt.date):
        return value.isoformat() + "T"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_ion_symbol(str(k))}:{to_ion(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_ion(v) for v in value) + "]"
    return json.dumps(_text(value), ensure_ascii=False)


@register_filter("toIon")
def _to_ion(value: Any) -> str:
    return to_ion(value)


def _yaml_scalar(value: Any) -> str:
    """A scalar as Jackson's YAML writer (MINIMIZE_QUOTES) prints it: plain when unambiguous, else JSON-style
    double quotes."""
    if value is None:
        return "null"
    if not isinstance(value, str):
        return to_output_string(value)
    if value and "\n" not in value:
        plain = _yaml.safe_dump(value, default_style=None, allow_unicode=True, width=2 ** 31 - 1)
        if plain.endswith("\n...\n"):
            plain = plain[:-5]
        plain = plain.rstrip("\n")
        if plain == value:
            return plain
    return json.dumps(value, ensure_ascii=False)


def _yaml_lines(value: Any, column: int, out: list[str]) -> None:
    """Block YAML like Jackson with INDENT_ARRAYS (SnakeYAML indent 2, indicator indent 1)."""
    pad = " " * column
    if isinstance(value, Mapping):
        for key, item in value.items():
            head = f"{pad}{_yaml_scalar(key if isinstance(key, str) else to_output_string(key))}:"
            if isinstance(item, Mapping) and item:
                out.append(head)
                _yaml_lines(item, column + 2, out)
            elif isinstance(item, (list, tuple)) and item:
                out.append(head)
                _yaml_lines(item, column, out)
            else:
                out.append(f"{head} {_yaml_inline(item)}")
    elif isinstance(value, (list, tuple)):
        prefix = " " * (column + 1) + "- "
        for item in value:
            if isinstance(item, (Mapping, list, tuple)) and item:
                nested: list[str] = []
                _yaml_lines(item, column + (3 if isinstance(item, Mapping) else 2), nested)
                out.append(prefix + nested[0].lstrip(" "))
                out.extend(nested[1:])
            else:
                out.append(prefix + _yaml_inline(item))
    else:
        out.append(pad + _yaml_inline(value))


def _yaml_inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    return _yaml_scalar(value)


@register_filter("yaml")
def _yaml_filter(value: Any) -> str:
    """YAML text as Kestra's ``yaml`` filter writes it (no document marker, arrays indented, minimal quotes)."""
    if value is None:
        return "null"
    out: list[str] = []
    _yaml_lines(value, 0, out)
    return "\n".join(out) + "\n"


@register_filter("jq")
def _jq(value: Any, expression: Any = None) -> Any:
    """All outputs of the jq ``expression`` as a list. A string input is parsed as JSON first."""
    if value is None:
        return None
    if expression is None:
        raise ExpressionError("The 'jq' filter expects an argument 'expression'.")
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            raise ExpressionError(f"Unable to parse jq value '{value}' with type 'java.lang.String'") from None
    else:
        data = json.loads(to_json(value))
    from falconet.runtime.expr.jq import jq as run_jq   # the jq engine (~0.2 MB) loads with the first jq filter
    return run_jq(data, str(expression))


#### Dates ##################################################################################################

@register_filter("date")
def _date(value: Any, format: Any = "iso", timeZone: Any = None, existingFormat: Any = None,  # noqa: A002,N803
          locale: Any = None) -> Any:
    if value is None:
        return None
    tz = dates.zone(timeZone)
    moment = dates.to_datetime(value, tz, existingFormat)
    return dates.format_datetime(moment, format, tz, locale)


@register_filter("dateAdd")
def _date_add(value: Any, amount: Any = None, unit: Any = None, format: Any = "iso",  # noqa: A002
              timeZone: Any = None, existingFormat: Any = None, locale: Any = None) -> Any:  # noqa: N803
    if value is None:
        return None
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ExpressionError("The 'dateAdd' filter expects an integer as argument 'amount'.")
    if unit is None:
        raise ExpressionError("The 'dateAdd' filter expects an argument 'unit'.")
    tz = dates.zone(timeZone)
    moment = dates.add(dates.to_datetime(value, tz, existingFormat), amount, str(unit))
    return dates.format_datetime(moment, format, tz, locale)


def _timestamp(name: str, unit: str) -> None:
    @register_filter(name)
    def fn(value: Any, timeZone: Any = None, existingFormat: Any = None) -> Any:  # noqa: N803
        if value is None:
            return None
        moment = dates.to_datetime(value, dates.zone(timeZone), existingFormat)
        seconds = dates.epoch(moment, "seconds")
        if unit == "micros":      # Kestra's TimestampMicroFilter: SECONDS.toNanos(epoch) + micro-of-second, a string
            return str(seconds * 1_000_000_000 + moment.microsecond)
        if unit == "nanos":       # Kestra returns nanoseconds as a string
            return str(seconds * 1_000_000_000 + moment.microsecond * 1000)
        return dates.epoch(moment, unit)


for _name, _unit in (("timestamp", "seconds"), ("timestampMilli", "millis"), ("timestampMicro", "micros"),
                     ("timestampNano", "nanos")):
    _timestamp(_name, _unit)


@register_filter("className")
def _class_name(value: Any) -> Any:
    return None if value is None else java_class(value)
