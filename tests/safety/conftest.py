"""Fixtures of the safety tests: a real engine served by hypercorn on a real socket."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

import pytest

from falconet.http.app import create_app
from falconet.http.serve import serve
from falconet.runtime.engine import open_engine


@pytest.fixture
async def engine(tmp_path: Any) -> Any:
    async with open_engine(data_dir=tmp_path / "data", store="memory") as eng:
        yield eng


@pytest.fixture
def start_server(engine: Any, nursery: Any) -> Callable[..., Awaitable[str]]:
    """``await start_server(**config)``: set engine config attributes (e.g. ``basic_auth``), serve a new app
    on a free port; returns its base URL. The server stops with the test."""
    async def start(**config: Any) -> str:
        for key, value in config.items():
            setattr(engine.config, key, value)
        urls = await nursery.start(serve, create_app(engine, config=engine.config), "127.0.0.1", 0)
        return urls[0]
    return start
