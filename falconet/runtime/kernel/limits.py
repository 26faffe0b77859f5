"""Bounds on untrusted structured data: how deep a JSON or YAML document may nest, how far YAML aliases may
expand, how long a flow source may be.

Kestra (Jackson) allows 1,000 nesting levels; Falconet allows :data:`MAX_DEPTH`, because every later step
(copying, rendering, serializing a value) recurses once or twice per level under Python's recursion limit
of 1,000 frames. The YAML bounds are enforced while a document is composed (before anything expands), see
:mod:`falconet.runtime.flow.parse.yamlload`.
"""
from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_ALIAS_NODES", "MAX_SOURCE_CHARS", "TooDeep", "depth_exceeds", "json_loads",
           "SURROGATES", "join_surrogates"]

#: nesting levels (mappings/objects and sequences/arrays) of a JSON or YAML value
MAX_DEPTH = 100
#: nodes that YAML aliases of collections may add to a document when expanded ("billion laughs")
MAX_ALIAS_NODES = 100_000
#: characters of one YAML source (Kestra's SnakeYAML ``codePointLimit``: 3 MiB)
MAX_SOURCE_CHARS = 3 * 1024 * 1024


#: a surrogate code point (``\ud800``–``\udfff``): only valid as half of a pair, never in UTF-8 text
SURROGATES = re.compile("[\ud800-\udfff]")
#: where JSON text may produce one: a ``\uD8xx``–``\uDFxx`` escape, or its (surrogatepass) UTF-8 bytes
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def join_surrogates(text: str) -> str:
    """``text`` with surrogate pairs joined into their characters (as Java strings hold them); ValueError
    for an unpaired surrogate, which no UTF-8 text can carry (it would fail every later write)."""
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise ValueError("a string holds an unpaired surrogate (\\ud800-\\udfff), which is no character") from None


class TooDeep(ValueError):
    """A value nests deeper than :data:`MAX_DEPTH` levels."""

    def __init__(self, what: str = "the value"):
        super().__init__(f"{what} is nested deeper than {MAX_DEPTH} levels")


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists/tuples/mappings inside ``value`` nest more than ``limit`` levels (iterative, no recursion)."""
    if not isinstance(value, (dict, list, tuple)):
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        for child in (item.values() if isinstance(item, dict) else item):
            if isinstance(child, (dict, list, tuple)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def json_loads(text: str | bytes) -> Any:
    """:func:`json.loads`, refusing a document nested deeper than :data:`MAX_DEPTH` levels with
    :class:`TooDeep` (a ValueError, like every other malformed JSON)."""
    if isinstance(text, (bytes, bytearray)):
        opens = text.count(b"[") + text.count(b"{")
    else:
        opens = text.count("[") + text.count("{")
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep("the JSON document") from None
    if opens > MAX_DEPTH and isinstance(value, (dict, list)) and depth_exceeds(value):
        raise TooDeep("the JSON document")
    if isinstance(text, (bytes, bytearray)):
        lone_surrogate = _SURROGATE_BYTES.search(text) is not None
    else:
        lone_surrogate = _SURROGATE_ESCAPE.search(text) is not None
    if lone_surrogate:  # pairs were joined by json; a lone one stays and fails every UTF-8 write
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("the JSON document holds an unpaired surrogate (\\ud800-\\udfff), which is no "
                             "character") from None
    return value
