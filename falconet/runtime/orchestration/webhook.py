"""Kestra's ``Webhook`` trigger: ``/api/v1/executions/webhook/{namespace}/{flowId}/{key}``.

Resolution: the flow must exist (NotFound "Flow not found") and be enabled (IllegalState); one of its
enabled Webhook triggers must have a rendered ``key`` (expressions such as ``{{ flow.id }}`` or
``{{ secret('WEBHOOK_KEY') }}``) equal to ``key`` — compared in constant time — else NotFound "Webhook
not found". The request becomes ``trigger.variables``: ``body`` (JSON object/array, else the raw text,
None without a body), ``headers`` and ``parameters`` (name -> list of values).

The trigger's ``conditions`` are evaluated with the would-be execution in context (condition classes'
``test``; MultipleCondition is refused, as in Kestra): unmet -> None (the endpoint answers 204) and no
execution is created. ``inputs`` are rendered (typed) in the same context. Then the execution is created;
with ``wait`` the call returns once it terminated (its document), with ``returnOutputs`` a
``WebhookResponse`` (id, namespace, flowId, flowRevision, trigger, outputs, labels, state).
"""
from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, Mapping

from falconet.runtime.kernel.errors import IllegalArgument, IllegalState, NotFound
from falconet.runtime.kernel.limits import json_loads
from falconet.runtime.expr.render import ExpressionError
from falconet.runtime.flow.model import Flow, TriggerSpec
from falconet.runtime.kernel.runcontext import to_bool
from falconet.runtime.kernel.state import State
from falconet.runtime.orchestration.context import ConditionContext
from falconet.sdk.plugin import WEBHOOK, Condition, Trigger

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.services import Kernel

RESPONSE_FIELDS = ("id", "namespace", "flowId", "flowRevision", "trigger", "outputs", "labels", "state")


def parse_body(body: bytes) -> Any:
    """JSON object or array when the body parses as one, else the raw text; None without a body."""
    text = body.decode("utf-8", "replace") if body else ""
    if not text:
        return None
    try:
        parsed = json_loads(text)
    except ValueError:  # not JSON, or nested deeper than limits.MAX_DEPTH: the raw text
        return text
    return parsed if isinstance(parsed, (dict, list)) else text


def _is_webhook(spec: TriggerSpec) -> bool:
    return issubclass(spec.cls, Trigger) and spec.cls.kind == WEBHOOK


def _bool_prop(engine: "Kernel[ExecutionActor]", spec: TriggerSpec, name: str) -> bool:
    value = spec.props.get(name)
    return to_bool(value)


async def handle(engine: "Kernel[ExecutionActor]", namespace: str, flow_id: str, key: str, *, method: str, body: bytes,
                 headers: Mapping[str, list[str]], parameters: Mapping[str, list[str]]) -> dict[str, Any] | None:
    """Create the execution of a webhook call; None when the trigger's conditions are not met."""
    from falconet.runtime.kernel import executions as ex_ops
    from falconet.runtime.kernel.runcontext import EngineHooks

    flow = await engine.get_flow(namespace, flow_id)
    if flow is None:
        raise NotFound("Flow not found")
    if flow.disabled:
        raise IllegalState("Flow is disabled")
    variables = {"body": parse_body(body), "headers": {k: list(v) for k, v in headers.items()},
                 "parameters": {k: list(v) for k, v in parameters.items()}}
    match = None
    for spec in flow.triggers:
        if not _is_webhook(spec) or spec.disabled:
            continue
        trigger = {"id": spec.id, "type": spec.type, "variables": variables}
        candidate = ex_ops.new_execution(flow, labels=list(spec.labels), trigger=trigger)
        base = _base(engine, flow, candidate, EngineHooks(engine, candidate))
        try:
            expected = str(engine.renderer.render(str(spec.props.get("key", "")), base))
        except ExpressionError:  # e.g. a secret that is not configured: this trigger cannot match
            continue
        if hmac.compare_digest(expected.encode(), key.encode()):
            match = (spec, candidate, base)
            break
    if match is None:
        raise NotFound("Webhook not found")
    spec, candidate, base = match
    ctx = ConditionContext(engine, flow, base, execution=candidate, state=State.CREATED)
    for cond in spec.conditions:
        if issubclass(cond.cls, Condition) and cond.cls.multiple:
            raise IllegalArgument("MultipleCondition is not supported on a Webhook trigger")
        if not ctx.test(cond):
            return None
    inputs = engine.renderer.render_value_typed(spec.props.get("inputs") or {}, base)
    doc = await engine.create_execution(namespace, flow_id, trigger=candidate.trigger, labels=list(spec.labels),
                                        inputs=inputs)
    if _bool_prop(engine, spec, "returnOutputs"):
        final = await engine.wait_for_end(doc["id"])
        return {k: final[k] for k in RESPONSE_FIELDS if k in final} | {"outputs": final.get("outputs") or {}}
    if _bool_prop(engine, spec, "wait"):
        return await engine.wait_for_end(doc["id"])
    return doc


def _base(engine: "Kernel[ExecutionActor]", flow: Flow, candidate: Any, hooks: Any) -> dict[str, Any]:
    from falconet.runtime.expr.variables import labels_map

    return {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
            "execution": {"id": candidate.id}, "labels": labels_map(candidate.labels),
            "trigger": (candidate.trigger or {}).get("variables") or {}, "envs": engine.envs,
            "globals": engine.config.globals, "vars": flow.variables or {}, "__falconet__": hooks}


__all__ = ["handle", "parse_body"]
