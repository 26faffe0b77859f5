"""Amazon Ion text rows, the format Kestra writes for serialized row files (``.ion``): one value per line.

Reading and writing stream line by line through the ``amazon.ion`` library, so a file of any size never
sits whole in memory. Values convert both ways between Ion and plain Python (JSON-able) values:

=================  ==========================================================
Python             Ion
=================  ==========================================================
dict / list        struct / list
str, bool, None    string, bool, null
int / float        int / float (``1.5e+0``)
Decimal            decimal
datetime / date    timestamp (a naive datetime is written as UTC)
=================  ==========================================================

When read back, Ion timestamps become ISO-8601 strings (Kestra's JSON form of an Instant), decimals become
floats (integers when integral), blobs/clobs become str — so the rows are directly usable as task outputs.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import re
from json.encoder import encode_basestring
from typing import IO, Any, Callable, Iterable, Iterator, Sequence, cast

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.storage.ionvalues import plain_ion, simpleion

__all__ = ["write_ion_rows", "read_ion_rows", "to_ion_line", "from_ion_value", "text_row_encoder"]


#### writing ################################################################################################

def _prepare(value: Any) -> Any:
    """Plain Python → values ``simpleion`` writes as Kestra does (naive datetimes as UTC)."""
    if isinstance(value, dict):
        return {str(k): _prepare(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_prepare(v) for v in value]
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
    if isinstance(value, (_dt.time, _dt.timedelta)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (str, int, float, bool, decimal.Decimal)) or value is None:
        return value
    return str(value)


def to_ion_line(value: Any) -> str:
    """One value as a single line of Ion text (no version marker, no trailing newline)."""
    text = simpleion().dumps(_prepare(value), binary=False, omit_version_marker=True)
    return text.replace("\n", "\\n") if "\n" in text else text


def write_ion_rows(fileobj: IO[str], rows: Iterable[Any]) -> int:
    """Write each row as one Ion text line to the text file ``fileobj``; return the number of rows.

    Blocking (file I/O): call it from a worker thread (``trio.to_thread.run_sync``) in async code.
    """
    n = 0
    for row in rows:
        fileobj.write(to_ion_line(row))
        fileobj.write("\n")
        n += 1
    return n


_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_KEYWORDS = frozenset({"null", "true", "false", "nan"})


def _field_name(name: str) -> str:
    """``name`` as an Ion text field name: a bare symbol when it is an identifier, else a string."""
    return name if _SYMBOL.match(name) and name not in _KEYWORDS else encode_basestring(name)


def text_row_encoder(columns: Sequence[str] | None) -> Callable[[Sequence[str | None]], str]:
    """A fast encoder of rows of strings (or None) as Ion text lines: a struct of ``columns`` (missing
    values null, extra ones dropped; a repeated column keeps its first place and its last value, as a map
    does), or a list when ``columns`` is None. The same Ion as :func:`to_ion_line`, several times faster:
    JSON string escapes are valid Ion escapes, and the struct is one format string built once."""
    def encoded(values: Sequence[str | None]) -> list[str]:
        if None in values:
            return ["null" if v is None else encode_basestring(v) for v in values]
        return list(map(encode_basestring, cast("Sequence[str]", values)))

    if columns is None:
        return lambda values: "[" + ",".join(encoded(values)) + "]"
    last = {str(c): i for i, c in enumerate(columns)}
    template = "{{" + ",".join(_field_name(name).replace("{", "{{").replace("}", "}}") + ":{%d}" % i
                               for name, i in last.items()) + "}}"
    width = len(columns)

    def struct(values: Sequence[str | None]) -> str:
        texts = encoded(values)
        if len(texts) < width:
            texts += ["null"] * (width - len(texts))
        return template.format(*texts)
    return struct


#### reading ################################################################################################

def decimal_number(value: decimal.Decimal) -> int | float:
    """A decimal as a JSON number: an int when written without fraction digits (``12``, ``1E+2``), else a
    float (``1.0``, ``0.5``, and the non-finite ``Infinity``/``NaN``)."""
    exponent = value.as_tuple().exponent
    return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)


def _json_scalar(value: Any) -> Any:
    """An Ion scalar JSON has no type for, as a JSON-able value (decimal → int/float, timestamp → ISO)."""
    if isinstance(value, decimal.Decimal):
        return decimal_number(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        text = _dt.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                            value.microsecond, tzinfo=value.tzinfo).isoformat()
        return text.replace("+00:00", "Z")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def from_ion_value(value: Any) -> Any:
    """An ``amazon.ion`` value (IonPy* types) → plain JSON-able Python."""
    return plain_ion(value, _json_scalar)


def read_ion_rows(fileobj: Iterable[str], convert: Callable[[Any], Any] = from_ion_value) -> Iterator[Any]:
    """Yield the values of an Ion text file one by one, as plain Python (``convert``, by default
    :func:`from_ion_value`).

    Reads line by line; a value spanning several lines is accumulated until it parses. A line holding
    several top-level values yields each of them. Blocking: iterate it in a worker thread in async code.
    Raises :class:`IllegalArgument` on text that is not Ion.
    """
    ion = simpleion()
    pending = ""
    for line in fileobj:
        if not line.strip() and not pending:
            continue
        if line.startswith("$ion_1_0") and not pending:
            line = line[len("$ion_1_0"):]
            if not line.strip():
                continue
        pending += line
        try:
            values = ion.loads(pending, single_value=False)
        except Exception:  # the library raises bare IonException/ValueError on incomplete text
            continue
        pending = ""
        for v in values:
            yield convert(v)
    if pending.strip():
        try:
            values = ion.loads(pending, single_value=False)
        except Exception as exc:
            raise IllegalArgument(f"Invalid Ion content: {pending[:200]!r}") from exc
        for v in values:
            yield convert(v)
