"""``io.kestra.plugin.core.http.*``: HTTP requests and downloads, on ``httpx.AsyncClient`` (which runs under
trio through anyio; cancellation — kill, timeout — interrupts a request at any await).

Common request properties: ``uri`` (required), ``method`` (GET), ``headers`` (map), ``body`` (string) with
``contentType``, or ``formData`` (map: urlencoded, or multipart when ``contentType`` is
``multipart/form-data`` — a value ``{name, content: <kestra:// URI>, contentType}`` is a file part),
``options`` (``connectTimeout``, ``readTimeout`` as ISO durations, ``followRedirects`` (true),
``basicAuthUser``/``basicAuthPassword`` or ``auth: {type: BASIC|BEARER, username, password, token}``,
``defaultCharset``, ``maxContentLength``, ``proxyAddress``/``proxyPort``/``proxyUsername``/``proxyPassword``),
``sslOptions.insecureTrustAllCertificates``, ``allowFailed`` (false: a status ≥ 400 fails the task with
"Failed http request with response code '<code>'").
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import trio

from falconet.sdk import (
    BOOLEAN, MAP, OBJECT, STRING, Example, IllegalArgument, Metric, NotFound, Output, parse_duration, Prop, register,
    RunContext, RunnableTask, TaskFailed,
)

if TYPE_CHECKING:  # pragma: no cover
    import httpx


def _httpx() -> Any:
    """The ``httpx`` module, imported on first use (~12 MB an idle server should not carry)."""
    import httpx

    return httpx

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")
_CHUNK = 1 << 16

REQUEST_PROPS: dict[str, Prop] = {
    "uri": Prop(STRING, required=True, description="The fully-qualified URI of the request."),
    "method": Prop(STRING, default="GET", description="The HTTP method."),
    "headers": Prop(MAP, description="Request headers."),
    "body": Prop(STRING, description="The request body (string)."),
    "contentType": Prop(STRING, description="Content type of the body or form data."),
    "formData": Prop(MAP, description="Form fields (urlencoded, or multipart with contentType multipart/form-data)."),
    "options": Prop(OBJECT, description="Client options: timeouts, redirects, auth, proxy, charset."),
    "sslOptions": Prop(OBJECT, description="SSL options: {insecureTrustAllCertificates}."),
    "allowFailed": Prop(BOOLEAN, default=False, description="Do not fail the task on a status code >= 400."),
    "encryptBody": Prop(BOOLEAN, default=False, description="Encrypt the response body output (unsupported)."),
}


#### client and request construction #######################################################################

def _seconds(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return parse_duration(str(value)).total_seconds()
    except ValueError as exc:
        raise TaskFailed(f"options.{what}: {exc}") from exc


def _bool_option(value: Any, default: bool) -> bool:
    """A boolean option: a bool, or a string that is ``true`` in any case; ``default`` when unset."""
    if value is None:
        return default
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


def open_client(ctx: RunContext) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` configured from the task's ``options`` and ``sslOptions``."""
    return new_client(ctx.prop("options") or {}, ctx.prop("sslOptions") or {})


def new_client(options: Any, ssl: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` configured from rendered ``options`` and ``sslOptions`` objects (TaskFailed on
    bad values)."""
    if not isinstance(options, dict) or not isinstance(ssl, dict):
        raise TaskFailed("options and sslOptions must be objects")
    connect = _seconds(options.get("connectTimeout"), "connectTimeout")
    read = _seconds(options.get("readTimeout") or options.get("readIdleTimeout"), "readTimeout")
    timeout = _httpx().Timeout(60.0 if read is None else read, connect=10.0 if connect is None else connect)
    auth: httpx.Auth | None = None
    spec = options.get("auth")
    if isinstance(spec, dict) and str(spec.get("type", "")).upper() == "BASIC":
        auth = _httpx().BasicAuth(str(spec.get("username", "")), str(spec.get("password", "")))
    elif options.get("basicAuthUser") is not None:
        auth = _httpx().BasicAuth(str(options["basicAuthUser"]), str(options.get("basicAuthPassword", "")))
    headers = {}
    if isinstance(spec, dict) and str(spec.get("type", "")).upper() == "BEARER":
        headers["Authorization"] = f"Bearer {spec.get('token', '')}"
    proxy = None
    if options.get("proxyAddress"):
        user = options.get("proxyUsername")
        cred = f"{user}:{options.get('proxyPassword', '')}@" if user else ""
        proxy = f"http://{cred}{options['proxyAddress']}:{options.get('proxyPort', 8080)}"
    return _httpx().AsyncClient(
        timeout=timeout, auth=auth, headers=headers, proxy=proxy,
        follow_redirects=_bool_option(options.get("followRedirects"), True),
        verify=not _bool_option(ssl.get("insecureTrustAllCertificates"), False),
        default_encoding=str(options.get("defaultCharset") or "utf-8"), trust_env=False)


async def build_request(ctx: RunContext, client: httpx.AsyncClient) -> httpx.Request:
    """The request described by the task's properties (files of multipart forms are read from storage)."""
    uri = ctx.prop("uri")
    parts = urlsplit(str(uri))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TaskFailed(f"Invalid uri '{uri}': expected an http:// or https:// URL")
    method = str(ctx.prop("method") or "GET").upper()
    if method not in METHODS:
        raise TaskFailed(f"Invalid method '{method}': expected one of {', '.join(METHODS)}")
    headers = {str(k): str(v) for k, v in (ctx.prop("headers") or {}).items()}
    content_type = ctx.prop("contentType")
    body, form = ctx.prop("body"), ctx.prop("formData")
    kwargs: dict[str, Any] = {}
    if form:
        if not isinstance(form, dict):
            raise TaskFailed("formData must be a map")
        if content_type and str(content_type).startswith("multipart/form-data"):
            data, files = {}, {}
            for key, value in form.items():
                if isinstance(value, dict) and "content" in value:
                    files[key] = await _file_part(ctx, key, value)
                else:
                    data[key] = _field(value)
            kwargs.update(data=data, files=files or None)
        else:
            kwargs["data"] = {k: _field(v) for k, v in form.items()}
    elif body is not None:
        kwargs["content"] = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        if content_type:
            headers.setdefault("Content-Type", str(content_type))
    return client.build_request(method, str(uri), headers=headers, **kwargs)


def _field(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def _file_part(ctx: RunContext, key: str, spec: dict[str, Any]) -> tuple[str, bytes, str]:
    uri = str(spec["content"])
    try:
        data = await trio.to_thread.run_sync(ctx.storage.read_bytes, uri)
    except (NotFound, IllegalArgument) as exc:
        raise TaskFailed(f"formData.{key}: unable to read '{uri}': {exc}") from exc
    name = str(spec.get("name") or PurePosixPath(unquote(urlsplit(uri).path)).name)
    return name, data, str(spec.get("contentType") or "application/octet-stream")


def response_headers(response: httpx.Response) -> dict[str, list[str]]:
    """Response headers as Kestra outputs them: name → list of values (names as the server sent them)."""
    out: dict[str, list[str]] = {}
    for raw_name, raw_value in response.headers.raw:
        out.setdefault(raw_name.decode("latin-1"), []).append(raw_value.decode("latin-1"))
    return out


def _check_status(ctx: RunContext, response: httpx.Response) -> None:
    if response.status_code >= 400 and not ctx.prop("allowFailed"):
        raise TaskFailed(f"Failed http request with response code '{response.status_code}'")


def _tags(request: httpx.Request, response: httpx.Response) -> dict[str, str]:
    return {"request.method": request.method, "request.scheme": request.url.scheme,
            "request.hostname": request.url.host, "response.code": str(response.status_code)}


def _request_error(uri: Any, exc: httpx.HTTPError) -> TaskFailed:
    return TaskFailed(f"HTTP request to '{uri}' failed: {type(exc).__name__}: {exc}")


#### http.Request ###########################################################################################

@register
class Request(RunnableTask):
    """Send an HTTP request. Outputs ``uri``, ``code``, ``headers`` (name → list of values) and ``body``
    (the response text; use ``fromJson`` to parse). ``options.maxContentLength`` fails the task when the
    body is larger."""

    type = "io.kestra.plugin.core.http.Request"
    aliases = ("io.kestra.plugin.fs.http.Request",)
    title = "Make an HTTP API request to a specified URL and store the response as an output."
    examples = (
        Example("POST a JSON body and read the answer.",
                "uri: https://example.com/api/orders\n"
                "method: POST\n"
                "contentType: application/json\n"
                "body: \"{{ {'id': inputs.orderId} | toJson }}\"\n"),
    )
    outputs = {
        "uri": Output("string", "The requested URL."),
        "code": Output("integer", "The HTTP status code of the response."),
        "headers": Output("map", "The response headers."),
        "body": Output("string", "The response body as text (null when empty)."),
    }
    metrics = (
        Metric("response.length", "counter", "Size of the response body.", unit="bytes"),
    )
    props = REQUEST_PROPS

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        if ctx.prop("encryptBody"):
            raise TaskFailed("encryptBody is not supported by Falconet")
        options = ctx.prop("options") or {}
        limit = options.get("maxContentLength") if isinstance(options, dict) else None
        async with open_client(ctx) as client:
            request = await build_request(ctx, client)
            try:
                response = await client.send(request, stream=True)
                try:
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes(_CHUNK):
                        size += len(chunk)
                        if limit is not None and size > int(limit):
                            raise TaskFailed(f"Response body larger than maxContentLength ({limit} bytes)")
                        chunks.append(chunk)
                finally:
                    await response.aclose()
            except _httpx().HTTPError as exc:
                raise _request_error(request.url, exc) from exc
        content = b"".join(chunks)
        ctx.metric("counter", "response.length", len(content), _tags(request, response))
        _check_status(ctx, response)
        encoding = response.encoding or "utf-8"
        return {"uri": str(request.url), "code": response.status_code, "headers": response_headers(response),
                "body": content.decode(encoding, errors="replace") if content else None}


#### http.Download ##########################################################################################

_DISPOSITION_RE = re.compile(r"""filename\*?=(?:UTF-8''|"?)([^";]+)"?""", re.I)


def download_name(response: httpx.Response, request: httpx.Request) -> str:
    """The file name: Content-Disposition's, else the URL's last path segment, else ``download``."""
    disposition = response.headers.get("content-disposition", "")
    m = _DISPOSITION_RE.search(disposition)
    name = unquote(m.group(1)) if m else PurePosixPath(unquote(request.url.path)).name
    name = os.path.basename(name.replace("\\", "/")).strip()
    return name if name and name not in (".", "..") else "download"


@register
class Download(RunnableTask):
    """Download a file to internal storage, streamed to disk (never whole in memory).

    Outputs ``uri`` (``kestra:///`` of the file), ``code``, ``length`` (bytes), ``headers``; counter metric
    ``response.length``. ``failOnEmptyResponse`` (true) fails on an empty body ("No response from server");
    a body shorter than its Content-Length fails ("Invalid size, got X, expected Y").
    """

    type = "io.kestra.plugin.core.http.Download"
    aliases = ("io.kestra.plugin.fs.http.Download",)
    title = "Download a file from an HTTP server to internal storage."
    examples = (
        Example("Download a CSV file to the internal storage.",
                "uri: https://example.com/orders.csv\n"),
    )
    outputs = {
        "uri": Output("string", "URI of the downloaded file in the internal storage."),
        "code": Output("integer", "The HTTP status code of the response."),
        "length": Output("integer", "Size of the downloaded file in bytes."),
        "headers": Output("map", "The response headers."),
    }
    metrics = (
        Metric("response.length", "counter", "Size of the response body.", unit="bytes"),
    )
    props = {**REQUEST_PROPS,
             "failOnEmptyResponse": Prop(BOOLEAN, default=True, description="Fail when the response is empty.")}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        tmp = Path(await ctx.open_temp_dir())
        async with open_client(ctx) as client:
            request = await build_request(ctx, client)
            try:
                response = await client.send(request, stream=True)
                try:
                    _check_status(ctx, response)
                    name = download_name(response, request)
                    path = tmp / name
                    length = 0
                    f = await trio.open_file(path, "wb")
                    async with f:
                        async for chunk in response.aiter_raw(_CHUNK) if _is_identity(response) \
                                else response.aiter_bytes(_CHUNK):
                            await f.write(chunk)
                            length += len(chunk)
                finally:
                    await response.aclose()
            except _httpx().HTTPError as exc:
                raise _request_error(request.url, exc) from exc
        expected = response.headers.get("content-length")
        if expected is not None and _is_identity(response) and expected.isdigit() and int(expected) != length:
            raise TaskFailed(f"Invalid size, got {length}, expected {expected}")
        if length == 0:
            if ctx.prop("failOnEmptyResponse"):
                raise TaskFailed("No response from server")
            ctx.logger.warn("File '" + str(request.url) + "' is empty")
        ctx.metric("counter", "response.length", length, _tags(request, response))
        uri = await ctx.put_file(path, name)
        return {"uri": uri, "code": response.status_code, "length": length, "headers": response_headers(response)}


def _is_identity(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").lower() in ("", "identity")
