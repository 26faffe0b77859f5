"""The serdes types in ``/api/v1/plugins`` (listing, documentation with examples) and in flow validation."""
from __future__ import annotations

from typing import Any

SERDES = {"io.kestra.plugin.serdes.csv.CsvToIon", "io.kestra.plugin.serdes.csv.IonToCsv",
          "io.kestra.plugin.serdes.json.JsonToIon", "io.kestra.plugin.serdes.json.IonToJson",
          "io.kestra.plugin.serdes.excel.ExcelToIon", "io.kestra.plugin.serdes.excel.IonToExcel",
          "io.kestra.plugin.serdes.avro.IonToAvro", "io.kestra.plugin.serdes.avro.AvroToIon",
          "io.kestra.plugin.serdes.parquet.IonToParquet", "io.kestra.plugin.serdes.parquet.ParquetToIon"}


async def test_serdes_group_lists_every_type(api: Any) -> None:
    status, groups = await api.call("GET", "/api/v1/plugins")
    assert status == 200
    serdes = next(g for g in groups if g["group"] == "io.kestra.plugin.serdes")
    assert set(serdes["tasks"]) == SERDES
    assert {"io.kestra.plugin.serdes.csv.CsvReader", "io.kestra.plugin.serdes.json.JsonWriter"} <= set(serdes["aliases"])


async def test_serdes_documentation_has_kestra_defaults_outputs_and_examples(api: Any) -> None:
    status, body = await api.call("GET", "/api/v1/plugins/io.kestra.plugin.serdes.csv.CsvToIon")
    assert status == 200
    props = body["schema"]["properties"]
    assert props["required"] == ["from"] or "from" in props["required"]
    defaults = {name: p.get("default") for name, p in props["properties"].items()}
    assert {k: defaults[k] for k in ("header", "fieldSeparator", "textDelimiter", "skipEmptyRows",
                                     "errorOnDifferentFieldCount", "skipRows", "charset")} == {
        "header": True, "fieldSeparator": ",", "textDelimiter": '"', "skipEmptyRows": False,
        "errorOnDifferentFieldCount": False, "skipRows": 0, "charset": "UTF-8"}
    assert "uri" in body["schema"]["outputs"]["properties"]
    assert "type: io.kestra.plugin.serdes.csv.CsvToIon" in body["markdown"]
    assert "records" in body["markdown"]
    status, body = await api.call("GET", "/api/v1/plugins/io.kestra.plugin.serdes.csv.IonToCsv")
    assert body["schema"]["properties"]["properties"]["dateTimeFormat"]["default"] == "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]"


async def test_flow_validation_checks_serdes_properties(api: Any) -> None:
    flow = ("id: v\nnamespace: company.team\ntasks:\n  - id: c\n    type: io.kestra.plugin.serdes.csv.CsvToIon\n"
            "    from: kestra:///x.csv\n    skipRows: many\n")
    status, body = await api.call("POST", "/api/v1/flows/validate", data=flow, headers={"Content-Type": "application/x-yaml"})
    assert status == 200 and "skipRows" in (body[0].get("constraints") or ""), body
    missing = "id: v\nnamespace: company.team\ntasks:\n  - id: c\n    type: io.kestra.plugin.serdes.json.JsonToIon\n"
    status, body = await api.call("POST", "/api/v1/flows/validate", data=missing, headers={"Content-Type": "application/x-yaml"})
    assert status == 200 and "from" in (body[0].get("constraints") or ""), body
