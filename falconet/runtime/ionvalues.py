"""Amazon Ion values (``amazon.ion``'s IonPy* types) as plain Python.

One walker shared by the Ion row files (:mod:`falconet.plugins.ion`) and the ``fromIon()`` expression
function: null, struct, list, bool, int and float convert the same way for both; the scalars JSON has no
type for (decimals, timestamps, text, blobs, symbols) go through the caller's ``scalar`` function, since a
row file wants JSON-able values while an expression keeps decimals and datetimes.

Imports ``amazon.ion``: import this module lazily where Ion is optional.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from amazon.ion.core import IonType
from amazon.ion.simple_types import IonPyNull


def plain_ion(value: Any, scalar: Callable[[Any], Any]) -> Any:
    """``value`` with Ion nulls as None, structs as ``dict`` (keys as ``str``), lists/s-expressions as
    ``list``, bools/ints/floats as the plain Python types, every other scalar as ``scalar(value)``."""
    if value is None or isinstance(value, IonPyNull):
        return None
    if isinstance(value, Mapping) or getattr(value, "ion_type", None) is IonType.STRUCT:
        return {str(k): plain_ion(v, scalar) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_ion(v, scalar) for v in value]
    if isinstance(value, bool) or getattr(value, "ion_type", None) is IonType.BOOL:
        return bool(value)  # amazon.ion's IonPyBool subclasses int, not bool
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return scalar(value)


__all__ = ["plain_ion"]
