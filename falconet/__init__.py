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
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from falconet.runtime.config import Config, ConfigError, load_config
    from falconet.runtime.kernel.bus import Event, Overflow
    from falconet.runtime.kernel.clock import Clock, SystemClock, VirtualClock
    from falconet.runtime.kernel.engine import Engine
    from falconet.runtime.kernel.errors import (
        FalconetError, FlowValidationError, IllegalArgument, IllegalState, InvalidEntity, NotFound,
    )
    from falconet.runtime.kernel.recovery import DataDirInUse
    from falconet.runtime.kernel.startup import open_engine
    from falconet.runtime.kernel.state import State

__version__ = "0.1.0"

__all__ = [
    "Clock", "Config", "ConfigError", "DataDirInUse", "Engine", "Event", "FalconetError", "FlowValidationError",
    "IllegalArgument", "IllegalState", "InvalidEntity", "NotFound", "Overflow", "State", "SystemClock",
    "VirtualClock", "load_config", "open_engine",
]

#: the module of each name above, imported when the name is first read (PEP 562): ``import falconet.cli``
#: loads no engine, so the server command can set up its deferred imports first (falconet/deferred_imports.py)
_MODULES = {
    "Config": "falconet.runtime.config", "ConfigError": "falconet.runtime.config",
    "load_config": "falconet.runtime.config",
    "Event": "falconet.runtime.kernel.bus", "Overflow": "falconet.runtime.kernel.bus",
    "Clock": "falconet.runtime.kernel.clock", "SystemClock": "falconet.runtime.kernel.clock",
    "VirtualClock": "falconet.runtime.kernel.clock",
    "Engine": "falconet.runtime.kernel.engine",
    "FalconetError": "falconet.runtime.kernel.errors", "FlowValidationError": "falconet.runtime.kernel.errors",
    "IllegalArgument": "falconet.runtime.kernel.errors", "IllegalState": "falconet.runtime.kernel.errors",
    "InvalidEntity": "falconet.runtime.kernel.errors", "NotFound": "falconet.runtime.kernel.errors",
    "DataDirInUse": "falconet.runtime.kernel.recovery",
    "open_engine": "falconet.runtime.kernel.startup",
    "State": "falconet.runtime.kernel.state",
}


def lazy_exports(namespace: dict[str, Any], where: dict[str, str]) -> Callable[[str], Any]:
    """A package's ``__getattr__`` (PEP 562) that imports each name of ``where`` from its module the first
    time it is read, and keeps it in the package's ``namespace``."""
    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(module), name)
        return value
    return __getattr__


__getattr__ = lazy_exports(globals(), _MODULES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
