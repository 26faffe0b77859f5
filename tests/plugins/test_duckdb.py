"""io.kestra.plugin.jdbc.duckdb.Query (skipped when the optional duckdb extra is missing)."""
from __future__ import annotations

import io
import time

import pytest
import trio

duckdb = pytest.importorskip("duckdb")

from falconet.plugins.duckdb import query  # noqa: E402
from falconet.runtime.storage.ionfiles import read_ion_rows  # noqa: E402
from falconet.sdk.plugin import TaskFailed  # noqa: E402

CSV = "id,name,amount,day\n1,a,1.50,2024-01-01\n2,b,2.25,2024-01-02\n3,c,3.00,2024-01-03\n"


async def test_fetch_one_and_fetch(run_task):
    out, ctx = await run_task(query.Query, {"sql": "SELECT 42 AS answer, 'x' AS s", "fetchType": "FETCH_ONE"})
    assert out == {"row": {"answer": 42, "s": "x"}, "size": 1}
    assert ctx.metrics == [("counter", "fetch.size", 1, {"fetch": "true", "store": "false"})]
    out, _ = await run_task(query.Query, {"sql": "SELECT range AS n FROM range(3)", "fetchType": "FETCH"})
    assert out == {"rows": [{"n": 0}, {"n": 1}, {"n": 2}], "size": 3}
    out, _ = await run_task(query.Query, {"sql": "SELECT 1 WHERE false", "fetchOne": True})
    assert out == {"row": None, "size": 0}


async def test_input_files_multiple_statements_and_types(run_task):
    out, _ = await run_task(query.Query, {
        "inputFiles": {"data.csv": CSV},
        "sql": ("CREATE TABLE t AS SELECT * FROM read_csv_auto('{{ workingDir }}/data.csv');\n"
                "SELECT id, name, CAST(amount AS DECIMAL(5,2)) AS amount, CAST(day AS DATE) AS day FROM t "
                "WHERE id >= {{ 2 }} ORDER BY id"),
        "fetch": True})
    assert out["rows"] == [{"id": 2, "name": "b", "amount": 2.25, "day": "2024-01-02"},
                           {"id": 3, "name": "c", "amount": 3, "day": "2024-01-03"}]


async def test_relative_paths_resolve_in_working_dir(run_task):
    out, _ = await run_task(query.Query, {"inputFiles": {"data.csv": CSV},
                                         "sql": "SELECT count(*) AS n FROM 'data.csv'", "fetchType": "FETCH_ONE"})
    assert out["row"] == {"n": 3}


async def test_store_streams_ion_rows(run_task):
    out, ctx = await run_task(query.Query, {
        "sql": "SELECT range AS id, 'n' || range AS name, TIMESTAMP '2024-01-01 10:00:00' AS at FROM range(5000)",
        "store": True})
    assert out["size"] == 5000 and out["uri"].endswith(".ion")
    with ctx.storage.open_read(out["uri"]) as f:
        rows = list(read_ion_rows(io.TextIOWrapper(f, encoding="utf-8")))
    assert len(rows) == 5000 and rows[1] == {"id": 1, "name": "n1", "at": "2024-01-01T10:00:00Z"}


async def test_store_reads_kestra_uri_input_and_output_files(run_task, make_ctx):
    seed = make_ctx(query.Query, {})
    uri = seed.storage.put_bytes(CSV.encode(), "/company/team/flow/executions/exec1/tasks/dl/tr0/items.csv")
    out, ctx = await run_task(query.Query, {
        "inputFiles": {"items.csv": uri}, "outputFiles": ["out"],
        "sql": "COPY (SELECT name FROM 'items.csv' ORDER BY id DESC) TO '{{ outputFiles.out }}' (HEADER, DELIMITER ',')"})
    assert ctx.storage.read_text(out["outputFiles"]["out"]) == "name\nc\nb\na\n"
    assert "size" not in out


async def test_none_fetch_type_and_errors(run_task):
    out, ctx = await run_task(query.Query, {"sql": "SELECT 1"})
    assert out == {} and ctx.metrics == [("counter", "fetch.size", 0, {"fetch": "false", "store": "false"})]
    with pytest.raises(TaskFailed, match="DuckDB query failed: .*nope"):
        await run_task(query.Query, {"sql": "SELECT * FROM nope", "fetch": True})
    with pytest.raises(TaskFailed, match="Invalid url"):
        await run_task(query.Query, {"sql": "SELECT 1", "url": "jdbc:postgresql://x"})


async def test_file_database(run_task, tmp_path):
    db = tmp_path / "my.duckdb"
    await run_task(query.Query, {"url": f"jdbc:duckdb:{db}", "sql": "CREATE TABLE k AS SELECT 7 AS v"})
    out, _ = await run_task(query.Query, {"url": f"jdbc:duckdb:{db}", "sql": "SELECT v FROM k", "fetchOne": True})
    assert out["row"] == {"v": 7}


async def test_kill_interrupts_a_long_query(run_task):
    started = time.monotonic()
    with trio.move_on_after(0.3) as scope:
        await run_task(query.Query, {"sql": "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000) b",
                                     "fetchOne": True})
    assert scope.cancelled_caught
    assert time.monotonic() - started < 2.0
    out, _ = await run_task(query.Query, {"sql": "SELECT 1 AS one", "fetchOne": True})
    assert out["row"] == {"one": 1}
