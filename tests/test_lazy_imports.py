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
