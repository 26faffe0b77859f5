"""``/api/v1/plugins``: Kestra's plugin catalogue, from the registered classes' declarations.

- ``GET plugins`` → one entry per group (name, title, description, tasks/triggers/conditions/taskRunners…)
- ``GET plugins/groups/subgroups`` → the groups, then one entry per subgroup (package)
- ``GET plugins/icons`` / ``icons/groups`` / ``icons/{cls}`` → ``{name, icon (base64 SVG), flowable}``
- ``GET plugins/schemas/{flow|task|trigger|plugindefault}[?arrayOf=true]`` → draft-07 JSON Schema
- ``GET plugins/properties/{type}`` → the root object of that schema (properties, required, definitions)
- ``GET plugins/inputs`` → ``[{type, cls}]``; ``GET plugins/inputs/{type}`` → ``{markdown, schema}``
- ``GET plugins/{cls}`` → ``{markdown, schema}``; ``GET plugins/{cls}/versions`` → ``{type, versions}``;
  ``GET plugins/{cls}/versions/{version}`` → the documentation when the version is the one installed

Static segments win over ``{cls}`` (Werkzeug ranks rules with fewer converters first).
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

from quart import Blueprint, request

from falconet import __version__
from falconet.runtime.kernel.errors import BadRequest, NotFound
from falconet.sdk.plugin import Plugin
from falconet.http.api.common import engine, json_response
from falconet.http.api.params import opt_bool

bp = Blueprint("plugins", __name__)

CACHE = {"Cache-Control": "public, max-age=3600"}


def _cached(body: Any) -> Any:
    response = json_response(body)
    response.headers.update(CACHE)
    return response


def _classes() -> list[type[Plugin]]:
    return engine().plugins()


def _catalog() -> ModuleType:
    """The catalogue's builders (:mod:`falconet.runtime.catalog.plugins`), imported with the first request that
    needs them: a server that answers none does not load them."""
    from falconet.runtime.catalog import plugins
    return plugins


def _docs() -> ModuleType:
    """The documentation builders (:mod:`falconet.runtime.catalog.docs`), likewise."""
    from falconet.runtime.catalog import docs
    return docs


def _find(type_name: str) -> type[Plugin]:
    for cls in _classes():
        if type_name == cls.type or type_name in cls.aliases:
            return cls
    raise NotFound(f"Unknown plugin type '{type_name}'")


@bp.get("/plugins")
async def list_plugins() -> Any:
    return json_response(_catalog().plugin_entries(_classes(), __version__))


@bp.get("/plugins/groups/subgroups")
async def subgroups() -> Any:
    return json_response(_catalog().subgroup_entries(_classes(), __version__))


@bp.get("/plugins/icons")
async def icons() -> Any:
    return _cached(_catalog().icons(_classes()))


@bp.get("/plugins/icons/groups")
async def group_icons() -> Any:
    return _cached(_catalog().group_icons(_classes()))


@bp.get("/plugins/icons/<cls>")
async def icon(cls: str) -> Any:
    found = _catalog().icons([_find(cls)])
    return _cached(found.get(cls) or found[_find(cls).type])


def _schema_type(name: str) -> str:
    if name not in _catalog().SCHEMA_TYPES:
        raise BadRequest(f"Invalid schema type '{name}': expected one of {', '.join(_catalog().SCHEMA_TYPES)}")
    return name


@bp.get("/plugins/schemas/<schema_type>")
async def schemas(schema_type: str) -> Any:
    array_of = opt_bool(request.args, "arrayOf", False)
    return _cached(_catalog().type_schema(_schema_type(schema_type), _classes(), array_of=array_of))


@bp.get("/plugins/properties/<schema_type>")
async def properties(schema_type: str) -> Any:
    return _cached(_catalog().type_properties(_schema_type(schema_type), _classes()))


@bp.get("/plugins/inputs")
async def inputs() -> Any:
    return json_response(_catalog().input_types())


@bp.get("/plugins/inputs/<input_type>")
async def input_schema(input_type: str) -> Any:
    body = _catalog().input_schema(input_type)
    if body is None:
        raise NotFound(f"Unknown input type '{input_type}'")
    return _cached(body)


@bp.get("/plugins/<type_name>")
async def plugin_documentation(type_name: str) -> Any:
    """One type (canonical name or alias): Kestra's ``{markdown, schema: {properties, outputs,
    definitions}}`` (see :func:`falconet.runtime.catalog.docs.plugin_doc`); 404 when unknown."""
    return json_response(_docs().plugin_doc(_find(type_name)))


@bp.get("/plugins/<type_name>/versions")
async def versions(type_name: str) -> Any:
    """The installed version is the only one (plugins ship with Falconet or its plugin packages)."""
    return json_response({"type": _find(type_name).type, "versions": [__version__]})


@bp.get("/plugins/<type_name>/versions/<version>")
async def documentation_for_version(type_name: str, version: str) -> Any:
    cls = _find(type_name)
    if version not in (__version__, "latest", "LATEST"):
        raise NotFound(f"Plugin '{cls.type}' has no version '{version}' (installed: {__version__})")
    return json_response(_docs().plugin_doc(cls))
