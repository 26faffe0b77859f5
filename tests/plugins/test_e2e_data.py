"""HTTP, DuckDB and storage tasks in flows through the engine — the seed's pattern: download a file from a
(local) server, query it with DuckDB into an Ion file (``store: true``), consume the Ion rows."""
from __future__ import annotations

import pytest

from falconet.runtime.store.base import ExecutionQuery

from .e2e import engine_at, messages, task_runs
from .httpserver import serve

CSV_ROWS = "id,name\n1,a\n2,b\n"


@pytest.fixture(scope="module")
def base_url():
    with serve() as url:
        yield url


async def test_http_request_and_download_flow(tmp_path, base_url):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(f"""
id: http
namespace: company.team
tasks:
  - id: request
    type: io.kestra.plugin.core.http.Request
    uri: {base_url}/echo
    method: POST
    contentType: application/json
    body: '{{"flow": "{{{{ flow.id }}}}"}}'
  - id: parsed
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ fromJson(outputs.request.body).body }}}}"
  - id: download
    type: io.kestra.plugin.fs.http.Download
    uri: {base_url}/items.csv
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{{{ outputs.download.uri }}}}"
""")
        ex = await engine.execute("company.team", "http")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        runs = task_runs(ex)
        assert runs["request"]["outputs"]["code"] == 200
        assert runs["parsed"]["outputs"]["value"] == '{"flow": "http"}'
        assert runs["download"]["outputs"]["length"] == len(CSV_ROWS)
        assert runs["download"]["outputs"]["uri"].startswith(f"kestra:///company/team/http/executions/{ex['id']}/")
        assert runs["size"]["outputs"] == {"size": len(CSV_ROWS)}


async def test_download_duckdb_store_then_ion_consumers_flow(tmp_path, base_url):
    pytest.importorskip("duckdb")
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(f"""
id: pipeline
namespace: company.team
tasks:
  - id: download
    type: io.kestra.plugin.core.http.Download
    uri: {base_url}/items.csv
  - id: query
    type: io.kestra.plugin.jdbc.duckdb.Query
    inputFiles:
      data.csv: "{{{{ outputs.download.uri }}}}"
    sql: |
      SELECT id, upper(name) AS name FROM read_csv_auto('{{{{ workingDir }}}}/data.csv') ORDER BY id;
    store: true
  - id: filter
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{{{ outputs.query.uri }}}}"
    filterCondition: "{{{{ id > 1 }}}}"
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      rows.ion: "{{{{ outputs.filter.uri }}}}"
    commands:
      - cat rows.ion
""")
        ex = await engine.execute("company.team", "pipeline")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        runs = task_runs(ex)
        assert runs["query"]["outputs"]["size"] == 2
        assert engine.storage.read_text(runs["query"]["outputs"]["uri"]) == '{id:1,name:"A"}\n{id:2,name:"B"}\n'
        assert runs["filter"]["outputs"]["processedItemsTotal"] == 2
        assert await messages(engine, ex, "script") == [("INFO", '{id:2,name:"B"}')]


async def test_storage_split_concat_flow(tmp_path, base_url):
    async with engine_at(tmp_path) as engine:
        await engine.create_flow(f"""
id: split
namespace: company.team
tasks:
  - id: download
    type: io.kestra.plugin.core.http.Download
    uri: {base_url}/items.csv
  - id: split
    type: io.kestra.plugin.core.storage.Split
    from: "{{{{ outputs.download.uri }}}}"
    rows: 1
  - id: reverse
    type: io.kestra.core.tasks.storages.Reverse
    from: "{{{{ outputs.download.uri }}}}"
  - id: concat
    type: io.kestra.plugin.core.storage.Concat
    files: "{{{{ outputs.split.uris }}}}"
    separator: "--\\n"
  - id: content
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read(outputs.concat.uri) }}}}|{{{{ read(outputs.reverse.uri) }}}}"
""")
        ex = await engine.execute("company.team", "split")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        runs = task_runs(ex)
        assert len(runs["split"]["outputs"]["uris"]) == 3
        assert runs["content"]["outputs"]["value"] == "id,name\n--\n1,a\n--\n2,b\n--\n|2,b\n1,a\nid,name\n"


async def test_seed_pattern_download_duckdb_foreachitem_shell(tmp_path, base_url):
    """The seed's pipeline: http.Download (local URL) → duckdb Query store:true → ForEachItem over the Ion
    rows, one subflow per row running a shell.Commands task with the Process runner."""
    pytest.importorskip("duckdb")
    async with engine_at(tmp_path) as engine:
        await engine.create_flow("""
id: per-item
namespace: company.team
inputs:
  - id: json
    type: FILE
tasks:
  - id: show
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    inputFiles:
      batch.ion: "{{ inputs.json }}"
    commands:
      - cat batch.ion
""")
        await engine.create_flow(f"""
id: seed
namespace: company.team
tasks:
  - id: download
    type: io.kestra.plugin.core.http.Download
    uri: {base_url}/items.csv
  - id: query
    type: io.kestra.plugin.jdbc.duckdb.Query
    inputFiles:
      data.csv: "{{{{ outputs.download.uri }}}}"
    sql: SELECT id, name FROM read_csv_auto('{{{{ workingDir }}}}/data.csv') ORDER BY id
    store: true
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ outputs.query.uri }}}}"
    batch:
      rows: 1
    namespace: company.team
    flowId: per-item
    wait: true
    transmitFailed: true
    inputs:
      json: "{{{{ taskrun.items }}}}"
""")
        ex = await engine.execute("company.team", "seed")
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        runs = task_runs(ex)
        assert runs["each_items"]["outputs"]["numberOfBatches"] == 2
        assert runs["each_items"]["outputs"]["iterations"]["SUCCESS"] == 2
        children, _ = await engine.store.search_executions(ExecutionQuery(flow_id="per-item", size=10))
        assert len(children) == 2
        shown = sorted([msg for child in children for _lvl, msg in await messages(engine, child, "show")])
        assert shown == ['{id:1,name:"a"}', '{id:2,name:"b"}']
