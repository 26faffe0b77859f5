"""End to end on the S3 storage (``kestra.storage.type: s3``, moto's server: tests/s3.py): tasks write and read
files through the bucket, the API serves and previews them, and nothing lands in a local storage folder."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from falconet.runtime.config import Config, ConfigError, load_config
from falconet.runtime.kernel.startup import open_engine

from .conftest import api_of

FLOW = """
id: files
namespace: company.team
tasks:
  - id: write
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["rows.jsonl"]
    commands:
      - printf '{"a":1}\\n{"a":2}\\n' > rows.jsonl
  - id: copy
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      in.jsonl: "{{ outputs.write.outputFiles['rows.jsonl'] }}"
    outputFiles: ["copy.jsonl"]
    commands:
      - cat in.jsonl in.jsonl > copy.jsonl
  - id: reverse
    type: io.kestra.plugin.core.storage.Reverse
    from: "{{ outputs.copy.outputFiles['copy.jsonl'] }}"
"""


async def test_a_flow_on_s3_storage_writes_serves_and_previews_files(tmp_path, s3_settings):
    from falconet.runtime.storage.s3 import S3Storage

    config = Config(storage_type="s3", storage_s3={**s3_settings, "prefix": "cluster"})
    async with open_engine(data_dir=tmp_path, store="memory", config=config) as engine:
        assert isinstance(engine.storage, S3Storage)
        api = api_of(engine)
        await api.flow(FLOW)
        status, ex = await api.call("POST", "/api/v1/executions/company.team/files?wait=true")
        assert status == 200 and ex["state"]["current"] == "SUCCESS", ex
        copy = ex["taskRunList"][1]["outputs"]["outputFiles"]["copy.jsonl"]
        reversed_uri = ex["taskRunList"][2]["outputs"]["uri"]
        assert copy.startswith(f"kestra:///company/team/files/executions/{ex['id']}/tasks/copy/")

        base = f"/api/v1/executions/{ex['id']}/file"
        response = await api.client.get(f"{base}?path={quote(copy, safe='')}")
        assert response.status_code == 200
        assert await response.get_data() == b'{"a":1}\n{"a":2}\n' * 2
        status, preview = await api.call("GET", f"{base}/preview?path={quote(reversed_uri, safe='')}")
        assert status == 200, preview
        assert preview["type"] == "LIST" and preview["content"] == [{"a": 2}, {"a": 1}, {"a": 2}, {"a": 1}]
        status, metas = await api.call("GET", f"{base}/metas?path={quote(copy, safe='')}")
        assert (status, metas) == (200, {"size": 32})
        status, _ = await api.call("GET", f"{base}?path={quote('kestra:///company/team/files/../x', safe='')}")
        assert status == 422

        keys = [o["Key"] for o in engine.storage.client.list_objects_v2(Bucket=s3_settings["bucket"])["Contents"]]
        assert keys and all(k.startswith(f"cluster/company/team/files/executions/{ex['id']}/") for k in keys)
        assert not (tmp_path / "storage").exists()

        status, _ = await api.call("DELETE", f"/api/v1/executions/{ex['id']}?deleteStorage=true")
        assert status == 204
        assert engine.storage.list(engine.storage.execution_prefix("company.team", "files", ex["id"])) == []


def test_storage_configuration_keys(tmp_path):
    (tmp_path / "s3.yml").write_text(
        "kestra:\n  storage:\n    type: s3\n    s3:\n      bucket: b\n      endpoint: http://127.0.0.1:9000\n"
        "      region: eu-west-1\n      accessKey: k\n      secret-key: s\n      prefix: p\n")
    cfg = load_config(tmp_path / "s3.yml", environ={})
    assert cfg.storage_type == "s3"
    assert cfg.storage_s3 == {"bucket": "b", "endpoint": "http://127.0.0.1:9000", "region": "eu-west-1",
                              "access-key": "k", "secret-key": "s", "prefix": "p"}
    cfg = load_config(environ={"KESTRA_STORAGE_TYPE": "s3", "KESTRA_STORAGE_S3_BUCKET": "b2"})
    assert (cfg.storage_type, cfg.storage_s3) == ("s3", {"bucket": "b2"})
    assert load_config(environ={}).storage_type == "local"
    with pytest.raises(ConfigError, match="needs kestra.storage.s3.bucket"):
        load_config(environ={"KESTRA_STORAGE_TYPE": "s3"})
    with pytest.raises(ConfigError, match="'local' or 's3'"):
        load_config(environ={"KESTRA_STORAGE_TYPE": "gcs"})


CHILD = """
id: child
namespace: company.team
inputs:
  - id: file
    type: FILE
tasks:
  - id: count
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      batch.txt: "{{ inputs.file }}"
    commands:
      - echo "::{\\"outputs\\":{\\"lines\\":$(wc -l < batch.txt)}}::"
"""

PARENT = """
id: parent
namespace: company.team
tasks:
  - id: items
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["items.txt"]
    commands:
      - seq 1 25 > items.txt
  - id: batches
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ outputs.items.outputFiles['items.txt'] }}"
    batch:
      rows: 10
    namespace: company.team
    flowId: child
    wait: true
    inputs:
      file: "{{ taskrun.items }}"
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      enabled: true
    cache:
      patterns: ["deps/**"]
    tasks:
      - id: build
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - if [ -f deps/lib.txt ]; then echo '::{"outputs":{"cached":true}}::'; fi
          - mkdir -p deps && cat conf/settings.txt > deps/lib.txt
"""


async def test_namespace_files_foreachitem_and_caches_on_s3(tmp_path, s3_settings, form):
    config = Config(storage_type="s3", storage_s3=s3_settings)
    async with open_engine(data_dir=tmp_path, store="memory", config=config) as engine:
        api = api_of(engine)
        await api.flow(CHILD)
        await api.flow(PARENT)
        body, headers = form(files=[("fileContent", "settings.txt", b"v1\n")])
        status, _ = await api.call("POST", "/api/v1/namespaces/company.team/files?path=/conf/settings.txt",
                                   data=body, headers=headers)
        assert status == 200
        status, listing = await api.call("GET", "/api/v1/namespaces/company.team/files/directory?path=/conf")
        assert status == 200 and [(f["fileName"], f["type"], f["size"]) for f in listing] == [
            ("settings.txt", "File", 3)]
        status, content = await api.call("GET", "/api/v1/namespaces/company.team/files?path=/conf/settings.txt")
        assert (status, content) == (200, "v1\n")

        runs = []
        for _ in range(2):
            status, ex = await api.call("POST", "/api/v1/executions/company.team/parent?wait=true")
            assert status == 200 and ex["state"]["current"] == "SUCCESS", ex
            runs.append(ex)
        batches = next(tr for tr in runs[0]["taskRunList"] if tr["taskId"] == "batches")
        batches = next(tr for tr in runs[0]["taskRunList"] if tr["taskId"] == "batches_items")
        assert batches["outputs"]["iterations"]["SUCCESS"] == 3
        build = [next(tr for tr in ex["taskRunList"] if tr["taskId"] == "build") for ex in runs]
        assert [b["outputs"]["vars"] for b in build] == [{}, {"cached": True}]
        status, children = await api.call("GET", "/api/v1/executions/search?flowId=child&size=100")
        assert status == 200
        assert sorted(c["taskRunList"][0]["outputs"]["vars"]["lines"] for c in children["results"]) == [
            5, 5, 10, 10, 10, 10]
        assert not (tmp_path / "storage").exists()


def test_an_unusable_bucket_stops_the_server_with_one_line(tmp_path, s3_settings, capsys):
    from falconet.cli import main

    config = tmp_path / "falconet.yaml"
    config.write_text(f"kestra:\n  storage:\n    type: s3\n    s3:\n      bucket: no-such-bucket\n"
                      f"      endpoint: {s3_settings['endpoint']}\n      region: {s3_settings['region']}\n"
                      f"      access-key: {s3_settings['access-key']}\n      secret-key: {s3_settings['secret-key']}\n")
    assert main(["--config", str(config), "server", "local", "--port", "0",
                 "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("falconet: configuration error: cannot use the S3 bucket 'no-such-bucket' at http://")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_s3_storage_without_boto3_is_a_configuration_error(tmp_path, monkeypatch):
    import sys

    from falconet.runtime.storage import open_storage

    monkeypatch.setitem(sys.modules, "boto3", None)  # what an install without the s3 extra sees
    monkeypatch.delitem(sys.modules, "falconet.runtime.storage.s3", raising=False)
    with pytest.raises(ConfigError, match=r"needs boto3: pip install 'falconet\[s3\]'"):
        open_storage(Config(storage_type="s3", storage_s3={"bucket": "b"}))
