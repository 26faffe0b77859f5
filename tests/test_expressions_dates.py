"""Date filters and now(): Java DateTimeFormatter patterns, named formats, zones, inputs, dateAdd, timestamps."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from falconet.runtime.expr import dates
from falconet.runtime.expr.render import ExpressionError, Renderer

R = Renderer()
UTC = dt.timezone.utc
D = dt.datetime(2024, 1, 2, 15, 4, 5, 123456, tzinfo=UTC)       # a Tuesday
VARS = {"d": D, "iso": "2024-01-02T15:04:05.123456Z", "epoch": 1704207845, "day": dt.date(2024, 1, 2),
        "naive": dt.datetime(2024, 1, 2, 15, 4, 5)}


def render(template: str) -> str:
    return R.render(template, VARS)


@pytest.mark.parametrize(("pattern", "expected"), [
    ("yyyy-MM-dd", "2024-01-02"), ("yy/M/d", "24/1/2"), ("uuuu", "2024"), ("y", "2024"),
    ("MMM MMMM MMMMM", "Jan January J"), ("dd d D DDD", "02 2 2 002"),
    ("HH:mm:ss", "15:04:05"), ("H h hh K k a", "15 3 03 3 15 PM"),
    ("SSS", "123"), ("SSSSSS", "123456"), ("SSSSSSSSS", "123456000"), ("S", "1"), ("n", "123456000"),
    ("EEE EEEE EEEEE", "Tue Tuesday T"), ("e", "3"),
    ("XXX", "Z"), ("XX", "Z"), ("X", "Z"), ("xxx", "+00:00"), ("Z", "+0000"), ("ZZZZZ", "Z"), ("ZZZZ", "GMT"),
    ("O", "GMT"), ("VV", "Z"), ("Q QQQ QQQQ", "1 Q1 1st quarter"), ("G", "AD"), ("w", "1"), ("ww", "01"),
    ("'T'HH'h'", "T15h"), ("'it''s' ''", "it's '"), ("[yyyy]", "2024"), ("yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
                                                                           "2024-01-02T15:04:05.123Z"),
])
def test_java_pattern_letters(pattern: str, expected: str) -> None:
    assert dates.format_datetime(D, pattern) == expected


def test_zone_dependent_letters() -> None:
    paris = dates.zone("Europe/Paris")
    assert dates.format_datetime(D, "HH:mm XXX XX X Z VV z zzzz O", paris) == \
        "16:04 +01:00 +0100 +01 +0100 Europe/Paris CET Europe/Paris GMT+1"
    kolkata = dates.zone("Asia/Kolkata")
    assert dates.format_datetime(D, "HH:mm X XXX", kolkata) == "20:34 +0530 +05:30"
    assert dates.format_datetime(D, "HH:mm XXX VV", dates.zone("-03:00")) == "12:04 -03:00 -03:00"
    assert dates.format_datetime(D, "zzzz", dates.zone("UTC")) == "Coordinated Universal Time"


@pytest.mark.parametrize(("name", "expected"), [
    ("iso", "2024-01-02T15:04:05.123456Z"),
    ("iso_sec", "2024-01-02T15:04:05Z"),
    ("iso_milli", "2024-01-02T15:04:05.123Z"),
    ("sql", "2024-01-02 15:04:05.123456"),
    ("sql_seq", "2024-01-02 15:04:05"),
    ("iso_date_time", "2024-01-02T15:04:05.123456Z[UTC]"),      # ZoneId.of("UTC") is a region
    ("iso_date", "2024-01-02Z"),
    ("iso_time", "15:04:05.123456Z"),
    ("iso_local_date", "2024-01-02"),
    ("iso_instant", "2024-01-02T15:04:05.123456Z"),
    ("iso_local_date_time", "2024-01-02T15:04:05.123456"),
    ("iso_local_time", "15:04:05.123456"),
    ("iso_offset_time", "15:04:05.123456Z"),
    ("iso_ordinal_date", "2024-002Z"),
    ("iso_week_date", "2024-W01-2Z"),
    ("iso_zoned_date_time", "2024-01-02T15:04:05.123456Z[UTC]"),
    ("rfc_1123_date_time", "Tue, 2 Jan 2024 15:04:05 GMT"),
    ("full", "Tuesday, January 2, 2024 at 3:04:05\u202fPM Coordinated Universal Time"),
    ("long", "January 2, 2024 at 3:04:05\u202fPM UTC"),
    ("medium", "Jan 2, 2024, 3:04:05\u202fPM"),
    ("short", "1/2/24, 3:04\u202fPM"),
])
def test_named_formats(name: str, expected: str) -> None:
    assert dates.format_datetime(D, name, dates.zone("UTC")) == expected


def test_named_formats_with_a_region_zone() -> None:
    paris = dates.zone("Europe/Paris")
    assert dates.format_datetime(D, "iso_zoned_date_time", paris) == "2024-01-02T16:04:05.123456+01:00[Europe/Paris]"
    assert dates.format_datetime(D, "iso", paris) == "2024-01-02T16:04:05.123456+01:00"
    assert dates.format_datetime(D, "rfc_1123_date_time", paris) == "Tue, 2 Jan 2024 16:04:05 +0100"
    assert dates.format_datetime(D, "iso_zoned_date_time", dates.zone("+02:00")) == "2024-01-02T17:04:05.123456+02:00"
    whole = D.replace(microsecond=0)
    assert dates.format_datetime(whole, "iso_instant") == "2024-01-02T15:04:05Z"
    assert dates.format_datetime(D.replace(microsecond=120000), "iso_local_time") == "15:04:05.12"


def test_date_filter_inputs() -> None:
    assert render("{{ d | date('yyyy-MM-dd HH:mm') }}") == "2024-01-02 15:04"
    assert render("{{ iso | date('yyyy-MM-dd HH:mm:ss.SSS') }}") == "2024-01-02 15:04:05.123"
    assert render("{{ epoch | date('iso') }}") == "2024-01-02T15:04:05.000000Z"
    assert render("{{ day | date('yyyy-MM-dd HH:mm') }}") == "2024-01-02 12:00"          # LocalDate → noon
    assert render("{{ naive | date('HH:mm', timeZone='Europe/Paris') }}") == "15:04"     # naive = in the zone
    assert render("{{ '2024-01-02T10:00:00+02:00' | date('HH:mm XXX') }}") == "08:00 Z"
    assert render("{{ '2024-01-02T10:00:00+01:00[Europe/Paris]' | date('HH:mm VV', timeZone='Asia/Tokyo') }}") \
        == "18:00 Asia/Tokyo"
    assert render("{{ '2024-01-02T10:00:00.123456789Z' | date('SSSSSS') }}") == "123456"
    assert render("{{ '2024-01-02' | date('yyyy-MM-dd HH:mm') }}") == "2024-01-02 00:00"
    assert render("{{ d | date }}") == "2024-01-02T15:04:05.123456Z"
    assert render("{{ d | date(format='HH', timeZone='Asia/Tokyo') }}") == "00"
    assert render("{{ null | date('yyyy') }}") == ""


def test_date_filter_existing_format() -> None:
    assert render("{{ '02/01/2024 10:30' | date('yyyy-MM-dd HH:mm', existingFormat='dd/MM/yyyy HH:mm') }}") \
        == "2024-01-02 10:30"
    assert render("{{ 'Jan 5 2024 3:07 PM' | date('iso_sec', existingFormat='MMM d yyyy h:mm a') }}") \
        == "2024-01-05T15:07:00Z"
    assert render("{{ '2024-01-02 10:30:00 +0200' | date('HH:mm', existingFormat='yyyy-MM-dd HH:mm:ss Z') }}") \
        == "08:30"
    assert render("{{ '20240102' | date('yyyy-MM-dd', existingFormat='yyyyMMdd') }}") == "2024-01-02"


def test_date_add() -> None:
    assert render("{{ d | dateAdd(1, 'DAYS') }}") == "2024-01-03T15:04:05.123456Z"
    assert render("{{ d | dateAdd(-2, 'HOURS', format='yyyy-MM-dd HH') }}") == "2024-01-02 13"
    assert render("{{ d | dateAdd(90, 'MINUTES', format='HH:mm') }}") == "16:34"
    assert render("{{ d | dateAdd(2, 'WEEKS', format='iso_local_date') }}") == "2024-01-16"
    assert render("{{ '2024-01-31T00:00:00Z' | dateAdd(1, 'MONTHS', format='iso_local_date') }}") == "2024-02-29"
    assert render("{{ d | dateAdd(1, 'YEARS', format='yyyy') }}") == "2025"
    assert render("{{ d | dateAdd(500, 'MILLIS', format='ss.SSS') }}") == "05.623"
    # calendar units keep the wall clock across a DST change; time units keep the elapsed time
    before = "'2024-03-30T12:00:00+01:00[Europe/Paris]'"
    assert render(f"{{{{ {before} | dateAdd(1, 'DAYS', format='HH:mm XXX', timeZone='Europe/Paris') }}}}") \
        == "12:00 +02:00"
    assert render(f"{{{{ {before} | dateAdd(24, 'HOURS', format='HH:mm XXX', timeZone='Europe/Paris') }}}}") \
        == "13:00 +02:00"


def test_timestamps() -> None:
    assert R.render_typed("{{ d | timestamp }}", VARS) == 1704207845
    assert R.render_typed("{{ d | timestampMilli }}", VARS) == 1704207845123
    # as Kestra: strings, and timestampMicro is SECONDS.toNanos(epoch) + micro-of-second (sic)
    assert R.render_typed("{{ d | timestampMicro }}", VARS) == "1704207845000123456"
    assert R.render_typed("{{ d | timestampNano }}", VARS) == "1704207845123456000"
    assert R.render_typed("{{ '2024-01-02T00:00:00' | timestamp(timeZone='Europe/Paris') }}", VARS) == 1704150000


def test_kestra_date_filter_cases() -> None:
    """DateFilterTest from Kestra's own suite."""
    now = dt.datetime(2013, 9, 8, 16, 19, 12, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    v = {"instant": now, "local": now.replace(tzinfo=None)}
    assert R.render("{{ instant | date(format=\"iso_sec\", timeZone=\"Europe/Paris\") }}", v) == "2013-09-08T17:19:12+02:00"
    assert R.render("{{ instant | date(format=\"iso\", timeZone=\"Europe/Paris\") }}", v) \
        == "2013-09-08T17:19:12.123456+02:00"
    assert R.render("{{ local | date(format=\"yyyy-MM-dd HH:mm:ss.SSSSSSXXX\", timeZone=\"Europe/Paris\") }}", v) \
        == "2013-09-08 16:19:12.123456+02:00"
    assert R.render("{{ local | date(format=\"yyyy-MM-dd HH:mm:ss.SSSSSSXXX\", timeZone=\"UTC\") }}", v) \
        == "2013-09-08 16:19:12.123456Z"
    assert R.render("{{ \"July 24, 2001\" | date(\"yyyy-MM-dd\", existingFormat=\"MMMM dd, yyyy\") }}", {}) == "2001-07-24"
    assert R.render("{{ \"2013-09-08T17:19:12+02:00\" | date(timeZone=\"Europe/Paris\") }}", {}) \
        == "2013-09-08T17:19:12.000000+02:00"
    assert R.render("{{ \"2013-09-08T17:19:12\" | date(timeZone=\"Europe/Paris\") }}", {}) \
        == "2013-09-08T17:19:12.000000+02:00"
    assert R.render("{{ \"2013-09-08\" | date(timeZone=\"Europe/Paris\") }}", {}) == "2013-09-08T00:00:00.000000+02:00"
    assert R.render("{{ instant | timestamp(timeZone=\"Europe/Paris\") }}", v) == "1378653552"
    assert R.render("{{ instant | timestampMilli(timeZone=\"Europe/Paris\") }}", v) == "1378653552123"
    assert R.render("{{ instant | timestampMicro(timeZone=\"Europe/Paris\") }}", v) == "1378653552000123456"
    assert R.render("{{ instant | timestampNano(timeZone=\"Europe/Paris\") }}", v) == "1378653552123456000"
    assert R.render("{{ (instant | timestamp) > (instant | dateAdd(-1, 'DAYS') | timestamp) }}", v) == "true"
    assert R.render("{{ 'Tue, 08 Feb 2022 19:38:26 GMT' | date(existingFormat='rfc_1123_date_time', "
                    "timeZone=\"Europe/Paris\") }}", {}) == "2022-02-08T20:38:26.000000+01:00"
    assert R.render("{{ instant | dateAdd(-1,\"DAYS\",timeZone=\"Europe/Paris\")}}", v) == "2013-09-07T17:19:12.123456+02:00"


def test_now() -> None:
    text = R.render("{{ now() }}", {})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)", text)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert abs((dt.datetime.now(UTC) - parsed).total_seconds()) < 60
    assert R.render("{{ now(format='yyyy', timeZone='UTC') }}", {}) == str(dt.datetime.now(UTC).year)
    assert R.render("{{ now(timeZone='Asia/Kolkata') | endsWith('+05:30') }}", {}) == "true"


@pytest.mark.parametrize(("template", "fragment"), [
    ("{{ d | date('yyyy-MM-dd bb') }}", "Unknown pattern letter: b"),
    ("{{ d | date('yyyy {') }}", "reserved character"),
    ("{{ d | date(\"'open\") }}", "incomplete string literal"),
    ("{{ d | date('yyyy', timeZone='Mars/Olympus') }}", "Unknown time-zone ID: Mars/Olympus"),
    ("{{ 'not a date' | date('yyyy') }}", "could not be parsed"),
    ("{{ '2024-13-45' | date('yyyy') }}", "could not be parsed"),
    ("{{ 'x' | date('yyyy', existingFormat='yyyyMMdd') }}", "could not be parsed with the format"),
    ("{{ d | dateAdd(1, 'FORTNIGHTS') }}", "ChronoUnit.FORTNIGHTS"),
    ("{{ d | dateAdd('1', 'DAYS') }}", "expects an integer"),
    ("{{ true | date('yyyy') }}", "Unable to convert"),
    ("{{ d | date('yyyy', locale='fr_FR') }}", "only English"),
    ("{{ d | date('V') }}", "count must be 2"),
])
def test_date_errors(template: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        render(template)
    assert fragment in str(info.value)


def test_server_zone_default_comes_from_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    dates._server_zone.cache_clear()
    dates.zone.cache_clear()
    try:
        assert R.render("{{ d | date('HH:mm XXX') }}", VARS) == "00:04 +09:00"
    finally:
        monkeypatch.undo()
        dates._server_zone.cache_clear()
        dates.zone.cache_clear()
