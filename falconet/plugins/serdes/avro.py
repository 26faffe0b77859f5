"""``io.kestra.plugin.serdes.avro.*``: Ion rows ↔ Avro data files, with ``fastavro`` (the optional
``serdes`` extra, imported when a task runs; without it the task fails naming the extra).

``IonToAvro`` converts each Ion row (a struct, or a list matched to the fields in order) to a record of
the Avro ``schema`` with :class:`AvroConverter` — Kestra's ``AvroConverter``: strings become the field's
type (``trueValues``/``falseValues``/``nullValues``, ``decimalSeparator``, dates parsed with
``dateFormat``/``timeFormat``/``datetimeFormat``), a union takes the first branch the value converts to, a
field missing from the row may be found under one of its ``aliases``; ``strictSchema`` rejects rows with
more fields than the schema. ``AvroToIon`` streams the records of an Avro file into Ion rows. Both write
or read block by block: memory does not grow with the file. ``parquet.IonToParquet`` uses the same
converter.
"""
from __future__ import annotations

import datetime as _dt
import re
import threading
import uuid
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from falconet.sdk import (
    BOOLEAN, LIST, STRING, Example, ExpressionError, Prop, register, RunContext, RunnableTask, TaskFailed,
)
from falconet.runtime.expr.dates import parse_with_format, zone
from falconet.plugins.serdes.common import (
    checked, convert, download_example, missing_library, one_char, output_path, typed_ion_rows, write_ion_file,
)
from falconet.plugins.serdes.csv import FROM, RECORDS, URI_OUTPUT

DATE_FORMAT = "yyyy-MM-dd[XXX]"
TIME_FORMAT = "HH:mm[:ss][.SSSSSS][XXX]"
DATETIME_FORMAT = "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]"
NULL_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "1.#IND", "1.#QNAN", "NA", "n/a",
               "nan", "null")

#: the properties of Kestra's ``AbstractAvroConverter`` (IonToAvro, IonToParquet)
CONVERTER_PROPS = {
    "from": FROM,
    "schema": Prop(STRING, required=True, description="The avro schema associated to the data (JSON)."),
    "trueValues": Prop(LIST, default=["t", "true", "enabled", "1", "on", "yes"],
                       description="Values to consider as True."),
    "falseValues": Prop(LIST, default=["f", "false", "disabled", "0", "off", "no", ""],
                        description="Values to consider as False."),
    "nullValues": Prop(LIST, default=list(NULL_VALUES), description="Values to consider as null."),
    "dateFormat": Prop(STRING, default=DATE_FORMAT, description="Format to use when parsing date."),
    "timeFormat": Prop(STRING, default=TIME_FORMAT, description="Format to use when parsing time."),
    "datetimeFormat": Prop(STRING, default=DATETIME_FORMAT, description="Format to use when parsing datetime."),
    "decimalSeparator": Prop(STRING, default=".", description=(
        "Character to recognize as decimal point (e.g. use ‘,’ for European data).")),
    "strictSchema": Prop(BOOLEAN, default=False, description=(
        "Whether to consider a field present in the data but not declared in the schema as an error.")),
    "inferAllFields": Prop(BOOLEAN, default=False, description="Try to infer all fields (null values)."),
    "timeZoneId": Prop(STRING, description=(
        "Timezone to use when no timezone can be parsed on the source (default: the server's zone).")),
}

_INT32 = (-(2 ** 31), 2 ** 31 - 1)
_ISO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?")
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


class CellError(Exception):
    """A value does not convert to its schema type."""


class AvroConverter:
    """Ion row values → values of an Avro schema (parsed JSON), as Kestra's ``AvroConverter`` does."""

    def __init__(self, *, true_values: list[str], false_values: list[str], null_values: list[str],
                 date_format: str, time_format: str, datetime_format: str, decimal_separator: str,
                 strict: bool, infer_all: bool, time_zone: _dt.tzinfo):
        self.true_values = {str(v).lower() for v in true_values}
        self.false_values = {str(v).lower() for v in false_values}
        self.null_values = {str(v).lower() for v in null_values}
        self.date_format, self.time_format, self.datetime_format = date_format, time_format, datetime_format
        self.decimal_separator, self.strict, self.infer_all, self.zone = decimal_separator, strict, infer_all, time_zone
        self.names: dict[str, Any] = {}

    @classmethod
    def from_props(cls, ctx: RunContext) -> "AvroConverter":
        try:
            tz = zone(ctx.prop("timeZoneId"))
        except ExpressionError as exc:
            raise TaskFailed(str(exc)) from exc
        return cls(true_values=ctx.prop("trueValues"), false_values=ctx.prop("falseValues"),
                   null_values=ctx.prop("nullValues"), date_format=str(ctx.prop("dateFormat")),
                   time_format=str(ctx.prop("timeFormat")), datetime_format=str(ctx.prop("datetimeFormat")),
                   decimal_separator=one_char(ctx.prop("decimalSeparator"), "decimalSeparator"),
                   strict=bool(ctx.prop("strictSchema")), infer_all=bool(ctx.prop("inferAllFields")), time_zone=tz)

    # -- names ------------------------------------------------------------------------------------------
    def register_names(self, schema: Any, namespace: str = "") -> None:
        """Remember the named types (records, enums, fixed) of ``schema`` so references resolve."""
        if isinstance(schema, list):
            for branch in schema:
                self.register_names(branch, namespace)
            return
        if not isinstance(schema, dict):
            return
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed") and "name" in schema:
            name = str(schema["name"])
            if "." in name:
                namespace = name.rsplit(".", 1)[0]
            else:
                namespace = str(schema.get("namespace", namespace))
            self.names[name] = schema
            self.names[f"{namespace}.{name}" if namespace and "." not in name else name] = schema
            for field in schema.get("fields", ()):
                self.register_names(field.get("type"), namespace)
        elif isinstance(kind, (dict, list)):
            self.register_names(kind, namespace)
        for key in ("items", "values"):
            if key in schema:
                self.register_names(schema[key], namespace)

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema in self.names:
            return self.names[schema]
        if isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)) and not schema.get("logicalType"):
            return self.resolve(schema["type"])
        return schema

    # -- rows -------------------------------------------------------------------------------------------
    def row(self, schema: dict[str, Any], row: Any) -> dict[str, Any]:
        """One Ion row (struct, or list in field order) as a record of ``schema``."""
        fields = schema.get("fields", [])
        if isinstance(row, list):
            if self.strict and len(fields) < len(row):
                raise TaskFailed(f"Row has {len(row)} values but the schema has {len(fields)} fields: "
                                 f"{_short(row)}")
            row = {f["name"]: (row[i] if i < len(row) else None) for i, f in enumerate(fields)}
        elif not isinstance(row, dict):
            raise TaskFailed(f"Unable to convert row of type: {type(row).__name__}")
        try:
            return self.record(schema, row)
        except CellError as exc:
            raise TaskFailed(f"{exc} with data [{_short(row)}]") from None

    def record(self, schema: dict[str, Any], data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise CellError(f"Invalid value for record '{schema.get('name')}': {_short(data)}")
        out = {}
        for field in schema.get("fields", []):
            value = data.get(field["name"])
            if value is None:
                value = next((data[a] for a in field.get("aliases", ()) if data.get(a) is not None), None)
            try:
                out[field["name"]] = self.value(field["type"], value)
            except CellError as exc:
                raise CellError(f"Field '{field['name']}': {exc}") from None
        if self.strict and len(schema.get("fields", [])) < len(data):
            raise CellError(f"Row has {len(data)} fields but the schema declares "
                            f"{[f['name'] for f in schema.get('fields', [])]}")
        return out

    def value(self, schema: Any, data: Any) -> Any:
        schema = self.resolve(schema)
        if self.infer_all and isinstance(data, str) and data.lower() in self.null_values:
            return None
        if isinstance(schema, list):
            for branch in schema:
                try:
                    return self.value(branch, data)
                except CellError:
                    continue
            raise CellError(f"Invalid data for union {_short(schema)}: {_short(data)}")
        kind = schema.get("type") if isinstance(schema, dict) else schema
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        try:
            if logical is not None and logical in _LOGICAL:
                return _LOGICAL[logical](self, schema, data)
            if kind in ("record", "error"):
                return self.record(schema, data)
            if kind == "array":
                if not isinstance(data, list):
                    raise CellError(f"expected a list, got {_short(data)}")
                return [self.value(schema["items"], v) for v in data]
            if kind == "map":
                if not isinstance(data, dict):
                    raise CellError(f"expected a map, got {_short(data)}")
                return {str(k): self.value(schema["values"], v) for k, v in data.items()}
            if kind == "enum":
                text = _string(data)
                if text not in schema.get("symbols", ()):
                    raise CellError(f"Invalid enum value, found {text}, expected {schema.get('symbols')}")
                return text
            if kind == "fixed":
                raw = _string(data).encode("utf-8")
                if len(raw) != schema.get("size"):
                    raise CellError(f"Invalid length for fixed size, found {len(raw)}, expected {schema.get('size')}")
                return raw
            if kind in _PRIMITIVES:
                return _PRIMITIVES[kind](self, data)
        except CellError:
            raise
        except (ValueError, TypeError, ArithmeticError, ExpressionError, KeyError) as exc:
            raise CellError(f"Invalid value {_short(data)} for type {_short(schema)}: {exc}") from None
        raise CellError(f"Invalid schema \"{kind}\"")

    # -- primitives -------------------------------------------------------------------------------------
    def null(self, data: Any) -> None:
        if data is None or (isinstance(data, str) and data.lower() in self.null_values):
            return None
        raise CellError(f"Unknown type for null values, found {type(data).__name__}")

    def boolean(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.lower() in self.true_values:
            return True
        if isinstance(data, str) and data.lower() in self.false_values:
            return False
        if isinstance(data, int) and data in (0, 1):
            return data == 1
        raise CellError(f"Invalid boolean {_short(data)}")

    def integer(self, data: Any, bounds: tuple[int, int] = _INT32) -> int:
        if isinstance(data, str):
            if data != data.strip():     # Java's Integer.valueOf refuses blanks
                raise CellError(f"Invalid integer {_short(data)}")
            value = int(data)
        elif isinstance(data, int) and not isinstance(data, bool):
            value = data
        else:
            raise CellError(f"Invalid integer {_short(data)}")
        if not bounds[0] <= value <= bounds[1]:
            raise CellError(f"Value out of range: {value}")
        return value

    def number(self, data: Any) -> float:
        if isinstance(data, str):
            return float(self.decimal_text(data))
        if isinstance(data, (int, float, Decimal)) and not isinstance(data, bool):
            return float(data)
        raise CellError(f"Invalid number {_short(data)}")

    def decimal_text(self, text: str) -> str:
        return text if self.decimal_separator == "." else text.replace(self.decimal_separator, ".", 1)

    def decimal(self, schema: dict[str, Any], data: Any) -> Decimal:
        scale, precision = int(schema.get("scale", 0)), int(schema.get("precision", 0))
        if isinstance(data, str):
            value = Decimal(self.decimal_text(data))
        elif isinstance(data, int) and not isinstance(data, bool):
            value = Decimal(data)
        elif isinstance(data, (float, Decimal)):
            value = Decimal(str(data))
        else:
            raise CellError(f"Invalid decimal {_short(data)}")
        try:
            return value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)
        except InvalidOperation:
            raise CellError(f"Invalid decimal {_short(data)} for precision {precision}") from None

    # -- dates ------------------------------------------------------------------------------------------
    def date(self, schema: Any, data: Any) -> _dt.date:
        if isinstance(data, str):
            if self.date_format == DATE_FORMAT:
                match = _ISO_DATE.fullmatch(data)
                if match is None:
                    raise CellError(f"Text '{data}' could not be parsed as a date")
                return _dt.date.fromisoformat(match.group(1))
            return parse_with_format(data, self.date_format, self.zone).date()
        if isinstance(data, _dt.datetime):
            return data.astimezone(self.zone).date() if data.tzinfo else data.date()
        if isinstance(data, _dt.date):
            return data
        raise CellError(f"Invalid date {_short(data)}")

    def time(self, schema: Any, data: Any) -> _dt.time:
        if isinstance(data, str):
            if self.time_format == TIME_FORMAT:
                return _dt.time.fromisoformat(data).replace(tzinfo=None)
            return parse_with_format(data, self.time_format, self.zone).time()
        if isinstance(data, _dt.time):
            return data.replace(tzinfo=None)
        raise CellError(f"Invalid time {_short(data)}")

    def timestamp(self, schema: Any, data: Any, unit: int = 1000) -> _dt.datetime:
        if isinstance(data, str):
            try:
                return _epoch(int(data), unit)
            except ValueError:
                pass
            if self.datetime_format == DATETIME_FORMAT:
                moment = _dt.datetime.fromisoformat(data)
            else:
                moment = parse_with_format(data, self.datetime_format, self.zone)
            return moment if moment.tzinfo else moment.replace(tzinfo=self.zone)
        if isinstance(data, int) and not isinstance(data, bool):
            return _epoch(data, unit)
        if isinstance(data, _dt.datetime):
            return data if data.tzinfo else data.replace(tzinfo=self.zone)
        if isinstance(data, _dt.date):
            return _dt.datetime(data.year, data.month, data.day, tzinfo=_dt.timezone.utc)
        raise CellError(f"Invalid timestamp {_short(data)}")

    def local_timestamp(self, schema: Any, data: Any, unit: int = 1000) -> _dt.datetime:
        return self.timestamp(schema, data, unit).astimezone(self.zone).replace(tzinfo=None)


def _epoch(value: int, unit: int) -> _dt.datetime:
    return _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(microseconds=value * (1_000_000 // unit))


def _string(data: Any) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, _dt.datetime):
        return data.isoformat()
    return str(data)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 250 else text[:250] + " ..."


_PRIMITIVES: dict[str, Callable[[AvroConverter, Any], Any]] = {
    "null": AvroConverter.null,
    "boolean": AvroConverter.boolean,
    "int": AvroConverter.integer,
    "long": lambda c, d: c.integer(d, _INT64),
    "float": AvroConverter.number,
    "double": AvroConverter.number,
    "string": lambda c, d: _string(d),
    "bytes": lambda c, d: _string(d).encode("utf-8"),
}
_LOGICAL: dict[str, Callable[[AvroConverter, Any, Any], Any]] = {
    "decimal": AvroConverter.decimal,
    "uuid": lambda c, s, d: str(uuid.UUID(str(d))),
    "date": AvroConverter.date,
    "time-millis": AvroConverter.time,
    "time-micros": AvroConverter.time,
    "timestamp-millis": AvroConverter.timestamp,
    "timestamp-micros": lambda c, s, d: c.timestamp(s, d, 1_000_000),
    "local-timestamp-millis": AvroConverter.local_timestamp,
    "local-timestamp-micros": lambda c, s, d: c.local_timestamp(s, d, 1_000_000),
}


def parse_schema(text: Any, converter: AvroConverter) -> dict[str, Any]:
    """The ``schema`` property (Avro JSON) checked by fastavro: a record schema."""
    import json

    from fastavro import parse_schema as fastavro_parse
    from fastavro.schema import SchemaParseException, UnknownType

    try:
        schema = json.loads(text) if isinstance(text, str) else text
        fastavro_parse(schema)
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise TaskFailed("Invalid Avro schema: the schema must be a record")
        converter.register_names(schema)
    except (ValueError, SchemaParseException, UnknownType, TypeError, AttributeError, KeyError) as exc:
        raise TaskFailed(f"Invalid Avro schema: {exc}") from exc
    except RecursionError:
        raise TaskFailed("Invalid Avro schema: nested too deeply") from None
    return schema


def records(converter: AvroConverter, schema: dict[str, Any], source: IO[bytes],
            stop: threading.Event) -> Iterator[dict[str, Any]]:
    """The Ion rows of ``source`` as records of ``schema``."""
    for row in checked(typed_ion_rows(source), stop):
        yield converter.row(schema, row)


def _fastavro(type_name: str) -> Any:
    try:
        import fastavro
    except ImportError:
        raise missing_library(type_name, "fastavro") from None
    return fastavro


@register
class IonToAvro(RunnableTask):
    """Convert an Ion rows file to an Avro data file (see the module documentation)."""

    type = "io.kestra.plugin.serdes.avro.IonToAvro"
    aliases = ("io.kestra.plugin.serdes.avro.AvroWriter",)
    title = "Read a provided file containing ion serialized data and convert it to avro."
    examples = (
        Example("Convert a CSV file to the Avro format.",
                "id: divvy_tripdata\n"
                "namespace: company.team\n\n"
                "tasks:\n"
                "  - id: convert\n"
                "    type: io.kestra.plugin.serdes.csv.CsvToIon\n"
                "    from: \"{{ outputs.http_download.uri }}\"\n\n"
                "  - id: to_avro\n"
                "    type: io.kestra.plugin.serdes.avro.IonToAvro\n"
                "    from: \"{{ outputs.convert.uri }}\"\n"
                "    schema: |\n"
                "      {\n"
                "        \"type\": \"record\",\n"
                "        \"name\": \"Ride\",\n"
                "        \"fields\": [\n"
                "          {\"name\": \"ride_id\", \"type\": \"string\"},\n"
                "          {\"name\": \"started_at\",\n"
                "           \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}},\n"
                "          {\"name\": \"member\", \"type\": \"boolean\"},\n"
                "          {\"name\": \"distance\", \"type\": [\"null\", \"double\"]}\n"
                "        ]\n"
                "      }\n", full=True),
    )
    outputs = URI_OUTPUT
    metrics = RECORDS
    props = CONVERTER_PROPS

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        fastavro = _fastavro(self.type)
        converter = AvroConverter.from_props(ctx)
        schema = parse_schema(ctx.prop("schema"), converter)
        parsed = fastavro.parse_schema(schema)
        target = await output_path(ctx, ".avro")

        def work(source: IO[bytes], target: Path, stop: threading.Event) -> int:
            count = 0

            def counted() -> Iterator[dict[str, Any]]:
                nonlocal count
                for record in records(converter, schema, source, stop):
                    count += 1
                    yield record

            with open(target, "wb") as out:
                try:
                    fastavro.writer(out, parsed, counted())
                except (ValueError, TypeError, OverflowError) as exc:   # a value fastavro cannot encode
                    raise TaskFailed(f"Unable to write the Avro record {count}: {exc}") from exc
            return count

        await convert(ctx, ctx.prop("from"), target, work)
        return {"uri": await ctx.put_file(target)}


@register
class AvroToIon(RunnableTask):
    """Convert an Avro data file to an Ion rows file (see the module documentation)."""

    type = "io.kestra.plugin.serdes.avro.AvroToIon"
    aliases = ("io.kestra.plugin.serdes.avro.AvroReader",)
    title = "Read a provided avro file and convert it to ion serialized data file."
    examples = (
        download_example("Convert an Avro file to the Amazon Ion format.", "avro_to_ion", "avro/products.avro",
                         ("to_ion", "io.kestra.plugin.serdes.avro.AvroToIon")),
    )
    outputs = URI_OUTPUT
    metrics = RECORDS
    props = {"from": FROM}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        fastavro = _fastavro(self.type)
        target = await output_path(ctx, ".ion")

        def work(source: IO[bytes], target: Path, stop: threading.Event) -> int:
            try:
                reader = fastavro.reader(source)
            except (ValueError, TypeError, EOFError, fastavro.read.SchemaResolutionError) as exc:
                raise TaskFailed(f"Unable to read the Avro file: {exc}") from exc
            return write_ion_file(target, iter(reader), stop,
                                  (ValueError, EOFError, fastavro.read.SchemaResolutionError), "Avro")

        await convert(ctx, ctx.prop("from"), target, work)
        return {"uri": await ctx.put_file(target)}
