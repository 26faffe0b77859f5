"""``io.kestra.plugin.serdes.json.*``: JSON ↔ Ion rows.

With ``newLine`` (the default) both directions stream one row per line (JSON Lines) in constant memory.
``JsonToIon`` reads the first JSON value of each line and ignores what follows it (a trailing comma, as
Jackson does) and skips blank lines; without ``newLine`` the whole file is one JSON value (an array gives
one row per element), loaded in memory as Kestra documents. ``IonToJson`` without ``newLine`` writes one
JSON array, streamed element by element.
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import threading
from pathlib import Path
from typing import IO, Any

from falconet.sdk import (
    BOOLEAN, STRING, Example, ExpressionError, Prop, register, RunContext, RunnableTask, TaskFailed, to_ion_line,
)
from falconet.runtime.expr.dates import zone
from falconet.runtime.expr.output import to_json
from falconet.plugins.serdes.common import (
    check_charset, checked, convert, download_example, output_path, reading_charset, typed_ion_rows,
)
from falconet.plugins.serdes.csv import FROM, RECORDS, URI_OUTPUT

NEW_LINE = Prop(BOOLEAN, default=True, description=(
    "Is the file a JSON new line (JSON-NL) file, one value per line. If not, the whole file is loaded in "
    "memory."))
CHARSET = Prop(STRING, default="UTF-8", description="The name of a supported charset.")
_DECODER = json.JSONDecoder()


def _first_value(line: str, number: int) -> Any:
    try:
        return _DECODER.raw_decode(line.lstrip())[0]
    except json.JSONDecodeError as exc:
        raise TaskFailed(f"Invalid JSON at line {number}: {exc}") from exc


@register
class JsonToIon(RunnableTask):
    """Read a JSON (Lines) file and write it as an Ion rows file (see the module documentation)."""

    type = "io.kestra.plugin.serdes.json.JsonToIon"
    aliases = ("io.kestra.plugin.serdes.json.JsonReader",)
    title = "Read a JSON file and write it to an ION serialized data file."
    examples = (
        download_example("Convert a JSON file to the Amazon Ion format.", "json_to_ion", "json/products.json",
                         ("to_ion", "io.kestra.plugin.serdes.json.JsonToIon")),
        Example("Convert a file holding one JSON array (loaded in memory).",
                "from: \"{{ outputs.http_download.uri }}\"\n"
                "newLine: false\n"),
    )
    outputs = URI_OUTPUT
    metrics = RECORDS
    props = {"from": FROM, "charset": CHARSET, "newLine": NEW_LINE}

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        charset = reading_charset(check_charset(ctx.prop("charset")))
        new_line = bool(ctx.prop("newLine"))
        target = await output_path(ctx, ".ion")

        def work(source: IO[bytes], target: Path, stop: threading.Event) -> int:
            text = io.TextIOWrapper(source, encoding=charset)
            if new_line:
                rows: Any = (_first_value(line, n) for n, line in enumerate(text, 1) if line.strip())
            else:
                try:
                    document = json.load(text)
                except json.JSONDecodeError as exc:
                    raise TaskFailed(f"Invalid JSON: {exc}") from exc
                rows = document if isinstance(document, list) else [document]
            count = 0
            with open(target, "w", encoding="utf-8", newline="\n") as out:
                for row in checked(iter(rows), stop):
                    out.write(to_ion_line(row))
                    out.write("\n")
                    count += 1
            return count

        await convert(ctx, ctx.prop("from"), target, work)
        return {"uri": await ctx.put_file(target)}


def _in_zone(value: Any, tz: _dt.tzinfo) -> Any:
    """Aware datetimes at an offset other than UTC moved to ``tz`` and printed with their offset (Jackson
    writes a ``ZonedDateTime`` in the mapper's time zone); UTC instants stay (printed with ``Z``)."""
    if isinstance(value, dict):
        return {k: _in_zone(v, tz) for k, v in value.items()}
    if isinstance(value, list):
        return [_in_zone(v, tz) for v in value]
    if isinstance(value, _dt.datetime) and value.utcoffset():
        return value.astimezone(tz).isoformat()
    return value


@register
class IonToJson(RunnableTask):
    """Write an Ion rows file as JSON Lines or one JSON array (see the module documentation)."""

    type = "io.kestra.plugin.serdes.json.IonToJson"
    aliases = ("io.kestra.plugin.serdes.json.JsonWriter",)
    title = "Read an ion serialized data file and write it to a new line delimited json file."
    examples = (
        download_example("Download a CSV file and convert it to a JSON format.", "ion_to_json", "csv/products.csv",
                         ("convert", "io.kestra.plugin.serdes.csv.CsvToIon"),
                         ("to_json", "io.kestra.plugin.serdes.json.IonToJson")),
    )
    outputs = URI_OUTPUT
    metrics = RECORDS
    props = {
        "from": FROM, "newLine": NEW_LINE,
        "charset": Prop(STRING, default="UTF-8", description="The charset the Ion file is read with."),
        "timeZoneId": Prop(STRING, description=(
            "Timezone to use when no timezone can be parsed on the source (default: the server's zone).")),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        charset = check_charset(ctx.prop("charset"))
        new_line = bool(ctx.prop("newLine"))
        try:
            tz = zone(ctx.prop("timeZoneId"))
        except ExpressionError as exc:
            raise TaskFailed(str(exc)) from exc
        target = await output_path(ctx, ".jsonl" if new_line else ".json")

        def work(source: IO[bytes], target: Path, stop: threading.Event) -> int:
            count = 0
            with open(target, "w", encoding="utf-8", newline="\n") as out:
                if not new_line:
                    out.write("[")
                for row in checked(typed_ion_rows(source, charset), stop):
                    try:
                        text = to_json(_in_zone(row, tz))
                    except ExpressionError as exc:
                        raise TaskFailed(str(exc)) from exc
                    if new_line:
                        out.write(text + "\n")
                    else:
                        out.write(("," if count else "") + text)
                    count += 1
                if not new_line:
                    out.write("]")
            return count

        await convert(ctx, ctx.prop("from"), target, work)
        return {"uri": await ctx.put_file(target)}
