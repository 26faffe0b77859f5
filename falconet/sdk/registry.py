"""The plugin registry: type names (canonical and aliases) to plugin classes, some registered ahead of their
class. The process-wide instance and ``load_plugins()`` are in :mod:`falconet.sdk.plugin`."""
from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from falconet.sdk.plugin import Plugin


class Registry:
    """Type name (canonical or alias) -> plugin class.

    Types may be registered ahead of their class (:meth:`defer`): the catalogue of the built-in plugins names
    the module registering each type, and that module is imported the first time one of its types is asked
    for (:meth:`get`, ``in``) — a server imports the plugin modules its flows use, not all of them.
    :meth:`canonical` and :meth:`group_texts` (the plugin catalogue, JSON schemas) import every deferred
    module first and list the types in the catalogue's order, as if every module had been imported up front.
    Safe to use from worker threads (flows are parsed there): imports run outside the registry's lock.
    """

    def __init__(self) -> None:
        self._types: dict[str, type[Plugin]] = {}
        self._canonical: dict[str, type[Plugin]] = {}
        self._groups: dict[str, tuple[str, str]] = {}
        self._deferred: dict[str, str] = {}        # type name not registered yet -> module registering it
        self._modules: dict[str, None] = {}        # deferred modules not imported yet, in catalogue order
        self._order: dict[str, int] = {}           # canonical type names of the catalogue -> position
        self._catalogued: set[str] = set()         # every module of the catalogue
        self._optional: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def defer(self, modules: Mapping[str, Sequence[str]], optional: Iterable[str] = ()) -> None:
        """Register lazily: ``modules`` maps each module, in import order, to the type names (canonical and
        aliases) its import registers, in registration order. A module whose import fails for want of one of
        the ``optional`` top-level modules (an extra not installed) leaves its types unknown."""
        with self._lock:
            self._optional = self._optional | frozenset(optional)
            for module, names in modules.items():
                self._catalogued.add(module)
                for name in names:
                    self._order.setdefault(name, len(self._order))
                    if name not in self._types:
                        self._deferred[name] = module
                if module not in sys.modules:
                    self._modules[module] = None

    def register(self, cls: type[Plugin]) -> type[Plugin]:
        if not cls.type:
            raise ValueError(f"{cls.__name__} has no type name")
        builtin = cls.__module__ in self._catalogued
        with self._lock:
            for name in (cls.type, *cls.aliases):
                existing = self._types.get(name)
                if builtin and existing is not None and existing.__module__ not in self._catalogued:
                    # a built-in module imported late never replaces a plugin registered under one of its
                    # names (an entry point's): imported up front, it would have been replaced by that plugin
                    continue
                self._types[name] = cls
                self._deferred.pop(name, None)
                if name == cls.type:
                    self._canonical[name] = cls
        return cls

    def get(self, type_name: str) -> type[Plugin] | None:
        cls = self._types.get(type_name)
        if cls is None:
            module = self._deferred.get(type_name)
            if module is not None:
                self._import(module)
                cls = self._types.get(type_name)
        return cls

    def canonical(self) -> dict[str, type[Plugin]]:
        self._import_all()
        with self._lock:
            items = list(self._canonical.items())
        last = len(self._order)
        items.sort(key=lambda item: self._order.get(item[0], last))   # stable: the others in registration order
        return dict(items)

    def __contains__(self, type_name: str) -> bool:
        return self.get(type_name) is not None

    def names(self) -> list[str]:
        """The type names registered so far (canonical and aliases), in registration order; deferred ones
        are not."""
        with self._lock:
            return list(self._types)

    def describe_group(self, name: str, title: str, description: str) -> None:
        self._groups[name] = (title, description)

    def group_texts(self, name: str) -> tuple[str, str]:
        """The title and description declared for a plugin group or subgroup (empty when none)."""
        self._import_all()
        return self._groups.get(name, ("", ""))

    def _import_all(self) -> None:
        for module in list(self._modules):
            self._import(module)

    def _import(self, module: str) -> None:
        import importlib

        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:   # an optional extra (e.g. duckdb) is not installed
            if not (exc.name and exc.name.split(".")[0] in self._optional):
                raise
        with self._lock:
            self._modules.pop(module, None)
            for name in [n for n, m in self._deferred.items() if m == module]:
                del self._deferred[name]
