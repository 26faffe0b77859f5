"""Runs last in tests/http (file order): no request of the whole suite may have answered 5xx.

Each test is already checked on its own (``no_server_errors`` in conftest); this is the suite-wide
record, including requests made through real sockets and websockets."""
from __future__ import annotations


async def test_no_request_of_the_suite_answered_a_server_error(all_responses, api):
    status, _ = await api.call("GET", "/api/v1/executions/search?page=0")  # at least one recorded 4xx
    assert status == 422
    errors = [r for r in all_responses if r[0] >= 500 and r[2] != "/__test__/boom"]
    assert errors == []
    assert any(r[0] == 422 for r in all_responses)
    statuses = {r[0] for r in all_responses}
    assert statuses <= {200, 202, 204, 302, 400, 401, 404, 405, 409, 413, 422, 500}, statuses
