"""The engine's exception vocabulary. The HTTP layer maps each type to Kestra's status code and error body:

=======================  ======  ==========================================
exception                status  Kestra's message prefix
=======================  ======  ==========================================
NotFound                 404     ``Not Found: <msg>``
IllegalState             409     ``Illegal state: <msg>``
IllegalArgument          422     ``Illegal argument: <msg>``
InvalidEntity            422     ``Invalid entity: <msg>`` (+ ``_embedded.errors``)
BadRequest               400     ``Bad Request: <msg>``
PayloadTooLarge          413     ``Request Entity Too Large: <msg>``
Unavailable              503     ``Service Unavailable: <msg>``
=======================  ======  ==========================================
"""
from __future__ import annotations

from typing import Sequence


class FalconetError(Exception):
    """Base class of the errors the engine raises on purpose."""


class NotFound(FalconetError):
    pass


class IllegalState(FalconetError):
    pass


class IllegalArgument(FalconetError):
    pass


class BadRequest(FalconetError):
    pass


class PayloadTooLarge(FalconetError):
    """A request body (or one part of it) is larger than its limit."""

    def __init__(self, limit: int, size: int | None = None, what: str = "content length"):
        self.limit, self.size = limit, size
        shown = f" [{size}]" if size is not None else ""
        super().__init__(f"The {what}{shown} exceeds the maximum allowed {what} [{limit}]")


class Unavailable(FalconetError):
    """The node that runs the execution did not answer (it stopped): try again."""


class Violation:
    """One constraint violation: ``path`` (e.g. ``tasks[0].id`` or an input id) and ``message``."""

    __slots__ = ("path", "message", "line")

    def __init__(self, path: str, message: str, line: int | None = None):
        self.path, self.message, self.line = path, message, line

    def __repr__(self) -> str:
        return f"Violation({self.path!r}, {self.message!r}, line={self.line})"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidEntity(FalconetError):
    """Validation failed (flow source, execution inputs, …): one or more violations."""

    def __init__(self, violations: Sequence[Violation] | str):
        if isinstance(violations, str):
            violations = [Violation("", violations)]
        self.violations = list(violations)
        super().__init__("\n".join(str(v) for v in self.violations))


class FlowValidationError(InvalidEntity):
    """A flow source is invalid. ``str()`` lists every violation, one per line, with its line number."""

    def __init__(self, violations: Sequence[Violation] | str, filename: str | None = None):
        self.filename = filename
        super().__init__(violations)
