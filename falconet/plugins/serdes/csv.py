"""``io.kestra.plugin.serdes.csv.*``: CSV ↔ Ion rows, streamed row by row (constant memory).

``CsvToIon`` reads records with Python's ``csv`` module (RFC 4180 quoting, lenient like Kestra's FastCSV);
with ``header`` the first record names the fields of every row (a struct, missing fields null), else each
row is a list of strings. ``skipRows`` skips that many data records after the header (as Kestra 0.21 does).
An empty line is a record of one empty field unless ``skipEmptyRows``. ``IonToCsv`` writes structs (the
first one's keys as header) or lists; dates, times and timestamps are formatted with the Java patterns
``dateFormat``/``timeFormat``/``dateTimeFormat`` like Kestra's ``AbstractTextWriter``.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import re
import threading
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

from falconet.sdk import (
    BOOLEAN, INTEGER, STRING, Example, ExpressionError, Metric, Output, Prop, register, RunContext, RunnableTask,
    TaskFailed, text_row_encoder,
)
from falconet.runtime.expr.dates import format_datetime, zone
from falconet.runtime.expr.output import java_double
from falconet.plugins.core.storage import Stopped
from falconet.plugins.serdes.common import (
    CHECK_EVERY, check_charset, checked, convert, download_example, one_char, output_path, reading_charset,
    typed_ion_rows,
)

URI_OUTPUT = {"uri": Output("string", "URI of a temporary result file.")}
RECORDS = (Metric("records", "counter", "Number of rows converted.", unit="rows"),)
FROM = Prop(STRING, required=True, description="Source file URI.")


def _common_props(header: str) -> dict[str, Prop]:
    return {
        "from": FROM,
        "header": Prop(BOOLEAN, default=True, description=header),
        "fieldSeparator": Prop(STRING, default=",", description="The field separator character."),
        "textDelimiter": Prop(STRING, default='"', description="The text delimiter character."),
        "charset": Prop(STRING, default="UTF-8", description="The name of a supported charset."),
    }


@register
class CsvToIon(RunnableTask):
    """Read a CSV file and write it as an Ion rows file (see the module documentation)."""

    type = "io.kestra.plugin.serdes.csv.CsvToIon"
    aliases = ("io.kestra.plugin.serdes.csv.CsvReader",)
    title = "Read a csv file and write it to an ion serialized data file."
    examples = (
        download_example("Convert a CSV file to the Amazon Ion format.", "csv_to_ion", "csv/products.csv",
                         ("to_ion", "io.kestra.plugin.serdes.csv.CsvToIon")),
        Example("Read a semicolon-separated file without header, skipping empty lines.",
                "from: \"{{ outputs.http_download.uri }}\"\n"
                "fieldSeparator: \";\"\n"
                "header: false\n"
                "skipEmptyRows: true\n"),
    )
    outputs = URI_OUTPUT
    metrics = RECORDS
    props = {
        **_common_props("Specifies if the first line should be the header."),
        "skipEmptyRows": Prop(BOOLEAN, default=False, description="Specifies if empty rows should be skipped."),
        "errorOnDifferentFieldCount": Prop(BOOLEAN, default=False, description=(
            "Specifies if an exception should be thrown, if CSV data contains different field count.")),
        "skipRows": Prop(INTEGER, default=0, description="Number of lines to skip at the start of the file."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        header = bool(ctx.prop("header"))
        separator = one_char(ctx.prop("fieldSeparator"), "fieldSeparator")
        quote = one_char(ctx.prop("textDelimiter"), "textDelimiter")
        charset = reading_charset(check_charset(ctx.prop("charset")))
        skip_empty = bool(ctx.prop("skipEmptyRows"))
        strict = bool(ctx.prop("errorOnDifferentFieldCount"))
        skip_rows = max(0, int(ctx.prop("skipRows")))
        target = await output_path(ctx, ".ion")

        def work(source: IO[bytes], target: Path, stop: threading.Event) -> int:
            text = io.TextIOWrapper(source, encoding=charset, newline="")
            records = csv.reader(text, delimiter=separator, quotechar=quote)
            encode = text_row_encoder(None)
            width, skipped, count = -1, 0, 0
            with open(target, "w", encoding="utf-8", newline="\n") as out:
                try:
                    for n, record in enumerate(records):
                        if n % CHECK_EVERY == 0 and stop.is_set():
                            raise Stopped()
                        if not record:
                            if skip_empty:
                                continue
                            record = [""]
                        if width < 0:
                            width = len(record)
                            if header:
                                encode = text_row_encoder(record)
                                continue
                        if skipped < skip_rows:
                            skipped += 1
                            continue
                        if strict and len(record) != width:
                            raise TaskFailed(f"Record {records.line_num} has {len(record)} fields, but first "
                                             f"record had {width} fields")
                        out.write(encode(record))
                        out.write("\n")
                        count += 1
                except csv.Error as exc:
                    raise TaskFailed(f"Invalid CSV at line {records.line_num}: {exc}") from exc
            return count

        await convert(ctx, ctx.prop("from"), target, work)
        return {"uri": await ctx.put_file(target)}


#### IonToCsv #################################################################################################

_OPTIONAL = re.compile(r"\[[^\]]*\]")


class TextFormatter:
    """Kestra's ``AbstractTextWriter.convert``: a typed Ion value as the text of a cell."""

    def __init__(self, date_format: str, time_format: str, date_time_format: str, time_zone: str | None):
        try:
            self.zone = zone(time_zone)
            sample = _dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=_dt.timezone.utc)
            for pattern in (date_format, time_format, date_time_format):
                format_datetime(sample, pattern)
        except ExpressionError as exc:
            raise TaskFailed(str(exc)) from exc
        self.date_format, self.time_format, self.date_time_format = date_format, time_format, date_time_format

    def text(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None or not value.utcoffset():   # Instant / LocalDateTime: printed at UTC
                return format_datetime(value.replace(tzinfo=_dt.timezone.utc), self.date_time_format)
            return format_datetime(value, self.date_time_format, self.zone)
        if isinstance(value, _dt.date):
            return format_datetime(_dt.datetime(value.year, value.month, value.day), self.date_format)
        if isinstance(value, _dt.time):
            moment = _dt.datetime.combine(_dt.date(1970, 1, 1), value)
            pattern = self.time_format if value.tzinfo else _OPTIONAL.sub("", self.time_format)
            return format_datetime(moment, pattern)
        return java_text(value)


def java_text(value: Any) -> str:
    """Java's ``toString`` of the value Kestra reads (``1.0E20``, ``true``, ``{a=1, b=[x, y]}``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, (int, Decimal, str)):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_text(v) for v in value) + "]"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@register
class IonToCsv(RunnableTask):
    """Write an Ion rows file as CSV (see the module documentation)."""

    type = "io.kestra.plugin.serdes.csv.IonToCsv"
    aliases = ("io.kestra.plugin.serdes.csv.CsvWriter",)
    title = "Read an ion serialized data file and write it to a csv file."
    examples = (
        Example("Download a CSV file, transform it in SQL and store the transformed data as a CSV file.",
                "id: ion_to_csv\n"
                "namespace: company.team\n\n"
                "tasks:\n"
                "  - id: download_csv\n"
                "    type: io.kestra.plugin.core.http.Download\n"
                "    uri: https://huggingface.co/datasets/kestra/datasets/raw/main/csv/salaries.csv\n\n"
                "  - id: avg_salary_by_job_title\n"
                "    type: io.kestra.plugin.jdbc.duckdb.Query\n"
                "    inputFiles:\n"
                "      data.csv: \"{{ outputs.download_csv.uri }}\"\n"
                "    sql: |\n"
                "      SELECT job_title, ROUND(AVG(salary),2) AS avg_salary\n"
                "      FROM read_csv_auto('{{ workingDir }}/data.csv', header=True)\n"
                "      GROUP BY job_title\n"
                "      ORDER BY avg_salary DESC;\n"
                "    store: true\n\n"
                "  - id: result\n"
                "    type: io.kestra.plugin.serdes.csv.IonToCsv\n"
                "    from: \"{{ outputs.avg_salary_by_job_title.uri }}\"\n", full=True),
    )
    outputs = URI_OUTPUT
    metrics = RECORDS
    props = {
        **_common_props("Specifies if the first line should be the header."),
        "lineDelimiter": Prop(STRING, default="\n", description="The character used to separate rows."),
        "alwaysDelimitText": Prop(BOOLEAN, default=False, description=(
            "Whether fields should always be delimited using the textDelimiter option.")),
        "dateFormat": Prop(STRING, default="yyyy-MM-dd", description="Format to use for date."),
        "timeFormat": Prop(STRING, default="HH:mm:ss[XXX]", description="Format to use for time."),
        "dateTimeFormat": Prop(STRING, default="yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]",
                               description="Format to use for zoned datetime."),
        "timeZoneId": Prop(STRING, description=(
            "Timezone to use when no timezone can be parsed on the source (default: the server's zone).")),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        header = bool(ctx.prop("header"))
        separator = one_char(ctx.prop("fieldSeparator"), "fieldSeparator")
        quote = one_char(ctx.prop("textDelimiter"), "textDelimiter")
        charset = check_charset(ctx.prop("charset"))
        line_delimiter = str(ctx.prop("lineDelimiter"))
        if line_delimiter not in ("\n", "\r\n", "\r"):
            raise TaskFailed(f"Invalid lineDelimiter {line_delimiter!r}: expected \\n, \\r\\n or \\r")
        quoting: Literal[0, 1, 2, 3] = csv.QUOTE_ALL if ctx.prop("alwaysDelimitText") else csv.QUOTE_MINIMAL
        formatter = TextFormatter(str(ctx.prop("dateFormat")), str(ctx.prop("timeFormat")),
                                  str(ctx.prop("dateTimeFormat")), ctx.prop("timeZoneId"))
        target = await output_path(ctx, ".csv")

        def work(source: IO[bytes], target: Path, stop: threading.Event) -> int:
            count = 0
            with open(target, "w", encoding=charset, newline="") as out:
                writer = csv.writer(out, delimiter=separator, quotechar=quote, lineterminator=line_delimiter,
                                    quoting=quoting)
                for row in checked(typed_ion_rows(source), stop):
                    if isinstance(row, list):
                        if header:
                            raise TaskFailed("Invalid data of type List with header")
                        writer.writerow([formatter.text(v) for v in row])
                    elif isinstance(row, dict):
                        if count == 0 and header:
                            writer.writerow(list(row))
                        writer.writerow([formatter.text(v) for v in row.values()])
                    count += 1
            return count

        await convert(ctx, ctx.prop("from"), target, work)
        return {"uri": await ctx.put_file(target)}
