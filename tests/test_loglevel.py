"""The one ``LogLevel``: names, order and parsing shared by logging, stores, HTTP filters and plugins."""
from __future__ import annotations

import pytest

from falconet.sdk.logs import LogLevel


def test_levels_are_kestras_least_to_most_severe() -> None:
    assert LogLevel.names() == ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
    assert LogLevel.TRACE < LogLevel.DEBUG < LogLevel.INFO < LogLevel.WARN < LogLevel.ERROR


@pytest.mark.parametrize(("name", "level"), [("info", LogLevel.INFO), ("WARN", LogLevel.WARN),
                                             ("warning", LogLevel.WARN), ("Trace", LogLevel.TRACE)])
def test_parse_accepts_any_case_and_warning(name: str, level: LogLevel) -> None:
    assert LogLevel.parse(name) is level


@pytest.mark.parametrize("name", ["", "FATAL", " INFO", None, 2, "names"])
def test_parse_rejects_what_names_no_level(name: object) -> None:
    assert LogLevel.parse(name) is None
