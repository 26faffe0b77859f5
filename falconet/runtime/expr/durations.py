"""ISO-8601 durations as Kestra (``java.time.Duration``) reads and prints them.

:func:`parse_duration` accepts what ``Duration.parse`` accepts — ``PnDTnHnMn.nS`` with optional signs on the
whole text and on each number, case-insensitive (``PT5m`` is valid, Kestra flows use it) — and, as a small
extension Kestra's ``Period``-based fields also take, weeks (``P2W``). Years and months are refused: they have
no fixed length.

:func:`format_duration` prints exactly what ``Duration.toString()`` prints (``PT1M30S``, ``PT0.5S``, ``PT48H``,
``PT-1.5S``, ``PT0S``): the form Kestra's JSON uses for every duration.
"""
from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_duration", "format_duration", "is_duration"]

#### Parsing ################################################################################################

_PATTERN = re.compile(
    r"""^(?P<sign>[-+]?)P
        (?:(?P<weeks>[-+]?[0-9]+)W)?
        (?:(?P<days>[-+]?[0-9]+)D)?
        (?:T
            (?:(?P<hours>[-+]?[0-9]+)H)?
            (?:(?P<minutes>[-+]?[0-9]+)M)?
            (?:(?P<seconds>[-+]?[0-9]+)(?:[.,](?P<fraction>[0-9]{0,9}))?S)?
        )?$""",
    re.IGNORECASE | re.VERBOSE,
)


def parse_duration(text: object) -> timedelta:
    """Parse an ISO-8601 duration (``PT1M30S``, ``P1D``, ``PT0.5S``, ``-PT6H``) into a :class:`timedelta`.

    Raises :class:`ValueError` naming the text when it is not a duration. Precision below a microsecond is
    dropped (``timedelta`` cannot hold nanoseconds).
    """
    if not isinstance(text, str):
        raise ValueError(f"Invalid duration `{text}`: expected an ISO-8601 duration string such as PT1M30S")
    m = _PATTERN.match(text.strip())
    if m is None or text.strip().upper().endswith("T") or text.strip().upper() in ("P", "-P", "+P"):
        raise ValueError(f"Invalid duration `{text}`: expected an ISO-8601 duration such as PT1M30S, P1D or PT0.5S")
    parts = m.groupdict()
    if all(parts[k] is None for k in ("weeks", "days", "hours", "minutes", "seconds")):
        raise ValueError(f"Invalid duration `{text}`: expected an ISO-8601 duration such as PT1M30S, P1D or PT0.5S")
    try:
        seconds = int(parts["seconds"] or 0)
        micros = 0
        if parts["fraction"]:
            micros = int((parts["fraction"] + "000000")[:6])
            if parts["seconds"].startswith("-"):
                micros = -micros
        total = timedelta(
            weeks=int(parts["weeks"] or 0),
            days=int(parts["days"] or 0),
            hours=int(parts["hours"] or 0),
            minutes=int(parts["minutes"] or 0),
            seconds=seconds,
            microseconds=micros,
        )
    except (OverflowError, ValueError):  # beyond timedelta's range, or more than 4,300 digits
        raise ValueError(f"Invalid duration `{text[:100]}`: out of range (at most 999999999 days)") from None
    return -total if parts["sign"] == "-" else total


def is_duration(text: object) -> bool:
    """True when ``text`` is a string :func:`parse_duration` accepts."""
    if not isinstance(text, str):
        return False
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


#### Printing ###############################################################################################

_NANOS_PER_SECOND = 1_000_000_000


def format_duration(td: timedelta) -> str:
    """``Duration.toString()`` of ``td``: hours, minutes and seconds only (``PT48H``, never ``P2D``), each
    number carrying its own sign for negative durations (``PT-1H-30M``), fraction digits without trailing
    zeros."""
    total_micros = (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds
    if total_micros == 0:
        return "PT0S"
    seconds, micros = divmod(total_micros, 1_000_000)  # floor division: nanos in [0, 1e9) like Java
    nanos = micros * 1000
    effective = seconds + 1 if (seconds < 0 and nanos > 0) else seconds
    hours = _java_div(effective, 3600)
    minutes = _java_div(_java_rem(effective, 3600), 60)
    secs = _java_rem(effective, 60)
    out = ["PT"]
    if hours:
        out.append(f"{hours}H")
    if minutes:
        out.append(f"{minutes}M")
    if secs == 0 and nanos == 0 and len(out) > 1:
        return "".join(out)
    if seconds < 0 and nanos > 0:
        out.append("-0" if secs == 0 else str(secs))
    else:
        out.append(str(secs))
    if nanos > 0:
        frac = 2 * _NANOS_PER_SECOND - nanos if seconds < 0 else nanos + _NANOS_PER_SECOND
        digits = str(frac)[1:].rstrip("0")
        out.append("." + digits)
    out.append("S")
    return "".join(out)


def _java_div(a: int, b: int) -> int:
    """Integer division truncating toward zero (Java ``/``)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _java_rem(a: int, b: int) -> int:
    """Remainder with the sign of the dividend (Java ``%``)."""
    return a - _java_div(a, b) * b
