"""Server configuration: Kestra's keys where Kestra has one, from an optional YAML file and the environment.

Recognised keys (YAML nested or dotted; environment variables ``KESTRA_URL``,
``KESTRA_STORAGE_LOCAL_BASE_PATH``, … — the key upper-cased with ``.`` and ``-`` as ``_``):

=====================================  =========================================================
``kestra.url``                         base URL used in ``url`` fields (default from host/port)
``kestra.storage.type``                ``local`` (default) or ``s3`` (needs the ``s3`` extra)
``kestra.storage.local.base-path``     internal storage folder (default ``<data-dir>/storage``)
``kestra.storage.s3.bucket``           S3 storage: bucket (required), ``endpoint`` (an S3-compatible
                                       server's URL), ``region``, ``access-key``, ``secret-key``
                                       (``accessKey``/``secretKey`` too; without them boto3's default
                                       credential chain), ``prefix`` (a folder inside the bucket)
``kestra.encryption.secret-key``       AES key (base64, 32 bytes) for SECRET inputs and encrypt()
``kestra.server.basic-auth.enabled``   protect the API with basic auth
``kestra.server.basic-auth.username``  …
``kestra.server.basic-auth.password``  …
``kestra.variables.globals``           map exposed as ``{{ globals }}``
``kestra.variables.env-vars-prefix``   prefix of env vars exposed as ``{{ envs }}`` (``KESTRA_``)
``kestra.plugins.defaults``            server-level pluginDefaults list
``kestra.local-files.allowed-paths``   folders whose files ``file:///`` FILE inputs may name (none)
``falconet.data-dir``                  data folder (SQLite database, storage, temp)
``falconet.store``                     ``sqlite`` (default), ``memory`` or ``postgresql://USER:PW@HOST:PORT/DB``
``kestra.cluster.lease-duration``       PostgreSQL store: how long a node's execution leases outlive its last
                                       heartbeat (ISO-8601 ``PT10S`` or seconds; default 10 s, 0.5 s–1 h)
=====================================  =========================================================
An unknown or malformed key is a :class:`ConfigError` naming the file, line and key.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import yaml


class ConfigError(Exception):
    """A configuration file or value is invalid; the message names the file, line and key."""


@dataclasses.dataclass
class Config:
    data_dir: Path = Path("falconet-data")
    url: str | None = None
    storage_path: Path | None = None
    storage_type: str = "local"
    #: ``kestra.storage.s3.*`` settings by their kebab-case name (``bucket``, ``endpoint``, ``access-key``…)
    storage_s3: dict[str, str] = dataclasses.field(default_factory=dict)
    secret_key: str | None = None
    basic_auth: tuple[str, str] | None = None
    globals: dict[str, Any] = dataclasses.field(default_factory=dict)
    env_prefix: str = "KESTRA_"
    plugin_defaults: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    local_files_allowed_paths: list[str] = dataclasses.field(default_factory=list)
    store: str = "sqlite"
    #: seconds (``kestra.cluster.lease-duration``): see falconet/runtime/cluster/leases.py
    lease_duration: float = 10.0
    host: str = "127.0.0.1"
    port: int = 8080

    @property
    def storage_dir(self) -> Path:
        return self.storage_path if self.storage_path is not None else self.data_dir / "storage"

    def base_url(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "127.0.0.1", "::") else self.host
        return f"http://{host}:{self.port}"


#: the ``kestra.storage.s3.*`` keys (Kestra's storage-s3 names; camelCase spellings map to these)
_S3_KEYS = ("bucket", "endpoint", "region", "access-key", "secret-key", "prefix")
_S3_ALIASES = {"accessKey": "access-key", "secretKey": "secret-key"}

# key -> (type, setter)
_STR, _BOOL, _MAP, _LIST = "string", "boolean", "map", "list"
KEYS: dict[str, str] = {
    "kestra.url": _STR,
    "kestra.storage.type": _STR,
    "kestra.storage.local.base-path": _STR,
    **{f"kestra.storage.s3.{name}": _STR for name in (*_S3_KEYS, *_S3_ALIASES)},
    "kestra.encryption.secret-key": _STR,
    "kestra.server.basic-auth.enabled": _BOOL,
    "kestra.server.basic-auth.username": _STR,
    "kestra.server.basic-auth.password": _STR,
    "kestra.variables.globals": _MAP,
    "kestra.variables.env-vars-prefix": _STR,
    "kestra.plugins.defaults": _LIST,
    "kestra.local-files.allowed-paths": _LIST,
    "falconet.data-dir": _STR,
    "falconet.store": _STR,
    "kestra.cluster.lease-duration": _STR,
}


def _flatten(node: yaml.Node, prefix: str, out: dict[str, tuple[Any, int]], filename: str) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            if key in KEYS and KEYS[key] in (_MAP, _LIST):
                out[key] = (yaml.safe_load(yaml.serialize(value_node)), key_node.start_mark.line + 1)
            elif isinstance(value_node, yaml.MappingNode) and any(k.startswith(key + ".") for k in KEYS):
                _flatten(value_node, key, out, filename)
            else:
                out[key] = (yaml.safe_load(yaml.serialize(value_node)), key_node.start_mark.line + 1)
    else:
        raise ConfigError(f"{filename}:{node.start_mark.line + 1}: expected a mapping")


def _check(key: str, value: Any, where: str) -> Any:
    kind = KEYS.get(key)
    if kind is None:
        raise ConfigError(f"{where}: unknown configuration key '{key}'")
    if kind == _STR and not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: '{key}' must be a string")
    if kind == _BOOL:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be true or false")
    if kind == _MAP and not isinstance(value, dict):
        raise ConfigError(f"{where}: '{key}' must be a mapping")
    if kind == _LIST and not isinstance(value, list):
        raise ConfigError(f"{where}: '{key}' must be a list")
    return str(value) if kind == _STR else value


def load_config(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None,
                **overrides: Any) -> Config:
    """Build a Config: defaults < file < environment < explicit ``overrides`` (CLI flags)."""
    values: dict[str, Any] = {}
    if path is not None:
        filename = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{filename}: cannot read configuration: {exc.strerror}") from exc
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{filename}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
        if root is not None:
            flat: dict[str, tuple[Any, int]] = {}
            _flatten(root, "", flat, filename)
            for key, (value, lineno) in flat.items():
                values[key] = _check(key, value, f"{filename}:{lineno}")
    env = os.environ if environ is None else environ
    for key in KEYS:
        name = key.upper().replace(".", "_").replace("-", "_")
        if name in env:
            raw: Any = env[name]
            if KEYS[key] in (_MAP, _LIST):
                try:
                    raw = yaml.safe_load(raw)
                except yaml.YAMLError as exc:
                    raise ConfigError(f"environment variable {name}: invalid YAML value") from exc
            values[key] = _check(key, raw, f"environment variable {name}")
    cfg = Config()
    if "falconet.data-dir" in values:
        cfg.data_dir = Path(values["falconet.data-dir"])
    if "falconet.store" in values:
        if values["falconet.store"] not in ("sqlite", "memory") and not str(values["falconet.store"]).startswith(
                ("postgresql://", "postgres://")):
            raise ConfigError("falconet.store must be 'sqlite', 'memory' or a postgresql:// URL")
        cfg.store = values["falconet.store"]
    cfg.url = values.get("kestra.url")
    if "kestra.storage.local.base-path" in values:
        cfg.storage_path = Path(values["kestra.storage.local.base-path"])
    cfg.storage_type = values.get("kestra.storage.type", "local")
    for key, value in values.items():
        if key.startswith("kestra.storage.s3."):
            name = key[len("kestra.storage.s3."):]
            cfg.storage_s3[_S3_ALIASES.get(name, name)] = value
    if cfg.storage_type not in ("local", "s3"):
        raise ConfigError(f"kestra.storage.type must be 'local' or 's3', not {cfg.storage_type!r}")
    if cfg.storage_type == "s3" and not cfg.storage_s3.get("bucket"):
        raise ConfigError("kestra.storage.type 's3' needs kestra.storage.s3.bucket")
    cfg.secret_key = values.get("kestra.encryption.secret-key")
    if values.get("kestra.server.basic-auth.enabled"):
        user = values.get("kestra.server.basic-auth.username")
        password = values.get("kestra.server.basic-auth.password")
        if not user or not password:
            raise ConfigError("kestra.server.basic-auth.enabled needs username and password")
        cfg.basic_auth = (user, password)
    cfg.globals = dict(values.get("kestra.variables.globals") or {})
    cfg.env_prefix = values.get("kestra.variables.env-vars-prefix", "KESTRA_")
    cfg.plugin_defaults = list(values.get("kestra.plugins.defaults") or [])
    allowed = values.get("kestra.local-files.allowed-paths") or []
    if not all(isinstance(p, str) and p.startswith("/") for p in allowed):
        raise ConfigError("kestra.local-files.allowed-paths must be a list of absolute folder paths")
    cfg.local_files_allowed_paths = list(allowed)
    if "kestra.cluster.lease-duration" in values:
        cfg.lease_duration = parse_lease_duration(values["kestra.cluster.lease-duration"])
    for name, value in overrides.items():
        if value is not None:
            setattr(cfg, name, Path(value) if name in ("data_dir", "storage_path") else value)
    return cfg


def parse_lease_duration(text: str) -> float:
    """Seconds of ``kestra.cluster.lease-duration``: ``PT10S``-style or a number of seconds, 0.5 s to 1 h."""
    from falconet.runtime.expr.durations import parse_duration

    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_duration(text).total_seconds()
        except Exception:
            raise ConfigError(f"kestra.cluster.lease-duration: not a duration: {text!r}") from None
    if not 0.5 <= seconds <= 3600:
        raise ConfigError(f"kestra.cluster.lease-duration must be between 0.5 s and 1 h, not {text!r}")
    return seconds
