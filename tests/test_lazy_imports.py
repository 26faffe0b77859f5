"""A plain server imports only what it uses: start-up time and idle memory on edge boxes (README,
Performance). Each check runs in a fresh interpreter, so modules imported by other tests do not count."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: libraries a server that answers HTTP and runs a Log flow must not import
HEAVY = ["amazon", "jsonconversion", "numpy", "croniter", "dateutil", "duckdb", "httpx", "cryptography",
         "openpyxl", "fastavro", "pyarrow",
         "playwright", "psycopg", "boto3", "botocore",
         "re2"]  # RE2 (2.6 MB resident) is imported by the first user regex, which the Log flow has none of

FLOW = """
id: hello
namespace: company.team
tasks:
  - id: hi
    type: io.kestra.plugin.core.log.Log
    message: Hello
"""

SERVER = textwrap.dedent("""
    import json, sys, tempfile, trio
    from falconet.http.app import create_app
    from falconet.runtime.kernel.startup import open_engine

    async def main():
        with tempfile.TemporaryDirectory() as data:
            async with open_engine(data, store="sqlite") as engine:
                client = create_app(engine, config=engine.config).test_client()
                assert (await client.get("/api/v1/configs")).status_code == 200
                await engine.create_flow(sys.argv[1])
                r = await client.post("/api/v1/executions/company.team/hello?wait=true")
                assert (await r.get_json())["state"]["current"] == "SUCCESS", await r.get_data()
        print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2:]))))

    trio.run(main)
""")


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_plain_server_imports_no_heavy_library():
    assert json.loads(run(SERVER, FLOW, *HEAVY)) == []


def test_the_cli_entry_point_imports_no_heavy_library():
    script = "import json, sys, falconet.cli; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:]))))"
    assert json.loads(run(script, *HEAVY)) == []


PLUGIN_MODULES = textwrap.dedent("""
    import json, sys, tempfile, trio
    from falconet.http.app import create_app
    from falconet.runtime.kernel.startup import open_engine

    def plugin_modules():
        return sorted(m for m in sys.modules if m.startswith("falconet.plugins."))

    async def main():
        with tempfile.TemporaryDirectory() as data:
            async with open_engine(data, store="sqlite") as engine:
                client = create_app(engine, config=engine.config).test_client()
                assert (await client.get("/api/v1/configs")).status_code == 200
                started = plugin_modules()
                await engine.create_flow(sys.argv[1])
                r = await client.post("/api/v1/executions/company.team/hello?wait=true")
                assert (await r.get_json())["state"]["current"] == "SUCCESS", await r.get_data()
        print(json.dumps([started, plugin_modules()]))

    trio.run(main)
""")


def test_a_plain_server_imports_only_the_plugin_modules_its_flows_use():
    """The built-in plugins are registered from their catalogue (falconet/plugins/catalogue.py); a module
    is imported when a flow first uses one of its types."""
    started, after_flow = json.loads(run(PLUGIN_MODULES, FLOW))
    assert started == ["falconet.plugins.catalogue"]
    assert after_flow == ["falconet.plugins.catalogue", "falconet.plugins.core", "falconet.plugins.core.log"]


#### the server command defers what it never runs (falconet/deferred_imports.py) ###########################

CLI_SERVER = textwrap.dedent("""
    import json, os, signal, socket, sys, tempfile, threading, time
    from falconet import cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = {}

    def answered():   # bytes and a bare socket: a str host or an HTTP library would import modules of their own
        try:
            with socket.create_connection((b"127.0.0.1", port), timeout=5) as c:
                c.sendall(b"GET /api/v1/configs HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n")
                return c.recv(12) == b"HTTP/1.1 200"
        except OSError:
            return False

    def probe():
        deadline = time.monotonic() + 60
        while not answered() and time.monotonic() < deadline:
            time.sleep(0.02)
        from falconet.deferred_imports import DEFERRED, DeferredModule
        report["deferred"] = {name: type(sys.modules[name]).__name__ if name in sys.modules else None
                              for name in sorted(DEFERRED)}
        report["heavy"] = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))
        report["loaded"] = sorted(set(sys.modules) & set(sys.argv[1:]))
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=probe, daemon=True).start()
    with tempfile.TemporaryDirectory() as data:
        code = cli.main(["server", "local", "--port", str(port), "--data-dir", data])
    from falconet.deferred_imports import DeferringFinder
    report["finder_left"] = any(isinstance(f, DeferringFinder) for f in sys.meta_path)
    print(json.dumps([code, report]))
""")


#: Falconet modules (and what only they import) that an idle server does not load: each is imported by the code
#: that first needs it — the expression language by a renderer's first compiled template (its filters and
#: functions register then), the jq engine by the first ``jq`` filter, the dashboards model and the plugin
#: catalogue, the statistics and the flow graph by their requests, the memory store by a memory store, the
#: multipart parser by a multipart body
ON_FIRST_USE = ["falconet.runtime.expr.functions", "falconet.runtime.expr.filters",
                "falconet.runtime.expr.filters_data", "falconet.runtime.expr.dates", "falconet.runtime.expr.env",
                "falconet.runtime.expr.pebble", "falconet.runtime.expr.registry", "jinja2.sandbox",
                "falconet.runtime.expr.jq", "falconet.runtime.expr.jq_runtime",
                "falconet.runtime.reports.dashboards", "falconet.runtime.catalog.plugins",
                "falconet.runtime.catalog.docs", "falconet.runtime.store.memory", "python_multipart.multipart",
                "falconet.runtime.reports.stats", "falconet.http.api.graph"]


def test_an_idle_server_does_not_import_the_falconet_modules_it_does_not_use():
    code, report = json.loads(run(CLI_SERVER, *ON_FIRST_USE).splitlines()[-1])
    assert code == 0
    assert report["loaded"] == []


FIRST_USE = textwrap.dedent("""
    import json, sys, tempfile, trio
    from falconet.http.app import create_app
    from falconet.runtime.kernel.startup import open_engine

    FORM = (b'--b\\r\\nContent-Disposition: form-data; name="fileContent"; filename="a.txt"\\r\\n\\r\\n'
            b'hello\\r\\n--b--\\r\\n')

    def loaded():
        return sorted(set(sys.modules) & set(sys.argv[1:]))

    async def main():
        seen = {}
        with tempfile.TemporaryDirectory() as data:
            async with open_engine(data, store="sqlite") as engine:
                client = create_app(engine, config=engine.config).test_client()
                assert (await client.get("/api/v1/configs")).status_code == 200
                seen["idle"] = loaded()
                seen["render"] = engine.renderer.render(
                    "{{ [3, 1, 2] | sort | join(',') }} {{ {'a': [1, 2]} | jq('.a[1]') | first }} "
                    "{{ now() | date('yyyy') | length }}", {})
                r = await client.get("/api/v1/dashboards/_default")
                seen["dashboard"] = [r.status_code, (await r.get_json())["title"]]
                r = await client.get("/api/v1/plugins/io.kestra.plugin.core.log.Log")
                seen["plugin"] = [r.status_code, sorted(await r.get_json())]
                r = await client.get("/api/v1/plugins")
                seen["plugins"] = r.status_code
                r = await client.post("/api/v1/stats/executions/daily", json={})
                seen["stats"] = [r.status_code, len(await r.get_json()) > 0]
                await engine.create_flow(sys.argv[-1])
                r = await client.get("/api/v1/flows/company.team/hello/graph")
                seen["graph"] = [r.status_code, len((await r.get_json())["nodes"]) > 0]
                r = await client.post("/api/v1/namespaces/company.team/files?path=/a.txt", data=FORM,
                                      headers={"Content-Type": "multipart/form-data; boundary=b"})
                seen["upload"] = [r.status_code, (await client.get(
                    "/api/v1/namespaces/company.team/files?path=/a.txt")).status_code]
            async with open_engine(store="memory") as engine:
                seen["memory"] = type(engine.store).__name__
        seen["after"] = loaded()
        print(json.dumps(seen))

    trio.run(main)
""")


def test_each_module_loaded_on_first_use_works_then():
    seen = json.loads(run(FIRST_USE, *ON_FIRST_USE, FLOW).splitlines()[-1])
    assert seen["idle"] == []
    assert seen["render"] == "1,2,3 2 4"
    assert seen["dashboard"] == [200, "Overview"]
    assert seen["plugin"][0] == 200 and {"markdown", "schema"} <= set(seen["plugin"][1]) and seen["plugins"] == 200
    assert seen["upload"] == [200, 200]
    assert seen["stats"] == [200, True] and seen["graph"] == [200, True]
    assert seen["memory"] == "MemoryStore"
    assert seen["after"] == sorted(ON_FIRST_USE)


def test_an_idle_server_leaves_the_deferred_modules_unexecuted():
    """`falconet server` answers HTTP without running the code of the modules it defers (about 2.5 MB)."""
    code, report = json.loads(run(CLI_SERVER, *HEAVY).splitlines()[-1])
    assert code == 0 and report["finder_left"] is False
    assert report["heavy"] == []
    assert set(report["deferred"].values()) <= {"DeferredModule", None}, report["deferred"]
    # imported by the libraries at start-up, and still not run
    for name in ("h2.connection", "priority", "difflib", "pdb", "csv", "mimetypes", "idna"):
        assert report["deferred"][name] == "DeferredModule", name


TOUCH = textwrap.dedent("""
    import importlib, json, sys
    import contextlib
    from falconet import deferred_imports
    with deferred_imports.deferring() if sys.argv[1] == "deferred" else contextlib.nullcontext():
        import falconet.http.app, falconet.http.serve   # the server's imports
        modules = {name: importlib.import_module(name) for name in sorted(json.loads(sys.argv[2]))}
    kinds = {name: type(module).__name__ for name, module in modules.items()}
    names = {name: sorted(n for n in dir(module) if not n.startswith("_")) for name, module in modules.items()}
    kinds = {name: kind + ">" + type(modules[name]).__name__ for name, kind in kinds.items()}
    import csv, difflib, html, io, mimetypes, shlex, idna, tokenize
    rows = list(csv.reader(io.StringIO('a,"b,c"\\n')))
    works = [rows, difflib.get_close_matches("flwos", ["flows", "logs"]), html.escape("<a&b>"),
             mimetypes.guess_type("x.csv")[0], shlex.split("a 'b c'"), idna.encode("bücher.example").decode(),
             [t.string for t in tokenize.generate_tokens(io.StringIO("x = 1").readline)][:3]]
    print(json.dumps([kinds, names, works]))
""")


def test_each_deferred_module_works_when_touched():
    """Touched after the server's imports, each deferred module has the same names and works as one imported
    as usual."""
    from falconet.deferred_imports import DEFERRED

    kinds, names, works = json.loads(run(TOUCH, "deferred", json.dumps(sorted(DEFERRED))))
    plain_kinds, plain_names, plain_works = json.loads(run(TOUCH, "plain", json.dumps(sorted(DEFERRED))))
    assert set(kinds.values()) == {"DeferredModule>module"}, kinds
    assert set(plain_kinds.values()) == {"module>module"}
    assert names == plain_names
    assert works == plain_works == [[["a", "b,c"]], ["flows", "logs"], "&lt;a&amp;b&gt;", "text/csv", ["a", "b c"],
                                    "xn--bcher-kva.example", ["x", "=", "1"]]


THREADS = textwrap.dedent("""
    import json, sys, threading
    sys.path.insert(0, sys.argv[1])
    from falconet import deferred_imports
    with deferred_imports.deferring(frozenset({"slow_module"})):
        import slow_module
        import slow_module as again      # a second import statement does not run it
    kind = type(again).__name__
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(slow_module.VALUE)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    import builtins
    print(json.dumps([kind, seen, builtins.slow_module_runs, type(slow_module).__name__]))
""")


def test_first_use_from_many_threads_runs_a_deferred_module_once(tmp_path):
    (tmp_path / "slow_module.py").write_text(
        "import builtins, time\n"
        "builtins.slow_module_runs = getattr(builtins, 'slow_module_runs', 0) + 1\n"
        "time.sleep(0.05)\n"
        "VALUE = 42\n")
    kind, seen, runs, after = json.loads(run(THREADS, str(tmp_path)))
    assert kind == "DeferredModule"
    assert seen == [42] * 8 and runs == 1 and after == "module"


EMBEDDED = textwrap.dedent("""
    import json, sys, tempfile
    import falconet, falconet.cli
    from falconet.deferred_imports import DeferringFinder
    engine_loaded = "falconet.runtime.kernel.engine" in sys.modules
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(sys.argv[1])
    code = falconet.cli.main(["flow", "validate", f.name])
    print(json.dumps([engine_loaded, code, falconet.open_engine.__module__, falconet.State.SUCCESS.name,
                      sorted(falconet.__all__) == sorted(n for n in dir(falconet) if n in falconet.__all__),
                      any(isinstance(f, DeferringFinder) for f in sys.meta_path)]))
""")


def test_importing_falconet_defers_nothing_and_loads_no_engine():
    """`import falconet` (and the CLI module) imports its API on first use; only the server command defers
    library modules, embedding Falconet and the other commands import as usual."""
    engine_loaded, code, module, state, listed, deferring = json.loads(run(EMBEDDED, FLOW).splitlines()[-1])
    assert engine_loaded is False
    assert code == 0
    assert module == "falconet.runtime.kernel.startup" and state == "SUCCESS" and listed
    assert deferring is False
