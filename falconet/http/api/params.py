"""Query-parameter parsing with Kestra's (Micronaut's) error statuses.

- a required parameter that is missing → 400 ``Bad Request: Required QueryValue [x] not specified``;
- a value that does not convert (``page=abc``, a bad date, ``timeRange=P1Y``) → 422
  ``Invalid entity: x: Failed to convert argument [x] for value [v]``;
- a constraint violation (``page=0``, ``size=-1``) → 422 ``Invalid entity: x: must be greater than or equal to 1``;
- ``startDate`` with ``timeRange``, or ``startDate`` after ``endDate`` → 422 ``Illegal argument: …``.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from werkzeug.datastructures import MultiDict

from falconet.runtime.kernel.errors import BadRequest, IllegalArgument, InvalidEntity, Violation
from falconet.runtime.kernel.execution import now
from falconet.runtime.kernel.state import State
from falconet.sdk.logs import LogLevel

UTC = timezone.utc
JAVA_INT_MIN, JAVA_INT_MAX = -2 ** 31, 2 ** 31 - 1


def convert_error(name: str, value: str, why: str = "") -> InvalidEntity:
    msg = f"Failed to convert argument [{name}] for value [{value}]" + (f": {why}" if why else "")
    return InvalidEntity([Violation(name, msg)])


def first(args: MultiDict, name: str) -> str | None:
    """The first value of ``name``, None when absent. ``MultiDict.get`` finds a missing key by catching the
    ``KeyError`` its ``[]`` raises, an HTTP exception (``BadRequestKeyError``) built for each miss; most
    optional parameters of a request are missing."""
    return args.get(name) if name in args else None


def required(args: MultiDict, name: str) -> str:
    value = first(args, name)
    if value is None or value == "":
        raise BadRequest(f"Required QueryValue [{name}] not specified")
    return value


def opt_str(args: MultiDict, name: str) -> str | None:
    value = first(args, name)
    return value if value not in (None, "") else None


def opt_int(args: MultiDict, name: str, default: int | None = None, *, minimum: int | None = None) -> int | None:
    raw = first(args, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise convert_error(name, raw) from None
    if not JAVA_INT_MIN <= value <= JAVA_INT_MAX:  # Kestra's paging and counts are Java ints
        raise convert_error(name, raw, "out of the range of a 32-bit integer")
    if minimum is not None and value < minimum:
        raise InvalidEntity([Violation(name, f"must be greater than or equal to {minimum}")])
    return value


def opt_bool(args: MultiDict, name: str, default: bool) -> bool:
    raw = first(args, name)
    if raw is None or raw == "":
        return default
    low = raw.lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise convert_error(name, raw)


def paging(args: MultiDict, default_size: int = 10) -> tuple[int, int, list[str]]:
    """(page ≥ 1, size ≥ 1, sort list such as ``["state.startDate:desc"]``)."""
    page = opt_int(args, "page", 1, minimum=1)
    size = opt_int(args, "size", default_size, minimum=1)
    sort = [s for raw in args.getlist("sort") for s in raw.split(",") if s]
    for s in sort:
        if s.rpartition(":")[2].lower() not in ("asc", "desc") and ":" in s:
            raise IllegalArgument(f"Invalid sort parameter '{s}': the order must be asc or desc")
    assert page is not None and size is not None
    return page, size, sort


#### Dates and durations ####################################################################################

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?")


def parse_datetime(name: str, raw: str) -> datetime:
    """``yyyy-MM-dd'T'HH:mm[:ss][.SSS][XXX]``; a value without offset is UTC."""
    if not _DATE.fullmatch(raw):
        raise convert_error(name, raw)
    text = raw.replace("Z", "+00:00")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise convert_error(name, raw) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def opt_datetime(args: MultiDict, name: str) -> datetime | None:
    raw = first(args, name)
    return None if raw in (None, "") else parse_datetime(name, raw)


_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?\d+)D)?(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?",
    re.IGNORECASE)


def parse_java_duration(name: str, raw: str) -> timedelta:
    """A ``java.time.Duration`` (``PnDTnHnMn.nS``): years, months and weeks are not durations (422)."""
    m = _DURATION.fullmatch(raw)
    if not m or raw.upper().endswith(("P", "T")) or not any(m.group(i) for i in range(2, 6)):
        raise convert_error(name, raw)
    sign = -1 if m.group(1) == "-" else 1
    try:
        days, hours, minutes, secs = (int(m.group(i) or 0) for i in range(2, 6))
        frac = m.group(6) or ""
        micros = int((frac + "000000")[:6]) if frac else 0
        if secs < 0:
            micros = -micros
        return sign * timedelta(days=days, hours=hours, minutes=minutes, seconds=secs, microseconds=micros)
    except (ValueError, OverflowError):  # more than 4,300 digits, or beyond timedelta's ±999,999,999 days
        raise convert_error(name, raw, "the duration is out of range") from None


def time_window(args: MultiDict) -> tuple[datetime | None, datetime | None]:
    """(startDate, endDate) from ``startDate``/``endDate``/``timeRange`` with Kestra's checks."""
    start = opt_datetime(args, "startDate")
    end = opt_datetime(args, "endDate")
    raw_range = opt_str(args, "timeRange")
    if raw_range is not None:
        if start is not None:
            raise IllegalArgument("Parameters 'startDate' and 'timeRange' are mutually exclusive")
        span = parse_java_duration("timeRange", raw_range)
        if span <= timedelta(0):
            raise IllegalArgument("Parameter 'timeRange' must be a positive duration")
        try:
            start = now() - span
        except OverflowError:  # before year 1
            raise convert_error("timeRange", raw_range, "the duration reaches before year 1") from None
    if start is not None and end is not None and start > end:
        raise IllegalArgument("Start date must be before End Date")
    return start, end


#### Labels, states, levels #################################################################################

def parse_labels(values: Sequence[str], name: str = "labels") -> list[tuple[str, str]]:
    """Repeated ``key:value`` (split at the first ``:``); an empty key or value is refused (422)."""
    out = []
    for raw in values:
        key, sep, value = raw.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InvalidEntity([Violation(name, f"Invalid label '{raw}': expected 'key:value' with a non-empty "
                                                 "key and value")])
        out.append((key, value))
    return out


def parse_state(name: str, raw: str) -> str:
    try:
        return State(raw.upper()).value
    except ValueError:
        raise convert_error(name, raw, f"not one of {', '.join(s.value for s in State)}") from None


def parse_states(values: Sequence[str], name: str = "state") -> list[str]:
    return [parse_state(name, v) for raw in values for v in raw.split(",") if v]


def opt_level(args: MultiDict, name: str = "minLevel") -> str | None:
    raw = opt_str(args, name)
    if raw is None:
        return None
    level = LogLevel.parse(raw)
    if level is None:
        raise convert_error(name, raw, f"not one of {', '.join(LogLevel.names())}")
    return level.name


def sort_items(items: list[dict[str, Any]], sort: Sequence[str], default: Sequence[str]) -> list[dict[str, Any]]:
    """Sort documents by dotted fields (``namespace:asc``, ``state.startDate:desc``); stable, nulls first."""
    def dig(doc: Any, path: str) -> Any:
        for part in path.split("."):
            doc = doc.get(part) if isinstance(doc, dict) else None
        return doc

    for spec in reversed(list(sort) or list(default)):
        field, _, order = spec.partition(":")
        items = sorted(items, key=lambda d: (dig(d, field) is not None, str(dig(d, field) or "")),
                       reverse=order.lower() == "desc")
    return items
