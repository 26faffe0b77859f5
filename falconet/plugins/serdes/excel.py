"""``io.kestra.plugin.serdes.excel.*``: Excel (``.xlsx``) ↔ Ion rows, with ``openpyxl`` (the optional
``serdes`` extra, imported when a task runs; without it the task fails naming the extra).

``ExcelToIon`` reads each selected sheet row by row (openpyxl's read-only mode streams the sheet XML) into
one Ion file per sheet (output ``uris``: sheet title → URI; ``size``: rows of all sheets). With ``header``
the first row read names the fields; an empty cell is null. Date cells are timestamps, or their Excel
serial number with ``dateTimeRender: SERIAL_NUMBER``; formula cells give their cached result.
``IonToExcel`` writes one sheet per source (``from`` is one URI, or a map sheet title → URI) with
openpyxl's write-only mode, so rows are not kept in memory; a string starting with ``Formula:`` becomes a
formula, dates and timestamps get the ``dateFormat`` number format when ``styles`` is true.
"""
from __future__ import annotations

import datetime as _dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from falconet.sdk import (
    ANY, BOOLEAN, ENUM, INTEGER, LIST, STRING, Example, ExpressionError, Metric, Output, Prop, register, RunContext,
    RunnableTask, TaskFailed, write_ion_rows,
)
from falconet.runtime.expr.dates import zone
from falconet.plugins.core.storage import Stopped, open_uri, run_in_worker
from falconet.plugins.serdes.common import (
    CHECK_EVERY, check_charset, conversion_errors, download_example, missing_library, output_path, typed_ion_rows,
)
from falconet.plugins.serdes.csv import FROM


def _openpyxl(type_name: str) -> Any:
    try:
        import openpyxl
    except ImportError:
        raise missing_library(type_name, "openpyxl") from None
    return openpyxl


def _excel_value(value: Any, serial: bool) -> Any:
    """A cell value read by openpyxl as an Ion row value (dates as serial numbers with ``serial``)."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        if serial:
            from openpyxl.utils.datetime import to_excel
            return float(to_excel(value))
        return value
    if isinstance(value, _dt.timedelta):
        return value.total_seconds() / 86400 if serial else str(value)
    return value


@register
class ExcelToIon(RunnableTask):
    """Read the sheets of an Excel file into Ion rows files (see the module documentation)."""

    type = "io.kestra.plugin.serdes.excel.ExcelToIon"
    title = "Read data from Excel into a row-wise ION-serialized format."
    examples = (
        download_example("Convert an Excel file to the Ion format.", "excel_to_ion", "excel/Products.xlsx",
                         ("to_ion", "io.kestra.plugin.serdes.excel.ExcelToIon")),
        Example("Read only the sheet 'Orders', after its two title rows.",
                "from: \"{{ outputs.http_download.uri }}\"\n"
                "sheetsTitle:\n"
                "  - Orders\n"
                "skipRows: 2\n"),
    )
    outputs = {
        "uris": Output("map", "URIs of the Ion files, by sheet title ({{ outputs.task_id.uris.Sheet1 }})."),
        "size": Output("integer", "The number of fetched rows."),
    }
    metrics = (Metric("sheets", "counter", "Number of sheets in the workbook."),)
    props = {
        "from": FROM,
        "sheetsTitle": Prop(LIST, description="The sheets title to be included (default: every sheet)."),
        "charset": Prop(STRING, default="UTF-8", description="The name of a supported character set."),
        "valueRender": Prop(ENUM, default="UNFORMATTED_VALUE", values=("FORMATTED_VALUE", "UNFORMATTED_VALUE"),
                            description="Determines how values should be rendered in the output (both give "
                                        "the cell values; formulas give their cached result)."),
        "dateTimeRender": Prop(ENUM, default="UNFORMATTED_VALUE", values=("UNFORMATTED_VALUE", "SERIAL_NUMBER"),
                               description="How dates, times, and durations should be represented in the output."),
        "header": Prop(BOOLEAN, default=True, description="Whether the first row should be treated as the header."),
        "skipEmptyRows": Prop(BOOLEAN, default=False, description="Specifies if empty rows should be skipped."),
        "skipRows": Prop(INTEGER, default=0, description=(
            "Number of lines to skip at the start of the file. Useful if a table has a title and explanation "
            "in the first few rows.")),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        openpyxl = _openpyxl(self.type)
        check_charset(ctx.prop("charset"))
        titles = [str(t) for t in (ctx.prop("sheetsTitle") or [])]
        header = bool(ctx.prop("header"))
        skip_empty = bool(ctx.prop("skipEmptyRows"))
        skip_rows = int(ctx.prop("skipRows"))
        if skip_rows < 0:
            raise TaskFailed("skipRows must be positive or zero")
        serial = ctx.prop("dateTimeRender") == "SERIAL_NUMBER"
        folder = (await output_path(ctx, "")).parent
        source = open_uri(ctx, ctx.prop("from"))

        def work(stop: threading.Event) -> tuple[int, list[tuple[str, Path, int]]]:
            with source:
                try:
                    book = openpyxl.load_workbook(source, read_only=True, data_only=True)
                except Exception as exc:  # zipfile/XML/openpyxl errors: not an Excel file
                    raise TaskFailed(f"Unable to read the Excel file: {exc}") from exc
                try:
                    done = []
                    skipped = 0
                    for index, sheet in enumerate(book.worksheets):
                        if titles and sheet.title not in titles:
                            continue
                        path = folder / f"sheet{index}.ion"

                        def rows(sheet: Any = sheet) -> Any:
                            nonlocal skipped
                            columns = None
                            for n, row in enumerate(sheet.iter_rows(values_only=True)):
                                if n % CHECK_EVERY == 0 and stop.is_set():
                                    raise Stopped()
                                if skipped < skip_rows:
                                    skipped += 1
                                    continue
                                values = [_excel_value(v, serial) for v in row]
                                if skip_empty and all(v is None or v == "" for v in values):
                                    continue
                                if header and columns is None:
                                    columns = ["" if v is None else str(v) for v in values]
                                    continue
                                if columns is None:
                                    yield values
                                else:   # a row's trailing empty cells are not stored
                                    padded = values + [None] * (len(columns) - len(values))
                                    yield dict(zip(columns, padded, strict=False))

                        with open(path, "w", encoding="utf-8", newline="\n") as out:
                            done.append((sheet.title, path, write_ion_rows(out, rows())))
                    return len(book.worksheets), done
                finally:
                    book.close()

        sheets, done = await run_in_worker(work)
        ctx.metric("counter", "sheets", sheets)
        uris = {title: await ctx.put_file(path, f"{ctx.task_id}-{path.name}") for title, path, _ in done}
        return {"uris": uris, "size": sum(n for _, _, n in done)}


@register
class IonToExcel(RunnableTask):
    """Write Ion rows files as the sheets of an Excel file (see the module documentation)."""

    type = "io.kestra.plugin.serdes.excel.IonToExcel"
    title = "Read an ION-serialized file and transform it to an Excel file."
    examples = (
        download_example("Download a CSV file and convert it to the Excel file format.",
                         "ion_to_excel", "csv/products.csv",
                         ("convert", "io.kestra.plugin.serdes.csv.CsvToIon"),
                         ("to_excel", "io.kestra.plugin.serdes.excel.IonToExcel")),
        Example("Write two Ion files into an Excel file with dedicated sheets.",
                "from:\n"
                "  Sheet_1: \"{{ outputs.convert1.uri }}\"\n"
                "  Sheet_2: \"{{ outputs.convert2.uri }}\"\n"),
    )
    outputs = {
        "uri": Output("string", "Internal storage URI of the Excel file."),
        "size": Output("integer", "The number of fetched rows."),
    }
    metrics = (Metric("records", "counter", "Number of rows written (one value per sheet).", unit="rows"),)
    props = {
        "from": Prop(ANY, required=True, description="Source file URI, or a map of sheet title to source file URI."),
        "charset": Prop(STRING, default="UTF-8", description="The name of a supported character set."),
        "sheetsTitle": Prop(STRING, default="Sheet", description=(
            "The sheet title to be used when writing data to an Excel spreadsheet.")),
        "header": Prop(BOOLEAN, default=True, description="Whether header should be written as the first line."),
        "styles": Prop(BOOLEAN, default=True, description="Whether styles should be applied to format values."),
        "dateFormat": Prop(STRING, default="yyyy-MM-dd", description="Format to use for date."),
        "timeZoneId": Prop(STRING, description="Timezone to use when no timezone can be parsed on the source."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        openpyxl = _openpyxl(self.type)
        charset = check_charset(ctx.prop("charset"))
        source = ctx.prop("from")
        if isinstance(source, str):
            sheets = {str(ctx.prop("sheetsTitle")): source}
        elif isinstance(source, dict) and source:
            sheets = {str(k): str(v) for k, v in source.items()}
        else:
            raise TaskFailed("Invalid variable: 'from' must be a URI or a map of sheet title to URI")
        header = bool(ctx.prop("header"))
        styles = bool(ctx.prop("styles"))
        number_format = str(ctx.prop("dateFormat")).replace("'", "")
        try:
            time_zone = zone(str(ctx.prop("timeZoneId"))) if ctx.prop("timeZoneId") else None
        except ExpressionError as exc:
            raise TaskFailed(str(exc)) from exc
        target = await output_path(ctx, ".xlsx")
        streams = {title: open_uri(ctx, uri) for title, uri in sheets.items()}

        def cell(sheet: Any, value: Any) -> Any:
            if isinstance(value, _dt.datetime) and value.tzinfo is not None:
                if time_zone is not None:
                    value = value.astimezone(time_zone).date()
                else:
                    value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
            if isinstance(value, str) and value.startswith("Formula:"):
                value = "=" + value[len("Formula:"):]
            elif isinstance(value, Decimal):
                value = float(value)
            elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2 ** 53:
                value = str(value)
            elif isinstance(value, (dict, list)):
                value = str(value)
            if isinstance(value, (_dt.date, _dt.datetime)):
                c = openpyxl.cell.WriteOnlyCell(sheet, value=value)
                if styles:
                    c.number_format = number_format
                return c
            return value

        def work(stop: threading.Event) -> list[int]:
            counts = []
            book = openpyxl.Workbook(write_only=True)
            try:
                for title, stream in streams.items():
                    sheet = book.create_sheet(title[:31])
                    count = 0
                    with stream, conversion_errors(sheets[title]):
                        for row in typed_ion_rows(stream, charset):
                            if count % CHECK_EVERY == 0 and stop.is_set():
                                raise Stopped()
                            if isinstance(row, list):
                                if header:
                                    raise TaskFailed("Invalid data of type List with header")
                                sheet.append([cell(sheet, v) for v in row])
                            elif isinstance(row, dict):
                                if count == 0 and header:
                                    sheet.append(list(row))
                                sheet.append([cell(sheet, v) for v in row.values()])
                            count += 1
                    counts.append(count)
                book.save(target)
            finally:
                for stream in streams.values():
                    stream.close()
            return counts

        counts = await run_in_worker(work)
        for count in counts:
            ctx.metric("counter", "records", count)
        return {"uri": await ctx.put_file(target), "size": sum(counts)}
