"""Flow parsing and validation: YAML source -> :class:`~falconet.runtime.flow.model.Flow`.

The engine and the HTTP layer call exactly these:

* :func:`parse_flow` — one flow source; raises :class:`~falconet.runtime.kernel.errors.FlowValidationError` listing
  every violation (path such as ``tasks[1].id``, Kestra's message, 1-based line);
* :func:`validate_flow_source` — every ``---`` document of a source, never raising: the body of
  ``POST /api/v1/flows/validate``.

Plugin types are resolved through a :class:`~falconet.sdk.plugin.Registry` (the process-wide one after
``load_plugins()`` unless one is passed), so every plugin's declaration is validated the same way. The
work is split by topic under :mod:`falconet.runtime.flow.parse`.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from falconet.runtime.kernel.errors import FlowValidationError, Violation
from falconet.runtime.flow.model import Flow
from falconet.runtime.flow.parse.context import ParseContext
from falconet.runtime.flow.parse.toplevel import parse_flow_mapping
from falconet.runtime.flow.parse.yamlload import Document, YamlError, load_documents
from falconet.sdk.plugin import Registry

__all__ = ["parse_flow", "validate_flow_source", "parse_flow_document"]


def _default_registry() -> Registry:
    from falconet.sdk.plugin import load_plugins

    return load_plugins()


def parse_flow_document(doc: Document, source: str, *, registry: Registry, revision: int = 1,
                        plugin_defaults: Sequence[Mapping[str, Any]] = ()) -> tuple[Flow | None, list[Violation]]:
    """Parse one loaded YAML document; returns the flow (None when the document is not a flow mapping) and
    the violations found (empty = valid)."""
    if doc.value is None or doc.value == {}:
        return None, doc.violations + [Violation("", "Invalid empty flow: the source holds no flow definition",
                                                  doc.start_line)]
    if not isinstance(doc.value, dict):
        return None, doc.violations + [Violation("", "Invalid flow: expected a mapping with id, namespace and tasks",
                                                  doc.start_line)]
    ctx = ParseContext(doc, registry, plugin_defaults)
    flow = parse_flow_mapping(ctx, doc.value, source, revision)
    return flow, ctx.violations


def parse_flow(source: str, *, filename: str | None = None, registry: Registry | None = None,
               revision: int = 1, plugin_defaults: Sequence[Mapping[str, Any]] = ()) -> Flow:
    """Parse and validate one flow source (a single YAML document).

    ``plugin_defaults`` are server-level ``[{type, forced, values}]`` entries; the flow's own
    ``pluginDefaults`` take precedence over them. Raises :class:`FlowValidationError` (with ``filename``)
    when the source is not valid YAML, holds several documents, or breaks any rule.
    """
    if not isinstance(source, str):
        raise FlowValidationError([Violation("", "Invalid flow source: expected YAML text")], filename)
    registry = registry if registry is not None else _default_registry()
    try:
        docs = load_documents(source)
    except YamlError as exc:
        raise FlowValidationError(exc.violations, filename) from None
    if len(docs) > 1:
        raise FlowValidationError([Violation("", "Invalid flow source: expected a single YAML document, found "
                                                 f"{len(docs)}", docs[1].start_line)], filename)
    flow, violations = parse_flow_document(docs[0], source, registry=registry, revision=revision,
                                           plugin_defaults=plugin_defaults)
    if violations or flow is None:
        raise FlowValidationError(sorted(violations, key=lambda v: v.line or 0), filename)
    return flow


def _document_source(source: str, doc: Document, next_doc: Document | None) -> str:
    lines = source.splitlines(keepends=True)
    end = next_doc.start_line - 1 if next_doc is not None else len(lines)
    return "".join(lines[doc.start_line - 1:end])


def validate_flow_source(source: str, *, registry: Registry | None = None,
                         plugin_defaults: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Validate each ``---`` document of ``source``: one result per document, in order,
    ``{"index", "flow", "namespace", "constraints" (only when invalid: messages joined by newlines),
    "deprecationPaths": [], "warnings": [], "infos": []}``. Never raises for an invalid flow."""
    registry = registry if registry is not None else _default_registry()
    try:
        docs = load_documents(source)
    except YamlError as exc:
        return [{"index": 0, "constraints": "\n".join(str(v) for v in exc.violations),
                 "deprecationPaths": [], "warnings": [], "infos": []}]
    results = []
    for index, doc in enumerate(docs):
        nxt = docs[index + 1] if index + 1 < len(docs) else None
        flow, violations = parse_flow_document(doc, _document_source(source, doc, nxt), registry=registry,
                                               plugin_defaults=plugin_defaults)
        result: dict[str, Any] = {"index": index}
        value = doc.value if isinstance(doc.value, dict) else {}
        if isinstance(value.get("id"), str):
            result["flow"] = value["id"]
        if isinstance(value.get("namespace"), str):
            result["namespace"] = value["namespace"]
        if violations:
            result["constraints"] = "\n".join(str(v) for v in sorted(violations, key=lambda v: v.line or 0))
        result.update({"deprecationPaths": [], "warnings": [], "infos": []})
        results.append(result)
    return results

