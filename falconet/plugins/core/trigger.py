"""Declarations of the core trigger types (``io.kestra.plugin.core.trigger``): Schedule, ScheduleOnDates,
Flow, Webhook and the polling ``http.Trigger``.

Common trigger properties (id, type, description, conditions, disabled, labels, stopAfter, logLevel,
logToFile) are handled by flow parsing; each class declares its own properties only. Schedule, Flow and
Webhook are evaluated by the engine (the scheduler, the flow-trigger listener, the webhook endpoint): their
classes carry the declarations used for validation and docs. ``http.Trigger`` is a
:class:`~falconet.sdk.plugin.PollingTrigger`: the engine's polling loop calls its :meth:`evaluate`.
"""
from __future__ import annotations

import textwrap
from typing import Any, ClassVar, Mapping

from falconet.runtime.expr import safe_regex
from falconet.sdk import (
    ANY, BOOLEAN, CONDITIONS, CRON, DATES, DURATION, ENUM, EXECUTIONS, LIST, MAP, OBJECT, STRING, WEBHOOK, Example,
    ExpressionError, is_truthy, Output, PollingContext, PollingTrigger, Prop, register, TaskFailed, Trigger,
    TriggerEvaluationError,
)
from falconet.plugins.core.http import _httpx, build_request, open_client, response_headers

_PKG = "io.kestra.plugin.core.trigger"
_OLD = "io.kestra.core.models.triggers.types"

_RECOVER = ("ALL", "LAST", "NONE")


def example_flow(message: str, task: str = "hello") -> str:
    """The start of an example flow: one Log task ``task`` printing ``message``, then ``triggers:``."""
    return ("id: example\n"
            "namespace: company.team\n"
            "\n"
            "tasks:\n"
            f"  - id: {task}\n"
            "    type: io.kestra.plugin.core.log.Log\n"
            f"    message: \"{message}\"\n"
            "\n"
            "triggers:\n")


def _example(title: str, message: str, triggers: str, task: str = "hello") -> Example:
    """A full example: :func:`example_flow` with the YAML ``triggers`` list, written from column 0."""
    return Example(title, example_flow(message, task) + textwrap.indent(triggers, "  "), full=True)


@register
class Schedule(Trigger):
    """Create an execution at each date of a cron expression (5 fields, or 6 with ``withSeconds``)."""

    type = f"{_PKG}.Schedule"
    aliases = (f"{_OLD}.Schedule",)
    kind: ClassVar[str] = CRON
    title = "Schedule a flow with a cron expression."
    examples = (
        _example("Run every day at 9:00 in Paris.", "{{ trigger.date }}",
                 "- id: daily\n"
                 "  type: io.kestra.plugin.core.trigger.Schedule\n"
                 "  cron: \"0 9 * * *\"\n"
                 "  timezone: Europe/Paris\n"),
    )
    outputs = {
        "date": Output("string", "The scheduled date."),
        "next": Output("string", "The next scheduled date.", required=False),
        "previous": Output("string", "The previous scheduled date.", required=False),
    }
    props = {
        "cron": Prop(STRING, required=True, dynamic=False,
                     description="Unix cron (5 fields) or a nickname such as @daily."),
        "withSeconds": Prop(BOOLEAN, default=False, dynamic=False),
        "timezone": Prop(STRING, dynamic=False, description="IANA zone id; default the server zone."),
        "inputs": Prop(MAP, description="Execution inputs (rendered)."),
        "recoverMissedSchedules": Prop(ENUM, values=_RECOVER, dynamic=False),
        "lateMaximumDelay": Prop(DURATION, dynamic=False),
        "scheduleConditions": Prop(CONDITIONS, dynamic=False, description="Deprecated: use conditions."),
        "backfill": Prop(OBJECT, dynamic=False, fields={
            "start": Prop(STRING, dynamic=False),
            "end": Prop(STRING, dynamic=False),
            "currentDate": Prop(STRING, dynamic=False),
            "paused": Prop(BOOLEAN, dynamic=False),
            "inputs": Prop(MAP, dynamic=False),
            "labels": Prop(ANY, dynamic=False),
            "previousNextExecutionDate": Prop(STRING, dynamic=False),
        }),
        "interval": Prop(DURATION, dynamic=False),
    }


@register
class ScheduleOnDates(Trigger):
    """Create an execution at each of a list of dates."""

    type = f"{_PKG}.ScheduleOnDates"
    kind: ClassVar[str] = DATES
    title = "Schedule a flow on given dates."
    examples = (
        _example("Run on given dates.", "{{ trigger.date }}",
                 "- id: dates\n"
                 "  type: io.kestra.plugin.core.trigger.ScheduleOnDates\n"
                 "  dates:\n"
                 "    - \"2030-01-01T09:00:00Z\"\n"
                 "    - \"2030-06-01T09:00:00Z\"\n"),
    )
    outputs = {
        "date": Output("string", "The scheduled date."),
    }
    props = {
        "dates": Prop(LIST, required=True),
        "timezone": Prop(STRING, dynamic=False),
        "inputs": Prop(MAP),
        "recoverMissedSchedules": Prop(ENUM, values=_RECOVER, dynamic=False),
        "interval": Prop(DURATION, dynamic=False),
    }


@register
class Flow(Trigger):
    """Create an execution when another execution reaches one of ``states`` and the conditions hold."""

    type = f"{_PKG}.Flow"
    aliases = (f"{_OLD}.Flow",)
    kind: ClassVar[str] = EXECUTIONS

    @classmethod
    def upstream_flows(cls, spec: Any) -> list[Mapping[str, Any]]:
        """The flows named by its flow-naming conditions (``ExecutionFlow``) and ``preconditions.flows``."""
        sources: list[Mapping[str, Any]] = [c.props for c in spec.conditions if c.cls.names_flow]
        pre = spec.props.get("preconditions")
        if isinstance(pre, dict) and isinstance(pre.get("flows"), list):
            sources.extend(f for f in pre["flows"] if isinstance(f, dict))
        return sources
    title = "Trigger a flow from another flow's execution."
    examples = (
        _example("Start when an execution of an upstream flow succeeds.",
                 "{{ trigger.executionId }} ended {{ trigger.state }}",
                 "- id: upstream\n"
                 "  type: io.kestra.plugin.core.trigger.Flow\n"
                 "  states:\n"
                 "    - SUCCESS\n"
                 "  conditions:\n"
                 "    - type: io.kestra.plugin.core.condition.ExecutionFlow\n"
                 "      namespace: company.team\n"
                 "      flowId: upstream\n"),
    )
    outputs = {
        "executionId": Output("string", "Id of the execution that ended."),
        "namespace": Output("string", "Its namespace."),
        "flowId": Output("string", "Its flow."),
        "flowRevision": Output("integer", "Its flow revision."),
        "state": Output("string", "Its state."),
        "outputs": Output("map", "Its flow outputs.", required=False),
    }
    props = {
        "states": Prop(LIST, dynamic=False, description="Default: every terminal state."),
        "inputs": Prop(MAP, description="Rendered in the context of the upstream execution."),
        "preconditions": Prop(OBJECT, dynamic=False, fields={
            "id": Prop(STRING, dynamic=False),
            "timeWindow": Prop(OBJECT, dynamic=False, fields={
                "type": Prop(ENUM, values=("DURATION_WINDOW", "SLIDING_WINDOW", "DAILY_TIME_DEADLINE",
                                           "DAILY_TIME_WINDOW"), dynamic=False),
                "window": Prop(DURATION, dynamic=False),
                "windowAdvance": Prop(DURATION, dynamic=False),
                "deadline": Prop(STRING, dynamic=False),
                "startTime": Prop(STRING, dynamic=False),
                "endTime": Prop(STRING, dynamic=False),
            }),
            "resetOnSuccess": Prop(BOOLEAN, default=True, dynamic=False),
            "flows": Prop(LIST, dynamic=False),
            "where": Prop(LIST, dynamic=False),
        }),
    }

    @classmethod
    def validate_spec(cls, spec: Any) -> list[str]:
        """``REGEX`` filters of ``preconditions.where`` must compile on RE2 (see runtime/safe_regex.py)."""
        pre = spec.props.get("preconditions")
        groups = pre.get("where") if isinstance(pre, dict) else None
        out = []
        for i, group in enumerate(groups if isinstance(groups, list) else []):
            filters = group.get("filters") if isinstance(group, dict) else None
            for j, flt in enumerate(filters if isinstance(filters, list) else []):
                if isinstance(flt, dict) and str(flt.get("type", "")).upper() == "REGEX":
                    try:
                        safe_regex.compile(str(flt.get("value")))
                    except safe_regex.RegexError as exc:
                        out.append(f"preconditions.where[{i}].filters[{j}].value: {exc}")
        return out


@register
class Webhook(Trigger):
    """Create an execution when ``/api/v1/executions/webhook/{namespace}/{flowId}/{key}`` is called."""

    type = f"{_PKG}.Webhook"
    aliases = (f"{_OLD}.Webhook",)
    kind: ClassVar[str] = WEBHOOK
    title = "Trigger a flow from an HTTP request."
    examples = (
        _example("Start on POST /api/v1/executions/webhook/company.team/example/<key>.", "{{ trigger.body }}",
                 "- id: webhook\n"
                 "  type: io.kestra.plugin.core.trigger.Webhook\n"
                 "  key: 4wjtkzwVGBM9yKnjm3yv8r\n"),
    )
    outputs = {
        "body": Output("any", "The request body (JSON parsed when it is JSON).", required=False),
        "headers": Output("map", "The request headers."),
        "parameters": Output("map", "The query parameters."),
    }
    props = {
        "key": Prop(STRING, required=True),
        "wait": Prop(BOOLEAN, default=False, dynamic=False),
        "returnOutputs": Prop(BOOLEAN, default=False, dynamic=False),
        "responseContentType": Prop(STRING, dynamic=False),
        "inputs": Prop(MAP),
    }


#: an http.Trigger response body larger than this (or ``options.maxContentLength``) fails the evaluation
MAX_BODY = 10 * 1024 * 1024
DEFAULT_RESPONSE_CONDITION = "{{ response.statusCode < 400 }}"


@register
class HttpTrigger(PollingTrigger):
    """Poll ``uri`` every ``interval``; create an execution when ``responseCondition`` renders truthy.

    The request is described by the properties of ``http.Request`` (see :mod:`falconet.plugins.core.http`);
    a status ≥ 400 is not an error, ``responseCondition`` (default ``{{ response.statusCode < 400 }}``,
    rendered with ``response = {statusCode, body, headers}``) decides. The execution's
    ``trigger.variables`` are ``{uri, code, headers, body}``.
    """

    type = "io.kestra.plugin.core.http.Trigger"
    aliases = ("io.kestra.plugin.fs.http.Trigger",)
    title = "Trigger a flow on an HTTP response."
    examples = (
        _example("Start an execution when a URL answers 200, checking every minute.", "{{ trigger.body }}",
                 "- id: http\n"
                 "  type: io.kestra.plugin.core.http.Trigger\n"
                 "  uri: https://example.com/status\n"
                 "  responseCondition: \"{{ response.statusCode == 200 }}\"\n"
                 "  interval: PT1M\n", task="show"),
    )
    outputs = {
        "uri": Output("string", "The requested URL."),
        "code": Output("integer", "The HTTP status code of the response."),
        "headers": Output("map", "The response headers."),
        "body": Output("any", "The response body.", required=False),
    }
    props = {
        "uri": Prop(STRING, required=True),
        "method": Prop(ENUM, values=("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"), default="GET"),
        "body": Prop(STRING),
        "contentType": Prop(STRING),
        "formData": Prop(MAP),
        "headers": Prop(MAP),
        "options": Prop(OBJECT, dynamic=False),
        "sslOptions": Prop(OBJECT, dynamic=False),
        "encryptBody": Prop(BOOLEAN, default=False, dynamic=False),
        "responseCondition": Prop(STRING, default="{{ response.statusCode < 400 }}"),
        "interval": Prop(DURATION, default="PT60S", dynamic=False),
    }

    async def evaluate(self, ctx: PollingContext) -> dict[str, Any] | None:
        """Send the request; its ``trigger.variables`` when ``responseCondition`` holds, else None. Raises
        :class:`TriggerEvaluationError`. Checkpoint; cancellation interrupts the request."""
        httpx = _httpx()
        try:
            if ctx.prop("encryptBody"):
                raise TriggerEvaluationError("encryptBody is not supported by Falconet")
            options = ctx.prop("options") or {}
            limit = options.get("maxContentLength") if isinstance(options, dict) else None
            limit = MAX_BODY if limit is None else int(limit)
            async with open_client(ctx) as client:  # type: ignore[arg-type]
                request = await build_request(ctx, client)  # type: ignore[arg-type]
                response = await client.send(request, stream=True)
                try:
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes(1 << 16):
                        size += len(chunk)
                        if size > limit:
                            raise TriggerEvaluationError(f"Response body larger than {limit} bytes")
                        chunks.append(chunk)
                finally:
                    await response.aclose()
            content = b"".join(chunks)
            body = content.decode(response.encoding or "utf-8", errors="replace") if content else None
            headers = response_headers(response)
            rendered = ctx.render(ctx.raw("responseCondition") or DEFAULT_RESPONSE_CONDITION,
                                  {"response": {"statusCode": response.status_code, "body": body,
                                                "headers": headers}})
        except (TaskFailed, ExpressionError, ValueError) as exc:
            raise TriggerEvaluationError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise TriggerEvaluationError(f"HTTP request failed: {type(exc).__name__}: {exc}") from exc
        if not is_truthy(rendered):
            return None
        return {"uri": str(request.url), "code": response.status_code, "headers": headers, "body": body}
