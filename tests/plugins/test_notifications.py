"""Notification tasks against local servers: webhooks (an HTTP server in the test) and MailSend (aiosmtpd)."""
from __future__ import annotations

import json
import time

import pytest
import trio

from falconet.plugins.notifications import mail, webhooks
from falconet.sdk import TaskFailed

from .notifyservers import smtp_server, webhook_server

pytest.importorskip("aiosmtpd")

WEBHOOKS = [webhooks.SlackIncomingWebhook, webhooks.TeamsIncomingWebhook, webhooks.DiscordIncomingWebhook,
            webhooks.GoogleChatIncomingWebhook]


@pytest.mark.parametrize("cls", WEBHOOKS, ids=lambda c: c.__name__)
async def test_webhook_posts_the_rendered_payload(run_task, cls):
    with webhook_server() as server:
        out, ctx = await run_task(cls, {"url": server.url + "/services/T0/B0/x",
                                        "payload": '{"text": "Flow {{ flow.id }} failed"}'})
    assert out is None
    [call] = server.calls
    assert call.path == "/services/T0/B0/x" and call.headers["content-type"] == "application/json"
    assert json.loads(call.body) == {"text": "Flow flow failed"}
    assert any("webhook" in m for m in ctx.logger.at("DEBUG"))


async def test_webhook_error_status_and_bad_url_fail_the_task(run_task):
    with webhook_server() as server:
        with pytest.raises(TaskFailed, match="Slack webhook failed with response code '500': invalid_payload"):
            await run_task(webhooks.SlackIncomingWebhook, {"url": server.url + "/fail", "payload": "{}"})
    with pytest.raises(TaskFailed, match="Invalid url 'file:///etc/passwd'"):
        await run_task(webhooks.DiscordIncomingWebhook, {"url": "file:///etc/passwd", "payload": "{}"})
    with pytest.raises(TaskFailed, match="request failed: ConnectError"):   # nothing listens there
        await run_task(webhooks.TeamsIncomingWebhook, {"url": server.url + "/gone", "payload": "{}"})


def mail_props(server, **kw):
    return {"host": server.host, "port": server.port, "from": "kestra@example.com",
            "to": "ops@example.com; data@example.com", "subject": "Report {{ flow.id }}", **kw}


async def test_mail_starttls_auth_html_and_attachment(run_task, make_ctx, tmp_path, monkeypatch):
    with smtp_server(tmp_path, tls="starttls", user="kestra", password="s3cret") as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cafile))
        seed = make_ctx(mail.MailSend, {})
        uri = seed.storage.put_bytes(b"id,total\n1,9.5\n", "/company/team/flow/executions/exec1/tasks/q/tr0/report.csv")
        png = seed.storage.put_bytes(b"\x89PNG fake", "/company/team/flow/executions/exec1/tasks/q/tr0/logo.png")
        out, _ = await run_task(mail.MailSend, mail_props(
            server, transportStrategy="SMTP_TLS", username="kestra", password="s3cret", cc="boss@example.com",
            plainTextContent="See the report.", htmlTextContent='<p>See <b>the report</b> <img src="cid:logo.png"></p>',
            attachments=[{"name": "report.csv", "uri": uri, "contentType": "text/csv"}],
            embeddedImages=[{"name": "logo.png", "uri": png, "contentType": "image/png"}]))
    assert out is None and server.logins == ["kestra"]
    [got] = server.received
    assert got.sender == "kestra@example.com"
    assert got.recipients == ["ops@example.com", "data@example.com", "boss@example.com"]
    msg = got.message
    assert msg["Subject"] == "Report flow" and msg["Cc"] == "boss@example.com"
    assert msg.get_body(("plain",)).get_content().strip() == "See the report."
    assert "<b>the report</b>" in msg.get_body(("html",)).get_content()
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "report.csv" and attachment.get_content_type() == "text/csv"
    assert attachment.get_content() == "id,total\n1,9.5\n"
    related = [p for p in msg.walk() if p.get("Content-ID") == "<logo.png>"]
    assert len(related) == 1 and related[0].get_content() == b"\x89PNG fake"


async def test_mail_smtps_and_plain(run_task, tmp_path, monkeypatch):
    with smtp_server(tmp_path, tls="implicit") as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cafile))
        await run_task(mail.MailSend, mail_props(server))          # SMTPS is the default strategy
        assert server.received[0].message.get_body(("plain",)).get_content().strip() == mail.DEFAULT_TEXT
    monkeypatch.delenv("SSL_CERT_FILE")
    with smtp_server(tmp_path, tls="implicit") as server:          # a certificate the client does not trust
        with pytest.raises(TaskFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await run_task(mail.MailSend, mail_props(server))
        assert server.received == []
    with smtp_server(tmp_path) as server:
        await run_task(mail.MailSend, mail_props(server, transportStrategy="SMTP", plainTextContent="hi"))
        assert server.received[0].message.get_body(("plain",)).get_content().strip() == "hi"


async def test_mail_rejections_fail_the_task(run_task, tmp_path, monkeypatch):
    with smtp_server(tmp_path, tls="starttls", user="kestra", password="s3cret") as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cafile))
        with pytest.raises(TaskFailed, match="SMTPAuthenticationError"):
            await run_task(mail.MailSend, mail_props(server, transportStrategy="SMTP_TLS", username="kestra",
                                                     password="wrong"))
        with pytest.raises(TaskFailed, match="Unable to send the email"):   # AUTH required, none given
            await run_task(mail.MailSend, mail_props(server, transportStrategy="SMTP_TLS"))
        assert server.received == []
    with pytest.raises(TaskFailed, match="to must hold e-mail addresses"):
        await run_task(mail.MailSend, mail_props(server, to="nobody"))
    with pytest.raises(TaskFailed, match="Invalid e-mail header"):
        await run_task(mail.MailSend, mail_props(server, subject="a\nBcc: victim@example.com"))
    with pytest.raises(TaskFailed, match="must be a kestra:// URI"):
        await run_task(mail.MailSend, mail_props(server, attachments=[{"name": "p", "uri": "file:///etc/passwd"}]))
    with pytest.raises(TaskFailed, match="unable to read"):
        await run_task(mail.MailSend, mail_props(server, attachments=[
            {"name": "p", "uri": "kestra:///company/team/flow/executions/exec1/missing.txt"}]))


async def test_mail_kill_interrupts_a_stalled_server(run_task):
    """A server that accepts the connection and never answers: the kill shuts the socket down at once
    (the 60 s session timeout is not waited for)."""
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    started = time.monotonic()
    with trio.move_on_after(0.3) as scope:
        await run_task(mail.MailSend, {"host": "127.0.0.1", "port": port, "transportStrategy": "SMTP",
                                       "sessionTimeout": 60000, "from": "a@example.com", "to": "b@example.com"})
    assert scope.cancelled_caught
    conn, _ = await listener.accept()
    with conn:
        assert await conn.recv(10) == b""    # the client closed the connection: its worker has ended
    listener.close()
    assert time.monotonic() - started < 5
