"""Library modules a plain server imports but never runs, executed on first use (``falconet server``).

Quart, hypercorn, trio and the standard library import modules eagerly that only some code paths touch:
HTTP/2 (``h2``, ``priority``: only a client speaking HTTP/2 needs them), IDNA host names, ``difflib``
(werkzeug's suggestions when building a URL fails), ``pdb`` (click's test runner), multipart parsing,
``csv``, ``mimetypes``, the ``email`` parsers, asyncio's TLS and happy-eyeballs helpers, hypercorn's TOML
configuration… :func:`deferring` makes each of
:data:`DEFERRED` a module whose code runs the first time one of its attributes is read, as
:class:`importlib.util.LazyLoader` does, with two differences that matter here:

- reading the attributes the import system itself set (``__spec__``, ``__name__``, ``__path__``…) does not
  execute the module, so a second ``import csv`` elsewhere keeps it deferred;
- the first use from two threads at once executes the module once, the second thread waiting for it
  (one re-entrant lock per module, as CPython 3.12's ``LazyLoader``).

A module that is imported with ``from module import name``, or read while another module is imported,
runs at that moment as before: deferring never changes what a module does, only when. Only the server
command defers, while it runs (``falconet/cli.py``); embedding Falconet as a library imports as usual.
``tests/test_lazy_imports.py`` checks that an idle server leaves these modules unexecuted and that each
works when touched.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from typing import Any, Iterator, Sequence

#: modules executed on first use when imported under :func:`deferring` (pure-Python modules only)
DEFERRED = frozenset({
    "h2.connection", "h2.events", "h2.exceptions", "priority",   # hypercorn's HTTP/2 protocol
    "idna", "stringprep",                          # trio's getaddrinfo of non-ASCII host names
    "difflib",                                     # werkzeug's BuildError suggestions
    "pdb",                                         # click's test runner (Quart imports it for app.test_cli_runner)
    "html",                                        # the `escape` filter; http.server's error pages
    "csv", "mimetypes", "tomllib",                 # exports, file responses; hypercorn's TOML configuration
    "python_multipart",                            # multipart/form-data bodies
    "email.parser", "email.header",                # http.client's header parsing (urllib)
    "logging.handlers",                            # logging.config's handler classes
    "tokenize", "shlex",                           # source lines of tracebacks; shell-like splitting
    "asyncio.sslproto", "asyncio.staggered",       # asyncio's TLS and happy eyeballs (Quart imports asyncio)
    "aiofiles.tempfile",
})

#: what the import system sets on a module before executing it: reading these does not execute it
_IMPORT_ATTRIBUTES = frozenset({"__spec__", "__name__", "__path__", "__loader__", "__package__", "__file__",
                                "__cached__", "__class__"})


class DeferredModule(types.ModuleType):
    """A module whose code has not run yet: reading an attribute runs it, then it is a plain module."""

    def __getattribute__(self, name: str) -> Any:
        if name not in _IMPORT_ATTRIBUTES:
            _run(self)
        return object.__getattribute__(self, name)

    def __delattr__(self, name: str) -> None:
        _run(self)
        super().__delattr__(name)


def _run(module: types.ModuleType) -> None:
    """Run ``module``'s code once; another thread waits, the running thread reads what is set so far."""
    spec = object.__getattribute__(module, "__spec__")
    state = spec.loader_state
    with state["lock"]:
        if type(module) is DeferredModule and not state["running"]:
            state["running"] = True
            try:
                spec.loader.exec_module(module)
                module.__class__ = types.ModuleType  # type: ignore[assignment]  # narrowed by the test above
            finally:
                state["running"] = False


class _DeferringLoader(importlib.abc.Loader):
    """Sets up the module like its own loader would, without running it (runs on first attribute read)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None   # the default module, as source and bytecode loaders do

    def exec_module(self, module: types.ModuleType) -> None:
        spec = module.__spec__
        assert spec is not None
        spec.loader = self.loader            # the module's own loader, to run it and for everyone else
        module.__loader__ = self.loader
        spec.loader_state = {"lock": threading.RLock(), "running": False}
        module.__class__ = DeferredModule


class DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds ``names`` through the other finders and defers the modules of source or bytecode files."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.searching = threading.local()     # another finder that asks every finder must not loop back here

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names or getattr(self.searching, "name", None) == fullname:
            return None
        self.searching.name = fullname
        try:
            spec = self._find(fullname, path, target)
        finally:
            self.searching.name = None
        if spec is not None and isinstance(spec.loader, (importlib.machinery.SourceFileLoader,
                                                         importlib.machinery.SourcelessFileLoader)):
            spec.loader = _DeferringLoader(spec.loader)
        return spec

    def _find(self, fullname: str, path: Sequence[str] | None,
              target: types.ModuleType | None) -> importlib.machinery.ModuleSpec | None:
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    return spec
        return None


@contextlib.contextmanager
def deferring(names: frozenset[str] = DEFERRED) -> Iterator[None]:
    """Defer ``names`` while the block runs: modules imported meanwhile stay deferred until used (those
    already imported stay as they are); afterwards imports are as usual again."""
    finder = DeferringFinder(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
