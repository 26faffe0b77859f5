"""core.storage.* tasks and the Ion helpers, against the RunContext double and the real InternalStorage."""
from __future__ import annotations

import datetime
import io

import pytest
import trio

from falconet.plugins.core import storage as st
from falconet.runtime.storage.ionfiles import read_ion_rows, to_ion_line, write_ion_rows
from falconet.sdk.plugin import TaskFailed

PREV = "/company/team/flow/executions/exec1/tasks/prev/tr0/"


@pytest.fixture
def put(make_ctx):
    seed = make_ctx(st.Size, {})

    def put(name: str, data: bytes | str) -> str:
        return seed.storage.put_bytes(data.encode() if isinstance(data, str) else data, PREV + name)
    return put


def content(ctx, uri: str) -> str:
    return ctx.storage.read_text(uri)


#### Ion ####################################################################################################

def test_ion_roundtrip_streams_rows():
    rows = [{"id": 1, "name": "a\nb", "at": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
             "tags": ["x", None], "ok": True, "f": 1.5}, "plain", 7]
    buf = io.StringIO()
    assert write_ion_rows(buf, rows) == 3
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("{id:1,")
    buf.seek(0)
    back = list(read_ion_rows(buf))
    assert back[0] == {"id": 1, "name": "a\nb", "at": "2024-01-02T03:04:05Z", "tags": ["x", None], "ok": True, "f": 1.5}
    assert back[1:] == ["plain", 7]


def test_ion_reads_kestra_style_values():
    text = '{date:2023-01-01T00:00:00.000Z,amount:12.50,count:3,name:"x",flag:false,none:null}\n\n{a:[1,2]}\n'
    assert list(read_ion_rows(io.StringIO(text))) == [
        {"date": "2023-01-01T00:00:00Z", "amount": 12.5, "count": 3, "name": "x", "flag": False, "none": None},
        {"a": [1, 2]}]
    assert to_ion_line({"k": "v"}) == '{k:"v"}'


def test_ion_rejects_garbage():
    with pytest.raises(Exception, match="Invalid Ion content"):
        list(read_ion_rows(io.StringIO("{a:1}\n{unclosed")))


#### Split / Concat #########################################################################################

async def test_split_by_rows_bytes_partitions(run_task, put):
    uri = put("data.csv", "1\n2\r\n3\r4\n5")
    out, ctx = await run_task(st.Split, {"from": uri, "rows": 2})
    assert [content(ctx, u) for u in out["uris"]] == ["1\n2\n", "3\n4\n", "5\n"]
    assert all(u.endswith(".csv") for u in out["uris"])
    out, ctx = await run_task(st.Split, {"from": uri, "partitions": 2, "separator": ";"})
    assert [content(ctx, u) for u in out["uris"]] == ["1;3;5;", "2;4;"]
    big = put("big.txt", "".join(f"{i:09d}\n" for i in range(300)))   # 10 bytes per line
    out, ctx = await run_task(st.Split, {"from": big, "bytes": "1KB"})
    sizes = [len(content(ctx, u)) for u in out["uris"]]
    assert sizes == [1030, 1030, 940]


async def test_split_precedence_is_bytes_then_partitions_then_rows(run_task, put):
    """The same rule as ForEachItem's batch (tests/orchestration/test_foreachitem.py) and Kestra's."""
    uri = put("p.txt", "a\nbb\nccc\nd\n")
    out, ctx = await run_task(st.Split, {"from": uri, "rows": 3, "bytes": "4B", "partitions": 2})
    assert [content(ctx, u) for u in out["uris"]] == ["a\nbb\n", "ccc\n", "d\n"]
    out, ctx = await run_task(st.Split, {"from": uri, "rows": 3, "partitions": 2})
    assert [content(ctx, u) for u in out["uris"]] == ["a\nccc\n", "bb\nd\n"]


async def test_split_errors(run_task, put):
    uri = put("d.txt", "a\n")
    with pytest.raises(TaskFailed, match="no size, count, nor rows"):
        await run_task(st.Split, {"from": uri})
    with pytest.raises(TaskFailed, match="Invalid size with value '10 parsecs'"):
        await run_task(st.Split, {"from": uri, "bytes": "10 parsecs"})
    with pytest.raises(TaskFailed, match="Unable to find the file"):
        await run_task(st.Split, {"from": "kestra:///company/team/nope.txt", "rows": 1})
    with pytest.raises(TaskFailed, match="must be a kestra:// URI"):
        await run_task(st.Split, {"from": "/etc/passwd", "rows": 1})


async def test_concat(run_task, put):
    a, b = put("a.txt", "A"), put("b.txt", "B\n")
    out, ctx = await run_task(st.Concat, {"files": [a, b], "separator": "|", "extension": ".txt"})
    assert content(ctx, out["uri"]) == "A|B\n|" and out["uri"].endswith(".txt")
    out, ctx = await run_task(st.Concat, {"files": f'["{a}", "{a}"]'})
    assert content(ctx, out["uri"]) == "AA" and out["uri"].endswith(".tmp")


#### Size / Delete / Reverse ################################################################################

async def test_size_delete(run_task, put):
    uri = put("s.bin", b"12345")
    out, _ = await run_task(st.Size, {"uri": uri})
    assert out == {"size": 5}
    out, ctx = await run_task(st.Delete, {"uri": uri})
    assert out == {"uri": uri, "deleted": True} and not ctx.storage.exists(uri)
    out, _ = await run_task(st.Delete, {"uri": uri})
    assert out["deleted"] is False
    with pytest.raises(TaskFailed, match="Unable to find file"):
        await run_task(st.Delete, {"uri": uri, "errorOnMissing": True})


async def test_reverse(run_task, put):
    uri = put("r.txt", "a\nb\r\nc")
    out, ctx = await run_task(st.Reverse, {"from": uri})
    assert content(ctx, out["uri"]) == "c\nb\na\n"
    with pytest.raises(TaskFailed, match="Unknown charset"):
        await run_task(st.Reverse, {"from": uri, "charset": "klingon"})


#### FilterItems / DeduplicateItems #########################################################################

ITEMS = "\n".join(to_ion_line(r) for r in [
    {"id": 1, "price": 10}, {"id": 2, "price": 30}, {"id": 1, "price": 50}, {"id": 3, "price": 5}]) + "\n"


async def test_filter_items(run_task, put):
    uri = put("items.ion", ITEMS)
    out, ctx = await run_task(st.FilterItems, {"from": uri, "filterCondition": "{{ price > 20 }}"})
    with ctx.storage.open_read(out["uri"]) as f:
        rows = list(read_ion_rows(io.TextIOWrapper(f, encoding="utf-8")))
    assert [r["price"] for r in rows] == [30, 50]
    assert (out["processedItemsTotal"], out["droppedItemsTotal"]) == (4, 2)
    out, _ = await run_task(st.FilterItems, {"from": uri, "filterCondition": "{{ price > 20 }}",
                                             "filterType": "EXCLUDE"})
    assert out["droppedItemsTotal"] == 2 and out["processedItemsTotal"] == 4


async def test_filter_items_error_behaviour(run_task, put):
    uri = put("items.ion", ITEMS)
    with pytest.raises(Exception):
        await run_task(st.FilterItems, {"from": uri, "filterCondition": "{{ missing_field > 1 }}"})
    out, _ = await run_task(st.FilterItems, {"from": uri, "filterCondition": "{{ missing_field > 1 }}",
                                             "errorOrNullBehavior": "EXCLUDE"})
    assert out["droppedItemsTotal"] == 4


async def test_deduplicate_keeps_last(run_task, put):
    uri = put("items.ion", ITEMS)
    out, ctx = await run_task(st.DeduplicateItems, {"from": uri, "expr": "{{ id }}"})
    with ctx.storage.open_read(out["uri"]) as f:
        rows = list(read_ion_rows(io.TextIOWrapper(f, encoding="utf-8")))
    assert rows == [{"id": 2, "price": 30}, {"id": 1, "price": 50}, {"id": 3, "price": 5}]
    assert (out["numKeys"], out["processedItemsTotal"], out["droppedItemsTotal"]) == (3, 4, 1)


#### LocalFiles / Purge #####################################################################################

async def test_local_files(run_task, put):
    uri = put("in.csv", "x,y\n")
    out, ctx = await run_task(st.LocalFiles, {"inputs": {"hello.txt": "Hello {{ flow.id }}", "data/in.csv": uri},
                                              "outputs": ["*.txt", "data/*"]})
    assert sorted(out["uris"]) == ["data/in.csv", "hello.txt"]
    assert content(ctx, out["uris"]["hello.txt"]) == "Hello flow"


async def test_purge_current_execution_files(run_task, put, make_ctx):
    other = make_ctx(st.Size, {}).storage.put_bytes(b"x", "/company/team/flow/executions/exec2/tasks/a/b/x.txt")
    a = put("a.txt", "a")
    out, ctx = await run_task(st.PurgeCurrentExecutionFiles, {})
    assert out["uris"] == [a] and not ctx.storage.exists(a)
    assert ctx.storage.exists(other)


async def test_cancel_stops_worker(run_task, put):
    uri = put("many.txt", "x\n" * 200_000)
    with trio.move_on_after(0) as scope:
        await run_task(st.Split, {"from": uri, "rows": 1})
    assert scope.cancelled_caught
