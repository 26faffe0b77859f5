"""Kestra's expression language (Pebble dialect) for Falconet, built on Jinja2's sandbox.

The engine calls :class:`Renderer`; the rules are Kestra's (its Pebble ``Extension``):

* a string without ``{`` (or without any ``{{``/``{%``/``{#``) is returned untouched (no parsing at all);
* strict variables: using an undefined variable or attribute fails with :class:`ExpressionError`
  ``Unable to find `<name>` used in the expression `<template>` at line <n>`` — while ``??``, ``???``,
  ``is defined`` and ``default`` accept undefined values;
* printing: maps/lists as compact JSON, booleans ``true``/``false``, null as ``""``, floats like Java,
  datetimes ISO-8601 (:func:`to_output_string`);
* :meth:`Renderer.render_typed`: a template that is exactly one ``{{ expr }}`` yields the native value;
* templates are translated and compiled once (LRU cache of ``cache_size`` entries).

The language (:mod:`.functions`, :mod:`.filters` and the filters they register, the Jinja environment and
the Pebble translator) is imported and a renderer's environment built when it compiles its first template
(:func:`_language`): a server that renders nothing does not load them.

Functions that need the engine (``read``, ``kv``, ``secret``…) use the hooks object found in the variables
under the reserved key ``"__falconet__"`` (:class:`ExpressionHooks`); templates cannot see that key.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, Protocol

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, TemplateError

from falconet.runtime.expr.base import HOOKS_KEY, ExpressionError, UndefinedUse, check_defined
from falconet.runtime.expr.output import is_truthy, to_json, to_output_string

__all__ = [
    "ExpressionError", "ExpressionHooks", "DefaultHooks", "Renderer", "to_output_string", "to_json",
    "HOOKS_KEY", "is_truthy",
]

#### Engine hooks ###########################################################################################

class ExpressionHooks(Protocol):
    """What context-bound functions need from the engine. Calls are synchronous (the engine keeps what
    they need in memory or reads local files); each raises :class:`ExpressionError` with Kestra's message
    on failure (e.g. ``Unable to read the file '…' as it didn't belong to the current execution``)."""

    def read(self, path: str) -> str:
        """``read(path)``: a ``kestra:///`` URI of the current execution, or a namespace file path."""

    def file_size(self, path: str) -> int:
        """``fileSize(path)``: size in bytes."""

    def file_uri(self, path: str) -> str:
        """``fileURI(path)``: the ``kestra:///`` URI of a namespace file."""

    def kv(self, key: str, namespace: str | None, error_on_missing: bool) -> Any:
        """``kv(key, namespace=flow ns, errorOnMissing=false)``: the typed value, None when missing (or
        ``The key 'k' does not exist in the namespace 'ns'.`` when ``error_on_missing``)."""

    def secret(self, key: str) -> str:
        """``secret(key)``: the secret's value."""

    def error_logs(self) -> list[dict[str, Any]]:
        """``errorLogs()``: the ERROR log entries of the failed task runs."""

    def encrypt(self, key: str, plaintext: str) -> str:
        """``encrypt(key, plaintext)``."""

    def decrypt(self, key: str, ciphertext: str) -> str:
        """``decrypt(key, encrypted)``."""


class DefaultHooks:
    """Reusable implementations of the engine-independent hooks: OSS secrets from ``SECRET_<KEY>``
    environment variables (base64), and Kestra's AES-GCM ``encrypt``/``decrypt``. The engine can subclass
    this (or delegate to it) and add ``read``, ``kv``… ``environ`` defaults to ``os.environ``."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = environ

    def secret(self, key: str) -> str:
        return _language().functions.env_secret(key, self._environ)

    def encrypt(self, key: str, plaintext: str) -> str:
        return _language().functions.aes_encrypt(key, plaintext)

    def decrypt(self, key: str, ciphertext: str) -> str:
        return _language().functions.aes_decrypt(key, ciphertext)


#### Renderer ###############################################################################################

@functools.cache
def _language() -> SimpleNamespace:
    """The expression language, imported on first use: importing :mod:`.filters` registers every filter and
    test (those of :mod:`.filters_data` too), importing :mod:`.functions` every function."""
    from falconet.runtime.expr import functions
    from falconet.runtime.expr.env import PebbleEnvironment
    from falconet.runtime.expr.filters import FILTERS, TESTS
    from falconet.runtime.expr.pebble import Names, translate

    names = Names(functions=frozenset(functions.FUNCTIONS), filters=frozenset(FILTERS), tests=frozenset(TESTS))
    return SimpleNamespace(functions=functions, environment=PebbleEnvironment, filters=FILTERS, tests=TESTS,
                           names=names, translate=translate)


class _Compiled:
    """One cached template: the Jinja template, and the compiled single expression for typed rendering."""

    __slots__ = ("template", "expression")

    def __init__(self, template: Any, expression: Any):
        self.template, self.expression = template, expression


class Renderer:
    """Renders Kestra templates against a variables mapping. Safe to share between threads and tasks;
    keep one per engine (the compiled-template cache belongs to the instance)."""

    def __init__(self, *, cache_size: int = 2000) -> None:
        #: the Jinja environment, built with the first template compiled (every use follows a compilation)
        self._env: Any = None
        self._env_lock = threading.Lock()
        #: template string -> _Compiled, LRU; a failing template is not cached (it raises every time)
        self._compile = functools.lru_cache(maxsize=cache_size)(self._compile_uncached)

    def _environment(self) -> Any:
        with self._env_lock:
            if self._env is None:
                language = _language()
                env = language.environment()
                env.filters.update(language.filters)
                env.tests.update(language.tests)
                env.globals.update({f"__f_fn_{name}": fn for name, fn in language.functions.FUNCTIONS.items()})
                env.falconet_renderer = self  # used by render()/renderOnce()
                self._env = env
            return self._env

    #### Public API #########################################################################################

    def render(self, template: str, variables: Mapping[str, Any]) -> str:
        """``template`` rendered to a string. Raises :class:`ExpressionError`."""
        if not isinstance(template, str):
            raise ExpressionError(f"A template must be a string, got {type(template).__name__}")
        if "{" not in template or not _has_delimiter(template):
            return template
        compiled = self._compile(template)
        context = self._env.make_context(compiled.template, variables)
        try:
            return "".join(compiled.template.root_render_func(context))
        except _RENDER_ERRORS as exc:
            raise self._error(exc, template, compiled.template) from None

    def validate(self, template: str) -> None:
        """Parse and compile ``template`` (and cache it) without rendering; raises :class:`ExpressionError`
        on a syntax error or an unknown function, filter or test. Flow validation can use it."""
        if isinstance(template, str) and "{" in template:
            self._compile(template)

    def render_typed(self, template: str, variables: Mapping[str, Any]) -> Any:
        """The native value (map, list, number, bool, None…) when ``template`` is exactly one ``{{ expr }}``
        with only whitespace around it; otherwise the rendered string. Non-strings are returned as is."""
        if not isinstance(template, str) or "{" not in template or not _has_delimiter(template):
            return template
        compiled = self._compile(template)
        if compiled.expression is None:
            return self.render(template, variables)
        context = self._env.make_context(compiled.expression, variables)
        try:
            for _ in compiled.expression.root_render_func(context):
                pass
            return check_defined(context.vars[_RESULT])
        except _RENDER_ERRORS as exc:
            raise self._error(exc, template, compiled.expression,
                              template.count("\n", 0, template.index("{{")) + 1) from None

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Render every string inside ``value`` (dict keys too, recursively) to a string; other leaves are
        kept. Tuples become lists."""
        if isinstance(value, str):
            return self.render(value, variables)
        if isinstance(value, Mapping):
            return {self.render(k, variables) if isinstance(k, str) else k: self.render_value(v, variables)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.render_value(v, variables) for v in value]
        return value

    def render_value_typed(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Like :meth:`render_value`, but string leaves use :meth:`render_typed` (keys stay strings)."""
        if isinstance(value, str):
            return self.render_typed(value, variables)
        if isinstance(value, Mapping):
            return {self.render(k, variables) if isinstance(k, str) else k: self.render_value_typed(v, variables)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.render_value_typed(v, variables) for v in value]
        return value

    def cache_info(self) -> Any:
        """The template cache's hits/misses/size (``functools.lru_cache`` statistics)."""
        return self._compile.cache_info()

    #### Internals ##########################################################################################

    def _compile_uncached(self, template: str) -> _Compiled:
        env = self._env if self._env is not None else self._environment()
        language = _language()
        try:
            translation = language.translate(template, language.names)
        except RecursionError:
            raise ExpressionError(f"Unable to parse the expression `{template}`: nested too deeply") from None
        try:
            jinja_template = env.from_string(translation.source)
            expression = None
            if translation.single_expression is not None:
                expression = env.from_string(
                    f"{{% set {_RESULT} = {translation.single_expression} %}}")
        except TemplateSyntaxError as exc:
            raise ExpressionError(
                f"Unable to parse the expression `{template}`: {exc.message} at line {exc.lineno}") from None
        except RecursionError:
            raise ExpressionError(f"Unable to parse the expression `{template}`: nested too deeply") from None
        return _Compiled(jinja_template, expression)

    @staticmethod
    def _error(exc: BaseException, template: str, jinja_template: Any, line: int | None = None) -> ExpressionError:
        if line is None:
            line = 1
            tb = exc.__traceback__
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == "<template>":
                    line = jinja_template.get_corresponding_lineno(tb.tb_lineno)
                tb = tb.tb_next
        if isinstance(exc, UndefinedUse):
            return ExpressionError(f"Unable to find `{exc.name}` used in the expression `{template}` at line {line}")
        if isinstance(exc, SecurityError):
            return ExpressionError(f"Access denied in the expression `{template}` at line {line}: {exc}")
        if isinstance(exc, RecursionError):
            return ExpressionError(f"Expression nested too deeply ({template}:{line})")
        return ExpressionError(f"{exc} ({template}:{line})")


def _has_delimiter(template: str) -> bool:
    """A template without ``{{``, ``{%`` or ``{#`` renders to itself (e.g. a JSON body): skip the cache."""
    return "{{" in template or "{%" in template or "{#" in template


_RESULT = "__f_result"
_RENDER_ERRORS = (TemplateError, ExpressionError, TypeError, ValueError, ArithmeticError, LookupError,
                  AttributeError, RecursionError)


