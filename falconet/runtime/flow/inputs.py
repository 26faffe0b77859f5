"""Typing and validation of execution inputs, flow outputs and Pause ``onResume`` inputs
(Kestra's ``FlowInputOutput``).

Values arrive as strings (multipart form fields), as already-typed values (JSON, trigger inputs, subflow
inputs) or, for FILE inputs, as an uploaded file (a :class:`~pathlib.Path` its caller created) or a URI
checked by :class:`~.fileinputs.FileSources` — a string is never taken as a server path. They leave as the
typed values the execution document stores: INT/FLOAT numbers, BOOLEAN booleans, DATETIME ISO strings,
DATE/TIME ISO strings, DURATION ISO strings, JSON/YAML maps or lists, FILE URIs, SECRET ciphertext.
"""
from __future__ import annotations

import base64
import dataclasses
import binascii
import os
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from falconet.runtime.expr import safe_regex
from falconet.runtime.expr.durations import format_duration, parse_duration
from falconet.runtime.kernel.errors import InvalidEntity, Violation
from falconet.runtime.flow.fileinputs import ACCEPTED, FileSources
from falconet.runtime.flow.model import InputSpec, OutputSpec
from falconet.runtime.flow.parse.yamlload import safe_load as safe_load_yaml
from falconet.runtime.kernel.limits import json_loads

__all__ = ["resolve_inputs", "type_outputs", "validate_inputs_report", "input_to_dict", "parse_bound",
           "encrypt_secret", "decrypt_secret", "InputError"]

#### Scalar parsers #########################################################################################

_INSTANT_RE = re.compile(
    r"^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2}(?::?\d{2})?)$",
    re.IGNORECASE)


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant with a zone (``2019-10-06T18:27:49Z``, ``…+02:00``) -> aware UTC datetime.
    Raises ValueError with Java's wording when it cannot be parsed."""
    m = _INSTANT_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"Text '{text}' could not be parsed at index 0")
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    if zone.upper() == "Z":
        tz = timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]),
                                       seconds=int(digits[4:6] or 0)))
    try:
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec or 0), micro, tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"Text '{text}' could not be parsed: {exc}") from None
    return value.astimezone(timezone.utc)


def parse_local_date(text: str) -> date:
    if not isinstance(text, str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", text.strip()):
        raise ValueError(f"Text '{text}' could not be parsed at index 0")
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"Text '{text}' could not be parsed: {exc}") from None


def parse_local_time(text: str) -> time:
    if not isinstance(text, str) or not re.match(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$", text.strip()):
        raise ValueError(f"Text '{text}' could not be parsed at index 0")
    t = text.strip()
    if "." in t:
        head, frac = t.split(".")
        t = f"{head}.{frac[:6].ljust(6, '0')}"
    try:
        return time.fromisoformat(t)
    except ValueError as exc:
        raise ValueError(f"Text '{text}' could not be parsed: {exc}") from None


def parse_bound(itype: str, value: Any) -> Any:
    """A ``min``/``max``/``after``/``before`` bound of an input definition, parsed for comparison.
    Raises ValueError naming the bad value."""
    try:
        if itype == "INT":
            if isinstance(value, bool) or not (isinstance(value, int) or re.match(r"^[-+]?\d+$", str(value).strip())):
                raise ValueError
            return int(value)
        if itype == "FLOAT":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if itype == "DATETIME":
            return parse_instant(str(value))
        if itype == "DATE":
            return parse_local_date(str(value))
        if itype == "TIME":
            return parse_local_time(str(value))
        if itype == "DURATION":
            return parse_duration(str(value))
    except ValueError:
        raise ValueError(f"Invalid bound `{value}` for an input of type {itype}") from None
    raise ValueError(f"Inputs of type {itype} have no bounds")


def format_instant(value: datetime) -> str:
    """``Instant.toString()``: UTC, seconds always printed, fraction in groups of 3 digits when non-zero."""
    v = value.astimezone(timezone.utc)
    out = v.strftime("%Y-%m-%dT%H:%M:%S")
    if v.microsecond:
        frac = f"{v.microsecond:06d}"
        out += "." + (frac[:3] if frac.endswith("000") else frac)
    return out + "Z"


def format_local_time(value: time) -> str:
    """``LocalTime.toString()``: ``HH:mm``, then ``:ss`` unless zero, then the fraction in groups of 3."""
    out = f"{value.hour:02d}:{value.minute:02d}"
    if value.second or value.microsecond:
        out += f":{value.second:02d}"
        if value.microsecond:
            frac = f"{value.microsecond:06d}"
            out += "." + (frac[:3] if frac.endswith("000") else frac)
    return out


def java_str(value: Any) -> str:
    """How Java's ``toString`` prints a value in Kestra's messages (``null``, ``true``, ``[1, 2]``, ``{a=b}``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(java_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_str(k)}={java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, time):
        return format_local_time(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


#### Secrets ################################################################################################

def _aes_key(secret_key: str) -> bytes:
    raw = secret_key.encode("utf-8")
    if len(raw) in (16, 24, 32):
        return raw
    try:
        decoded = base64.b64decode(secret_key, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) in (16, 24, 32):
        return decoded
    raise ValueError("The encryption secret key must be 16, 24 or 32 characters (or that many bytes in base64)")


def _aesgcm(secret_key: str):
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - depends on the installation
        raise ValueError("SECRET inputs need the `cryptography` package (AES-GCM is not in the standard library)") \
            from None
    return AESGCM(_aes_key(secret_key))


def encrypt_secret(secret_key: str, plaintext: str) -> str:
    """Kestra's ``EncryptionService.encrypt``: AES-GCM (128-bit tag), random 12-byte IV, base64(IV ‖ ciphertext)."""
    iv = os.urandom(12)
    return base64.b64encode(iv + _aesgcm(secret_key).encrypt(iv, plaintext.encode("utf-8"), None)).decode("ascii")


def decrypt_secret(secret_key: str, ciphertext: str) -> str:
    """Inverse of :func:`encrypt_secret`; raises ValueError when the text was not encrypted with this key."""
    from cryptography.exceptions import InvalidTag

    try:
        data = base64.b64decode(ciphertext, validate=True)
        return _aesgcm(secret_key).decrypt(data[:12], data[12:], None).decode("utf-8")
    except (binascii.Error, InvalidTag, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"Unable to decrypt the secret value: {exc or type(exc).__name__}") from None


#### Typing one value #######################################################################################

#: Kestra's URI input pattern (``FlowInputOutput.URI_PATTERN``)
URI_RE = re.compile(r"^[a-z]+://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b"
                    r"(?:[-a-zA-Z0-9()@:%_+.~#?&/=]*)$")
EMAIL_RE = re.compile(r"^[a-zA-Z0-9_+&*-]+(?:\.[a-zA-Z0-9_+&*-]+)*@(?:[a-zA-Z0-9-]+\.)+[a-zA-Z]{2,}$")
_JAVA_INT = re.compile(r"^[-+]?\d+$")


class InputError(ValueError):
    """A provided value cannot be typed or breaks a constraint; the message is Kestra's reason text."""


def _need_str(itype: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"Expected `{itype}` but received `{java_str(value)}`")
    return value


def _parse_failure(itype: str, value: Any, detail: str) -> InputError:
    return InputError(f"Expected `{itype}` but received `{java_str(value)}` with errors:\n```\n{detail}\n```")


#: temporal input types: text → the canonical text stored in the execution (ValueError when unparsable)
_TEMPORAL: dict[str, Callable[[str], str]] = {
    "DATETIME": lambda text: format_instant(parse_instant(text)),
    "DATE": lambda text: parse_local_date(text).isoformat(),
    "TIME": lambda text: format_local_time(parse_local_time(text)),
    "DURATION": lambda text: format_duration(parse_duration(text)),
}


#: ``store_file(input_id, filename, local_path, move)`` -> the ``kestra:///`` URI of the stored file
StoreFile = Callable[[str, str, Path, bool], str]


class _Typer:
    """Types values for one resolution: FILE storage and sources, SECRET encryption are set per call.
    ``outputs``: flow outputs, whose FILE values are ``kestra:///`` URIs the flow itself rendered."""

    def __init__(self, store_file: StoreFile | None, secret_key: str | None, sources: FileSources | None = None,
                 *, outputs: bool = False):
        self.store_file = store_file
        self.secret_key = secret_key
        self.sources = sources
        self.outputs = outputs

    def parse(self, itype: str, input_id: str, value: Any, item_type: str | None = None) -> Any:
        """Type ``value`` as ``itype``; the result is the JSON form stored in the execution."""
        if itype in ("STRING", "ENUM", "SELECT", "EMAIL"):
            return value if isinstance(value, str) else java_str(value) if not isinstance(value, (dict, list)) \
                else _raise(InputError(f"Expected `{itype}` but received `{java_str(value)}`"))
        if itype == "SECRET":
            if not self.secret_key:
                raise InputError("Unable to use a `SECRET` input/output as encryption is not configured")
            return encrypt_secret(self.secret_key, value if isinstance(value, str) else java_str(value))
        if itype == "INT":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            text = _need_str(itype, value)
            # at most 10 significant digits before int(): Python refuses to convert more than 4,300
            if not _JAVA_INT.match(text) or len(text.lstrip("+-").lstrip("0")) > 10 \
                    or not -2**31 <= int(text) < 2**31:
                raise InputError(f'For input string: "{text}"')
            return int(text)
        if itype == "FLOAT":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            text = _need_str(itype, value)
            try:
                return float(text.strip().rstrip("fFdD"))
            except ValueError:
                raise InputError(f'For input string: "{text}"') from None
        if itype in ("BOOLEAN", "BOOL"):
            if isinstance(value, bool):
                return value
            return isinstance(value, str) and value.strip().lower() == "true"
        if itype in _TEMPORAL:
            text = _need_str(itype, value)
            try:
                return _TEMPORAL[itype](text)
            except ValueError as exc:
                raise _parse_failure(itype, value, str(exc)) from None
        if itype == "FILE":
            return self._file(input_id, value)
        if itype == "JSON":
            if not isinstance(value, str):
                return value
            try:
                return json_loads(value)
            except ValueError as exc:
                raise _parse_failure(itype, value, str(exc)) from None
        if itype == "YAML":
            if not isinstance(value, str):
                return value
            try:
                return safe_load_yaml(value)
            except yaml.YAMLError as exc:
                raise _parse_failure(itype, value, str(exc)) from None
        if itype == "URI":
            text = _need_str(itype, value)
            if not URI_RE.match(text):
                raise InputError(f"Expected `URI` but received `{text}`")
            return text
        if itype in ("ARRAY", "MULTISELECT"):
            items = self._list(itype, value)
            element = item_type or ("STRING" if itype == "MULTISELECT" else None)
            if element is None:
                return items
            out = []
            for item in items:
                try:
                    out.append(self.parse(element, input_id, item))
                except InputError:
                    raise InputError(f"Unable to parse array element as `{element}` on `{java_str(item)}`") from None
            return out
        raise InputError(f"Invalid type: {itype}")

    def _list(self, itype: str, value: Any) -> list[Any]:
        if isinstance(value, (list, tuple)):
            return list(value)
        text = _need_str(itype, value)
        try:
            parsed = json_loads(text)
        except ValueError as exc:
            raise _parse_failure(itype, value, str(exc)) from None
        if not isinstance(parsed, list):
            raise _parse_failure(itype, value, "not a JSON array")
        return parsed

    def _file(self, input_id: str, value: Any) -> str:
        if isinstance(value, Path):  # an upload handed over by the code that created it: moved
            if self.store_file is None:
                raise InputError("Unable to store the file: no storage is available here")
            if not value.is_file():
                raise InputError(f"Unable to find the file `{value.name}`")
            return self.store_file(input_id, value.name, value, True)
        if not isinstance(value, str):
            raise InputError(f"Expected `FILE` but received `{java_str(value)}`")
        if self.sources is None:
            if self.outputs and value.startswith("kestra://"):
                return value
            raise InputError(f"Expected {ACCEPTED}")
        try:
            source = self.sources.resolve(value)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if isinstance(source, Path):  # an allowed local file: copied, never moved
            if self.store_file is None:
                raise InputError("Unable to store the file: no storage is available here")
            return self.store_file(input_id, source.name, source, False)
        return source


def _raise(exc: Exception) -> Any:
    raise exc


#### Constraints ############################################################################################

def check_constraints(spec: InputSpec, typed: Any, raw: Any, values: list[Any] | None = None) -> None:
    """Raise :class:`InputError` with Kestra's reason when the typed value breaks the input's constraints.
    ``values`` are the allowed values of ENUM/SELECT/MULTISELECT (rendered from ``expression`` if needed)."""
    itype, props = spec.type, spec.props
    if itype in ("STRING", "SECRET") and props.get("validator") is not None:
        plain = raw if isinstance(raw, str) else java_str(raw)
        try:
            regex = safe_regex.compile(str(props["validator"]))
        except safe_regex.RegexError as exc:  # a flow stored before the rule: validation refuses it now
            raise InputError(str(exc)) from None
        if not regex.fullmatch(plain):
            raise InputError(f"it must match the pattern `{props['validator']}`")
    if itype in ("INT", "FLOAT", "DURATION", "DATETIME", "DATE", "TIME"):
        low_key, high_key = ("min", "max") if itype in ("INT", "FLOAT", "DURATION") else ("after", "before")
        value = parse_bound(itype, typed)
        capital = "It" if itype == "DURATION" else "it"
        low_word, high_word = ("more than", "less than") if low_key == "min" else ("after", "before")
        if props.get(low_key) is not None and value < parse_bound(itype, props[low_key]):
            raise InputError(f"{capital} must be {low_word} `{_bound_text(itype, props[low_key])}`")
        if props.get(high_key) is not None and value > parse_bound(itype, props[high_key]):
            raise InputError(f"{capital} must be {high_word} `{_bound_text(itype, props[high_key])}`")
    if itype == "EMAIL" and not EMAIL_RE.match(typed):
        raise InputError("The input must be a valid email")
    if itype in ("ENUM", "SELECT", "MULTISELECT") and values is not None:
        if itype == "ENUM" or not props.get("allowCustomValue"):
            allowed = [java_str(v) for v in values]
            for v in typed if itype == "MULTISELECT" else [typed]:
                if java_str(v) not in allowed:
                    raise InputError(f"it must match the values `{java_str(list(values))}`")


def _bound_text(itype: str, bound: Any) -> str:
    value = parse_bound(itype, bound)
    if itype == "DATETIME":
        return format_instant(value)
    if itype == "TIME":
        return format_local_time(value)
    if itype == "DATE":
        return value.isoformat()
    return java_str(value)


#### Resolution #############################################################################################

@dataclasses.dataclass
class _Resolved:
    spec: InputSpec
    raw: Any                   # the provided value, else the default
    value: Any = None          # the typed value once valid
    enabled: bool = True
    errors: list[str] = dataclasses.field(default_factory=list)


def _message(kind: str, input_id: str, reason: str, raw: Any) -> str:
    return f"Invalid {kind} for `{input_id}`, {reason}, but received `{java_str(raw)}`"


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted ids become nested maps: ``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return out


def _truthy_true(value: Any) -> bool:
    """``dependsOn.condition`` enables the input only when it renders to exactly true."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _expression_error_types() -> tuple[type[BaseException], ...]:
    from falconet.runtime.kernel.errors import FalconetError
    try:
        from falconet.runtime.expr.base import ExpressionError
    except ImportError:  # pragma: no cover - the expressions package ships with the runtime
        return (FalconetError,)
    return (ExpressionError, FalconetError)


def _resolve_all(flow_inputs: Sequence[InputSpec], provided: Mapping[str, Any], renderer: Any,
                 variables: Mapping[str, Any], typer: _Typer) -> list[_Resolved]:
    by_id: dict[str, InputSpec] = {}
    for spec in flow_inputs:
        by_id.setdefault(spec.id, spec)
    resolution = _Resolution(by_id, provided, renderer, variables, typer)
    return [resolution.resolve(spec, frozenset()) for spec in by_id.values()]


class _Resolution:
    """One input resolution, dependencies first (a class: a self-calling nested function is a reference cycle)."""

    def __init__(self, by_id: dict[str, InputSpec], provided: Mapping[str, Any], renderer: Any,
                 variables: Mapping[str, Any], typer: _Typer):
        self.by_id, self.provided, self.renderer = by_id, provided, renderer
        self.variables, self.typer = variables, typer
        self.done: dict[str, _Resolved] = {}
        self.expression_errors = _expression_error_types()

    def resolve(self, spec: InputSpec, visiting: frozenset[str]) -> _Resolved:
        done, by_id, renderer, expression_errors = self.done, self.by_id, self.renderer, self.expression_errors
        if spec.id in done:
            return done[spec.id]
        raw = self.provided.get(spec.id)
        res = _Resolved(spec, spec.defaults if raw is None else raw)
        deps = [self.resolve(by_id[d], visiting | {spec.id}) for d in spec.depends_on_inputs
                if d in by_id and d != spec.id and d not in visiting]
        res.enabled = all(d.enabled for d in deps)
        scope = {**self.variables, "inputs": _nest({d.spec.id: d.value for d in deps})}
        if res.enabled and spec.depends_on_condition is not None:
            try:
                res.enabled = _truthy_true(renderer.render_typed(spec.depends_on_condition, scope))
            except expression_errors as exc:
                res.errors.append(_message("input", spec.id, f"Invalid condition: {exc}", res.raw))
                res.enabled = False
        if not res.enabled:
            done[spec.id] = res
            return res
        try:
            values = _allowed_values(spec, renderer, scope, expression_errors)
            if res.raw is None:
                if spec.required:
                    res.errors.append(_message("input", spec.id, "missing required input", None))
            else:
                typed = self.typer.parse(spec.type, spec.id, res.raw, spec.props.get("itemType"))
                check_constraints(spec, typed, res.raw, values)
                res.value = typed
        except InputError as exc:
            res.errors.append(_message("input", spec.id, str(exc), res.raw))
        done[spec.id] = res
        return res


def _allowed_values(spec: InputSpec, renderer: Any, scope: Mapping[str, Any],
                    expression_errors: tuple[type[BaseException], ...]) -> list[Any] | None:
    """``values`` of ENUM/SELECT/MULTISELECT, or the rendered ``expression`` (a list, or a JSON list string)."""
    if spec.type not in ("ENUM", "SELECT", "MULTISELECT"):
        return None
    if spec.props.get("expression") is not None:
        try:
            rendered = renderer.render_typed(spec.props["expression"], scope)
        except expression_errors as exc:
            raise InputError(f"Unable to render the expression of the values: {exc}") from None
        if isinstance(rendered, str):
            try:
                rendered = json_loads(rendered)
            except ValueError:
                raise InputError(f"The expression of the values must render a list, got `{rendered}`") from None
        if not isinstance(rendered, list):
            raise InputError(f"The expression of the values must render a list, got `{java_str(rendered)}`")
        return rendered
    values = spec.props.get("values")
    return list(values) if isinstance(values, list) else None


def resolve_inputs(flow_inputs: Sequence[InputSpec], provided: Mapping[str, Any], *, renderer: Any,
                   variables: Mapping[str, Any], store_file: StoreFile | None = None,
                   secret_key: str | None = None, file_sources: FileSources | None = None) -> dict[str, Any]:
    """Type and validate the inputs of a new execution (or of a Pause resume, with its ``onResume`` list).

    ``provided`` maps input ids to raw values: strings (multipart fields), typed values (JSON, triggers,
    subflows) or, for FILE inputs, an uploaded :class:`Path` (moved into storage through
    ``store_file(input_id, filename, path, move) -> kestra URI``) or a URI string that ``file_sources``
    accepts (see :mod:`.fileinputs`; without ``file_sources`` no string is a FILE value). Missing
    values take the input's ``defaults``. Dependencies are resolved first; an input whose dependency is
    disabled or whose ``dependsOn.condition`` does not render to ``true`` is left out. SECRET values are
    encrypted with ``secret_key`` (an error when none is configured).

    Returns the typed inputs nested by dotted id, in declaration order. Raises :class:`InvalidEntity` with one
    violation per bad input: ``Invalid input for `<id>`, <reason>, but received `<value>```.
    """
    resolved = _resolve_all(flow_inputs, provided, renderer, variables, _Typer(store_file, secret_key, file_sources))
    errors = [Violation(r.spec.id, msg, r.spec.line) for r in resolved if r.enabled for msg in r.errors]
    if errors:
        raise InvalidEntity(errors)
    return _nest({r.spec.id: r.value for r in resolved if r.enabled})


def input_to_dict(spec: InputSpec) -> dict[str, Any]:
    """Kestra's JSON of an input definition (null fields omitted)."""
    out: dict[str, Any] = {"id": spec.id, "type": spec.type, "required": spec.required}
    for key, value in (("defaults", spec.defaults), ("description", spec.description),
                       ("displayName", spec.display_name)):
        if value is not None:
            out[key] = value
    if spec.depends_on_inputs or spec.depends_on_condition is not None:
        dep: dict[str, Any] = {"inputs": list(spec.depends_on_inputs)}
        if spec.depends_on_condition is not None:
            dep["condition"] = spec.depends_on_condition
        out["dependsOn"] = dep
    out.update({k: v for k, v in spec.props.items() if v is not None})
    return out


def validate_inputs_report(flow_inputs: Sequence[InputSpec], provided: Mapping[str, Any], *, renderer: Any,
                           variables: Mapping[str, Any], store_file: StoreFile | None = None,
                           secret_key: str | None = None,
                           file_sources: FileSources | None = None) -> list[dict[str, Any]]:
    """The per-input report of ``POST /executions/{ns}/{id}/validate`` and ``.../resume/validate``:
    ``[{"input": {...}, "value": typed-or-raw, "enabled": bool, "errors": [{"message"}]}]``, never raising.

    Nothing is stored for a validation: ``store_file`` should only name the URI a file would get (as
    Kestra does); without it an uploaded file is reported with its file name."""
    typer = _Typer(store_file or (lambda _id, name, _path, _move: name), secret_key, file_sources)
    report = []
    for r in _resolve_all(flow_inputs, provided, renderer, variables, typer):
        value = r.value if not r.errors else r.raw
        report.append({
            "input": input_to_dict(r.spec),
            "value": value.name if isinstance(value, Path) else value,   # never a server path
            "enabled": r.enabled,
            "errors": [{"message": m} for m in r.errors],
        })
    return report


#### Flow outputs ###########################################################################################

def type_outputs(flow_outputs: Sequence[OutputSpec], rendered: Mapping[str, Any], *,
                 store_file: StoreFile | None = None,
                 secret_key: str | None = None) -> dict[str, Any]:
    """Type the rendered flow ``outputs`` like inputs (FILE -> URI, SECRET encrypted, JSON parsed, …).

    A missing (None) value is kept as None unless the output is ``required``. Raises
    :class:`InvalidEntity` with ``Invalid output for `<id>`, <reason>, but received `<value>``` per bad output.
    """
    typer = _Typer(store_file, secret_key, outputs=True)
    out: dict[str, Any] = {}
    errors = []
    for spec in flow_outputs:
        value = rendered.get(spec.id)
        if value is None:
            if spec.required:
                errors.append(Violation(spec.id, _message("output", spec.id, "missing required output", None)))
            else:
                out[spec.id] = None
            continue
        try:
            out[spec.id] = typer.parse(spec.type, spec.id, value)
        except InputError as exc:
            errors.append(Violation(spec.id, _message("output", spec.id, str(exc), value)))
    if errors:
        raise InvalidEntity(errors)
    return out
