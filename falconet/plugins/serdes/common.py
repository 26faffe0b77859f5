"""What the serdes converters share: property checks, a streamed conversion on a worker thread, the
``records`` metric, and Ion values typed as Kestra reads them.

Kestra reads an Ion row file into Java types (``io.kestra.core.serializers.ion.IonParser``): a timestamp
without offset or at UTC is a ``LocalDate`` when it is midnight, else an ``Instant``; a timestamp with
another offset a ``ZonedDateTime``; strings annotated ``LocalDateTime::``, ``LocalDate::``, ``LocalTime::``
… those types. :func:`typed_ion_value` does the same in Python (``date``, aware ``datetime`` in UTC or at
its offset, naive ``datetime``, ``time``), keeping decimals as ``Decimal``, so each writer formats them
as Kestra's does.
"""
from __future__ import annotations

import base64
import codecs
import contextlib
import datetime as _dt
import io
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from falconet.sdk import Example, IllegalArgument, read_ion_rows, RunContext, TaskFailed, write_ion_rows
from falconet.runtime.storage.ionvalues import plain_ion
from falconet.plugins.core.storage import Stopped, open_uri, run_in_worker

#: rows between two checks of the stop flag (kill, timeout)
CHECK_EVERY = 1024

#: where Kestra's examples download their data sets from
DATASETS = "https://huggingface.co/datasets/kestra/datasets/raw/main/"


def download_example(title: str, flow_id: str, dataset: str, *steps: tuple[str, str]) -> Example:
    """A full example: the flow ``flow_id`` downloads ``dataset`` (a path under :data:`DATASETS`), then each
    step (task id, type) converts the file of the task before it."""
    code = (f"id: {flow_id}\nnamespace: company.team\n\ntasks:\n"
            f"  - id: http_download\n    type: io.kestra.plugin.core.http.Download\n    uri: {DATASETS}{dataset}\n")
    previous = "http_download"
    for task_id, type_name in steps:
        code += f"\n  - id: {task_id}\n    type: {type_name}\n    from: \"{{{{ outputs.{previous}.uri }}}}\"\n"
        previous = task_id
    return Example(title, code, full=True)


def check_charset(value: Any) -> str:
    """A charset name Python knows (Java names such as ``UTF-8``, ``ISO-8859-1``, ``windows-1252`` are)."""
    name = str(value)
    try:
        codecs.lookup(name)
    except LookupError:
        raise TaskFailed(f"Unknown charset '{name}'") from None
    return name


def reading_charset(name: str) -> str:
    """The codec to read text in ``name``: UTF-8 drops a leading byte-order mark."""
    return "utf-8-sig" if codecs.lookup(name).name == "utf-8" else name


def one_char(value: Any, name: str) -> str:
    """A ``Character`` property: exactly one character."""
    text = str(value)
    if len(text) != 1:
        raise TaskFailed(f"{name} must be a single character, got {text!r}")
    return text


def checked(rows: Iterator[Any], stop: threading.Event) -> Iterator[Any]:
    """``rows``, raising :class:`Stopped` every :data:`CHECK_EVERY` rows once ``stop`` is set."""
    for n, row in enumerate(rows):
        if n % CHECK_EVERY == 0 and stop.is_set():
            raise Stopped()
        yield row


def write_ion_file(target: Path, rows: Iterator[Any], stop: threading.Event,
                   errors: tuple[type[BaseException], ...], what: str) -> int:
    """Write ``rows`` (checking ``stop``) to the Ion rows file ``target``; their count. An exception of
    ``errors`` while reading them fails the task: ``Unable to read the <what> file``."""
    with open(target, "w", encoding="utf-8", newline="\n") as out:
        try:
            return write_ion_rows(out, checked(rows, stop))
        except errors as exc:
            raise TaskFailed(f"Unable to read the {what} file: {exc}") from exc


async def convert(ctx: RunContext, uri: Any, target: Path, work: Callable[[IO[bytes], Path, threading.Event], int],
                  what: str = "from") -> int:
    """Stream the internal-storage file ``uri`` through ``work(source, target, stop)`` on a worker thread;
    return its row count, also recorded as the ``records`` counter (Kestra's metric)."""
    source = open_uri(ctx, uri, what)

    def run(stop: threading.Event) -> int:
        with source, conversion_errors(uri):
            return work(source, target, stop)

    count = await run_in_worker(run)
    ctx.metric("counter", "records", count)
    return count


@contextlib.contextmanager
def conversion_errors(uri: Any) -> Iterator[None]:
    """Turn what bad content raises while a file converts into a TaskFailed naming the file."""
    try:
        yield
    except UnicodeError as exc:
        raise TaskFailed(f"Unable to read or write '{uri}' with the given charset: {exc}") from exc
    except IllegalArgument as exc:   # not Ion, or the 'ion' extra is missing
        raise TaskFailed(str(exc)) from exc
    except RecursionError:
        raise TaskFailed(f"The file '{uri}' nests values too deeply") from None


async def output_path(ctx: RunContext, suffix: str) -> Path:
    """The file a converter writes in its temporary directory, named after the task."""
    return Path(await ctx.open_temp_dir()) / f"{ctx.task_id}{suffix}"


def missing_library(type_name: str, module: str) -> TaskFailed:
    """The failure of a type whose optional library is not installed."""
    return TaskFailed(f"{type_name} needs the '{module}' library, the 'serdes' extra: pip install 'falconet[serdes]'")


#### Ion values as Kestra types ###############################################################################

_TYPED_STRINGS: dict[str, Callable[[str], Any]] = {
    "LocalDateTime": _dt.datetime.fromisoformat,
    "LocalDate": _dt.date.fromisoformat,
    "LocalTime": _dt.time.fromisoformat,
    "OffsetTime": _dt.time.fromisoformat,
    "Instant": lambda s: _dt.datetime.fromisoformat(s).astimezone(_dt.timezone.utc),
    "OffsetDateTime": _dt.datetime.fromisoformat,
    "ZonedDateTime": lambda s: _dt.datetime.fromisoformat(s.split("[", 1)[0]),
}


def _typed_scalar(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        offset = value.utcoffset()
        if not offset:
            moment = _dt.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                                  value.microsecond, tzinfo=_dt.timezone.utc)
            return moment.date() if moment.time() == _dt.time(0) else moment
        return _dt.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                            value.microsecond, tzinfo=_dt.timezone(offset))
    if isinstance(value, Decimal):
        return Decimal(value)
    if isinstance(value, str):
        annotations = getattr(value, "ion_annotations", ())
        parse = _TYPED_STRINGS.get(annotations[0].text) if annotations else None
        if parse is not None:
            try:
                return parse(str(value))
            except ValueError:
                pass
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def typed_ion_value(value: Any) -> Any:
    """An ``amazon.ion`` value as the Python counterpart of the Java type Kestra reads (module docs)."""
    return plain_ion(value, _typed_scalar)


def typed_ion_rows(source: IO[bytes], charset: str = "utf-8") -> Iterator[Any]:
    """The rows of an Ion file (binary stream), typed by :func:`typed_ion_value`."""
    return read_ion_rows(io.TextIOWrapper(source, encoding=charset, newline=None), typed_ion_value)
