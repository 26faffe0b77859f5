"""Dates as Kestra's ``date``/``dateAdd``/``timestamp*`` filters and ``now()`` see them.

* :func:`zone` resolves a Java ``ZoneId`` string (``UTC``, ``Europe/Paris``, ``+02:00``, ``GMT+2``; ``None`` =
  the server zone from ``$TZ`` or ``/etc/localtime``).
* :func:`to_datetime` converts an input (datetime, date → noon, epoch seconds, ISO string, or a string in
  ``existingFormat``) to an aware datetime, like ``AbstractDate.convert``.
* :func:`format_datetime` prints with a named format (``iso``, ``sql``, ``iso_instant``, ``full`` …) or a Java
  ``DateTimeFormatter`` pattern. Text fields are English (``en_US``, CLDR 42 like Java 21); precision is
  microseconds (nano fields are padded with zeros).
"""
from __future__ import annotations

import calendar
import datetime as _dt
import functools
import os
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from falconet.runtime.expr.base import ExpressionError

UTC = _dt.timezone.utc
_MONTHS = list(calendar.month_name)[1:]
_DAYS = list(calendar.day_name)           # Monday first, like datetime.weekday()
_NNBSP = "\u202f"                         # Java 21 (CLDR 42) puts a narrow no-break space before AM/PM


#### Zones ##################################################################################################

_OFFSET = re.compile(r"^(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?$")


@functools.lru_cache(maxsize=256)
def zone(name: str | None) -> _dt.tzinfo:
    """The tzinfo for a Java zone id; ``None`` → the server's zone. Unknown ids raise ExpressionError."""
    if name is None:
        return _server_zone()
    if name in ("Z", "UTC", "GMT", "UT"):
        return ZoneInfo("UTC") if name != "Z" else UTC
    m = _OFFSET.match(name)
    if m:
        sign, hh, mm, ss = m.groups()
        delta = _dt.timedelta(hours=int(hh), minutes=int(mm or 0), seconds=int(ss or 0))
        if delta > _dt.timedelta(hours=18):
            raise ExpressionError(f"Invalid ID for ZoneOffset, invalid format: {name}")
        return _dt.timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(f"Unknown time-zone ID: {name}") from None


@functools.lru_cache(maxsize=1)
def _server_zone() -> _dt.tzinfo:
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            target = os.path.realpath("/etc/localtime")
            name = target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else ""
        except OSError:
            name = ""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def zone_id(tz: _dt.tzinfo | None, moment: _dt.datetime) -> str:
    """Java's ``ZoneId.getId()``: region name, or the offset id (``Z``, ``+02:00``)."""
    if isinstance(tz, ZoneInfo):
        return tz.key
    return _offset_text(moment.utcoffset(), "XXXXX")


#### Input conversion #######################################################################################

_ISO = re.compile(
    r"^(-?\d{4,9})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?"
    r"(?:\[([^\]]+)\])?$"
)


def to_datetime(value: Any, tz: _dt.tzinfo, existing_format: str | None = None) -> _dt.datetime:
    """An aware datetime for ``value`` (see module docstring); naive values are placed in ``tz``."""
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, _dt.date):
        return _dt.datetime.combine(value, _dt.time(12, 0), tzinfo=tz)
    if isinstance(value, bool):
        raise ExpressionError(f"Unable to convert value '{value}' to a date")
    if isinstance(value, int):
        return _dt.datetime.fromtimestamp(value, UTC).astimezone(tz)
    if isinstance(value, float):
        return _dt.datetime.fromtimestamp(value, UTC).astimezone(tz)
    if isinstance(value, str):
        if existing_format is not None:
            return parse_with_format(value, existing_format, tz)
        return parse_iso(value, tz)
    raise ExpressionError(f"Unable to convert value '{value}' with type '{type(value).__name__}' to a date")


def parse_iso(text: str, tz: _dt.tzinfo) -> _dt.datetime:
    """ISO-8601 date/date-time, offset optional, ``[Zone]`` suffix optional, up to 9 fraction digits."""
    m = _ISO.match(text.strip())
    if not m:
        raise ExpressionError(f"Text '{text}' could not be parsed as a date")
    year, month, day, hh, mi, ss, frac, offset, region = m.groups()
    target = tz
    if region:
        target = zone(region)
    try:
        moment = _dt.datetime(int(year), int(month), int(day), int(hh or 0), int(mi or 0), int(ss or 0),
                              int((frac or "0").ljust(6, "0")[:6]))
    except ValueError as exc:
        raise ExpressionError(f"Text '{text}' could not be parsed: {exc}") from None
    if offset:
        aware = moment.replace(tzinfo=zone("Z" if offset in ("Z", "z") else offset))
        return aware.astimezone(target) if region else aware
    return moment.replace(tzinfo=target)


#### Java DateTimeFormatter patterns ########################################################################

_NAMED = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "iso_milli": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
    "iso_local_date": "uuuu-MM-dd",
    "iso_ordinal_date": "uuuu-DDDXXX",
}
_STYLES = {
    "full": f"EEEE, MMMM d, y 'at' h:mm:ss{_NNBSP}a zzzz",
    "long": f"MMMM d, y 'at' h:mm:ss{_NNBSP}a z",
    "medium": f"MMM d, y, h:mm:ss{_NNBSP}a",
    "short": f"M/d/yy, h:mm{_NNBSP}a",
}
_LETTERS = set("GuyYDMLdQqwWEecFaBhKkHmsSAnNVvzOXxZ")


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> tuple[tuple[str, int] | str, ...]:
    """Split a Java pattern into literal strings and (letter, count) fields. Raises ExpressionError."""
    parts: list[tuple[str, int] | str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "'":
            end = pattern.find("'", i + 1)
            while end != -1 and pattern[end + 1:end + 2] == "'":
                end = pattern.find("'", end + 2)
            if end == -1:
                raise ExpressionError(f"Pattern ends with an incomplete string literal: {pattern}")
            literal = pattern[i + 1:end].replace("''", "'")
            parts.append(literal if end > i + 1 else "'")
            i = end + 1
        elif ch.isascii() and ch.isalpha():
            if ch not in _LETTERS:
                raise ExpressionError(f"Unknown pattern letter: {ch}")
            j = i
            while j < n and pattern[j] == ch:
                j += 1
            parts.append((ch, j - i))
            i = j
        elif ch in "[]":
            i += 1                                   # optional sections always print when formatting
        elif ch in "{}#":
            raise ExpressionError(f"Pattern includes reserved character: '{ch}'")
        else:
            parts.append(ch)
            i += 1
    return tuple(parts)


def _pad(value: int, width: int) -> str:
    return f"{value:0{width}d}" if value >= 0 else "-" + f"{-value:0{width}d}"


def _offset_text(offset: _dt.timedelta | None, style: str) -> str:
    """Offsets for X/x/Z/O patterns (``style`` is the pattern letter repeated)."""
    seconds = int(offset.total_seconds()) if offset is not None else 0
    letter, count = style[0], len(style)
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    hh, mm, ss = seconds // 3600, seconds // 60 % 60, seconds % 60
    if letter == "O":
        if seconds == 0:
            return "GMT"
        if count == 1:
            return f"GMT{sign}{hh}" + (f":{mm:02d}" if mm or ss else "") + (f":{ss:02d}" if ss else "")
        return f"GMT{sign}{hh:02d}:{mm:02d}" + (f":{ss:02d}" if ss else "")
    if letter == "Z":
        if count <= 3:
            return f"{sign}{hh:02d}{mm:02d}"
        if count == 4:
            return _offset_text(offset, "OOOO")
        letter, count = "X", 5
    if letter == "X" and seconds == 0:
        return "Z"
    if count == 1:
        return f"{sign}{hh:02d}" + (f"{mm:02d}" if mm else "")
    if count == 2:
        return f"{sign}{hh:02d}{mm:02d}"
    if count == 3:
        return f"{sign}{hh:02d}:{mm:02d}"
    if count == 4:
        return f"{sign}{hh:02d}{mm:02d}" + (f"{ss:02d}" if ss else "")
    return f"{sign}{hh:02d}:{mm:02d}" + (f":{ss:02d}" if ss else "")


_LONG_ZONE_NAMES = {"UTC": "Coordinated Universal Time", "GMT": "Greenwich Mean Time"}


def _field(moment: _dt.datetime, letter: str, count: int) -> str:
    if letter in "yu":
        year = moment.year
        return _pad(year % 100, 2) if count == 2 else _pad(year, count)
    if letter == "Y":
        year = moment.isocalendar()[0]
        return _pad(year % 100, 2) if count == 2 else _pad(year, count)
    if letter in "ML":
        if count >= 3:
            name = _MONTHS[moment.month - 1]
            return name[:3] if count == 3 else name if count == 4 else name[0]
        return _pad(moment.month, count)
    if letter == "d":
        return _pad(moment.day, count)
    if letter == "D":
        return _pad(moment.timetuple().tm_yday, count)
    if letter in "Qq":
        quarter = (moment.month - 1) // 3 + 1
        if count <= 2:
            return _pad(quarter, count)
        return f"Q{quarter}" if count == 3 else ["1st", "2nd", "3rd", "4th"][quarter - 1] + " quarter"
    if letter in "Eec":
        if letter in "ec" and count <= 2:
            return _pad((moment.weekday() + 1) % 7 + 1, count)        # en_US: Sunday = 1
        name = _DAYS[moment.weekday()]
        return name if count == 4 else name[0] if count == 5 else name[:3]
    if letter == "w":
        return _pad(moment.isocalendar()[1], count)
    if letter == "W":
        return _pad((moment.day + _dt.date(moment.year, moment.month, 1).weekday()) // 7 + 1, count)
    if letter == "F":
        return _pad((moment.day - 1) // 7 + 1, count)
    if letter == "G":
        return "Anno Domini" if count == 4 else "A" if count == 5 else "AD"
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "B":
        return "in the morning" if 6 <= moment.hour < 12 else "in the afternoon" if 12 <= moment.hour < 18 \
            else "in the evening" if 18 <= moment.hour < 21 else "at night"
    if letter == "H":
        return _pad(moment.hour, count)
    if letter == "k":
        return _pad(moment.hour or 24, count)
    if letter == "h":
        return _pad(moment.hour % 12 or 12, count)
    if letter == "K":
        return _pad(moment.hour % 12, count)
    if letter == "m":
        return _pad(moment.minute, count)
    if letter == "s":
        return _pad(moment.second, count)
    if letter == "S":
        return f"{moment.microsecond:06d}000"[:count].ljust(count, "0")
    if letter == "n":
        return _pad(moment.microsecond * 1000, count)
    if letter == "A":
        return _pad(((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000 + moment.microsecond // 1000,
                    count)
    if letter == "N":
        return _pad((((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000
                     + moment.microsecond) * 1000, count)
    if letter == "V":
        if count != 2:
            raise ExpressionError("Pattern letter count must be 2: V")
        return zone_id(moment.tzinfo, moment)
    if letter in "zv":
        short = moment.tzname() or zone_id(moment.tzinfo, moment)
        if count == 4:
            return _LONG_ZONE_NAMES.get(short, zone_id(moment.tzinfo, moment))
        return short
    if letter in "XxZO":
        return _offset_text(moment.utcoffset(), letter * count)
    raise ExpressionError(f"Unknown pattern letter: {letter}")


def _format_pattern(moment: _dt.datetime, pattern: str) -> str:
    return "".join(part if isinstance(part, str) else _field(moment, *part)
                   for part in compile_pattern(pattern))


def _fraction_minimal(moment: _dt.datetime) -> str:
    return ("." + f"{moment.microsecond:06d}".rstrip("0")) if moment.microsecond else ""


def _fraction_groups(moment: _dt.datetime) -> str:
    if not moment.microsecond:
        return ""
    frac = f"{moment.microsecond:06d}"
    return "." + (frac[:3] if frac.endswith("000") else frac)


def _region_suffix(moment: _dt.datetime) -> str:
    return f"[{moment.tzinfo.key}]" if isinstance(moment.tzinfo, ZoneInfo) else ""


def _iso_named(moment: _dt.datetime, name: str) -> str | None:
    local_time = moment.strftime("%H:%M:%S") + _fraction_minimal(moment)
    offset = _offset_text(moment.utcoffset(), "XXXXX")
    date = _pad(moment.year, 4) + moment.strftime("-%m-%d")
    if name == "iso_local_time":
        return local_time
    if name in ("iso_time", "iso_offset_time"):
        return local_time + offset
    if name == "iso_date":
        return date + offset
    if name == "iso_local_date_time":
        return f"{date}T{local_time}"
    if name == "iso_offset_date_time":
        return f"{date}T{local_time}{offset}"
    if name in ("iso_zoned_date_time", "iso_date_time"):
        return f"{date}T{local_time}{offset}{_region_suffix(moment)}"
    if name == "iso_instant":
        utc = moment.astimezone(UTC)
        return _pad(utc.year, 4) + utc.strftime("-%m-%dT%H:%M:%S") + _fraction_groups(utc) + "Z"
    if name == "iso_week_date":
        year, week, weekday = moment.isocalendar()
        return f"{_pad(year, 4)}-W{week:02d}-{weekday}{offset}"
    if name == "rfc_1123_date_time":
        zone_text = "GMT" if not moment.utcoffset() else _offset_text(moment.utcoffset(), "Z")
        return (f"{_DAYS[moment.weekday()][:3]}, {moment.day} {_MONTHS[moment.month - 1][:3]} "
                f"{moment.year} {moment.strftime('%H:%M:%S')} {zone_text}")
    return None


def format_datetime(moment: _dt.datetime, fmt: str = "iso", tz: _dt.tzinfo | None = None,
                    locale: str | None = None) -> str:
    """Print ``moment`` (converted to ``tz`` when given) with a named format or a Java pattern."""
    if locale is not None and not locale.replace("-", "_").lower().startswith("en"):
        raise ExpressionError(f"Unsupported locale '{locale}': only English date texts are available")
    if tz is not None:
        moment = moment.astimezone(tz)
    if not isinstance(fmt, str):
        raise ExpressionError(f"The date format must be a string, got '{fmt}'")
    if fmt in _STYLES:
        return _format_pattern(moment, _STYLES[fmt])
    named = _iso_named(moment, fmt)
    if named is not None:
        return named
    return _format_pattern(moment, _NAMED.get(fmt, fmt))


#### Parsing with a pattern (existingFormat) ################################################################

def _field_regex(letter: str, count: int) -> str:
    if letter in "yuY":
        return r"(?P<y>[+-]?\d{2})" if count == 2 else r"(?P<y>[+-]?\d{%d,9})" % max(count, 1)
    if letter in "ML":
        if count == 3:
            return r"(?P<Mt>[A-Za-z]{3})"
        if count >= 4:
            return r"(?P<Mt>[A-Za-z]+)"
        return r"(?P<M>\d{%d,2})" % count
    simple = {"d": "d", "H": "H", "h": "h", "k": "k", "K": "K", "m": "m", "s": "s", "D": "D"}
    if letter in simple:
        return r"(?P<%s>\d{%d,%d})" % (simple[letter], count, max(count, 3 if letter == "D" else 2))
    if letter == "S":
        return r"(?P<S>\d{%d})" % count
    if letter == "n":
        return r"(?P<n>\d{1,9})"
    if letter == "a":
        return r"(?P<a>[AaPp][Mm])"
    if letter in "Eec":
        return r"[A-Za-z]+" if count >= 3 else r"\d{1,2}"
    if letter in "XxZO":
        return r"(?P<off>Z|z|GMT|UTC|(?:GMT|UTC)?[+-]\d{1,2}(?::?\d{2})?(?::?\d{2})?)"
    if letter in "Vvz":
        return r"(?P<zone>[A-Za-z_]+(?:/[A-Za-z_+\-0-9]+)*)"
    if letter == "G":
        return r"[A-Za-z ]+"
    raise ExpressionError(f"Pattern letter '{letter}' is not supported for parsing")


@functools.lru_cache(maxsize=256)
def _parse_regex(fmt: str) -> re.Pattern[str]:
    pattern = _NAMED.get(fmt, fmt)
    regex = []
    for part in compile_pattern(pattern):
        regex.append(re.escape(part) if isinstance(part, str) else _field_regex(*part))
    try:
        return re.compile("^" + "".join(regex) + "$")
    except re.error:
        raise ExpressionError(f"The pattern '{fmt}' repeats a field and cannot be used for parsing") from None


def parse_with_format(text: str, fmt: str, tz: _dt.tzinfo) -> _dt.datetime:
    """Parse ``text`` with a Java pattern (or named format); missing time fields are 0, missing zone = ``tz``."""
    if fmt in _STYLES or (fmt.startswith("iso") and fmt not in _NAMED) or fmt == "rfc_1123_date_time":
        if fmt == "rfc_1123_date_time":
            fmt = "EEE, d MMM yyyy HH:mm:ss z"
        else:
            return parse_iso(text, tz)
    m = _parse_regex(fmt).match(text.strip())
    if not m:
        raise ExpressionError(f"Text '{text}' could not be parsed with the format '{fmt}'")
    g = m.groupdict()
    try:
        year = int(g["y"]) if g.get("y") else 1970
        if g.get("y") and len(g["y"].lstrip("+-")) == 2:
            year += 2000
        if g.get("Mt"):
            month = next(i + 1 for i, name in enumerate(_MONTHS) if name.lower().startswith(g["Mt"].lower()))
        else:
            month = int(g.get("M") or 1)
        day = int(g.get("d") or 1)
        hour = int(g.get("H") or g.get("k") or 0) % 24
        if g.get("h") or g.get("K"):
            hour = int(g.get("h") or g.get("K") or 0) % 12
            if (g.get("a") or "AM").upper() == "PM":
                hour += 12
        minute, second = int(g.get("m") or 0), int(g.get("s") or 0)
        micro = int((g.get("S") or g.get("n") or "0").ljust(9, "0")[:6]) if g.get("S") or g.get("n") else 0
        if g.get("n"):
            micro = int(g["n"]) // 1000
        moment = _dt.datetime(year, month, day, hour, minute, second, micro)
        if g.get("D"):
            moment = moment.replace(month=1, day=1) + _dt.timedelta(days=int(g["D"]) - 1)
    except (ValueError, StopIteration):
        raise ExpressionError(f"Text '{text}' could not be parsed with the format '{fmt}'") from None
    if g.get("off"):
        off = g["off"]
        return moment.replace(tzinfo=zone("Z" if off in ("Z", "z", "GMT", "UTC") else off))
    if g.get("zone"):
        return moment.replace(tzinfo=zone(g["zone"]))
    return moment.replace(tzinfo=tz)


#### Arithmetic #############################################################################################

_UNIT_SECONDS = {
    "NANOS": 1e-9, "MICROS": 1e-6, "MILLIS": 1e-3, "SECONDS": 1, "MINUTES": 60, "HOURS": 3600,
    "HALF_DAYS": 43200,
}
_UNIT_MONTHS = {"MONTHS": 1, "YEARS": 12, "DECADES": 120, "CENTURIES": 1200, "MILLENNIA": 12000}


def add(moment: _dt.datetime, amount: int, unit: str) -> _dt.datetime:
    """``ZonedDateTime.plus(amount, ChronoUnit.<unit>)``: time units on the instant line, dates on local time."""
    unit = str(unit).upper()
    if unit in _UNIT_SECONDS:
        tz = moment.tzinfo
        utc = moment.astimezone(UTC) + _dt.timedelta(seconds=amount * _UNIT_SECONDS[unit])
        return utc.astimezone(tz)
    if unit in ("DAYS", "WEEKS"):
        days = amount * (7 if unit == "WEEKS" else 1)
        local = moment.replace(tzinfo=None) + _dt.timedelta(days=days)
        return _relocalize(local, moment.tzinfo)
    if unit in _UNIT_MONTHS:
        total = moment.year * 12 + (moment.month - 1) + amount * _UNIT_MONTHS[unit]
        year, month = divmod(total, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return _relocalize(moment.replace(tzinfo=None, year=year, month=month + 1, day=day), moment.tzinfo)
    raise ExpressionError(f"No enum constant java.time.temporal.ChronoUnit.{unit}")


def _relocalize(local: _dt.datetime, tz: _dt.tzinfo | None) -> _dt.datetime:
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz)      # normalises a wall time that falls in a DST gap


def epoch(moment: _dt.datetime, unit: str) -> int:
    """Epoch value of ``moment`` in ``seconds``, ``millis``, ``micros`` or ``nanos``."""
    delta = moment - _dt.datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    if unit == "seconds":
        return micros // 1_000_000
    if unit == "millis":
        return micros // 1000
    if unit == "micros":
        return micros
    return micros * 1000
