"""Kestra's ``filters[FIELD][OP]=VALUE`` on every search and by-query route, table-driven against a seeded
store: each (route, field, operation) selects exactly the expected documents; unknown parameters, fields
and operations are 400s naming them; a by-query bulk action never widens beyond its filters."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from falconet.runtime.kernel.execution import format_instant

NOW = datetime.now(timezone.utc)
RECENT = format_instant(NOW - timedelta(hours=1))


def _execution(eid: str, namespace: str, flow_id: str, state: str, start: str, end: str | None,
               labels: dict[str, str], parent: str | None = None) -> dict:
    doc = {"id": eid, "namespace": namespace, "flowId": flow_id, "flowRevision": 1,
           "state": {"current": state, "histories": [{"state": state, "date": start}], "startDate": start},
           "labels": [{"key": k, "value": v} for k, v in labels.items()], "deleted": False}
    if end:
        doc["state"]["endDate"] = end
    if parent:
        doc["trigger"] = {"id": "subflow", "type": "io.kestra.plugin.core.flow.Subflow",
                          "variables": {"executionId": parent}}
    return doc


EXECUTIONS = [
    _execution("e1", "company.team", "alpha", "SUCCESS", "2024-01-01T10:00:00Z", "2024-01-01T10:05:00Z", {"team": "data"}),
    _execution("e2", "company.team.sub", "beta", "FAILED", "2024-01-02T10:00:00Z", "2024-01-02T10:05:00Z", {"team": "ops"}),
    _execution("e3", "other", "alpha", "RUNNING", "2024-01-03T10:00:00Z", None, {"env": "prod"}, parent="e1"),
    _execution("e4", "system", "sysflow", "KILLED", RECENT, RECENT, {}),
]

LOGS = [
    {"namespace": "company.team", "flowId": "alpha", "executionId": "e1", "taskId": "t", "level": "INFO",
     "timestamp": "2024-01-01T10:00:00Z", "message": "hello world"},
    {"namespace": "company.team.sub", "flowId": "beta", "executionId": "e2", "taskId": "t", "level": "ERROR",
     "timestamp": "2024-01-02T10:00:00Z", "message": "boom"},
    {"namespace": "system", "flowId": "sysflow", "triggerId": "daily", "level": "DEBUG",
     "timestamp": RECENT, "message": "tick"},
]

FLOWS = {
    "alpha": "id: alpha\nnamespace: company.team\nlabels:\n  team: data\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
    "beta": "id: beta\nnamespace: company.team.sub\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
    "sysflow": "id: sysflow\nnamespace: system\nlabels:\n  env: prod\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
}

TRIGGERS = [
    {"namespace": "company.team", "flowId": "alpha", "triggerId": "daily", "date": "2024-01-01T09:00:00Z",
     "disabled": False},
    {"namespace": "company.team.sub", "flowId": "beta", "triggerId": "hourly", "date": "2024-01-02T09:00:00Z",
     "disabled": True, "workerId": "w1"},
    {"namespace": "system", "flowId": "sysflow", "triggerId": "daily", "date": RECENT, "disabled": False},
]


@pytest.fixture
async def seeded(api, engine):
    for doc in EXECUTIONS:
        await engine.store.save_execution(doc)
    engine.store.append_logs_nowait(LOGS)
    for source in FLOWS.values():
        await api.flow(source)
    for ctx in TRIGGERS:
        await engine.store.save_trigger(ctx)
    await engine.kv_put("company.team", "colour", "blue", description="favourite")
    await engine.kv_put("company.team.sub", "size", 3)
    await engine.kv_put("system", "token", "x")
    return api


def f(field: str, op: str, value: str, key: str | None = None) -> str:
    name = f"filters[{field}][{op}]" + (f"[{key}]" if key else "")
    return f"{quote(name)}={quote(value)}"


#### Executions #############################################################################################

EXECUTION_CASES = [
    ("q", "EQUALS", "beta", None, {"e2"}),
    ("q", "NOT_EQUALS", "beta", None, {"e1", "e3", "e4"}),
    ("scope", "EQUALS", "SYSTEM", None, {"e4"}),
    ("scope", "NOT_EQUALS", "SYSTEM", None, {"e1", "e2", "e3"}),
    ("namespace", "EQUALS", "company.team", None, {"e1"}),
    ("namespace", "NOT_EQUALS", "company.team", None, {"e2", "e3", "e4"}),
    ("namespace", "CONTAINS", "team", None, {"e1", "e2"}),
    ("namespace", "STARTS_WITH", "comp", None, {"e1", "e2"}),
    ("namespace", "ENDS_WITH", "sub", None, {"e2"}),
    ("namespace", "REGEX", "^o.h", None, {"e3"}),
    ("namespace", "IN", "company.team,other", None, {"e1", "e3"}),
    ("namespace", "NOT_IN", "company.team,other", None, {"e2", "e4"}),
    ("namespace", "PREFIX", "company.team", None, {"e1", "e2"}),
    ("flowId", "EQUALS", "alpha", None, {"e1", "e3"}),
    ("flowId", "NOT_EQUALS", "alpha", None, {"e2", "e4"}),
    ("flowId", "CONTAINS", "lph", None, {"e1", "e3"}),
    ("flowId", "STARTS_WITH", "be", None, {"e2"}),
    ("flowId", "ENDS_WITH", "flow", None, {"e4"}),
    ("flowId", "REGEX", "a$", None, {"e1", "e2", "e3"}),
    ("flowId", "IN", "alpha,beta", None, {"e1", "e2", "e3"}),
    ("flowId", "NOT_IN", "alpha,beta", None, {"e4"}),
    ("flowId", "PREFIX", "beta", None, {"e2"}),
    ("startDate", "GREATER_THAN", "2024-01-02T10:00:00Z", None, {"e3", "e4"}),
    ("startDate", "GREATER_THAN_OR_EQUAL_TO", "2024-01-02T10:00:00Z", None, {"e2", "e3", "e4"}),
    ("startDate", "LESS_THAN", "2024-01-02T10:00:00Z", None, {"e1"}),
    ("startDate", "LESS_THAN_OR_EQUAL_TO", "2024-01-02T10:00:00Z", None, {"e1", "e2"}),
    ("startDate", "EQUALS", "2024-01-02T10:00:00Z", None, {"e2"}),
    ("startDate", "NOT_EQUALS", "2024-01-02T10:00:00Z", None, {"e1", "e3", "e4"}),
    ("endDate", "LESS_THAN", "2024-01-03T00:00:00Z", None, {"e1", "e2"}),
    ("endDate", "GREATER_THAN", "2024-01-03T00:00:00Z", None, {"e4"}),
    ("endDate", "GREATER_THAN_OR_EQUAL_TO", "2024-01-02T10:05:00Z", None, {"e2", "e4"}),
    ("endDate", "LESS_THAN_OR_EQUAL_TO", "2024-01-02T10:05:00Z", None, {"e1", "e2"}),
    ("endDate", "EQUALS", "2024-01-01T10:05:00Z", None, {"e1"}),
    ("endDate", "NOT_EQUALS", "2024-01-01T10:05:00Z", None, {"e2", "e3", "e4"}),
    ("timeRange", "EQUALS", "PT2H", None, {"e4"}),
    ("timeRange", "NOT_EQUALS", "PT2H", None, {"e1", "e2", "e3"}),
    ("state", "EQUALS", "FAILED", None, {"e2"}),
    ("state", "NOT_EQUALS", "FAILED", None, {"e1", "e3", "e4"}),
    ("state", "IN", "SUCCESS,KILLED", None, {"e1", "e4"}),
    ("state", "NOT_IN", "SUCCESS,KILLED", None, {"e2", "e3"}),
    ("labels", "EQUALS", "data", "team", {"e1"}),
    ("labels", "NOT_EQUALS", "data", "team", {"e2", "e3", "e4"}),
    ("labels", "IN", "team:data,env:prod", None, {"e1", "e3"}),
    ("labels", "NOT_IN", "team:data,env:prod", None, {"e2", "e4"}),
    ("labels", "CONTAINS", "at", "team", {"e1"}),
    ("triggerExecutionId", "EQUALS", "e1", None, {"e3"}),
    ("triggerExecutionId", "NOT_EQUALS", "e1", None, {"e1", "e2", "e4"}),
    ("triggerExecutionId", "CONTAINS", "1", None, {"e3"}),
    ("triggerExecutionId", "STARTS_WITH", "e", None, {"e3"}),
    ("triggerExecutionId", "ENDS_WITH", "1", None, {"e3"}),
    ("triggerExecutionId", "IN", "e1,e2", None, {"e3"}),
    ("triggerExecutionId", "NOT_IN", "e1,e2", None, {"e1", "e2", "e4"}),
    ("childFilter", "EQUALS", "CHILD", None, {"e3"}),
    ("childFilter", "NOT_EQUALS", "CHILD", None, {"e1", "e2", "e4"}),
    ("kind", "EQUALS", "NORMAL", None, {"e1", "e2", "e3", "e4"}),
    ("kind", "NOT_EQUALS", "NORMAL", None, set()),
    ("kind", "IN", "TEST,NORMAL", None, {"e1", "e2", "e3", "e4"}),
    ("kind", "NOT_IN", "TEST", None, {"e1", "e2", "e3", "e4"}),
]


@pytest.mark.parametrize("field,op,value,key,expected", EXECUTION_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in EXECUTION_CASES])
async def test_execution_search_filters(seeded, field, op, value, key, expected):
    for base in ("/api/v1/executions/search", "/api/v1/main/executions/search"):
        status, body = await seeded.call("GET", f"{base}?size=50&{f(field, op, value, key)}")
        assert status == 200, body
        assert {d["id"] for d in body["results"]} == expected
        assert body["total"] == len(expected)


def test_every_execution_field_and_operation_is_in_the_table():
    from falconet.http.filters import FIELDS, RESOURCES
    covered = {(c[0], c[1]) for c in EXECUTION_CASES}
    wanted = {(field, op) for field in RESOURCES["EXECUTION"] for op in FIELDS[field]}
    assert wanted - covered == set()


async def test_filters_page_and_combine_with_legacy_parameters(seeded):
    status, body = await seeded.call("GET", "/api/v1/executions/search?size=1&page=2&sort=state.startDate:asc&"
                                            + f("namespace", "PREFIX", "company"))
    assert status == 200 and body["total"] == 2 and [d["id"] for d in body["results"]] == ["e2"]
    # legacy and filters[] together: both hold
    status, body = await seeded.call("GET", "/api/v1/executions/search?flowId=alpha&" + f("state", "EQUALS", "RUNNING"))
    assert {d["id"] for d in body["results"]} == {"e3"}
    # legacy scope is honoured too
    status, body = await seeded.call("GET", "/api/v1/executions/search?scope=SYSTEM")
    assert {d["id"] for d in body["results"]} == {"e4"}


async def test_or_groups_as_the_2_0_sdk_sends_them(seeded):
    query = "&".join([
        f"{quote('filters[or][0][flowId][EQUALS]')}=beta",
        f"{quote('filters[or][1][state][EQUALS]')}=KILLED",
    ])
    status, body = await seeded.call("GET", f"/api/v1/executions/search?{query}")
    assert status == 200 and {d["id"] for d in body["results"]} == {"e2", "e4"}
    nested = "&".join([
        f"{quote('filters[and][0][namespace][PREFIX]')}=company",
        f"{quote('filters[and][1][or][0][state][EQUALS]')}=FAILED",
        f"{quote('filters[and][1][or][1][flowId][EQUALS]')}=zzz",
    ])
    status, body = await seeded.call("GET", f"/api/v1/executions/search?{nested}")
    assert status == 200 and {d["id"] for d in body["results"]} == {"e2"}


#### Logs, flows, triggers, KV ##############################################################################

LOG_CASES = [
    ("q", "EQUALS", "boom", None, {"boom"}),
    ("q", "NOT_EQUALS", "boom", None, {"hello world", "tick"}),
    ("scope", "EQUALS", "SYSTEM", None, {"tick"}),
    ("scope", "NOT_EQUALS", "SYSTEM", None, {"hello world", "boom"}),
    ("namespace", "PREFIX", "company.team", None, {"hello world", "boom"}),
    ("namespace", "EQUALS", "company.team", None, {"hello world"}),
    ("namespace", "REGEX", "sub$", None, {"boom"}),
    ("namespace", "NOT_IN", "system", None, {"hello world", "boom"}),
    ("flowId", "IN", "alpha,sysflow", None, {"hello world", "tick"}),
    ("flowId", "STARTS_WITH", "b", None, {"boom"}),
    ("triggerId", "EQUALS", "daily", None, {"tick"}),
    ("triggerId", "NOT_EQUALS", "daily", None, {"hello world", "boom"}),
    ("level", "EQUALS", "INFO", None, {"hello world", "boom"}),
    ("level", "NOT_EQUALS", "INFO", None, {"tick"}),
    ("executionId", "EQUALS", "e2", None, {"boom"}),
    ("executionId", "CONTAINS", "e", None, {"hello world", "boom"}),
    ("startDate", "GREATER_THAN", "2024-01-01T10:00:00Z", None, {"boom", "tick"}),
    ("endDate", "LESS_THAN_OR_EQUAL_TO", "2024-01-01T10:00:00Z", None, {"hello world"}),
    ("timeRange", "EQUALS", "PT2H", None, {"tick"}),
]


@pytest.mark.parametrize("field,op,value,key,expected", LOG_CASES, ids=[f"{c[0]}-{c[1]}" for c in LOG_CASES])
async def test_log_search_filters(seeded, field, op, value, key, expected):
    status, body = await seeded.call("GET", f"/api/v1/logs/search?size=50&{f(field, op, value, key)}")
    assert status == 200, body
    assert {e["message"] for e in body["results"]} == expected and body["total"] == len(expected)


FLOW_CASES = [
    ("q", "EQUALS", "bet", None, {"beta"}),
    ("q", "NOT_EQUALS", "bet", None, {"alpha", "sysflow"}),
    ("scope", "EQUALS", "USER", None, {"alpha", "beta"}),
    ("scope", "NOT_EQUALS", "USER", None, {"sysflow"}),
    ("namespace", "EQUALS", "company.team", None, {"alpha"}),
    ("namespace", "PREFIX", "company.team", None, {"alpha", "beta"}),
    ("namespace", "CONTAINS", "sub", None, {"beta"}),
    ("namespace", "NOT_IN", "system,other", None, {"alpha", "beta"}),
    ("flowId", "EQUALS", "alpha", None, {"alpha"}),
    ("flowId", "REGEX", "^(alpha|sysflow)$", None, {"alpha", "sysflow"}),
    ("flowId", "ENDS_WITH", "ta", None, {"beta"}),
    ("labels", "EQUALS", "data", "team", {"alpha"}),
    ("labels", "NOT_EQUALS", "data", "team", {"beta", "sysflow"}),
    ("labels", "IN", "team:data,env:prod", None, {"alpha", "sysflow"}),
    ("labels", "NOT_IN", "env:prod", None, {"alpha", "beta"}),
    ("labels", "CONTAINS", "ro", "env", {"sysflow"}),
]


@pytest.mark.parametrize("field,op,value,key,expected", FLOW_CASES, ids=[f"{c[0]}-{c[1]}" for c in FLOW_CASES])
async def test_flow_search_filters(seeded, field, op, value, key, expected):
    status, body = await seeded.call("GET", f"/api/v1/flows/search?size=50&{f(field, op, value, key)}")
    assert status == 200, body
    assert {fl["id"] for fl in body["results"]} == expected and body["total"] == len(expected)


TRIGGER_CASES = [
    ("q", "EQUALS", "hour", None, {"beta"}),
    ("scope", "EQUALS", "SYSTEM", None, {"sysflow"}),
    ("namespace", "PREFIX", "company", None, {"alpha", "beta"}),
    ("namespace", "NOT_EQUALS", "system", None, {"alpha", "beta"}),
    ("flowId", "IN", "alpha,beta", None, {"alpha", "beta"}),
    ("flowId", "REGEX", "flow$", None, {"sysflow"}),
    ("triggerId", "EQUALS", "daily", None, {"alpha", "sysflow"}),
    ("triggerId", "NOT_IN", "daily", None, {"beta"}),
    ("workerId", "EQUALS", "w1", None, {"beta"}),
    ("workerId", "NOT_EQUALS", "w1", None, {"alpha", "sysflow"}),
    ("triggerState", "EQUALS", "DISABLED", None, {"beta"}),
    ("triggerState", "NOT_EQUALS", "DISABLED", None, {"alpha", "sysflow"}),
    ("startDate", "LESS_THAN", "2024-01-02T00:00:00Z", None, {"alpha"}),
    ("endDate", "GREATER_THAN_OR_EQUAL_TO", "2024-01-02T09:00:00Z", None, {"beta", "sysflow"}),
    ("timeRange", "EQUALS", "PT2H", None, {"sysflow"}),
]


@pytest.mark.parametrize("field,op,value,key,expected", TRIGGER_CASES, ids=[f"{c[0]}-{c[1]}" for c in TRIGGER_CASES])
async def test_trigger_search_filters(seeded, field, op, value, key, expected):
    status, body = await seeded.call("GET", f"/api/v1/triggers/search?size=50&{f(field, op, value, key)}")
    assert status == 200, body
    assert {r["triggerContext"]["flowId"] for r in body["results"]} == expected and body["total"] == len(expected)


KV_CASES = [
    ("q", "EQUALS", "favour", None, {"colour"}),
    ("q", "NOT_EQUALS", "size", None, {"colour", "token"}),
    ("namespace", "PREFIX", "company.team", None, {"colour", "size"}),
    ("namespace", "EQUALS", "system", None, {"token"}),
    ("namespace", "REGEX", "\\.sub$", None, {"size"}),
    ("updated", "GREATER_THAN", "2024-01-01T00:00:00Z", None, {"colour", "size", "token"}),
    ("updated", "LESS_THAN", "2024-01-01T00:00:00Z", None, set()),
]


@pytest.mark.parametrize("field,op,value,key,expected", KV_CASES, ids=[f"{c[0]}-{c[1]}" for c in KV_CASES])
async def test_kv_filters(seeded, field, op, value, key, expected):
    status, body = await seeded.call("GET", f"/api/v1/kv?size=50&{f(field, op, value, key)}")
    assert status == 200, body
    assert {e["key"] for e in body["results"]} == expected and body["total"] == len(expected)


#### Nothing is ignored #####################################################################################

@pytest.mark.parametrize("path,query,named", [
    ("/api/v1/executions/search", "flowid=alpha", "flowid"),
    ("/api/v1/executions/search", f("flow", "EQUALS", "alpha"), "flow"),
    ("/api/v1/executions/search", f("flowId", "EQUAL", "alpha"), "EQUAL"),
    ("/api/v1/executions/search", f("state", "CONTAINS", "FAIL"), "CONTAINS"),
    ("/api/v1/executions/search", f("workerId", "EQUALS", "w"), "workerId"),
    ("/api/v1/executions/search", quote("filters[flowId]") + "=alpha", "filters[flowId]"),
    ("/api/v1/executions/search", quote("filters[flowId][EQUALS][x][y]") + "=alpha", "filters[flowId][EQUALS][x][y]"),
    ("/api/v1/flows/search", "flowId=alpha", "flowId"),
    ("/api/v1/flows/search", f("state", "EQUALS", "FAILED"), "state"),
    ("/api/v1/logs/search", "level=INFO", "level"),
    ("/api/v1/logs/search", f("labels", "EQUALS", "x", "k"), "labels"),
    ("/api/v1/triggers/search", "triggerId=daily", "triggerId"),
    ("/api/v1/kv", "namespace=system", "namespace"),
    ("/api/v1/logs/e1", "level=INFO", "level"),
    ("/api/v1/metrics/e1", "name=x", "name"),
    ("/api/v1/flows/source", "flowId=x", "flowId"),
])
async def test_unknown_parameters_fields_and_operations_are_400s_naming_them(seeded, path, query, named):
    status, body = await seeded.call("GET", f"{path}?{query}")
    assert status == 400, body
    assert named in body["message"]


@pytest.mark.parametrize("query,status", [
    (f("namespace", "REGEX", "(unclosed"), 422),
    (f("namespace", "REGEX", "a" * 2000), 422),
    (f("state", "EQUALS", "NOPE"), 422),
    (f("startDate", "GREATER_THAN", "yesterday"), 422),
    (f("timeRange", "EQUALS", "P1Y"), 422),
    (f("childFilter", "EQUALS", "ORPHAN"), 422),
    (f("labels", "IN", "nocolon"), 422),
])
async def test_bad_filter_values_are_422s(seeded, query, status):
    got, body = await seeded.call("GET", f"/api/v1/executions/search?{query}")
    assert got == status, body


async def test_a_pathological_regex_answers_in_linear_time(seeded):
    status, body = await seeded.call("GET", "/api/v1/executions/search?" + f("namespace", "REGEX", "(a+)+$"))
    assert status == 200 and body["total"] == 0


#### By-query bulk actions never widen ######################################################################

async def test_delete_by_query_deletes_only_what_the_filters_select(seeded, engine):
    status, body = await seeded.call("DELETE", "/api/v1/executions/by-query?" + f("flowId", "EQUALS", "beta"))
    assert status == 200 and body == {"count": 1}
    assert await engine.get_execution("e2") is None
    assert all([await engine.get_execution(i) for i in ("e1", "e3", "e4")])


async def test_by_query_that_matches_nothing_does_nothing(seeded, engine):
    for method, path in [("DELETE", "/api/v1/executions/by-query"), ("DELETE", "/api/v1/executions/kill/by-query"),
                         ("POST", "/api/v1/executions/restart/by-query")]:
        status, body = await seeded.call(method, f"{path}?" + f("flowId", "EQUALS", "failing"))
        assert status == 200 and body == {"count": 0}, (path, body)
    assert all([await engine.get_execution(i) for i in ("e1", "e2", "e3", "e4")])


async def test_by_query_with_an_unknown_filter_refuses_before_acting(seeded, engine):
    for query in ["flowid=beta", f("flow", "EQUALS", "beta"), f("flowId", "IS", "beta")]:
        status, body = await seeded.call("DELETE", f"/api/v1/executions/by-query?{query}")
        assert status == 400, body
    assert all([await engine.get_execution(i) for i in ("e1", "e2", "e3", "e4")])


#### What Kestra's UI sends #################################################################################

UI_TRIGGER_FLOW = """id: pausing
namespace: company.team
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
"""


async def test_the_ui_trigger_echo_on_log_search_is_accepted_and_nothing_else(api, engine):
    await api.flow(UI_TRIGGER_FLOW)
    await engine.store.save_trigger({"namespace": "company.team", "flowId": "pausing", "triggerId": "daily",
                                     "nextExecutionDate": "2030-01-01T09:00:00Z"})
    engine.store.append_logs_nowait([
        {"namespace": "company.team", "flowId": "pausing", "triggerId": "daily", "level": "INFO",
         "timestamp": RECENT, "message": "from the trigger"},
        {"namespace": "company.team", "flowId": "pausing", "level": "INFO", "timestamp": RECENT, "message": "other"}])
    # the exact request of Kestra's UI (flow → Triggers tab): the trigger's own keys ride along
    base = ("/api/v1/logs/search?page=1&size=25&id=daily&type=io.kestra.plugin.core.trigger.Schedule"
            "&cron=0+9+*+*+*&sourceDisabled=false&nextExecutionDate=2030-01-01T09:00:00Z&triggerId=daily"
            "&sort=timestamp:desc&namespace=company.team&flowId=pausing")
    status, body = await api.call("GET", base)
    assert status == 200 and [e["message"] for e in body["results"]] == ["from the trigger"]
    status, body = await api.call("GET", base + "&interval=PT1M")    # not a key of this trigger
    assert status == 400 and "interval" in body["message"]
    status, body = await api.call("GET", base.replace("triggerId=daily", "triggerId=other"))
    assert status == 400                                               # no such trigger: nothing is echoed


async def test_flow_triggers_accepts_the_path_repeated_in_the_query(api):
    await api.flow(UI_TRIGGER_FLOW)
    status, _ = await api.call("GET", "/api/v1/triggers/company.team/pausing?namespace=company.team&flowId=pausing&size=1")
    assert status == 200
    status, body = await api.call("GET", "/api/v1/triggers/company.team/pausing?flowId=other")
    assert status == 400 and "flowId" in body["message"]
