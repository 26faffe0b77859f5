"""io.kestra.plugin.serdes.*: CSV, JSON and Excel ↔ Ion rows (Excel tests skip without openpyxl)."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from falconet.plugins.serdes import csv as serdes_csv
from falconet.plugins.serdes import excel, json as serdes_json
from falconet.sdk import TaskFailed, from_ion_value, read_ion_rows, simpleion, text_row_encoder, to_ion_line

PREFIX = "/company/team/flow/executions/exec1/tasks/dl/tr0"


def seed(make_ctx, data: bytes | str, name: str = "data.csv") -> str:
    ctx = make_ctx(serdes_csv.CsvToIon, {})
    return ctx.storage.put_bytes(data.encode() if isinstance(data, str) else data, f"{PREFIX}/{name}")


def ion_rows(ctx, uri: str) -> list:
    with ctx.storage.open_read(uri) as f:
        return list(read_ion_rows(io.TextIOWrapper(f, encoding="utf-8")))


#### CsvToIon ###############################################################################################

async def test_csv_to_ion_header_quotes_bom_and_metric(run_task, make_ctx):
    uri = seed(make_ctx, '\ufeffid,name,note\n1,"Doe, J.","say ""hi""\nbye"\n2,é😀,\n3,short\n')
    out, ctx = await run_task(serdes_csv.CsvToIon, {"from": uri})
    assert out["uri"].endswith(".ion")
    assert ion_rows(ctx, out["uri"]) == [
        {"id": "1", "name": "Doe, J.", "note": 'say "hi"\nbye'},
        {"id": "2", "name": "é😀", "note": ""},
        {"id": "3", "name": "short", "note": None},
    ]
    assert ctx.metrics == [("counter", "records", 3, {})]
    assert ctx.storage.read_text(out["uri"]).splitlines()[0] == '{id:"1",name:"Doe, J.",note:"say \\"hi\\"\\nbye"}'


async def test_csv_to_ion_options(run_task, make_ctx):
    uri = seed(make_ctx, "a;b\n\n1;2\n3;4\n5;6\n".encode("latin-1") + "é;x\n".encode("latin-1"))
    out, ctx = await run_task(serdes_csv.CsvToIon, {
        "from": uri, "fieldSeparator": ";", "header": False, "skipEmptyRows": True, "skipRows": 1,
        "charset": "ISO-8859-1"})
    assert ion_rows(ctx, out["uri"]) == [["1", "2"], ["3", "4"], ["5", "6"], ["é", "x"]]
    out, ctx = await run_task(serdes_csv.CsvToIon, {"from": uri, "fieldSeparator": ";", "skipRows": 2,
                                                    "charset": "ISO-8859-1"})
    # header first, then skipRows data records (the empty line is a record of one empty field)
    assert ion_rows(ctx, out["uri"]) == [{"a": "3", "b": "4"}, {"a": "5", "b": "6"}, {"a": "é", "b": "x"}]
    quoted = seed(make_ctx, "k|v\n'a|b'|c\n", "q.csv")
    out, ctx = await run_task(serdes_csv.CsvToIon, {"from": quoted, "fieldSeparator": "|", "textDelimiter": "'"})
    assert ion_rows(ctx, out["uri"]) == [{"k": "a|b", "v": "c"}]


async def test_csv_to_ion_errors(run_task, make_ctx):
    uri = seed(make_ctx, "a,b\n1,2\n3\n")
    with pytest.raises(TaskFailed, match="Record 3 has 1 fields, but first record had 2 fields"):
        await run_task(serdes_csv.CsvToIon, {"from": uri, "errorOnDifferentFieldCount": True})
    with pytest.raises(TaskFailed, match="fieldSeparator must be a single character"):
        await run_task(serdes_csv.CsvToIon, {"from": uri, "fieldSeparator": ";;"})
    with pytest.raises(TaskFailed, match="Unknown charset 'nope'"):
        await run_task(serdes_csv.CsvToIon, {"from": uri, "charset": "nope"})
    with pytest.raises(TaskFailed, match="Unable to find the file"):
        await run_task(serdes_csv.CsvToIon, {"from": "kestra:///company/team/missing.csv"})
    with pytest.raises(TaskFailed, match="from must be a kestra:// URI"):
        await run_task(serdes_csv.CsvToIon, {"from": "/etc/passwd"})
    latin = seed(make_ctx, "a\n\xe9\n".encode("latin-1"), "latin.csv")
    with pytest.raises(TaskFailed, match="with the given charset"):
        await run_task(serdes_csv.CsvToIon, {"from": latin})


def test_text_row_encoder_writes_the_ion_the_library_reads():
    columns = ["id", "a b", "null", "", "x'y", "id", "é", "{0}", "}"]
    values = ['q"uote\\', "tab\tnl\nnul\x00", "\x7f\u2028", "😀", None, "last", "ok", "{1}", "{"]
    line = text_row_encoder(columns)(values)
    assert from_ion_value(simpleion().loads(line)) == {"id": "last", "a b": "tab\tnl\nnul\x00", "null": "\x7f\u2028",
                                             "": "😀", "x'y": None, "é": "ok", "{0}": "{1}", "}": "{"}
    assert from_ion_value(simpleion().loads(text_row_encoder(["a", "b"])(["1"]))) == {"a": "1", "b": None}
    assert from_ion_value(simpleion().loads(text_row_encoder(None)(["a", None]))) == ["a", None]
    assert text_row_encoder(["a", "b"])(["1", "2"]) == to_ion_line({"a": "1", "b": "2"})


async def test_csv_to_ion_streams_in_bounded_memory(run_task, make_ctx):
    """~6 MB of CSV converts while Python allocates well under 2 MB at peak: rows stream one by one."""
    data = "id,name,amount,day\n" + "".join(f"{i},name-{i},{i * 1.5},2024-01-{i % 28 + 1:02d}\n"
                                            for i in range(150_000))
    uri = seed(make_ctx, data)
    del data
    tracemalloc.start()
    try:
        out, ctx = await run_task(serdes_csv.CsvToIon, {"from": uri})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ctx.metrics == [("counter", "records", 150_000, {})]
    assert peak < 2 * 1024 * 1024, peak
    with ctx.storage.open_read(out["uri"]) as f:
        assert sum(1 for _ in f) == 150_000


#### IonToCsv ###############################################################################################

ION_TYPED = (
    '{s:"a,b",i:2,f:3.2e0,d:1.50,day:2024-01-02T,at:2021-05-05T10:21:12.123Z,'
    'zoned:2021-05-05T12:21:12+02:00,local:LocalDateTime::"2021-05-05T12:21:12",b:true,n:null,l:[1,"x"]}\n'
    '{s:"q\\"t",i:3,f:1.0e20,d:2.,day:2024-01-03T,at:2021-05-05T00:00:01Z,'
    'zoned:2021-05-05T12:21:12+02:00,local:LocalDateTime::"2021-05-05T12:21:12",b:false,n:null,l:[]}\n'
)


async def test_ion_to_csv_formats_values_like_kestra(run_task, make_ctx):
    uri = seed(make_ctx, ION_TYPED, "rows.ion")
    out, ctx = await run_task(serdes_csv.IonToCsv, {"from": uri, "timeZoneId": "Europe/Lisbon"})
    assert out["uri"].endswith(".csv")
    assert ctx.storage.read_text(out["uri"]) == (
        "s,i,f,d,day,at,zoned,local,b,n,l\n"
        '"a,b",2,3.2,1.50,2024-01-02,2021-05-05T10:21:12.123Z,2021-05-05T11:21:12.000+01:00,'
        "2021-05-05T12:21:12.000Z,true,,\"[1, x]\"\n"
        '"q""t",3,1.0E20,2,2024-01-03,2021-05-05T00:00:01.000Z,2021-05-05T11:21:12.000+01:00,'
        "2021-05-05T12:21:12.000Z,false,,[]\n")
    assert ctx.metrics == [("counter", "records", 2, {})]
    out, ctx = await run_task(serdes_csv.IonToCsv, {
        "from": uri, "header": False, "fieldSeparator": ";", "alwaysDelimitText": True, "lineDelimiter": "\r\n",
        "dateFormat": "dd/MM/yyyy", "dateTimeFormat": "yyyy-MM-dd HH:mm"})
    first = ctx.storage.read_text(out["uri"]).split("\r\n")[0]
    assert first.startswith('"a,b";"2";"3.2";"1.50";"02/01/2024";"2021-05-05 10:21";')


async def test_ion_to_csv_lists_and_errors(run_task, make_ctx):
    uri = seed(make_ctx, '["a",1]\n["b",2]\n', "list.ion")
    out, ctx = await run_task(serdes_csv.IonToCsv, {"from": uri, "header": False})
    assert ctx.storage.read_text(out["uri"]) == "a,1\nb,2\n"
    with pytest.raises(TaskFailed, match="Invalid data of type List with header"):
        await run_task(serdes_csv.IonToCsv, {"from": uri})
    bad = seed(make_ctx, "{a: [1, 2\n", "bad.ion")
    with pytest.raises(TaskFailed, match="Invalid Ion content"):
        await run_task(serdes_csv.IonToCsv, {"from": bad})
    with pytest.raises(TaskFailed, match="Unknown pattern letter"):
        await run_task(serdes_csv.IonToCsv, {"from": uri, "dateFormat": "bogus"})


async def test_csv_round_trip(run_task, make_ctx):
    text = 'id,name\n1,"a ""b"", c"\n2,\n'
    out, ctx = await run_task(serdes_csv.CsvToIon, {"from": seed(make_ctx, text)})
    back, ctx = await run_task(serdes_csv.IonToCsv, {"from": out["uri"]})
    assert ctx.storage.read_text(back["uri"]) == text


#### JSON ###################################################################################################

async def test_json_to_ion_lines_and_array(run_task, make_ctx):
    uri = seed(make_ctx, '{"a": 1, "b": [true, null, 1.5]},\n\n  {"a": "x", "nested": {"k": "é"}}\n', "d.jsonl")
    out, ctx = await run_task(serdes_json.JsonToIon, {"from": uri})
    assert ctx.storage.read_text(out["uri"]) == '{a:1,b:[true,null,1.5e+0]}\n{a:"x",nested:{k:"é"}}\n'
    assert ctx.metrics == [("counter", "records", 2, {})]
    arr = seed(make_ctx, '[{"a": 1},\n {"a": 2}, 3]', "d.json")
    out, ctx = await run_task(serdes_json.JsonToIon, {"from": arr, "newLine": False})
    assert ion_rows(ctx, out["uri"]) == [{"a": 1}, {"a": 2}, 3]
    with pytest.raises(TaskFailed, match="Invalid JSON at line 1"):
        await run_task(serdes_json.JsonToIon, {"from": arr})
    deep = seed(make_ctx, "[" * 100_000 + "]" * 100_000, "deep.json")
    with pytest.raises(TaskFailed, match="nests values too deeply"):
        await run_task(serdes_json.JsonToIon, {"from": deep, "newLine": False})


async def test_ion_to_json_lines_and_array(run_task, make_ctx):
    uri = seed(make_ctx, ION_TYPED, "rows.ion")
    out, ctx = await run_task(serdes_json.IonToJson, {"from": uri, "timeZoneId": "UTC"})
    assert out["uri"].endswith(".jsonl")
    lines = ctx.storage.read_text(out["uri"]).splitlines()
    assert json.loads(lines[0]) == {
        "s": "a,b", "i": 2, "f": 3.2, "d": 1.5, "day": "2024-01-02", "at": "2021-05-05T10:21:12.123Z",
        "zoned": "2021-05-05T10:21:12+00:00", "local": "2021-05-05T12:21:12", "b": True, "n": None,
        "l": [1, "x"]}
    out, ctx = await run_task(serdes_json.IonToJson, {"from": uri, "newLine": False})
    assert out["uri"].endswith(".json")
    assert [r["s"] for r in json.loads(ctx.storage.read_text(out["uri"]))] == ["a,b", 'q"t']
    assert ctx.metrics == [("counter", "records", 2, {})]
    empty = seed(make_ctx, "", "empty.ion")
    out, ctx = await run_task(serdes_json.IonToJson, {"from": empty, "newLine": False})
    assert ctx.storage.read_text(out["uri"]) == "[]"


#### Excel ##################################################################################################

async def test_excel_round_trip_with_sheets(run_task, make_ctx):
    pytest.importorskip("openpyxl")
    people = seed(make_ctx, '{name:"Ann",age:31,joined:2024-01-02T,score:1.5}\n'
                            '{name:"Bob",age:42,joined:2023-05-06T,score:null}\n', "people.ion")
    totals = seed(make_ctx, '{total:"Formula:SUM(1,2)"}\n', "totals.ion")
    out, ctx = await run_task(excel.IonToExcel, {"from": {"People": people, "Totals": totals}})
    assert out["size"] == 3 and out["uri"].endswith(".xlsx")
    assert ctx.metrics == [("counter", "records", 2, {}), ("counter", "records", 1, {})]
    back, ctx = await run_task(excel.ExcelToIon, {"from": out["uri"], "sheetsTitle": ["People"]})
    assert list(back["uris"]) == ["People"] and back["size"] == 2
    assert ion_rows(ctx, back["uris"]["People"]) == [
        {"name": "Ann", "age": 31, "joined": "2024-01-02T00:00:00Z", "score": 1.5},
        {"name": "Bob", "age": 42, "joined": "2023-05-06T00:00:00Z", "score": None}]
    assert ctx.metrics == [("counter", "sheets", 2, {})]
    serial, ctx = await run_task(excel.ExcelToIon, {"from": out["uri"], "header": False, "skipRows": 1,
                                                    "dateTimeRender": "SERIAL_NUMBER"})
    assert ion_rows(ctx, serial["uris"]["People"])[0] == ["Ann", 31, 45293.0, 1.5]


async def test_excel_errors(run_task, make_ctx):
    pytest.importorskip("openpyxl")
    uri = seed(make_ctx, "not a workbook", "x.xlsx")
    with pytest.raises(TaskFailed, match="Unable to read the Excel file"):
        await run_task(excel.ExcelToIon, {"from": uri})
    with pytest.raises(TaskFailed, match="'from' must be a URI or a map"):
        await run_task(excel.IonToExcel, {"from": []})


def test_excel_without_openpyxl_names_the_extra(tmp_path):
    script = """
import sys, trio
sys.modules["openpyxl"] = None        # as if the 'serdes' extra were not installed
from falconet.plugins.serdes.excel import ExcelToIon
from falconet.sdk import TaskFailed
async def main():
    try:
        await ExcelToIon().run(None)
    except TaskFailed as exc:
        print(exc)
trio.run(main)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "needs the 'openpyxl' library, the 'serdes' extra: pip install 'falconet[serdes]'" in out.stdout


#### Avro and Parquet ####################################################################################

SCHEMA = json.dumps({
    "type": "record", "name": "Sale", "namespace": "company.sales",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "label", "type": "string", "aliases": ["name"]},
        {"name": "active", "type": "boolean"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "ratio", "type": ["null", "double"]},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ]})
SALES = ('{id:"1",name:"first",active:"yes",amount:"12,345",ratio:"n/a",day:"2024-01-02",'
         'at:"2024-01-02T10:00:00Z",kind:"A",tags:["x"]}\n'
         '["2","second","0","7","0,5","2024-01-03","1704276000000","B",[]]\n')
SALES_ROWS = [
    {"id": 1, "label": "first", "active": True, "amount": 12.34, "ratio": None, "day": "2024-01-02T00:00:00Z",
     "at": "2024-01-02T10:00:00Z", "kind": "A", "tags": ["x"]},
    {"id": 2, "label": "second", "active": False, "amount": 7, "ratio": 0.5, "day": "2024-01-03T00:00:00Z",
     "at": "2024-01-03T10:00:00Z", "kind": "B", "tags": []},
]


async def test_avro_round_trip_converts_strings_like_kestra(run_task, make_ctx):
    pytest.importorskip("fastavro")
    from falconet.plugins.serdes import avro

    uri = seed(make_ctx, SALES, "sales.ion")
    out, ctx = await run_task(avro.IonToAvro, {"from": uri, "schema": SCHEMA, "decimalSeparator": ","})
    assert out["uri"].endswith(".avro") and ctx.metrics == [("counter", "records", 2, {})]
    back, ctx = await run_task(avro.AvroToIon, {"from": out["uri"]})
    assert ion_rows(ctx, back["uri"]) == SALES_ROWS
    assert ctx.metrics == [("counter", "records", 2, {})]


async def test_avro_conversion_errors(run_task, make_ctx):
    pytest.importorskip("fastavro")
    from falconet.plugins.serdes import avro

    uri = seed(make_ctx, '{id:"x"}\n', "bad.ion")
    with pytest.raises(TaskFailed, match="Field 'id': Invalid value 'x'"):
        await run_task(avro.IonToAvro, {"from": uri, "schema": SCHEMA})
    with pytest.raises(TaskFailed, match="Invalid Avro schema"):
        await run_task(avro.IonToAvro, {"from": uri, "schema": '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "nope"}]}'})
    deep = '{"type": "record", "name": "R", "fields": [{"name": "a", "type": ' + "[" * 50_000 + "]" * 50_000 + "}]}"
    with pytest.raises(TaskFailed, match="Invalid Avro schema"):
        await run_task(avro.IonToAvro, {"from": uri, "schema": deep})
    extra = seed(make_ctx, '{a:"1",b:"2"}\n', "extra.ion")
    strict = json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})
    out, ctx = await run_task(avro.IonToAvro, {"from": extra, "schema": strict})
    assert ctx.metrics == [("counter", "records", 1, {})]
    with pytest.raises(TaskFailed, match="Row has 2 fields"):
        await run_task(avro.IonToAvro, {"from": extra, "schema": strict, "strictSchema": True})
    with pytest.raises(TaskFailed, match="Unable to read the Avro file"):
        await run_task(avro.AvroToIon, {"from": seed(make_ctx, "not avro", "x.avro")})


async def test_parquet_round_trip(run_task, make_ctx):
    pytest.importorskip("pyarrow")
    from falconet.plugins.serdes import parquet

    uri = seed(make_ctx, SALES, "sales.ion")
    out, ctx = await run_task(parquet.IonToParquet, {"from": uri, "schema": SCHEMA, "decimalSeparator": ",",
                                                     "compressionCodec": "SNAPPY", "version": "V1"})
    assert out["uri"].endswith(".parquet") and ctx.metrics == [("counter", "records", 2, {})]
    back, ctx = await run_task(parquet.ParquetToIon, {"from": out["uri"]})
    assert ion_rows(ctx, back["uri"]) == SALES_ROWS
    with pytest.raises(TaskFailed, match="Unable to read the Parquet file"):
        await run_task(parquet.ParquetToIon, {"from": seed(make_ctx, "not parquet", "x.parquet")})
    union = json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": ["int", "string"]}]})
    with pytest.raises(TaskFailed, match="Parquet takes only null plus one type"):
        await run_task(parquet.IonToParquet, {"from": uri, "schema": union})


async def test_parquet_writes_row_groups_of_the_given_size(run_task, make_ctx):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from falconet.plugins.serdes import parquet

    uri = seed(make_ctx, "".join(f'{{id:{i},label:"row {i}"}}\n' for i in range(25_000)), "many.ion")
    schema = json.dumps({"type": "record", "name": "R", "fields": [{"name": "id", "type": "long"},
                                                                   {"name": "label", "type": "string"}]})
    out, ctx = await run_task(parquet.IonToParquet, {"from": uri, "schema": schema, "rowGroupSize": 1})
    with ctx.storage.open_read(out["uri"]) as f:
        meta = pq.ParquetFile(f).metadata
        assert (meta.num_rows, meta.num_row_groups) == (25_000, 3)
    assert pa is not None


@pytest.mark.parametrize("module, cls, library", [("avro", "AvroToIon", "fastavro"),
                                                  ("parquet", "ParquetToIon", "pyarrow")])
def test_avro_and_parquet_without_their_library_name_the_extra(module, cls, library):
    script = f"""
import sys, trio
sys.modules["{library}"] = None
from falconet.plugins.serdes.{module} import {cls}
from falconet.sdk import TaskFailed
async def main():
    try:
        await {cls}().run(None)
    except TaskFailed as exc:
        print(exc)
trio.run(main)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"needs the '{library}' library, the 'serdes' extra: pip install 'falconet[serdes]'" in out.stdout


def test_without_the_ion_extra_csv_converts_and_ion_readers_name_the_extra(tmp_path):
    """CsvToIon writes Ion text itself (no amazon.ion); a converter reading Ion fails with the install hint."""
    tests_dir = Path(__file__).resolve().parents[1]
    script = f"""
import sys, trio
from pathlib import Path
sys.modules["amazon"] = None          # as if the 'ion' extra were not installed
sys.path.insert(0, {str(tests_dir)!r})
from plugins.conftest import TestRunContext
from falconet.plugins.serdes import csv
from falconet.sdk import TaskFailed

async def main():
    base = Path({str(tmp_path)!r})
    seed = TestRunContext(csv.CsvToIon, {{}}, base=base)
    uri = seed.storage.put_bytes(b"a,b\\n1,2\\n", "/company/team/flow/executions/e/tasks/t/r/in.csv")
    ctx = TestRunContext(csv.CsvToIon, {{"from": uri}}, base=base)
    out = await csv.CsvToIon().run(ctx)
    print(ctx.storage.read_text(out["uri"]).strip())
    try:
        await csv.IonToCsv().run(TestRunContext(csv.IonToCsv, {{"from": out["uri"]}}, base=base))
    except TaskFailed as exc:
        print(exc)
trio.run(main)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()[:2]
    assert first == '{a:"1",b:"2"}'
    assert "pip install 'falconet[ion]'" in second


async def test_ion_to_csv_line_delimiter_is_one_of_kestras(run_task, make_ctx):
    uri = seed(make_ctx, '{a:1}\n', "one.ion")
    with pytest.raises(TaskFailed, match="Invalid lineDelimiter"):
        await run_task(serdes_csv.IonToCsv, {"from": uri, "lineDelimiter": "||"})
    out, ctx = await run_task(serdes_csv.IonToCsv, {"from": uri, "lineDelimiter": "\r"})
    with ctx.storage.open_read(out["uri"]) as f:
        assert f.read() == b"a\r1\r"


async def test_a_cancelled_conversion_stops_its_worker(make_ctx):
    """Kill/timeout: the worker thread sees the stop flag within CHECK_EVERY rows and stops writing."""
    import trio

    total = 400_000
    uri = seed(make_ctx, "a,b\n" + "1,2\n" * total)
    ctx = make_ctx(serdes_csv.CsvToIon, {"from": uri})
    limiter = trio.to_thread.current_default_thread_limiter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serdes_csv.CsvToIon().run, ctx)
        while not ctx.temp_dirs or not (ctx.temp_dirs[0] / "t1.ion").exists() \
                or (ctx.temp_dirs[0] / "t1.ion").stat().st_size == 0:
            await trio.sleep(0.001)           # the worker has started writing
        nursery.cancel_scope.cancel()
    for _ in range(2000):                     # the abandoned thread holds its token until it returns
        if limiter.borrowed_tokens == 0:
            break
        await trio.sleep(0.005)
    assert limiter.borrowed_tokens == 0
    rows = (ctx.temp_dirs[0] / "t1.ion").read_text().count("\n")
    assert 0 < rows < total, rows
