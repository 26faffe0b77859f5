"""Kestra's Pebble functions (``io.kestra.core.runners.pebble.functions``). Registered in the environment
as ``__f_fn_<name>`` so that a variable can never shadow a function.

Functions that need the engine (``read``, ``fileURI``, ``fileSize``, ``kv``, ``secret``, ``errorLogs``,
``encrypt``, ``decrypt``) call the hooks object the engine puts in the variables under ``__falconet__``
(see :class:`falconet.runtime.expr.render.ExpressionHooks`); without it they raise ExpressionError.
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import functools
import os
import random
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Callable

import yaml as _yaml
from jinja2 import pass_context
from jinja2.runtime import Context

from falconet.runtime.kernel import clock, ids
from falconet.runtime.flow.parse.yamlload import safe_load as _safe_load_yaml
from falconet.runtime.kernel.limits import json_loads
from falconet.runtime.expr import dates
from falconet.runtime.expr.base import HOOKS_KEY, ExpressionError, PebbleUndefined
from falconet.runtime.expr.env import _range
from falconet.runtime.expr.output import to_json

FUNCTIONS: dict[str, Callable[..., Any]] = {}


def _function(*names: str, context: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function under Pebble ``names``; an undefined argument makes the result undefined."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if context:
            @pass_context
            @functools.wraps(fn)
            def with_context(ctx: Context, *args: Any, **kwargs: Any) -> Any:
                undefined = _undefined_arg(args, kwargs)
                if undefined is not None:
                    return undefined
                return _call(names[0], fn, ctx, *args, **kwargs)
            registered: Callable[..., Any] = with_context
        else:
            @functools.wraps(fn)
            def plain(*args: Any, **kwargs: Any) -> Any:
                undefined = _undefined_arg(args, kwargs)
                if undefined is not None:
                    return undefined
                return _call(names[0], fn, *args, **kwargs)
            registered = plain
        for name in names:
            FUNCTIONS[name] = registered
        return registered
    return wrap


def _undefined_arg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> PebbleUndefined | None:
    """The first undefined argument: the call then yields it (it fails where used, ``??`` can catch it)."""
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, PebbleUndefined):
            return arg
    return None


def _call(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except TypeError as exc:
        if "argument" in str(exc):
            raise ExpressionError(f"Function '{name}': {exc}") from None
        raise


def _hooks(ctx: Context, function: str) -> Any:
    hooks = ctx.get(HOOKS_KEY)
    if hooks is None:
        raise ExpressionError(f"The '{function}' function is not available here: no execution context")
    return hooks


def user_variables(ctx: Context) -> dict[str, Any]:
    """The template-visible variables of ``ctx`` (no helpers, no hooks)."""
    return {k: v for k, v in ctx.get_all().items() if not k.startswith("__")}


#### Dates, ids, numbers ####################################################################################

@_function("now")
def _now(format: Any = "iso", timeZone: Any = None, existingFormat: Any = None,  # noqa: A002,N803
         locale: Any = None) -> str:
    tz = dates.zone(timeZone)
    return dates.format_datetime(_dt.datetime.fromtimestamp(clock.current().timestamp(), tz), format, tz, locale)


@_function("uuid")
def _uuid() -> str:
    return str(uuid.uuid4())


@_function("id")
def _id() -> str:
    return ids.new_id()


@_function("randomInt")
def _random_int(lower: Any = None, upper: Any = None) -> int:
    """A random integer in ``[lower, upper)``."""
    if not isinstance(lower, int) or not isinstance(upper, int) or isinstance(lower, bool):
        raise ExpressionError("The 'randomInt' function expects integer arguments 'lower' and 'upper'.")
    if lower >= upper:
        raise ExpressionError("The 'randomInt' function expects 'lower' to be less than 'upper'.")
    return random.randrange(lower, upper)


@_function("range")
def _range_function(start: Any = None, end: Any = None, increment: Any = 1) -> list[Any]:
    return _range(start, end, increment)


def _extreme(name: str, pick: Callable[..., Any]) -> None:
    @_function(name)
    def fn(*values: Any) -> Any:
        items = list(values[0]) if len(values) == 1 and isinstance(values[0], (list, tuple)) else list(values)
        items = [v for v in items if v is not None]
        if not items:
            return None
        try:
            return pick(items)
        except TypeError:
            raise ExpressionError(f"The '{name}' function needs comparable values") from None


_extreme("max", max)
_extreme("min", min)


#### Parsing ################################################################################################

@_function("fromJson", "json", "jsonDecode")
def _from_json(json_: Any = None, **kwargs: Any) -> Any:
    text = kwargs.get("json", json_)
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    try:
        return json_loads(text)
    except ValueError as exc:
        raise ExpressionError(f"Unable to parse JSON value '{text}': {exc}") from None


@_function("yaml")
def _from_yaml(yaml: Any = None) -> Any:
    if yaml is None:
        return None
    if not isinstance(yaml, str):
        return yaml
    try:
        return _safe_load_yaml(yaml)
    except _yaml.YAMLError as exc:
        raise ExpressionError(f"Unable to parse YAML value: {exc}") from None


def _expression_scalar(value: Any) -> Any:
    """An Ion scalar as an expression value: decimals and datetimes kept, blobs as base64 text."""
    if isinstance(value, Decimal):
        return Decimal(value)
    if isinstance(value, _dt.datetime):
        return _dt.datetime.fromisoformat(value.isoformat())
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _plain_ion(value: Any) -> Any:
    from falconet.runtime.storage.ionvalues import plain_ion

    return plain_ion(value, _expression_scalar)


@_function("fromIon", "ionDecode")
def _from_ion(ion: Any = None) -> Any:
    """Parse Ion text: one value → that value; several (a rows file) → the first one, like Kestra."""
    if ion is None:
        return None
    from falconet.runtime.storage.ionvalues import simpleion
    try:
        values = simpleion().loads(str(ion), single_value=False)
    except Exception as exc:  # amazon.ion raises bare IonException/ValueError/TypeError variants
        raise ExpressionError(f"Unable to parse Ion value: {exc}") from None
    if not values:
        return None
    return _plain_ion(values[0])


#### Rendering and context ##################################################################################

_MAX_RENDERS = 100


@_function("render", context=True)
def _render(ctx: Context, toRender: Any = None, recursive: Any = True) -> Any:  # noqa: N803
    """Render a string — or every string inside a map or list — against the current variables;
    ``recursive`` re-renders until the result is stable (at most 100 passes)."""
    if not isinstance(toRender, (str, Mapping, list, tuple, set, frozenset)):
        return toRender
    renderer = ctx.environment.falconet_renderer  # type: ignore[attr-defined]
    variables = ctx.get_all()
    previous = toRender
    result = _render_deep(renderer, previous, variables)
    if not recursive:
        return result
    for _ in range(_MAX_RENDERS):
        if result == previous:
            return result
        previous, result = result, _render_deep(renderer, result, variables)
    raise ExpressionError("Too many rendering attempts")


def _render_deep(renderer: Any, value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return renderer.render(value, variables)
    if isinstance(value, Mapping):
        return {_render_deep(renderer, k, variables) if isinstance(k, str) else k: _render_deep(renderer, v, variables)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_render_deep(renderer, v, variables) for v in value]
    return value


@_function("renderOnce", context=True)
def _render_once(ctx: Context, toRender: Any = None) -> Any:  # noqa: N803
    return _render(ctx, toRender, recursive=False)


@_function("printContext", context=True)
def _print_context(ctx: Context) -> str:
    return to_json(user_variables(ctx))


@_function("fetchContext", context=True)
def _fetch_context(ctx: Context) -> dict[str, Any]:
    return user_variables(ctx)


@_function("currentEachOutput", context=True)
def _current_each_output(ctx: Context, outputs: Any = None) -> Any:
    """The current iteration's output: ``outputs[<outermost loop value>]…[<taskrun.value>]``."""
    if not isinstance(outputs, Mapping):
        raise ExpressionError("The 'currentEachOutput' function expects an argument 'outputs' with type map.")
    parents = ctx.get("parents")
    if isinstance(parents, list):
        for parent in reversed(parents):
            taskrun = parent.get("taskrun") if isinstance(parent, Mapping) else None
            if isinstance(taskrun, Mapping):
                nested = outputs.get(taskrun.get("value"))
                if not isinstance(nested, Mapping):
                    raise ExpressionError("No execution outputs for the current task runs path")
                outputs = nested
    taskrun = ctx.get("taskrun")
    value = taskrun.get("value") if isinstance(taskrun, Mapping) else None
    return outputs.get(value)


#### Engine-bound functions #################################################################################

@_function("read", context=True)
def _read(ctx: Context, path: Any = None) -> str:
    if path is None:
        raise ExpressionError("The 'read' function expects an argument 'path'.")
    return _hooks(ctx, "read").read(str(path))


@_function("fileURI", context=True)
def _file_uri(ctx: Context, path: Any = None) -> str:
    if path is None:
        raise ExpressionError("The 'fileURI' function expects an argument 'path'.")
    return _hooks(ctx, "fileURI").file_uri(str(path))


@_function("fileSize", context=True)
def _file_size(ctx: Context, path: Any = None) -> int:
    if path is None:
        raise ExpressionError("The 'fileSize' function expects an argument 'path'.")
    return _hooks(ctx, "fileSize").file_size(str(path))


@_function("kv", context=True)
def _kv(ctx: Context, key: Any = None, namespace: Any = None, errorOnMissing: Any = False) -> Any:  # noqa: N803
    if key is None:
        raise ExpressionError("The 'kv' function expects an argument 'key'.")
    return _hooks(ctx, "kv").kv(str(key), None if namespace is None else str(namespace), bool(errorOnMissing))


@_function("secret", context=True)
def _secret(ctx: Context, key: Any = None) -> str:
    if key is None:
        raise ExpressionError("The 'secret' function expects an argument 'key'.")
    return _hooks(ctx, "secret").secret(str(key))


@_function("errorLogs", context=True)
def _error_logs(ctx: Context) -> list[dict[str, Any]]:
    return _hooks(ctx, "errorLogs").error_logs()


@_function("encrypt", context=True)
def _encrypt(ctx: Context, key: Any = None, plaintext: Any = None) -> str:
    if key is None or plaintext is None:
        raise ExpressionError("The 'encrypt' function expects two arguments 'key' and 'plaintext'.")
    return _hooks(ctx, "encrypt").encrypt(str(key), str(plaintext))


@_function("decrypt", context=True)
def _decrypt(ctx: Context, key: Any = None, encrypted: Any = None) -> str:
    if key is None or encrypted is None:
        raise ExpressionError("The 'decrypt' function expects two arguments 'key' and 'encrypted'.")
    return _hooks(ctx, "decrypt").decrypt(str(key), str(encrypted))


#### Defaults the engine can reuse ##########################################################################

def env_secret(key: str, environ: Mapping[str, str] | None = None) -> str:
    """Kestra OSS secrets: ``SECRET_<KEY upper-cased>`` holds the base64 of the value."""
    environ = os.environ if environ is None else environ
    raw = environ.get(f"SECRET_{key.upper()}")
    if raw is None:
        raise ExpressionError(f"Cannot find secret for key '{key}'.")
    try:
        return base64.b64decode("".join(raw.split()), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ExpressionError(f"The secret '{key}' is not valid base64 UTF-8 text") from None


def _aes(key: str) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - cryptography is installed with falconet
        raise ExpressionError("encrypt/decrypt need the 'cryptography' package") from None
    try:
        return AESGCM(base64.b64decode(key))
    except (binascii.Error, ValueError) as exc:
        raise ExpressionError(f"Invalid AES key (base64 of 16, 24 or 32 bytes expected): {exc}") from None


def aes_encrypt(key: str, plaintext: str) -> str:
    """Kestra's ``EncryptionService.encrypt``: AES/GCM, base64 key, output base64(12-byte IV + ciphertext+tag)."""
    iv = os.urandom(12)
    return base64.b64encode(iv + _aes(key).encrypt(iv, plaintext.encode("utf-8"), None)).decode("ascii")


def aes_decrypt(key: str, encrypted: str) -> str:
    """Inverse of :func:`aes_encrypt`."""
    from cryptography.exceptions import InvalidTag
    try:
        data = base64.b64decode(encrypted)
        return _aes(key).decrypt(data[:12], data[12:], None).decode("utf-8")
    except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
        raise ExpressionError("Unable to decrypt the value: wrong key or corrupted data") from None
