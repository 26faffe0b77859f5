"""The database and notification blueprints of tests/flows/blueprints (``jdbc-*.yaml``, ``notify-*.yaml``),
each run end to end through the engine against local servers: PostgreSQL (tests/pg.py), an HTTP server
for webhooks and downloads, aiosmtpd for e-mail. Secrets come from ``SECRET_*`` variables, as in Kestra.
The polling-trigger blueprint runs on a fake clock in tests/orchestration/test_jdbc_trigger.py."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import trio
import yaml

from falconet.sdk import read_ion_rows

from .e2e import engine_at, states
from .notifyservers import smtp_server, webhook_server

BLUEPRINTS = Path(__file__).resolve().parents[1] / "flows" / "blueprints"


def set_secrets(monkeypatch, **values: object) -> None:
    for key, value in values.items():
        monkeypatch.setenv(f"SECRET_{key}", base64.b64encode(str(value).encode()).decode())


async def run(engine, name: str, inputs: dict | None = None) -> dict:
    """Create the blueprint's flow (once) and run it to its end."""
    source = (BLUEPRINTS / name).read_text()
    head = yaml.safe_load(source)
    if await engine.get_flow(head["namespace"], head["id"]) is None:
        await engine.create_flow(source)
    ex = await engine.create_execution(head["namespace"], head["id"], inputs=inputs)
    with trio.fail_after(60):
        return await engine.wait_for_end(ex["id"])


async def test_postgres_extract_store_then_mail(tmp_path, monkeypatch, pg_url, pg_server):
    pytest.importorskip("psycopg")
    with pg_server.connect(pg_url.rsplit("/", 1)[1]) as conn:
        conn.execute("CREATE TABLE orders (id int, customer text, amount numeric(8,2), status text, "
                     "created timestamptz)")
        conn.execute("INSERT INTO orders VALUES (1, 'ada', 10.5, 'paid', '2024-03-01 08:00Z'),"
                     " (2, 'bob', 4, 'open', '2024-03-01 09:00Z'), (3, 'ada', 2.25, 'paid', '2024-03-02 10:00Z')")
    with smtp_server(tmp_path, tls="starttls", user="kestra", password="pw") as smtp:
        monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cafile))
        set_secrets(monkeypatch, PG_URL=pg_url, PG_USERNAME=pg_server.user, PG_PASSWORD=pg_server.password,
                    SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_USERNAME="kestra", SMTP_PASSWORD="pw")
        async with engine_at(tmp_path) as engine:
            ex = await run(engine, "jdbc-postgres-extract-mail.yaml")
            assert ex["state"]["current"] == "SUCCESS", states(ex)
            extract = ex["taskRunList"][0]["outputs"]
            with engine.storage.open_read(extract["uri"]) as f:
                stored = list(read_ion_rows(io.TextIOWrapper(f, encoding="utf-8")))
    assert extract["size"] == 2 and [r["id"] for r in stored] == [1, 3]
    assert stored[0]["created"] == "2024-03-01T08:00:00Z"
    [mail] = smtp.received
    assert mail.recipients == ["finance@example.com"] and mail.message["Subject"] == "2 paid orders"
    assert "<td>ada</td><td>2</td><td>12.75</td>" in mail.message.get_body(("html",)).get_content()
    [attachment] = list(mail.message.iter_attachments())
    assert attachment.get_filename() == "orders-paid.ion"
    assert [json.loads(json.dumps(r)) for r in read_ion_rows(io.StringIO(attachment.get_content().decode()))] \
        == [json.loads(json.dumps(r)) for r in stored]


async def test_sqlite_check_fails_and_slack_is_alerted(tmp_path, monkeypatch):
    with webhook_server() as hooks:
        set_secrets(monkeypatch, SLACK_WEBHOOK=hooks.url + "/services/T0/B0/x")
        async with engine_at(tmp_path) as engine:
            ex = await run(engine, "jdbc-sqlite-slack-on-failure.yaml")
    assert ex["state"]["current"] == "FAILED"
    assert states(ex) == {"load": "SUCCESS", "out_of_range": "SUCCESS", "check": "FAILED",
                          "alert_on_failure": "SUCCESS"}
    [call] = hooks.calls
    text = json.loads(call.body)["text"]
    assert text.startswith(f"Flow company.team.sensor_readings_check failed ({ex['id']}): ")
    assert "2 readings out of range (south, west)" in text


async def test_after_execution_notifications(tmp_path, monkeypatch):
    with webhook_server() as hooks:
        set_secrets(monkeypatch, DISCORD_WEBHOOK=hooks.url + "/discord", GOOGLE_CHAT_WEBHOOK=hooks.url + "/chat")
        async with engine_at(tmp_path) as engine:
            ok = await run(engine, "notify-after-execution-chat.yaml")
            assert ok["state"]["current"] == "SUCCESS"
            assert [(c.path, json.loads(c.body)["content"]) for c in hooks.calls] == [
                ("/discord", "nightly_sync_status ended SUCCESS")]
            hooks.calls.clear()
            failed = await run(engine, "notify-after-execution-chat.yaml", {"fail": True})
    assert failed["state"]["current"] == "FAILED"
    assert [c.path for c in hooks.calls] == ["/discord", "/chat"]
    assert json.loads(hooks.calls[0].body)["content"] == "nightly_sync_status ended FAILED"
    assert json.loads(hooks.calls[1].body)["text"] == (
        f"company.team.nightly_sync_status FAILED: execution {failed['id']}")


async def test_feed_import_mails_the_errors(tmp_path, monkeypatch):
    with webhook_server() as http, smtp_server(tmp_path, tls="implicit") as smtp:
        monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cafile))
        set_secrets(monkeypatch, FEED_URL=http.url + "/feed.csv", SMTP_HOST=smtp.host, SMTP_PORT=smtp.port)
        async with engine_at(tmp_path) as engine:
            http.files["/feed.csv"] = b"sku,qty\nA-1,3\nB-2,4\n"
            good = await run(engine, "notify-errors-mail.yaml")
            assert good["state"]["current"] == "SUCCESS", states(good)
            assert good["taskRunList"][-1]["outputs"]["row"] == {"skus": 2, "units": 7}
            assert smtp.received == []
            http.files["/feed.csv"] = b"sku,qty\nA-1,3\nB-2,many\n"
            bad = await run(engine, "notify-errors-mail.yaml")
    assert bad["state"]["current"] == "FAILED"
    assert states(bad)["import"] == "FAILED" and states(bad)["mail_data_team"] == "SUCCESS"
    [mail] = smtp.received
    assert mail.recipients == ["data@example.com", "oncall@example.com"]
    assert mail.message["Subject"] == f"Import of the partner feed failed ({bad['id']})"
    assert "import: " in mail.message.get_body(("html",)).get_content()
    [attachment] = list(mail.message.iter_attachments())
    assert attachment.get_filename() == "feed.csv" and attachment.get_content() == "sku,qty\nA-1,3\nB-2,many\n"
