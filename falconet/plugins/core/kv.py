"""``io.kestra.plugin.core.kv.*``: the namespace key-value store from a flow (through ``ctx.kv_*``).

Keys must match Kestra's rule: an alphanumeric first character, then alphanumerics, ``.``, ``_`` or ``-``.
``namespace`` defaults to the flow's namespace.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any

from falconet.sdk import (
    ANY, BOOLEAN, DURATION, ENUM, STRING, Example, format_duration, Output, Prop, register, RunContext, RunnableTask,
    TaskFailed, to_output_string,
)

KEY_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
KV_TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")
_DURATION_RE = re.compile(r"^-?P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")

_NAMESPACE = Prop(STRING, default="{{ flow.namespace }}", description="The namespace (default: the flow's).")


def _key(ctx: RunContext) -> str:
    key = ctx.prop("key")
    if key is None or not KEY_RE.match(str(key)):
        raise TaskFailed(
            f"Key '{key}' is invalid: it must start with an alphanumeric character and contain only "
            "alphanumeric characters, dots (.), underscores (_) and hyphens (-)")
    return str(key)


def coerce_kv_value(value: Any, kv_type: str) -> Any:
    """Convert a rendered value to the representation of ``kv_type`` (raises TaskFailed when it cannot)."""
    try:
        if kv_type == "STRING":
            return to_output_string(value)
        if kv_type == "NUMBER":
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            if isinstance(value, (int, float)):
                return value
            text = str(value).strip()
            return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
        if kv_type == "BOOLEAN":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("true", "false"):
                raise ValueError("expected true or false")
            return text == "true"
        if kv_type == "DATETIME":
            text = str(value).strip()
            _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return text
        if kv_type == "DATE":
            text = str(value).strip()
            _dt.date.fromisoformat(text)
            return text
        if kv_type == "DURATION":
            text = str(value).strip()
            if not _DURATION_RE.match(text):
                raise ValueError("expected an ISO-8601 duration such as PT5M")
            return text
        if kv_type == "JSON":
            return json.loads(value) if isinstance(value, str) else value
    except (ValueError, TypeError) as exc:
        raise TaskFailed(f"Unable to convert value {value!r} to kvType {kv_type}: {exc}") from exc
    raise TaskFailed(f"Unknown kvType {kv_type!r}; expected one of {', '.join(KV_TYPES)}")


#### kv.Set #################################################################################################

@register
class Set(RunnableTask):
    """Store ``value`` (typed rendering) under ``key``; ``overwrite: false`` fails when the key exists.
    ``kvType`` converts the value first; ``ttl`` (ISO duration) makes it expire. No outputs."""

    type = "io.kestra.plugin.core.kv.Set"
    title = "Set a key-value pair in the namespace KV store."
    examples = (
        Example("Store a value for a day.",
                "key: last_run\n"
                "value: \"{{ execution.startDate }}\"\n"
                "ttl: P1D\n"),
    )
    props = {
        "key": Prop(STRING, required=True, description="The key."),
        "value": Prop(ANY, required=True, dynamic=False, description="The value (rendered, typed)."),
        "namespace": _NAMESPACE,
        "overwrite": Prop(BOOLEAN, default=True, description="Overwrite an existing value."),
        "ttl": Prop(DURATION, description="Time to live of the entry (ISO-8601 duration)."),
        "kvType": Prop(ENUM, values=KV_TYPES, description="Type of the stored value."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key = _key(ctx)
        value = ctx.render_typed(ctx.raw("value"))
        kv_type = ctx.prop("kvType")
        if kv_type is not None:
            value = coerce_kv_value(value, str(kv_type))
        ttl = ctx.prop("ttl")
        if isinstance(ttl, _dt.timedelta):
            ttl = format_duration(ttl)
        await ctx.kv_set(str(ctx.prop("namespace")), key, value, kv_type=kv_type,
                         ttl=None if ttl is None else str(ttl), overwrite=bool(ctx.prop("overwrite")))
        return None


#: the properties of kv.Get and kv.Delete
_KEY_PROPS = {
    "key": Prop(STRING, required=True, description="The key."),
    "namespace": _NAMESPACE,
    "errorOnMissing": Prop(BOOLEAN, default=False, description="Fail when the key does not exist."),
}


def _missing(key: str, namespace: str) -> TaskFailed:
    """The failure of kv.Get/kv.Delete on a missing key with ``errorOnMissing``."""
    return TaskFailed(f"No value found for key '{key}' in namespace '{namespace}' "
                      "and `errorOnMissing` is set to true")


#### kv.Get #################################################################################################

@register
class Get(RunnableTask):
    """Output ``value``: the typed value of ``key`` (null when missing, or a failure with ``errorOnMissing``)."""

    type = "io.kestra.plugin.core.kv.Get"
    title = "Get the value of a key from the namespace KV store."
    examples = (
        Example("Read a key of the namespace's KV store.",
                "key: last_run\n"
                "errorOnMissing: false\n"),
    )
    outputs = {
        "value": Output("any", "The value (absent when the key is missing).", required=False),
    }
    props = _KEY_PROPS

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key, namespace = _key(ctx), str(ctx.prop("namespace"))
        value = await ctx.kv_get(namespace, key)
        if value is None and ctx.prop("errorOnMissing"):
            raise _missing(key, namespace)
        return {"value": value}


#### kv.Delete ##############################################################################################

@register
class Delete(RunnableTask):
    """Delete ``key``; output ``deleted`` (whether it existed). ``errorOnMissing`` fails on a missing key."""

    type = "io.kestra.plugin.core.kv.Delete"
    title = "Delete a key from the namespace KV store."
    examples = (
        Example("Delete a key of the namespace's KV store.",
                "key: last_run\n"),
    )
    outputs = {
        "deleted": Output("boolean", "Whether the key existed."),
    }
    props = _KEY_PROPS

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key, namespace = _key(ctx), str(ctx.prop("namespace"))
        deleted = await ctx.kv_delete(namespace, key)
        if not deleted and ctx.prop("errorOnMissing"):
            raise _missing(key, namespace)
        return {"deleted": deleted}


#### kv.GetKeys #############################################################################################

@register
class GetKeys(RunnableTask):
    """Output ``keys``: the (non-expired) keys of the namespace, sorted, optionally only those starting with
    ``prefix``."""

    type = "io.kestra.plugin.core.kv.GetKeys"
    title = "List the keys of the namespace KV store."
    examples = (
        Example("List the keys starting with a prefix.",
                "prefix: customer_\n"),
    )
    outputs = {
        "keys": Output("list", "The matching keys, sorted."),
    }
    props = {
        "prefix": Prop(STRING, description="Only keys starting with this prefix."),
        "namespace": _NAMESPACE,
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        prefix = ctx.prop("prefix") or ""
        keys = await ctx.kv_keys(str(ctx.prop("namespace")))
        return {"keys": sorted(k for k in keys if k.startswith(str(prefix)))}
