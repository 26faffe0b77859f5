"""User-supplied regular expressions, matched in linear time (RE2, from the ``google-re2`` package).

Python's ``re`` backtracks: ``^(a+)+$`` against thirty ``a`` and a ``!`` runs for seconds, holding the trio
thread and so the whole server. Every pattern that comes from a flow, an input, an expression, a trigger
condition or a request is compiled with :func:`compile`; RE2 guarantees time linear in the text and
refuses what it cannot do that way — backreferences (``\\1``), lookaround (``(?=``, ``(?<!``), possessive
quantifiers and atomic groups, ``\\Z`` (write ``\\z``) — with :class:`RegexError`, which the HTTP layer
answers with 422.

The compiled object has ``re``'s methods (``fullmatch``, ``search``, ``match``, ``finditer``, ``sub``,
``split``…). ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII, as in Java (Kestra's engine).
"""
from __future__ import annotations

import functools
import re
from typing import Any

from falconet.runtime.kernel.errors import IllegalArgument

__all__ = ["RegexError", "compile", "MAX_PATTERN_CHARS"]

#: longest pattern accepted (RE2 also refuses a pattern whose compiled program exceeds ``max_mem``)
MAX_PATTERN_CHARS = 10_000



@functools.cache
def _re2() -> tuple[Any, Any]:
    """The ``re2`` module and the options of every pattern, imported at the first pattern (the library's
    2.6 MB stay out of a server whose flows use none)."""
    import re2

    options = re2.Options()
    options.log_errors = False     # RE2 would print every refused pattern on stderr
    options.max_mem = 2 << 20      # compiled program and DFA cache per pattern (RE2's default: 8 MiB)
    return re2, options

#: RE2 errors that mean "a feature a backtracking engine has" (when Python's ``re`` accepts the pattern)
_FEATURE_ERRORS = ("invalid escape sequence", "invalid perl operator", "bad repetition operator",
                   "invalid named capture group")
_UNSUPPORTED = ("backreferences, lookaround, possessive quantifiers and atomic groups are not supported "
                "(patterns run on RE2, a linear-time engine)")


class RegexError(IllegalArgument):
    """A pattern that is invalid, too long, or uses a feature RE2 does not support; the message says which,
    ``reason`` is the message without the pattern."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def compile(pattern: Any) -> Any:
    """The compiled RE2 pattern (cached by the ``re2`` module); :class:`RegexError` when it cannot be used."""
    if not isinstance(pattern, str):
        raise RegexError(f"Invalid regular expression `{pattern!r}`: expected a string", "expected a string")
    if len(pattern) > MAX_PATTERN_CHARS:
        reason = f"longer than {MAX_PATTERN_CHARS} characters"
        raise RegexError(f"Invalid regular expression: {reason}", reason)
    re2, options = _re2()
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if reason.startswith(_FEATURE_ERRORS) and _python_accepts(pattern):
        reason = f"{reason}; {_UNSUPPORTED}"
        raise RegexError(f"Unsupported regular expression `{pattern}`: {reason}", reason)
    raise RegexError(f"Invalid regular expression `{pattern}`: {reason}", reason)


def _python_accepts(pattern: str) -> bool:
    """Whether a backtracking engine would take the pattern (only compiled, never matched)."""
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True
