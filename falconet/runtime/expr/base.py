"""The expression engine's error type and its strict, chainable undefined value."""
from __future__ import annotations

from typing import Any, NoReturn

from jinja2 import StrictUndefined
from jinja2.exceptions import UndefinedError

from falconet.runtime.kernel.errors import IllegalArgument

#: the variables key under which the engine passes its hooks to the functions that need it (``read``, ``kv``…)
HOOKS_KEY = "__falconet__"


class ExpressionError(IllegalArgument):
    """A template could not be parsed or rendered. The message is Kestra's text, e.g.
    ``Unable to find `invalid` used in the expression `{{inputs.invalid}}` at line 1``.

    A render error fails the task attempt; through the HTTP layer it maps to 422 like any IllegalArgument.
    """


class UndefinedUse(UndefinedError):
    """Internal: an undefined value was used (printed, compared, iterated…). ``name`` is the first missing
    variable or attribute of the chain. The renderer turns it into an :class:`ExpressionError`."""

    def __init__(self, name: str):
        super().__init__(f"Unable to find `{name}`")
        self.name = name


class PebbleUndefined(StrictUndefined):
    """Pebble's strict variables: a missing variable or attribute is an error as soon as it is *used*.

    Reading an attribute or item of an undefined value yields the same undefined value (the first missing
    name is kept for the message), so ``a.b.c ?? x``, ``a.b is defined`` and ``a.b | default(x)`` work on a
    chain whose head is missing. Everything else (printing, comparing, iterating, arithmetic, truth tests,
    calling) raises :class:`UndefinedUse`.
    """

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UndefinedUse(str(self._undefined_name))

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Any:
        return self

    __iter__ = __str__ = __len__ = _fail_with_undefined_error
    __eq__ = __ne__ = __bool__ = __hash__ = _fail_with_undefined_error
    __contains__ = __call__ = _fail_with_undefined_error
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _fail_with_undefined_error
    __mod__ = __rmod__ = __pos__ = __neg__ = __lt__ = __le__ = __gt__ = __ge__ = _fail_with_undefined_error
    __int__ = __float__ = __complex__ = __pow__ = __rpow__ = _fail_with_undefined_error


def check_defined(value: Any) -> Any:
    """``value`` itself, or :class:`UndefinedUse` when it is undefined."""
    if isinstance(value, PebbleUndefined):
        value._fail_with_undefined_error()
    return value
