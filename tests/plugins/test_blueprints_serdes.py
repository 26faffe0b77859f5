"""The serdes blueprints (``tests/flows/blueprints/serdes-*.yaml``) run end to end through the engine,
downloading from (and posting to) a local HTTP server."""
from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from .e2e import engine_at, messages, task_runs

BLUEPRINTS = Path(__file__).resolve().parents[1] / "flows" / "blueprints"

FILES: dict[str, bytes] = {
    "/orders.csv": b"order_id,product,quantity,price\n1,apple,3,0.50\n2,pear,1,0.80\n3,apple,2,0.50\n"
                   b"4,\"fig, dried\",10,1.25\n",
    "/readings.jsonl": b'{"sensor":"s1","temperature":21.5,"at":"2024-06-01T10:00:00Z"}\n'
                       b'{"sensor":"s2","temperature":35.25,"at":"2024-06-01T10:00:00Z"}\n'
                       b'{"sensor":"s3","temperature":31,"at":"2024-06-01T10:05:00Z"}\n',
    "/customers.csv": b"id,name,city\n1,Acme,Lyon\n2,Globex,Paris\n",
    "/invoices.csv": b"number;customer;amount\nF-1;1;120.5\nF-2;2;99\nF-3;1;10\n",
    "/users.json": json.dumps([{"id": 1, "name": "Ann", "country": "FR"},
                               {"id": 2, "name": "Bob", "country": "DE"},
                               {"id": 3, "name": "Chloé", "country": "FR"}]).encode(),
    "/payments.csv": b"id,customer,amount,paid_at,refunded,note\n1,acme,120.50,2024-03-01T09:30:00Z,false,\n"
                     b"2,globex,99.99,2024-03-01T11:00:00Z,true,duplicate\n3,acme,10,1709290800000,no,\n",
    "/legacy/stock-north.csv": "sku|label|qty\n--- export v2 ---\n\nA1|Crème|4\nB2|Eau|10\n\n".encode("latin-1"),
    "/legacy/stock-south.csv": "sku|label|qty\n--- export v2 ---\nC3|Pâte|7\n".encode("latin-1"),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    posted: list[tuple[str, bytes]] = []

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        body = FILES.get(self.path)
        self._send(200 if body is not None else 404, body if body is not None else b"not found")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.posted.append((self.path, body))
        self._send(201, b'{"ok":true}')


@contextlib.contextmanager
def serve() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def base_url():
    with serve() as url:
        yield url


async def run_blueprint(tmp_path, name: str, inputs: dict):
    async with engine_at(tmp_path) as engine:
        flow = await engine.create_flow((BLUEPRINTS / name).read_text(encoding="utf-8"))
        ex = await engine.execute(flow.namespace, flow.id, inputs=inputs)
        assert ex["state"]["current"] == "SUCCESS", await messages(engine, ex)
        return engine, ex, task_runs(ex)


def test_there_are_at_least_five_serdes_blueprints():
    assert len(list(BLUEPRINTS.glob("serdes-*.yaml"))) >= 5


async def test_csv_duckdb_json_blueprint(tmp_path, base_url):
    pytest.importorskip("duckdb")
    engine, ex, runs = await run_blueprint(tmp_path, "serdes-csv-duckdb-json.yaml",
                                           {"orders_url": f"{base_url}/orders.csv"})
    assert engine.storage.read_text(runs["to_jsonl"]["outputs"]["uri"]).splitlines()[3] == \
        '{"order_id":"4","product":"fig, dried","quantity":"10","price":"1.25"}'
    assert engine.storage.read_text(runs["report"]["outputs"]["uri"]) == \
        'product,revenue\n"fig, dried",12.50\napple,2.50\npear,0.80\n'
    assert runs["revenue"]["outputs"]["size"] == 3


async def test_jsonl_filter_csv_blueprint(tmp_path, base_url):
    engine, ex, runs = await run_blueprint(tmp_path, "serdes-jsonl-filter-csv.yaml",
                                           {"readings_url": f"{base_url}/readings.jsonl", "threshold": 30})
    assert engine.storage.read_text(runs["to_csv"]["outputs"]["uri"]) == (
        '"sensor";"temperature";"at"\n"s2";"35.25";"2024-06-01T10:00:00Z"\n"s3";"31";"2024-06-01T10:05:00Z"\n')
    assert runs["summary"]["outputs"]["value"] == "3 readings, 1 below 30.0"


async def test_excel_report_blueprint(tmp_path, base_url):
    pytest.importorskip("openpyxl")
    Handler.posted.clear()
    engine, ex, runs = await run_blueprint(tmp_path, "serdes-excel-report.yaml", {"base_url": base_url})
    assert runs["workbook"]["outputs"]["size"] == 5
    assert runs["read_back"]["outputs"]["size"] == 3 and list(runs["read_back"]["outputs"]["uris"]) == ["Invoices"]
    assert Handler.posted == [("/api/invoices", json.dumps([
        {"number": "F-1", "customer": "1", "amount": "120.5"},
        {"number": "F-2", "customer": "2", "amount": "99"},
        {"number": "F-3", "customer": "1", "amount": "10"}], separators=(",", ":")).encode())]
    assert runs["upload"]["outputs"]["code"] == 201


async def test_json_array_to_ion_script_blueprint(tmp_path, base_url):
    engine, ex, runs = await run_blueprint(tmp_path, "serdes-json-array-to-ion-script.yaml",
                                           {"users_url": f"{base_url}/users.json"})
    assert runs["count"]["outputs"]["vars"] == {"users": 3, "fr": 2}
    assert engine.storage.read_text(runs["to_ion"]["outputs"]["uri"]).splitlines()[2] == \
        '{id:3,name:"Chloé",country:"FR"}'


async def test_legacy_csv_cleanup_blueprint(tmp_path, base_url):
    engine, ex, runs = await run_blueprint(tmp_path, "serdes-legacy-csv-cleanup.yaml", {"base_url": base_url})
    csvs = {tr["value"]: engine.storage.read_text(tr["outputs"]["uri"])
            for tr in ex["taskRunList"] if tr["taskId"] == "to_csv"}
    assert csvs == {"stock-north.csv": "sku,label,qty\nA1,Crème,4\nB2,Eau,10\n",
                    "stock-south.csv": "sku,label,qty\nC3,Pâte,7\n"}
    jsonl = [engine.storage.read_text(tr["outputs"]["uri"]) for tr in ex["taskRunList"]
             if tr["taskId"] == "to_jsonl" and tr["value"] == "stock-south.csv"]
    assert jsonl == ['{"sku":"C3","label":"Pâte","qty":"7"}\n']


async def test_parquet_avro_lake_blueprint(tmp_path, base_url):
    pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    pytest.importorskip("fastavro")
    engine, ex, runs = await run_blueprint(tmp_path, "serdes-parquet-avro-lake.yaml",
                                           {"payments_url": f"{base_url}/payments.csv"})
    assert runs["check"]["outputs"]["row"] == {"payments": 3, "total": 230.49, "refunds": 1}
    archived = engine.storage.read_text(runs["archive_check"]["outputs"]["uri"]).splitlines()
    assert archived[1] == ('{id:2,customer:"globex",amount:99.99,paid_at:2024-03-01T11:00:00.000000Z,'
                          'refunded:true,note:"duplicate"}')
    assert engine.storage.read_text(runs["back_from_parquet"]["outputs"]["uri"]).splitlines()[2] == \
        '{id:3,customer:"acme",amount:10.00,paid_at:2024-03-01T11:00:00.000000Z,refunded:false,note:null}'
