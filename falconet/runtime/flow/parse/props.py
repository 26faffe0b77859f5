"""Checking one declared property value against its :class:`~falconet.sdk.plugin.Prop` kind.

Scalar kinds are checked, not converted: the value is kept as written (expressions unrendered) so that the
run context renders and coerces it later. A dynamic property may always be an expression string; a value
of the wrong shape is a violation naming the property path.
"""
from __future__ import annotations

from typing import Any, Mapping

from falconet.sdk import plugin as P
from falconet.runtime.expr.durations import is_duration
from falconet.runtime.flow.parse.context import ParseContext, is_expression

__all__ = ["check_scalar", "check_object", "RETRY_FIELDS", "parse_retry", "parse_labels"]


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, str):
        try:
            int(value.strip())
        except ValueError:
            return False
        return True
    return False


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, str):
        try:
            float(value.strip())
        except ValueError:
            return False
        return True
    return False


def check_scalar(ctx: ParseContext, prop: P.Prop, value: Any, path: str) -> None:
    """Record a violation when ``value`` does not fit ``prop`` (None is always accepted here; required-ness
    is checked by the caller)."""
    if value is None:
        return
    dyn_expr = prop.dynamic and is_expression(value)
    kind = prop.kind
    if kind == P.STRING:
        if isinstance(value, (dict, list)):
            ctx.error(path, "Invalid value: expected a string")
    elif kind == P.INTEGER:
        if not dyn_expr and not _is_int(value):
            ctx.error(path, f"Invalid value `{value}`: expected an integer")
    elif kind == P.NUMBER:
        if not dyn_expr and not _is_number(value):
            ctx.error(path, f"Invalid value `{value}`: expected a number")
    elif kind == P.BOOLEAN:
        if not dyn_expr and not (isinstance(value, bool) or
                                 (isinstance(value, str) and value.strip().lower() in ("true", "false"))):
            ctx.error(path, f"Invalid value `{value}`: expected a boolean")
    elif kind == P.DURATION:
        if not dyn_expr and not (is_duration(value) or _is_number(value)):
            ctx.error(path, f"Invalid duration `{value}`: expected an ISO-8601 duration such as PT1M30S")
    elif kind == P.ENUM:
        if not dyn_expr and str(value) not in prop.values:
            ctx.error(path, f"Invalid value `{value}`: must be one of [{', '.join(prop.values)}]")
    elif kind == P.LIST:
        if not isinstance(value, list) and not (prop.dynamic and isinstance(value, str)):
            ctx.error(path, "Invalid value: expected a list")
    elif kind == P.MAP:
        if not isinstance(value, dict) and not (prop.dynamic and isinstance(value, str)):
            ctx.error(path, "Invalid value: expected a map")
    elif kind == P.OBJECT:
        if isinstance(value, dict):
            if prop.fields is not None:
                check_object(ctx, prop.fields, value, path)
        elif not dyn_expr:
            ctx.error(path, "Invalid value: expected an object")


def check_object(ctx: ParseContext, fields: Mapping[str, P.Prop], value: Mapping[str, Any], path: str) -> None:
    """Check a nested object against its field declarations: unknown fields, required fields, kinds."""
    names = _names(fields)
    for key, v in value.items():
        canonical = names.get(key)
        if canonical is None:
            ctx.error(f"{path}.{key}", f'Unrecognized field "{key}"')
            continue
        check_scalar(ctx, fields[canonical], v, f"{path}.{key}")
    for name, prop in fields.items():
        if prop.required and all(value.get(n) is None for n in (name, *prop.aliases)):
            ctx.error(f"{path}.{name}", "must not be null")


def _names(fields: Mapping[str, P.Prop]) -> dict[str, str]:
    """Written name (canonical or alias) -> canonical name."""
    out = {}
    for name, prop in fields.items():
        out[name] = name
        for alias in prop.aliases:
            out[alias] = name
    return out


#### retry ##################################################################################################

RETRY_FIELDS: dict[str, P.Prop] = {
    "type": P.Prop(P.ENUM, required=True, values=("constant", "exponential", "random"), dynamic=False),
    "maxAttempt": P.Prop(P.INTEGER, dynamic=False, aliases=("maxAttempts",)),
    "maxDuration": P.Prop(P.DURATION, dynamic=False),
    "warningOnRetry": P.Prop(P.BOOLEAN, default=False, dynamic=False),
    "behavior": P.Prop(P.ENUM, values=("RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"), dynamic=False),
    "interval": P.Prop(P.DURATION, dynamic=False),
    "maxInterval": P.Prop(P.DURATION, dynamic=False),
    "minInterval": P.Prop(P.DURATION, dynamic=False),
    "delayFactor": P.Prop(P.NUMBER, dynamic=False),
}

_RETRY_REQUIRED = {"constant": ("interval",), "exponential": ("interval", "maxInterval"),
                   "random": ("minInterval", "maxInterval")}


def parse_retry(ctx: ParseContext, value: Any, path: str):
    """``retry:`` mapping -> :class:`~falconet.runtime.flow.model.RetrySpec` (None when invalid or absent)."""
    from falconet.runtime.expr.durations import parse_duration
    from falconet.runtime.flow.model import RetrySpec

    if value is None:
        return None
    if not isinstance(value, dict):
        ctx.error(path, "Invalid value: expected an object")
        return None
    before = len(ctx.violations)
    check_object(ctx, RETRY_FIELDS, value, path)
    rtype = value.get("type")
    if not isinstance(rtype, str):  # check_object reported it
        return None
    for name in _RETRY_REQUIRED.get(rtype, ()):
        if value.get(name) is None:
            ctx.error(f"{path}.{name}", "must not be null")
    max_attempt = value.get("maxAttempt", value.get("maxAttempts"))
    if max_attempt is not None and _is_int(max_attempt) and int(max_attempt) < 1:
        ctx.error(f"{path}.maxAttempt", "must be greater than or equal to 1")
    if len(ctx.violations) > before:
        return None

    def dur(name: str):
        v = value.get(name)
        if v is None:
            return None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            from datetime import timedelta
            return timedelta(seconds=v)
        return parse_duration(v)

    return RetrySpec(
        type=rtype,
        max_attempt=int(max_attempt) if max_attempt is not None else None,
        max_duration=dur("maxDuration"),
        warning_on_retry=str(value.get("warningOnRetry", False)).lower() == "true",
        behavior=value.get("behavior") or "RETRY_FAILED_TASK",
        interval=dur("interval"),
        max_interval=dur("maxInterval"),
        min_interval=dur("minInterval"),
        delay_factor=float(value["delayFactor"]) if value.get("delayFactor") is not None else 2.0,
    )


def parse_labels(ctx: ParseContext, value: Any, path: str) -> list[dict[str, str]]:
    """``labels`` as a map or a list of ``{key, value}`` -> ``[{key, value}]`` (values as strings)."""
    if value is None:
        return []
    out: list[dict[str, str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append({"key": str(k), "value": _label_value(v)})
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, dict) or "key" not in item or set(item) - {"key", "value"}:
                ctx.error(f"{path}[{i}]", "Invalid label: expected an object with `key` and `value`")
                continue
            out.append({"key": str(item["key"]), "value": _label_value(item.get("value"))})
    else:
        ctx.error(path, "Invalid value: labels must be a map or a list of {key, value}")
    return out


def _label_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)
