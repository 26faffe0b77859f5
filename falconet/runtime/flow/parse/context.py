"""State shared by the flow-parsing passes: the registry, the plugin defaults and the violations found."""
from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

from falconet.runtime.kernel.errors import Violation
from falconet.sdk.plugin import Registry
from falconet.runtime.flow.parse.yamlload import Document

__all__ = ["ParseContext", "is_expression", "merge_defaults"]


def is_expression(value: Any) -> bool:
    """True when ``value`` is a string holding a Pebble expression or tag (rendered at run time)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def merge_defaults(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: ``over`` wins; nested mappings are merged key by key, lists and scalars replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_defaults(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class ParseContext:
    """Collects violations (each with the line of its path) while one flow document is parsed."""

    def __init__(self, doc: Document, registry: Registry, plugin_defaults: Sequence[Mapping[str, Any]] = ()):
        self.doc = doc
        self.registry = registry
        self.violations: list[Violation] = list(doc.violations)
        #: [{type, forced, values}] in priority order (flow-level first, then server-level)
        self.plugin_defaults = [d for d in plugin_defaults if isinstance(d, Mapping)]

    def error(self, path: str, message: str) -> None:
        self.violations.append(Violation(path, message, self.doc.line_of(path)))

    #### pluginDefaults ######################################################################################

    def apply_defaults(self, written_type: str, canonical_type: str, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with the matching plugin defaults applied: a default matches when its ``type`` equals
        the written or canonical type or is a prefix of the canonical type. Non-forced defaults only fill
        properties the task does not set (the first matching default wins); forced defaults override."""
        matching = [d for d in self.plugin_defaults if _matches(d.get("type"), written_type, canonical_type)]
        if not matching:
            return values
        combined: dict[str, Any] = {}
        for d in reversed([d for d in matching if not d.get("forced")]):
            if isinstance(d.get("values"), Mapping):
                combined = merge_defaults(combined, d["values"])
        result = merge_defaults(combined, values)
        for d in reversed([d for d in matching if d.get("forced")]):
            if isinstance(d.get("values"), Mapping):
                result = merge_defaults(result, d["values"])
        return result


def _matches(default_type: Any, written: str, canonical: str) -> bool:
    if not isinstance(default_type, str) or not default_type:
        return False
    return default_type in (written, canonical) or canonical.startswith(default_type)
