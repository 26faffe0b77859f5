"""ISO-8601 durations (Java ``Duration`` parse/print) and the Sleep task that waits for one."""
from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from falconet.plugins.core.flow import Sleep
from falconet.runtime.expr.durations import format_duration, is_duration, parse_duration
from falconet.sdk.plugin import TaskFailed


@pytest.mark.parametrize("text, expected", [
    ("PT1M30S", timedelta(minutes=1, seconds=30)),
    ("P1D", timedelta(days=1)),
    ("PT0.5S", timedelta(milliseconds=500)),
    ("PT5m", timedelta(minutes=5)),
    ("-PT6H", -timedelta(hours=6)),
    ("PT-1.5S", -timedelta(seconds=1.5)),
    ("P1DT2H3M4.000005S", timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5)),
    ("P2W", timedelta(weeks=2)),
    ("PT0S", timedelta(0)),
])
def test_parse(text: str, expected: timedelta):
    assert parse_duration(text) == expected
    assert is_duration(text)


@pytest.mark.parametrize("text", ["", "P", "PT", "1M", "P1Y", "P1M", "PT1.5M", "PT1H2", "soon"])
def test_parse_rejects(text: str):
    with pytest.raises(ValueError, match="Invalid duration"):
        parse_duration(text)
    assert not is_duration(text)


@pytest.mark.parametrize("td, expected", [
    (timedelta(0), "PT0S"),
    (timedelta(minutes=1, seconds=30), "PT1M30S"),
    (timedelta(days=2), "PT48H"),
    (timedelta(milliseconds=500), "PT0.5S"),
    (timedelta(seconds=1, microseconds=234000), "PT1.234S"),
    (timedelta(microseconds=1), "PT0.000001S"),
    (-timedelta(seconds=1.5), "PT-1.5S"),
    (-timedelta(minutes=90), "PT-1H-30M"),
    (-timedelta(milliseconds=500), "PT-0.5S"),
    (timedelta(hours=1, seconds=1), "PT1H1S"),
])
def test_format_like_java(td: timedelta, expected: str):
    assert format_duration(td) == expected
    assert parse_duration(expected) == td


class _Ctx:
    """The one RunContext method Sleep uses."""

    def __init__(self, duration):
        self.duration = duration

    def prop(self, name: str):
        assert name == "duration"
        return self.duration


@pytest.mark.parametrize("value", ["PT1H", timedelta(hours=1)])
async def test_sleep_waits_for_the_duration(autojump_clock, value):
    start = trio.current_time()
    assert await Sleep().run(_Ctx(value)) is None
    assert trio.current_time() - start == pytest.approx(3600)


async def test_sleep_is_cancellable(autojump_clock):
    with trio.move_on_after(5) as scope:
        await Sleep().run(_Ctx("PT1H"))
    assert scope.cancelled_caught


@pytest.mark.parametrize("value, message", [("later", "Invalid duration `later`"),
                                            ("-PT1S", "must not be negative")])
async def test_sleep_bad_duration_fails_the_attempt(value: str, message: str):
    with pytest.raises(TaskFailed, match=message):
        await Sleep().run(_Ctx(value))
