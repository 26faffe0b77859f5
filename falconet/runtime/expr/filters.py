"""Pebble's built-in filters and Kestra's additions (reference §6.4), plus Pebble/Kestra tests.

Every filter receives the piped value first; a null input gives a null result unless stated. Argument
names are Pebble's, so named arguments (``date(format='iso', timeZone='UTC')``) work as in Kestra.
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import functools
import hashlib
import html
import json
import re
import unicodedata
import urllib.parse
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from collections.abc import Mapping
from typing import Any, Callable

import yaml as _yaml

from . import dates
from .base import ExpressionError, PebbleUndefined, check_defined
from .jq import jq as _run_jq
from .output import to_json, to_output_string

FILTERS: dict[str, Callable[..., Any]] = {}
TESTS: dict[str, Callable[..., bool]] = {}


def _filter(*names: str, lenient: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a filter. An undefined input or argument makes the result that same undefined value, so the
    error surfaces where it is used (``{{ a.b | upper }}`` → ``Unable to find `b```) while ``a.b | upper ?? x``
    still falls back like Kestra. ``lenient`` filters (``default``) receive an undefined input."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def strict(piped: Any, /, *args: Any, **kwargs: Any) -> Any:
            if not lenient and isinstance(piped, PebbleUndefined):
                return piped
            for arg in (*args, *kwargs.values()):
                if isinstance(arg, PebbleUndefined):
                    return arg
            try:
                return fn(piped, *args, **kwargs)
            except TypeError as exc:
                if "argument" in str(exc):
                    raise ExpressionError(f"Filter '{names[0]}': {exc}") from None
                raise
        for name in names:
            FILTERS[name] = strict
        return strict
    return wrap


def _text(value: Any) -> str:
    return to_output_string(value)


#### Strings ################################################################################################

@_filter("upper")
def _upper(value: Any) -> Any:
    return None if value is None else _text(value).upper()


@_filter("lower")
def _lower(value: Any) -> Any:
    return None if value is None else _text(value).lower()


@_filter("trim")
def _trim(value: Any) -> Any:
    return None if value is None else _text(value).strip()


@_filter("capitalize")
def _capitalize(value: Any) -> Any:
    if value is None:
        return None
    text = _text(value)
    return text[:1].upper() + text[1:]


@_filter("title")
def _title(value: Any) -> Any:
    """Upper-cases the first letter of every whitespace-separated word; the rest is unchanged (Pebble)."""
    if value is None:
        return None
    out, capitalize = [], True
    for ch in _text(value):
        if ch.isspace():
            capitalize = True
        elif capitalize:
            ch = ch.title()
            capitalize = False
        out.append(ch)
    return "".join(out)


@_filter("abbreviate")
def _abbreviate(value: Any, length: int) -> Any:
    if value is None:
        return None
    text = _text(value)
    if len(text) <= length:
        return text
    if length < 4:
        raise ExpressionError("Minimum abbreviation width is 4")
    return text[:length - 3] + "..."


@_filter("slugify")
def _slugify(value: Any) -> Any:
    """Kestra's ``Slugify.of``: whitespace → ``-``, accents dropped, non ``[A-Za-z0-9_-]`` removed, ``_`` → ``-``."""
    if value is None:
        return None
    text = re.sub(r"\s", "-", _text(value))
    text = re.sub(r"[^A-Za-z0-9_-]", "", unicodedata.normalize("NFD", text)).replace("_", "-")
    while "--" in text:
        text = text.replace("--", "-")
    return text.removeprefix("-").removesuffix("-").lower()


def _substring(name: str, pick: Callable[[str, str], str]) -> None:
    @_filter(name)
    def fn(value: Any, separator: Any = None) -> Any:
        if value is None:
            return None
        return pick(_text(value), "" if separator is None else _text(separator))


_substring("substringBefore", lambda s, sep: s if not sep else s.split(sep, 1)[0])
_substring("substringAfter", lambda s, sep: "" if sep not in s else s.split(sep, 1)[1] if sep else s)
_substring("substringBeforeLast", lambda s, sep: s if not sep or sep not in s else s.rsplit(sep, 1)[0])
_substring("substringAfterLast", lambda s, sep: "" if not sep or sep not in s else s.rsplit(sep, 1)[1])


@_filter("startsWith")
def _starts_with(piped: Any, /, value: Any = None) -> Any:
    return False if piped is None or value is None else _text(piped).startswith(_text(value))


@_filter("endsWith")
def _ends_with(piped: Any, /, value: Any = None) -> Any:
    return False if piped is None or value is None else _text(piped).endswith(_text(value))


def _java_replacement(repl: str) -> str:
    """Java regex replacement (``$1``, ``${name}``, ``\\$``) → Python's."""
    out, i = [], 0
    while i < len(repl):
        ch = repl[i]
        if ch == "\\" and i + 1 < len(repl):
            out.append("\\\\" if repl[i + 1] == "\\" else repl[i + 1])
            i += 2
        elif ch == "$" and i + 1 < len(repl) and repl[i + 1] == "{":
            end = repl.index("}", i)
            out.append(f"\\g<{repl[i + 2:end]}>")
            i = end + 1
        elif ch == "$" and i + 1 < len(repl) and repl[i + 1].isdigit():
            j = i + 1
            while j < len(repl) and repl[j].isdigit():
                j += 1
            out.append(f"\\g<{repl[i + 1:j]}>")
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _replace_text(text: str, pairs: Mapping[Any, Any], regexp: bool) -> str:
    for old, new in pairs.items():
        if regexp:
            try:
                text = re.sub(_text(old), _java_replacement(_text(new)), text)
            except (re.error, IndexError) as exc:
                raise ExpressionError(f"Invalid regular expression '{old}': {exc}") from None
        else:
            text = text.replace(_text(old), _text(new))
    return text


def _deep(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_deep(v, fn) for v in value]
    return fn(_text(value))


@_filter("replace")
def _replace(value: Any, replace_pairs: Any = None, regexp: Any = False) -> Any:
    """``replace({'a': 'b'})``; ``regexp=true`` treats keys as Java regexes. Maps/lists are processed deeply."""
    if value is None:
        return None
    if not isinstance(replace_pairs, Mapping):
        raise ExpressionError("The argument 'replace_pairs' is required.")
    return _deep(value, lambda s: _replace_text(s, replace_pairs, bool(regexp)))


@_filter("escapeChar")
def _escape_char(value: Any, type: Any = None) -> Any:  # noqa: A002 - Pebble's argument name
    if value is None:
        return None
    kinds = {"single": ("'", "\\'"), "double": ('"', '\\"'), "shell": ("'", "'\\''")}
    if type is None:
        raise ExpressionError("The 'escapeChar' filter expects an argument 'type'.")
    kind = kinds.get(str(type).lower())
    if kind is None:
        raise ExpressionError("The 'escapeChar' filter expects the value of 'type' to be either 'single', "
                              "'double', or 'shell'.")
    return _deep(value, lambda s: s.replace(*kind))


@_filter("escape", "e")
def _escape(value: Any, strategy: Any = "html") -> Any:
    if value is None:
        return None
    text = _text(value)
    if strategy in ("html", None):
        return html.escape(text, quote=True).replace("&#x27;", "&#39;")
    if strategy == "json":
        return json.dumps(text, ensure_ascii=False)[1:-1]
    if strategy == "url_param":
        return urllib.parse.quote(text, safe="")
    raise ExpressionError(f"Unknown escaping strategy [{strategy}]")


@_filter("raw")
def _raw(value: Any) -> Any:
    return value


@_filter("urlencode")
def _urlencode(value: Any) -> Any:
    return None if value is None else urllib.parse.quote_plus(_text(value), safe="*")


@_filter("urldecode")
def _urldecode(value: Any) -> Any:
    return None if value is None else urllib.parse.unquote_plus(_text(value))


def _indent(value: Any, amount: Any, prefix: Any, leading_newline: bool, name: str) -> Any:
    if value is None:
        return None
    text = _text(value)
    if text == "":
        return text
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise ExpressionError(f"The '{name}' filter expects a positive integer >=0 as argument 'amount'.")
    newline = next((sep for sep in ("\r\n", "\n\r", "\n", "\r") if sep in text), "\n")
    if leading_newline:
        text = newline + text
    return text.replace(newline, newline + _text(prefix) * amount)


@_filter("indent")
def _indent_filter(value: Any, amount: Any = None, prefix: Any = " ") -> Any:
    """Indents every line but the first (the first is assumed to be in place already)."""
    return _indent(value, amount, prefix, False, "indent")


@_filter("nindent")
def _nindent(value: Any, amount: Any = None, prefix: Any = " ") -> Any:
    """A newline, then every line indented."""
    return _indent(value, amount, prefix, True, "nindent")


def _digest(name: str, algorithm: str) -> None:
    @_filter(name)
    def fn(value: Any) -> Any:
        return None if value is None else hashlib.new(algorithm, _text(value).encode()).hexdigest()


for _name, _algo in (("sha1", "sha1"), ("sha256", "sha256"), ("sha512", "sha512"), ("md5", "md5")):
    _digest(_name, _algo)


@_filter("base64encode")
def _b64encode(value: Any) -> Any:
    if value is None:
        return None
    raw = value if isinstance(value, bytes) else _text(value).encode()
    return base64.b64encode(raw).decode("ascii")


@_filter("base64decode")
def _b64decode(value: Any) -> Any:
    if value is None:
        return None
    try:
        return base64.b64decode("".join(_text(value).split()), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ExpressionError(f"Unable to decode base64 value: {exc}") from None


@_filter("split")
def _split(value: Any, delimiter: Any = None, limit: Any = None) -> Any:
    """Java's ``String.split(regex[, limit])``: the delimiter is a regex; without a limit, trailing empty
    strings are dropped; no match gives the whole string."""
    if value is None:
        return None
    if delimiter is None:
        raise ExpressionError("missing delimiter parameter in split filter")
    text = _text(value)
    try:
        regex = re.compile(_text(delimiter))
    except re.error as exc:
        raise ExpressionError(f"Invalid split delimiter '{delimiter}': {exc}") from None
    max_parts = int(limit) if limit is not None else 0
    parts: list[str] = []
    last = 0
    for m in regex.finditer(text):
        if 0 < max_parts <= len(parts) + 1:
            break
        if m.end() == 0:                     # a zero-width match at the start never yields a leading ""
            continue
        parts.append(text[last:m.start()])
        last = m.end()
    parts.append(text[last:])
    if max_parts == 0 and len(parts) > 1:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


#### Collections ############################################################################################

@_filter("default", "d", lenient=True)
def _default(value: Any, default: Any = None) -> Any:
    """The default when the value is undefined, null, an empty string, list or map (Pebble)."""
    if isinstance(value, PebbleUndefined) or value is None:
        return default
    if isinstance(value, (str, list, tuple, Mapping)) and len(value) == 0:
        return default
    return value


@_filter("first")
def _first(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value[:1] if value else None
    if isinstance(value, Mapping):
        value = list(value.values())
    seq = list(value)
    return seq[0] if seq else None


@_filter("last")
def _last(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value[-1:] if value else None
    if isinstance(value, Mapping):
        value = list(value.values())
    seq = list(value)
    return seq[-1] if seq else None


@_filter("length")
def _length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, Mapping, set)):
        return len(value)
    return len(_text(value))


@_filter("join")
def _join(value: Any, separator: Any = "") -> Any:
    if value is None:
        return None
    items = value.values() if isinstance(value, Mapping) else value
    return _text(separator).join(_text(v) for v in items)


@_filter("keys")
def _keys(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, (list, tuple)):
        return list(range(len(value)))
    raise ExpressionError(f"The 'keys' filter can only be applied to maps, not {type(value).__name__}.")


@_filter("values")
def _values(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.values())
    raise ExpressionError(f"The 'values' filter can only be applied to maps, not {type(value).__name__}.")


@_filter("merge")
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


@_filter("reverse")
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
        return sorted(list(value), reverse=reverse)
    except TypeError:
        raise ExpressionError("The 'sort' filter needs values of one comparable type") from None


@_filter("sort")
def _sort(value: Any) -> Any:
    return _sort_values(value, False)


@_filter("rsort")
def _rsort(value: Any) -> Any:
    return _sort_values(value, True)


@_filter("slice")
def _slice(value: Any, fromIndex: Any = 0, toIndex: Any = None) -> Any:  # noqa: N803 - Pebble's names
    if value is None:
        return None
    seq = value if isinstance(value, str) else list(value)
    end = len(seq) if toIndex is None else int(toIndex)
    start = int(fromIndex)
    if start < 0 or end > len(seq) or start > end:
        raise ExpressionError(f"slice: indexes {start}..{end} are out of range for a length of {len(seq)}")
    return seq[start:end]


@_filter("flatten")
def _flatten(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ExpressionError("The 'flatten' filter can only be applied to lists.")
    out: list[Any] = []
    for item in value:
        out.extend(item) if isinstance(item, (list, tuple)) else out.append(item)
    return out


@_filter("chunk")
def _chunk(value: Any, size: Any = None) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ExpressionError("The 'chunk' filter can only be applied to lists.")
    if not isinstance(size, int) or size <= 0:
        raise ExpressionError("The 'chunk' filter expects a positive integer as argument 'size'.")
    return [list(value[i:i + size]) for i in range(0, len(value), size)]


@_filter("distinct")
def _distinct(value: Any) -> Any:
    if value is None:
        return None
    out: list[Any] = []
    for item in value:
        if item not in out:
            out.append(item)
    return out


#### Numbers ################################################################################################

@_filter("abs")
def _abs(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return abs(value)
    raise ExpressionError(f"The 'abs' filter needs a number, got '{_text(value)}'")


_NUMBER_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfFlL]?$|^[+-]?0[xX][0-9a-fA-F]+$")


@_filter("number")
def _number(value: Any, type: Any = None) -> Any:  # noqa: A002 - Pebble's argument name
    """Parse a string into a number (``INT``/``LONG``/``BIGINTEGER`` → int, ``FLOAT``/``DOUBLE`` → float,
    ``BIGDECIMAL`` → Decimal, no type → int when integral text, else float)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ExpressionError("'number' filter can only be applied to String. Actual type was: "
                              + _java_class(value))
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


@_filter("numberformat")
def _numberformat(value: Any, format: Any = None) -> Any:  # noqa: A002 - Pebble's argument name
    """Java ``DecimalFormat`` patterns: ``0``/``#`` digits, ``,`` grouping, ``.`` fraction, ``%``; HALF_EVEN."""
    if value is None:
        return None
    if format is None:
        return _text(value)
    pattern = _text(format).split(";")[0]
    prefix = re.match(r"^[^0#,.]*", pattern).group()
    suffix = re.search(r"[^0#,.]*$", pattern).group()
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
        groups = []
        while len(whole) > grouping:
            groups.insert(0, whole[-grouping:])
            whole = whole[:-grouping]
        whole = ",".join([whole, *groups]) if whole else ",".join(groups)
    text = whole + ("." + frac if frac else "")
    return f"{sign}{prefix}{text or '0'}{suffix}"


_JAVA_CLASSES = ((bool, "java.lang.Boolean"), (int, "java.lang.Long"), (float, "java.lang.Double"),
                 (Decimal, "java.math.BigDecimal"), (str, "java.lang.String"), (Mapping, "java.util.LinkedHashMap"),
                 (list, "java.util.ArrayList"), (tuple, "java.util.ArrayList"),
                 (_dt.datetime, "java.time.ZonedDateTime"), (_dt.date, "java.time.LocalDate"))


def _java_class(value: Any) -> str:
    for kind, name in _JAVA_CLASSES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


@_filter("className")
def _class_name(value: Any) -> Any:
    return None if value is None else _java_class(value)


#### Serialization ##########################################################################################

@_filter("toJson", "json", "jsonEncode")
def _to_json(value: Any) -> str:
    return to_json(value)


@_filter("string")
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


@_filter("toIon")
def _to_ion(value: Any) -> str:
    return to_ion(value)


class _YamlDumper(_yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)          # Jackson's INDENT_ARRAYS


def _yaml_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _yaml_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_plain(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return to_output_string(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


@_filter("yaml")
def _yaml_filter(value: Any) -> str:
    if value is None:
        return "null"
    return _yaml.dump(_yaml_plain(value), Dumper=_YamlDumper, default_flow_style=False, sort_keys=False,
                      allow_unicode=True, width=2 ** 31 - 1)


@_filter("jq")
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
    return _run_jq(data, str(expression))


#### Dates ##################################################################################################

@_filter("date")
def _date(value: Any, format: Any = "iso", timeZone: Any = None, existingFormat: Any = None,  # noqa: A002,N803
          locale: Any = None) -> Any:
    if value is None:
        return None
    tz = dates.zone(timeZone)
    moment = dates.to_datetime(value, tz, existingFormat)
    return dates.format_datetime(moment, format, tz, locale)


@_filter("dateAdd")
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
    @_filter(name)
    def fn(value: Any, timeZone: Any = None, existingFormat: Any = None) -> Any:  # noqa: N803
        if value is None:
            return None
        return dates.epoch(dates.to_datetime(value, dates.zone(timeZone), existingFormat), unit)


for _name, _unit in (("timestamp", "seconds"), ("timestampMilli", "millis"), ("timestampMicro", "micros"),
                     ("timestampNano", "nanos")):
    _timestamp(_name, _unit)


#### Tests (`x is <test>`) ##################################################################################

def _test(*names: str) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    def wrap(fn: Callable[..., bool]) -> Callable[..., bool]:
        for name in names:
            TESTS[name] = fn
        return fn
    return wrap


@_test("defined")
def _is_defined(value: Any) -> bool:
    return not isinstance(value, PebbleUndefined)


@_test("null", "none")
def _is_null(value: Any) -> bool:
    return check_defined(value) is None


@_test("empty")
def _is_empty(value: Any) -> bool:
    check_defined(value)
    if value is None:
        return True
    if isinstance(value, (str, list, tuple, Mapping, set)):
        return len(value) == 0
    return False


def _integer(value: Any, test: str) -> int:
    check_defined(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ExpressionError(f"Can not perform {test} test on a value of type {_java_class(value)}")
    return int(value)


@_test("even")
def _is_even(value: Any) -> bool:
    return _integer(value, "even") % 2 == 0


@_test("odd")
def _is_odd(value: Any) -> bool:
    return _integer(value, "odd") % 2 == 1


@_test("iterable")
def _is_iterable(value: Any) -> bool:
    return isinstance(check_defined(value), (list, tuple, set, frozenset))


@_test("map")
def _is_map(value: Any) -> bool:
    return isinstance(check_defined(value), Mapping)


@_test("json")
def _is_json(value: Any) -> bool:
    """Kestra's ``json`` test: a map, a list, or a string that parses as JSON."""
    check_defined(value)
    if isinstance(value, (Mapping, list, tuple)):
        return True
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True
