"""Pebble's built-in filters and Kestra's additions (``io.kestra.core.runners.pebble.filters``), plus
Pebble/Kestra tests.

Every filter receives the piped value first; a null input gives a null result unless stated. Argument
names are Pebble's, so named arguments (``date(format='iso', timeZone='UTC')``) work as in Kestra.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Callable

from falconet.runtime.expr import safe_regex
from falconet.runtime.kernel.limits import json_loads
from falconet.runtime.expr import filters_data  # noqa: F401 - registers the collection, number, serialization and date filters
from falconet.runtime.expr.base import ExpressionError, PebbleUndefined, check_defined
from falconet.runtime.expr.registry import (
    FILTERS, TESTS, is_empty, java_class, java_trim, register_filter, register_test,
)
from falconet.runtime.expr.registry import text as _text

__all__ = ["FILTERS", "TESTS"]


#### Strings ################################################################################################

@register_filter("upper")
def _upper(value: Any) -> Any:
    return None if value is None else _text(value).upper()


@register_filter("lower")
def _lower(value: Any) -> Any:
    return None if value is None else _text(value).lower()


@register_filter("trim")
def _trim(value: Any) -> Any:
    return None if value is None else java_trim(_text(value))


@register_filter("capitalize")
def _capitalize(value: Any) -> Any:
    if value is None:
        return None
    text = _text(value)
    return text[:1].upper() + text[1:]


@register_filter("title")
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


@register_filter("abbreviate")
def _abbreviate(value: Any, length: int) -> Any:
    if value is None:
        return None
    text = _text(value)
    if len(text) <= length:
        return text
    if length < 4:
        raise ExpressionError("Minimum abbreviation width is 4")
    return text[:length - 3] + "..."


@register_filter("slugify")
def _slugify(value: Any) -> Any:
    """Kestra's ``Slugify.of``: whitespace → ``-``, accents dropped, other non-``[A-Za-z0-9_-]`` removed,
    ``_`` → ``-``, repeated dashes collapsed, one leading/trailing dash removed, lower case."""
    if value is None:
        return None
    text = re.sub(r"\s", "-", _text(value))
    text = re.sub(r"[^A-Za-z0-9_-]", "", unicodedata.normalize("NFD", text)).replace("_", "-")
    while "--" in text:
        text = text.replace("--", "-")
    return text.removeprefix("-").removesuffix("-").lower()


def _substring(name: str, pick: Callable[[str, str], str]) -> None:
    @register_filter(name)
    def fn(value: Any, separator: Any = None) -> Any:
        if value is None:
            return None
        return pick(_text(value), "" if separator is None else _text(separator))


_substring("substringBefore", lambda s, sep: s if not sep else s.split(sep, 1)[0])
_substring("substringAfter", lambda s, sep: "" if sep not in s else s.split(sep, 1)[1] if sep else s)
_substring("substringBeforeLast", lambda s, sep: s if not sep or sep not in s else s.rsplit(sep, 1)[0])
_substring("substringAfterLast", lambda s, sep: "" if not sep or sep not in s else s.rsplit(sep, 1)[1])


@register_filter("startsWith")
def _starts_with(piped: Any, /, value: Any = None) -> Any:
    return False if piped is None or value is None else _text(piped).startswith(_text(value))


@register_filter("endsWith")
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
                text = safe_regex.compile(_text(old)).sub(_java_replacement(_text(new)), text)
            except safe_regex.RegexError as exc:
                raise ExpressionError(str(exc)) from None
            except (ValueError, IndexError) as exc:  # a replacement naming a missing group
                raise ExpressionError(f"Invalid replacement for the regular expression '{old}': {exc}") from None
        else:
            text = text.replace(_text(old), _text(new))
    return text


def _deep(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_deep(v, fn) for v in value]
    return fn(_text(value))


@register_filter("replace")
def _replace(value: Any, replace_pairs: Any = None, regexp: Any = False) -> Any:
    """``replace({'a': 'b'})``; ``regexp=true`` treats keys as Java regexes. Maps/lists are processed deeply."""
    if value is None:
        return None
    if not isinstance(replace_pairs, Mapping):
        raise ExpressionError("The argument 'replace_pairs' is required.")
    return _deep(value, lambda s: _replace_text(s, replace_pairs, bool(regexp)))


@register_filter("escapeChar")
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


@register_filter("escape", "e")
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


@register_filter("raw")
def _raw(value: Any) -> Any:
    return value


@register_filter("urlencode")
def _urlencode(value: Any) -> Any:
    return None if value is None else urllib.parse.quote_plus(_text(value), safe="*")


@register_filter("urldecode")
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


@register_filter("indent")
def _indent_filter(value: Any, amount: Any = None, prefix: Any = " ") -> Any:
    """Indents every line but the first (the first is assumed to be in place already)."""
    return _indent(value, amount, prefix, False, "indent")


@register_filter("nindent")
def _nindent(value: Any, amount: Any = None, prefix: Any = " ") -> Any:
    """A newline, then every line indented."""
    return _indent(value, amount, prefix, True, "nindent")


def _digest(name: str, algorithm: str) -> None:
    @register_filter(name)
    def fn(value: Any) -> Any:
        return None if value is None else hashlib.new(algorithm, _text(value).encode()).hexdigest()


for _name, _algo in (("sha1", "sha1"), ("sha256", "sha256"), ("sha512", "sha512"), ("md5", "md5")):
    _digest(_name, _algo)


@register_filter("base64encode")
def _b64encode(value: Any) -> Any:
    if value is None:
        return None
    raw = value if isinstance(value, bytes) else _text(value).encode()
    return base64.b64encode(raw).decode("ascii")


@register_filter("base64decode")
def _b64decode(value: Any) -> Any:
    if value is None:
        return None
    try:
        return base64.b64decode("".join(_text(value).split()), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ExpressionError(f"Unable to decode base64 value: {exc}") from None


@register_filter("split")
def _split(value: Any, delimiter: Any = None, limit: Any = None) -> Any:
    """Java's ``String.split(regex[, limit])``: the delimiter is a regex; without a limit, trailing empty
    strings are dropped; no match gives the whole string."""
    if value is None:
        return None
    if delimiter is None:
        raise ExpressionError("missing delimiter parameter in split filter")
    text = _text(value)
    try:
        regex = safe_regex.compile(_text(delimiter))
    except safe_regex.RegexError as exc:
        raise ExpressionError(f"Invalid split delimiter: {exc}") from None
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


#### Tests (`x is <test>`) ##################################################################################


@register_test("defined")
def _is_defined(value: Any) -> bool:
    return not isinstance(value, PebbleUndefined)


@register_test("null", "none")
def _is_null(value: Any) -> bool:
    return check_defined(value) is None


@register_test("empty")
def _is_empty(value: Any) -> bool:
    return is_empty(check_defined(value))


def _integer(value: Any, test: str) -> int:
    check_defined(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ExpressionError(f"Can not perform {test} test on a value of type {java_class(value)}")
    return int(value)


@register_test("even")
def _is_even(value: Any) -> bool:
    return _integer(value, "even") % 2 == 0


@register_test("odd")
def _is_odd(value: Any) -> bool:
    return _integer(value, "odd") % 2 == 1


@register_test("iterable")
def _is_iterable(value: Any) -> bool:
    return isinstance(check_defined(value), (list, tuple, set, frozenset))


@register_test("map")
def _is_map(value: Any) -> bool:
    return isinstance(check_defined(value), Mapping)


@register_test("json")
def _is_json(value: Any) -> bool:
    """Kestra's ``json`` test: a map, a list, or a string that parses as JSON."""
    check_defined(value)
    if isinstance(value, (Mapping, list, tuple)):
        return True
    if not isinstance(value, str):
        return False
    try:
        json_loads(value)
    except ValueError:
        return False
    return True
