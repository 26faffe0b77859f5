"""The node's LISTEN connection (falconet/runtime/cluster/listen.py) against a real PostgreSQL (tests/pg.py):
delivery in order, bounded buffers, reconnection after the server drops the connection (with the
missed-notifications signal), prompt and complete shutdown."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
import trio

from falconet.runtime.cluster.listen import MAX_PAYLOAD, NotificationsMissed, open_listener


@pytest.fixture
def db_url(pg_server) -> str:
    name = pg_server.create_database(f"lsn_{uuid.uuid4().hex[:12]}")
    return f"postgresql://{pg_server.user}:{pg_server.password}@{pg_server.host}:{pg_server.port}/{name}"


def _sessions(pg_server, db_url: str) -> int:
    with pg_server.connect(db_url.rsplit("/", 1)[1]) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'falconet-listen' "
                            "AND datname = current_database()").fetchone()[0]  # not other tests' databases


async def test_notifications_reach_the_subscribers_of_their_channel_in_order(db_url):
    async with open_listener(db_url) as listener:
        async with listener.subscribe("falconet_a") as a1, listener.subscribe("falconet_a") as a2, \
                listener.subscribe("falconet_b") as b:
            for i in range(5):
                await listener.notify("falconet_a", f"a{i}")
            await listener.notify("falconet_b", "b0")
            with trio.fail_after(10):
                got1 = [await a1.receive() for _ in range(5)]
                got2 = [await a2.receive() for _ in range(5)]
                assert await b.receive() == "b0"
            assert got1 == got2 == [f"a{i}" for i in range(5)]
            assert a1.pending() == b.pending() == 0


async def test_another_connections_notify_is_received(db_url, pg_server):
    async with open_listener(db_url) as listener:
        async with listener.subscribe("falconet_events") as sub:
            with pg_server.connect(db_url.rsplit("/", 1)[1]) as conn:
                conn.execute("SELECT pg_notify('falconet_events', 'from elsewhere')")
            with trio.fail_after(10):
                assert await sub.receive() == "from elsewhere"


async def test_bad_channels_and_payloads_are_refused(db_url):
    async with open_listener(db_url) as listener:
        with pytest.raises(ValueError, match="payload"):
            await listener.notify("falconet_events", "x" * (MAX_PAYLOAD + 1))
        with pytest.raises(ValueError, match="channel"):
            await listener.notify('x"; DROP TABLE y; --', "p")
        with pytest.raises(ValueError, match="channel"):
            async with listener.subscribe("Upper Case"):
                pass
        await listener.notify("falconet_events", "é" * (MAX_PAYLOAD // 2))   # at the limit in bytes


async def test_a_full_buffer_signals_missed_notifications_once(db_url):
    async with open_listener(db_url) as listener:
        async with listener.subscribe("falconet_events", max_buffer=3) as sub:
            for i in range(4):
                await listener.notify("falconet_events", str(i))
            await listener.notify("falconet_events", "after")
            with trio.fail_after(10):
                while not (sub.missed and sub.pending()):   # delivered by the listener's thread meanwhile
                    await trio.sleep(0.01)
                with pytest.raises(NotificationsMissed):
                    await sub.receive()
                # the signal comes once (what was buffered is dropped); what follows it is delivered
                assert await sub.receive() == "after"


async def test_a_dropped_connection_is_reopened_and_subscribers_resync(db_url, pg_server):
    async with open_listener(db_url, max_backoff=0.2) as listener:
        async with listener.subscribe("falconet_events") as sub:
            await listener.notify("falconet_events", "before")
            with trio.fail_after(10):
                assert await sub.receive() == "before"
            first_pid = listener.backend_pid
            with pg_server.connect(db_url.rsplit("/", 1)[1]) as conn:
                assert conn.execute("SELECT pg_terminate_backend(%s)", (first_pid,)).fetchone()[0]
            with trio.fail_after(10):
                with pytest.raises(NotificationsMissed):
                    await sub.receive()
                # the signal comes once the channel is listened to again: nothing sent after it is lost
                assert listener.connected and listener.reconnects == 1 and listener.backend_pid != first_pid
                await listener.notify("falconet_events", "after")
                assert await sub.receive() == "after"


async def test_shutdown_is_prompt_and_leaves_no_connection_or_thread(db_url, pg_server):
    before = {t.ident for t in threading.enumerate()}
    t0 = time.monotonic()
    async with open_listener(db_url, poll_timeout=60) as listener:
        async with listener.subscribe("falconet_events") as sub:
            await listener.notify("falconet_events", "x")
            with trio.fail_after(10):
                assert await sub.receive() == "x"
        assert _sessions(pg_server, db_url) == 2     # the LISTEN connection and the sending one
        listener_thread_busy = listener._pumping
    assert listener_thread_busy and not listener._pumping
    # the waiting thread was woken up, not left to its 60-s poll timeout
    assert time.monotonic() - t0 < 10
    # the server notices a closed connection asynchronously: its backend leaves pg_stat_activity shortly after
    deadline = time.monotonic() + 5
    while _sessions(pg_server, db_url) and time.monotonic() < deadline:
        await trio.sleep(0.05)
    assert _sessions(pg_server, db_url) == 0
    # trio keeps idle worker threads cached; none of them is still inside the listener's wait
    for thread in threading.enumerate():
        if thread.ident not in before:
            assert "_pump" not in repr(thread.__dict__.get("_target"))


async def test_subscribing_after_start_listens_without_waiting_for_the_poll_timeout(db_url):
    async with open_listener(db_url, poll_timeout=60) as listener:
        with trio.fail_after(10):
            async with listener.subscribe("falconet_late") as sub:
                await listener.notify("falconet_late", "hello")
                assert await sub.receive() == "hello"
