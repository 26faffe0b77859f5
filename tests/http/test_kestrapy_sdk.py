"""Kestra's official Python SDK, ``kestrapy`` 2.0 from PyPI, against a live server: flows, executions,
execution files, logs, KV, triggers, namespaces, namespace files and plugins — and its ``filters`` filter.

The SDK runs in a subprocess of its own venv, cached across runs and built once under a file lock
(``tests/venvs.py``); skipped, with pip's message, when it is neither cached nor installable (offline on the
first run)."""
from __future__ import annotations

import json
import os
import textwrap

import trio


SCRIPT = textwrap.dedent('''
    import io, json, sys, time, zipfile
    from kestrapy import KestraClient
    from kestrapy.models.query_filter import QueryFilter

    T = "main"
    k = KestraClient(host=sys.argv[1])
    out = {}

    def f(field, op, value):
        return QueryFilter(field=field, operation=op, value=value)

    HELLO = """id: hello
    namespace: company.team
    inputs:
      - id: who
        type: STRING
      - id: doc
        type: FILE
    tasks:
      - id: greet
        type: io.kestra.plugin.core.log.Log
        message: "hello {{ inputs.who }}"
      - id: conf
        type: io.kestra.plugin.core.debug.Return
        format: "{{ read('nsfile:///conf/app.txt') }}"
    triggers:
      - id: nightly
        type: io.kestra.plugin.core.trigger.Schedule
        cron: "0 2 * * *"
    """
    OTHER = """id: other
    namespace: company.other
    tasks:
      - id: say
        type: io.kestra.plugin.core.log.Log
        message: other
    triggers:
      - id: weekly
        type: io.kestra.plugin.core.trigger.Schedule
        cron: "0 2 * * 1"
    """

    # namespace files first: the flow reads one
    k.files.create_namespace_directory("company.team", T, path="/conf")
    k.files.create_namespace_file("company.team", "/conf/app.txt", T, file_content=b"v1")
    k.files.create_namespace_file("company.team", "/conf/app.txt", T, file_content=b"v2")
    out["ns_dir"] = [(a.file_name, a.type.value if hasattr(a.type, "value") else a.type)
                     for a in k.files.list_namespace_directory_files("company.team", T, path="/conf")]
    out["ns_content"] = k.files.file_content("company.team", "/conf/app.txt", T).decode()
    out["ns_rev1"] = k.files.file_content("company.team", "/conf/app.txt", T, revision=1).decode()
    out["ns_revisions"] = [r.revision for r in k.files.file_revisions("company.team", T, path="/conf/app.txt")]
    out["ns_stats_size"] = k.files.file_metadatas("company.team", T, path="/conf/app.txt").size
    out["ns_search"] = k.files.search_namespace_files("company.team", "app", T)
    k.files.create_namespace_file("company.team", "/tmp.txt", T, file_content=b"x")
    k.files.move_file_directory("company.team", "/tmp.txt", "/moved.txt", T)
    k.files.delete_file_directory("company.team", "/moved.txt", T)
    out["ns_search_moved"] = k.files.search_namespace_files("company.team", "moved", T)
    with zipfile.ZipFile(io.BytesIO(k.files.export_namespace_files("company.team", T))) as z:
        out["ns_export"] = sorted(z.namelist())

    # flows
    k.flows.create_flow(T, HELLO)
    k.flows.create_flow(T, OTHER)
    out["flow_get"] = k.flows.flow("company.team", "hello", T).id
    found = k.flows.search_flows(T, size=50, filters=[f("namespace", "EQUALS", "company.team")])
    out["flows_filtered"] = sorted(x.id for x in found.results)

    # executions, their files and logs
    ex = k.executions.create_execution(T, "company.team", "hello", wait=True,
                                       inputs={"who": "sdk", "doc": ("doc.txt", b"file body")})
    k.executions.create_execution(T, "company.other", "other", wait=True)
    got = k.executions.execution(ex.id, T)
    out["state"] = got.state.current.value if hasattr(got.state.current, "value") else got.state.current
    uri = got.inputs["doc"]
    out["file"] = k.executions.download_file_from_execution(ex.id, uri, T).decode()
    runs = {tr.task_id: tr for tr in got.task_run_list}
    out["nsfile_read"] = k.outputs.task_run_outputs(ex.id, runs["conf"].id, T)["value"]
    out["task_outputs"] = [i.task_id for i in k.outputs.task_outputs_information(ex.id, T)]
    page = k.executions.search_executions(T, size=50, filters=[f("flowId", "EQUALS", "other")])
    out["executions_filtered"] = sorted({e["flowId"] for e in page["results"]})
    logs = k.logs.list_logs_from_execution(ex.id, T)
    out["logs"] = [line.message for line in logs]
    searched = k.logs.search_logs(T, size=50, filters=[f("namespace", "EQUALS", "company.other")])
    out["logs_filtered"] = sorted({line.namespace for line in searched.results})

    # KV
    k.kv.set_key_value("company.team", "color", T, "blue")
    out["kv"] = k.kv.key_value("company.team", "color", T).value
    keys = k.kv.list_all_keys(T, filters=[f("namespace", "EQUALS", "company.team")])
    out["kv_keys"] = sorted(e.key for e in keys.results)
    out["kv_deleted"] = k.kv.delete_key_value("company.team", "color", T)

    # triggers
    # the scheduler writes a trigger's record when it first evaluates it (as Kestra's does)
    deadline = time.monotonic() + 30
    while True:
        everything = k.triggers.search_triggers(T, size=50)  # first: the filtered read then sees them too
        trig = k.triggers.search_triggers(T, size=50, filters=[f("flowId", "EQUALS", "hello")])
        if len(everything["results"]) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    out["triggers_filtered"] = sorted(t["triggerContext"]["triggerId"] for t in trig["results"])

    # namespaces
    ns = k.namespaces.search_namespaces(T, size=50, filters=[f("q", "CONTAINS", "other")])
    out["namespaces_filtered"] = [n.id for n in ns.results]
    out["namespace"] = k.namespaces.namespace("company.team", T).id

    # plugins
    out["plugins"] = sorted(p["group"] for p in k.plugins.list_plugins())
    out["subgroups"] = len(k.plugins.list_plugins_by_subgroups())
    out["icon"] = sorted(k.plugins.plugin_icon("io.kestra.plugin.core.log.Log"))
    out["icons"] = "io.kestra.plugin.core.log.Log" in k.plugins.plugin_icons()
    out["group_icons"] = "io.kestra.plugin.core" in k.plugins.plugin_group_icons()
    out["inputs"] = len(k.plugins.plugin_input_types())
    out["input_schema"] = "properties" in k.plugins.plugin_input_schema("STRING")["schema"]
    out["flow_schema"] = k.plugins.plugin_schema("flow")["$ref"]
    out["properties"] = "tasks" in k.plugins.plugin_properties("flow")["properties"]
    out["doc"] = k.plugins.plugin_documentation("io.kestra.plugin.core.log.Log")["markdown"].splitlines()[0]
    out["versions"] = k.plugins.plugin_versions("io.kestra.plugin.core.log.Log")["type"]
    print(json.dumps(out))
''')


async def test_kestrapy_sdk_drives_falconet(server, tmp_path, kestrapy_python):
    (tmp_path / "run.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KESTRA_", "PYTHONPATH"))}
    with trio.fail_after(180):
        done = await trio.run_process([kestrapy_python, "run.py", server], cwd=tmp_path, env=env,
                                      capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    # namespace files
    assert out["ns_dir"] == [["app.txt", "File"]]
    assert (out["ns_content"], out["ns_rev1"], out["ns_revisions"]) == ("v2", "v1", [1, 2])
    assert out["ns_stats_size"] == 2 and out["ns_search"] == ["/conf/app.txt"] and out["ns_search_moved"] == []
    assert out["ns_export"] == ["conf/app.txt"]
    # flows, executions, files, logs
    assert out["flow_get"] == "hello" and out["flows_filtered"] == ["hello"]
    assert out["state"] == "SUCCESS" and out["file"] == "file body" and out["nsfile_read"] == "v2"
    assert out["task_outputs"] == ["conf"] and out["executions_filtered"] == ["other"]
    assert "hello sdk" in out["logs"] and out["logs_filtered"] == ["company.other"]
    # KV, triggers, namespaces
    assert out["kv"] == "blue" and out["kv_keys"] == ["color"] and out["kv_deleted"] is True
    assert out["triggers_filtered"] == ["nightly"]
    assert out["namespaces_filtered"] == ["company.other"] and out["namespace"] == "company.team"
    # plugins
    assert "io.kestra.plugin.core" in out["plugins"] and out["subgroups"] > len(out["plugins"])
    assert out["icon"] == ["flowable", "icon", "name"] and out["icons"] and out["group_icons"]
    assert out["inputs"] == 19 and out["input_schema"] and out["properties"]
    assert out["flow_schema"] == "#/definitions/io.kestra.core.models.flows.Flow"
    assert out["doc"] == "# io.kestra.plugin.core.log.Log" and out["versions"] == "io.kestra.plugin.core.log.Log"
