"""Falconet: Kestra flows in one lightweight Python process.

The embedding API::

    import trio, falconet

    async def main():
        async with falconet.open_engine(store="memory") as engine:
            await engine.create_flow(FLOW_YAML)
            execution = await engine.execute("company.team", "hello", {"name": "world"})
            print(execution["state"]["current"])
            with engine.bus.subscribe(namespace="company.team") as events:
                ...  # live execution / task-run / log events

    trio.run(main)
"""
from falconet.runtime.kernel.bus import Event, Overflow
from falconet.runtime.kernel.clock import Clock, SystemClock, VirtualClock
from falconet.runtime.config import Config, ConfigError, load_config
from falconet.runtime.kernel.engine import Engine
from falconet.runtime.kernel.startup import open_engine
from falconet.runtime.kernel.errors import (
    FalconetError, FlowValidationError, IllegalArgument, IllegalState, InvalidEntity, NotFound,
)
from falconet.runtime.kernel.recovery import DataDirInUse
from falconet.runtime.kernel.state import State

__version__ = "0.1.0"

__all__ = [
    "Clock", "Config", "ConfigError", "DataDirInUse", "Engine", "Event", "FalconetError", "FlowValidationError",
    "IllegalArgument", "IllegalState", "InvalidEntity", "NotFound", "Overflow", "State", "SystemClock",
    "VirtualClock", "load_config", "open_engine",
]
