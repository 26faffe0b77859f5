"""``io.kestra.plugin.serdes.parquet.*``: Ion rows ↔ Parquet files, with ``pyarrow`` (the optional
``serdes`` extra, imported when a task runs; without it the task fails naming the extra).

``IonToParquet`` takes an Avro ``schema`` as Kestra's does (its rows convert with the Avro converter of
:mod:`.avro`, its types map to Arrow types: logical dates, times, timestamps and decimals included; a union
may only be ``null`` plus one type) and writes row groups of about ``rowGroupSize`` bytes: memory holds
one row group, not the file. ``ParquetToIon`` streams record batches into Ion rows.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, Any

from falconet.sdk import ENUM, INTEGER, Example, Prop, register, RunContext, RunnableTask, TaskFailed
from falconet.plugins.serdes.avro import CONVERTER_PROPS, AvroConverter, parse_schema, records
from falconet.plugins.serdes.common import (
    CHECK_EVERY, convert, download_example, missing_library, output_path, write_ion_file,
)
from falconet.plugins.serdes.csv import FROM, RECORDS, URI_OUTPUT

_BATCH = 10_000
_CODECS = ("UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD")


def _pyarrow(type_name: str) -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise missing_library(type_name, "pyarrow") from None
    return pyarrow


def arrow_type(pa: Any, converter: AvroConverter, schema: Any) -> tuple[Any, bool]:
    """The Arrow type of an Avro schema, and whether it is nullable."""
    schema = converter.resolve(schema)
    if isinstance(schema, list):
        branches = [b for b in schema if converter.resolve(b) != "null"]
        if len(branches) != 1:
            raise TaskFailed(f"Unsupported Avro union {schema}: Parquet takes only null plus one type")
        return arrow_type(pa, converter, branches[0])[0], True
    kind = schema.get("type") if isinstance(schema, dict) else schema
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    simple = {"null": pa.null(), "boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(),
              "float": pa.float32(), "double": pa.float64(), "string": pa.string(), "bytes": pa.binary(),
              "enum": pa.string()}
    logical_types = {"date": pa.date32(), "time-millis": pa.time32("ms"), "time-micros": pa.time64("us"),
                     "timestamp-millis": pa.timestamp("ms", tz="UTC"), "timestamp-micros": pa.timestamp("us", tz="UTC"),
                     "local-timestamp-millis": pa.timestamp("ms"), "local-timestamp-micros": pa.timestamp("us"),
                     "uuid": pa.string()}
    if logical == "decimal":
        return pa.decimal128(int(schema.get("precision", 38)), int(schema.get("scale", 0))), kind == "null"
    if logical in logical_types:
        return logical_types[logical], False
    if kind in simple:
        return simple[kind], kind == "null"
    if kind == "fixed":
        return pa.binary(int(schema["size"])), False
    if kind in ("record", "error"):
        return pa.struct([pa.field(f["name"], *arrow_type(pa, converter, f["type"]))
                          for f in schema.get("fields", [])]), False
    if kind == "array":
        return pa.list_(pa.field("element", *arrow_type(pa, converter, schema["items"]))), False
    if kind == "map":
        return pa.map_(pa.string(), arrow_type(pa, converter, schema["values"])[0]), False
    raise TaskFailed(f"Unsupported Avro type {schema!r}")


@register
class IonToParquet(RunnableTask):
    """Convert an Ion rows file to a Parquet file (see the module documentation)."""

    type = "io.kestra.plugin.serdes.parquet.IonToParquet"
    aliases = ("io.kestra.plugin.serdes.parquet.ParquetWriter",)
    title = "Read a provided file containing ion serialized data and convert it to parquet."
    examples = (
        Example("Convert Ion rows to a Parquet file with an Avro schema.",
                "from: \"{{ outputs.convert.uri }}\"\n"
                "compressionCodec: SNAPPY\n"
                "schema: |\n"
                "  {\n"
                "    \"type\": \"record\",\n"
                "    \"name\": \"Sale\",\n"
                "    \"fields\": [\n"
                "      {\"name\": \"id\", \"type\": \"long\"},\n"
                "      {\"name\": \"day\", \"type\": {\"type\": \"int\", \"logicalType\": \"date\"}},\n"
                "      {\"name\": \"amount\",\n"
                "       \"type\": {\"type\": \"bytes\", \"logicalType\": \"decimal\",\n"
                "                \"precision\": 10, \"scale\": 2}}\n"
                "    ]\n"
                "  }\n"),
    )
    outputs = URI_OUTPUT
    metrics = RECORDS
    props = {
        **CONVERTER_PROPS,
        "compressionCodec": Prop(ENUM, default="GZIP", values=_CODECS, description="The compression to used."),
        "version": Prop(ENUM, default="V2", values=("V1", "V2"), description="The Parquet format version."),
        "rowGroupSize": Prop(INTEGER, default=128 * 1024 * 1024, description="Target row group size (bytes)."),
        "pageSize": Prop(INTEGER, default=1024 * 1024, description="Target page size (bytes)."),
        "dictionaryPageSize": Prop(INTEGER, default=1024 * 1024, description="Max dictionary page size (bytes)."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        pa = _pyarrow(self.type)
        converter = AvroConverter.from_props(ctx)
        schema = parse_schema(ctx.prop("schema"), converter)
        arrow_schema = pa.schema([pa.field(f["name"], *arrow_type(pa, converter, f["type"]))
                                  for f in schema.get("fields", [])])
        codec = str(ctx.prop("compressionCodec"))
        v1 = ctx.prop("version") == "V1"
        sizes = {name: int(ctx.prop(name)) for name in ("rowGroupSize", "pageSize", "dictionaryPageSize")}
        if min(sizes.values()) <= 0:
            raise TaskFailed("rowGroupSize, pageSize and dictionaryPageSize must be positive")
        target = await output_path(ctx, ".parquet")

        def work(source: IO[bytes], target: Path, stop: threading.Event) -> int:
            import pyarrow.parquet as pq

            count, pending_bytes = 0, 0
            pending: list[Any] = []
            compression = codec.lower() if codec != "UNCOMPRESSED" else "none"
            with pq.ParquetWriter(str(target), arrow_schema, compression=compression,
                                  version="1.0" if v1 else "2.6", data_page_version="1.0" if v1 else "2.0",
                                  data_page_size=sizes["pageSize"],
                                  dictionary_pagesize_limit=sizes["dictionaryPageSize"]) as writer:
                def flush() -> None:
                    nonlocal pending, pending_bytes
                    if pending:
                        table = pa.concat_tables(pending)
                        writer.write_table(table, row_group_size=len(table))
                    pending, pending_bytes = [], 0

                batch: list[dict[str, Any]] = []
                for record in records(converter, schema, source, stop):
                    batch.append(record)
                    count += 1
                    if len(batch) >= _BATCH:
                        table = _table(pa, batch, arrow_schema, count)
                        pending.append(table)
                        pending_bytes += table.nbytes
                        batch = []
                        if pending_bytes >= sizes["rowGroupSize"]:
                            flush()
                if batch:
                    pending.append(_table(pa, batch, arrow_schema, count))
                flush()
            return count

        await convert(ctx, ctx.prop("from"), target, work)
        return {"uri": await ctx.put_file(target)}


def _table(pa: Any, rows: list[dict[str, Any]], schema: Any, count: int) -> Any:
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        raise TaskFailed(f"Unable to write the rows before row {count + 1}: {exc}") from exc


def _plain(value: Any) -> Any:
    """A pyarrow Python value for an Ion row: maps (lists of key/value tuples) become dicts."""
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return {str(k): _plain(v) for k, v in value}
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@register
class ParquetToIon(RunnableTask):
    """Convert a Parquet file to an Ion rows file (see the module documentation)."""

    type = "io.kestra.plugin.serdes.parquet.ParquetToIon"
    aliases = ("io.kestra.plugin.serdes.parquet.ParquetReader",)
    title = "Read a provided parquet file and convert it to ion serialized data file."
    examples = (
        download_example("Convert a Parquet file to the Amazon Ion format.",
                         "parquet_to_ion", "parquet/products.parquet",
                         ("to_ion", "io.kestra.plugin.serdes.parquet.ParquetToIon")),
    )
    outputs = URI_OUTPUT
    metrics = RECORDS
    props = {"from": FROM}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        pa = _pyarrow(self.type)
        target = await output_path(ctx, ".ion")

        def work(source: IO[bytes], target: Path, stop: threading.Event) -> int:
            import pyarrow.parquet as pq

            try:
                parquet = pq.ParquetFile(source)
            except (pa.ArrowException, OSError) as exc:
                raise TaskFailed(f"Unable to read the Parquet file: {exc}") from exc

            def rows() -> Any:
                for batch in parquet.iter_batches(batch_size=CHECK_EVERY):
                    for row in batch.to_pylist():
                        yield _plain(row)

            return write_ion_file(target, rows(), stop, (pa.ArrowException,), "Parquet")

        await convert(ctx, ctx.prop("from"), target, work)
        return {"uri": await ctx.put_file(target)}
