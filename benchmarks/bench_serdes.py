"""serdes.csv.CsvToIon over a large CSV: wall time, rows/s and peak RSS (streams: memory independent of size).

    python benchmarks/bench_serdes.py              # a 1 GB CSV
    python benchmarks/bench_serdes.py --mb 100     # another size

A temporary folder gets a generated CSV (an id, a name, a quoted text with a comma, an amount, a date),
moved into a memory-store engine's internal storage; a flow converts it with ``CsvToIon``. Printed:
size, rows, wall time of the execution, MB/s and rows/s, peak RSS of the process (ru_maxrss) before and
after the conversion.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FLOW = """
id: csv-to-ion
namespace: bench.serdes
inputs:
  - id: uri
    type: STRING
tasks:
  - id: convert
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{ inputs.uri }}"
"""


def write_csv(path: Path, megabytes: int) -> int:
    """A CSV of about ``megabytes`` MB; returns its number of data rows."""
    target = megabytes * 1024 * 1024
    rows, size = 0, 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("id,name,comment,amount,day\n")
        while size < target:
            chunk = "".join(f'{i},name-{i},"text, with a comma {i % 97}",{i * 0.25:.2f},2024-01-{i % 28 + 1:02d}\n'
                            for i in range(rows, rows + 10_000))
            out.write(chunk)
            size += len(chunk)
            rows += 10_000
    return rows


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024, help="CSV size in MB (default 1024)")
    args = parser.parse_args()

    import trio

    from falconet.runtime.kernel.startup import open_engine

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            csv_path = Path(tmp) / "big.csv"
            rows = write_csv(csv_path, args.mb)
            size_mb = csv_path.stat().st_size / 1024 / 1024
            async with open_engine(Path(tmp) / "data", store="memory") as engine:
                uri = engine.storage.put_file(csv_path, "/bench/serdes/csv-to-ion/big.csv", move=True)
                await engine.create_flow(FLOW)
                before = peak_rss_mb()
                start = time.perf_counter()
                ex = await engine.execute("bench.serdes", "csv-to-ion", inputs={"uri": uri})
                wall = time.perf_counter() - start
                assert ex["state"]["current"] == "SUCCESS", ex["state"]
                out = ex["taskRunList"][0]["outputs"]["uri"]
                with engine.storage.open_read(out) as f:
                    written = sum(1 for _ in f)
                assert written == rows, (written, rows)
                print(f"CsvToIon: {size_mb:,.0f} MB, {rows:,} rows in {wall:.1f} s "
                      f"({size_mb / wall:.1f} MB/s, {rows / wall:,.0f} rows/s); "
                      f"peak RSS {before:.0f} MB before, {peak_rss_mb():.0f} MB after (target: unchanged, "
                      f"independent of the file size)")

    trio.run(run)


if __name__ == "__main__":
    main()
