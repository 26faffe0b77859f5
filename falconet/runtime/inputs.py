"""Typing and validation of execution inputs, flow outputs and Pause ``onResume`` inputs (reference §3.2).

Values arrive as strings (multipart form fields), as already-typed values (JSON, trigger inputs, subflow
inputs) or, for FILE inputs, as a local path or a ``kestra:///`` URI. They leave as the typed values the
execution document stores: INT/FLOAT numbers, BOOLEAN booleans, DATETIME ISO strings, DATE/TIME ISO strings,
DURATION ISO strings, JSON/YAML maps or lists, FILE URIs, SECRET ciphertext.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from .durations import parse_duration

__all__ = ["parse_bound"]

#### Scalar parsers #########################################################################################

_INSTANT_RE = re.compile(
    r"^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2}(?::?\d{2})?)$",
    re.IGNORECASE)


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant with a zone (``2019-10-06T18:27:49Z``, ``…+02:00``) -> aware UTC datetime.
    Raises ValueError with Java's wording when it cannot be parsed."""
    m = _INSTANT_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"Text '{text}' could not be parsed at index 0")
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    if zone.upper() == "Z":
        tz = timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]),
                                       seconds=int(digits[4:6] or 0)))
    try:
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec or 0), micro, tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"Text '{text}' could not be parsed: {exc}") from None
    return value.astimezone(timezone.utc)


def parse_local_date(text: str) -> date:
    if not isinstance(text, str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", text.strip()):
        raise ValueError(f"Text '{text}' could not be parsed at index 0")
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"Text '{text}' could not be parsed: {exc}") from None


def parse_local_time(text: str) -> time:
    if not isinstance(text, str) or not re.match(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$", text.strip()):
        raise ValueError(f"Text '{text}' could not be parsed at index 0")
    t = text.strip()
    if "." in t:
        head, frac = t.split(".")
        t = f"{head}.{frac[:6].ljust(6, '0')}"
    try:
        return time.fromisoformat(t)
    except ValueError as exc:
        raise ValueError(f"Text '{text}' could not be parsed: {exc}") from None


def parse_bound(itype: str, value: Any) -> Any:
    """A ``min``/``max``/``after``/``before`` bound of an input definition, parsed for comparison.
    Raises ValueError naming the bad value."""
    try:
        if itype == "INT":
            if isinstance(value, bool) or not (isinstance(value, int) or re.match(r"^[-+]?\d+$", str(value).strip())):
                raise ValueError
            return int(value)
        if itype == "FLOAT":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if itype == "DATETIME":
            return parse_instant(str(value))
        if itype == "DATE":
            return parse_local_date(str(value))
        if itype == "TIME":
            return parse_local_time(str(value))
        if itype == "DURATION":
            return parse_duration(str(value))
    except ValueError:
        raise ValueError(f"Invalid bound `{value}` for an input of type {itype}") from None
    raise ValueError(f"Inputs of type {itype} have no bounds")
