"""Amazon Ion values (``amazon.ion``'s IonPy* types) as plain Python.

One walker shared by the Ion row files (:mod:`falconet.runtime.storage.ionfiles`) and the ``fromIon()`` expression
function: null, struct, list, bool, int and float convert the same way for both; the scalars JSON has no
type for (decimals, timestamps, text, blobs, symbols) go through the caller's ``scalar`` function, since a
row file wants JSON-able values while an expression keeps decimals and datetimes.

``amazon.ion`` is the optional ``ion`` extra (its dependency chain pulls numpy, see the README's
dependency table): it is imported on first use, and :func:`simpleion` names the extra when it is absent.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from falconet.runtime.kernel.errors import IllegalArgument

ION_MISSING = ("Ion files need the amazon.ion library, the 'ion' extra: pip install 'falconet[ion]' "
               "(without numpy: pip install --no-deps amazon.ion jsonconversion)")


def simpleion() -> Any:
    """``amazon.ion.simpleion``, imported on first use; :class:`IllegalArgument` when the extra is absent."""
    try:
        from amazon.ion import simpleion as module
    except ImportError:
        raise IllegalArgument(ION_MISSING) from None
    return module


def plain_ion(value: Any, scalar: Callable[[Any], Any]) -> Any:
    """``value`` with Ion nulls as None, structs as ``dict`` (keys as ``str``), lists/s-expressions as
    ``list``, bools/ints/floats as the plain Python types, every other scalar as ``scalar(value)``."""
    simpleion()
    from amazon.ion.core import IonType
    from amazon.ion.simple_types import IonPyNull

    def walk(value: Any) -> Any:
        if value is None or isinstance(value, IonPyNull):
            return None
        if isinstance(value, Mapping) or getattr(value, "ion_type", None) is IonType.STRUCT:
            return {str(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, bool) or getattr(value, "ion_type", None) is IonType.BOOL:
            return bool(value)  # amazon.ion's IonPyBool subclasses int, not bool
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        return scalar(value)

    return walk(value)


__all__ = ["ION_MISSING", "plain_ion", "simpleion"]
