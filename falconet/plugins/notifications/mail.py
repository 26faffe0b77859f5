"""``io.kestra.plugin.notifications.mail.MailSend``: send an e-mail over SMTP with the standard library's
``smtplib``, on a worker thread (a kill or timeout shuts its socket down).

``transportStrategy`` as in Kestra (Simple Java Mail): ``SMTPS`` (default; TLS from the first byte, port 465),
``SMTP_TLS`` (plain connection upgraded with a mandatory STARTTLS, port 587) or ``SMTP`` (port 25; STARTTLS
when the server offers it, without certificate checks — Simple Java Mail's opportunistic TLS). TLS
certificates are verified against the system's trust store (``SSL_CERT_FILE`` names another). ``username``
logs in (AUTH PLAIN/LOGIN). ``to`` and ``cc`` hold addresses separated by ``;`` (or ``,``);
``plainTextContent`` (default "Please view this email in a modern email client") and ``htmlTextContent`` are
alternatives of one message; ``attachments`` and ``embeddedImages`` are ``{name, uri, contentType}`` with
``kestra://`` URIs of internal storage; an embedded image is shown by ``<img src="cid:NAME">`` in the HTML.
"""
from __future__ import annotations

import contextlib
import mimetypes
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import trio

from falconet.plugins.threads import run_interruptible
from falconet.sdk import (
    ENUM, Example, INTEGER, IllegalArgument, LIST, NotFound, Prop, RunContext, RunnableTask, STRING, TaskFailed,
    register,
)

STRATEGIES = ("SMTP", "SMTPS", "SMTP_TLS")
PORTS = {"SMTP": 25, "SMTPS": 465, "SMTP_TLS": 587}
DEFAULT_TEXT = "Please view this email in a modern email client"
#: total size of the attachments and embedded images of one e-mail
MAX_ATTACHMENTS = 50 * 1024 * 1024

_ATTACHMENT = Prop(LIST, description="Files from internal storage: a list of {name, uri, contentType}.")


def _addresses(value: Any, what: str) -> list[str]:
    text = str(value or "").replace(";", ",")
    found = [addr for _, addr in getaddresses([text]) if addr]
    if not found or any("@" not in a for a in found):
        raise TaskFailed(f"{what} must hold e-mail addresses separated by ';', got '{value}'")
    return found


async def _files(ctx: RunContext, specs: Any, what: str, budget: list[int]) -> list[tuple[str, bytes, str]]:
    """``(name, content, contentType)`` of each ``{name, uri, contentType}`` of ``specs``, read from storage."""
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise TaskFailed(f"{what} must be a list of {{name, uri, contentType}}")
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not spec.get("uri") or not spec.get("name"):
            raise TaskFailed(f"{what}[{i}] needs a name and a uri")
        uri, name = str(spec["uri"]), str(spec["name"])
        if not uri.startswith("kestra://"):
            raise TaskFailed(f"{what}[{i}].uri must be a kestra:// URI of internal storage, not '{uri}'")
        try:
            size = await trio.to_thread.run_sync(ctx.storage.size, uri)
            budget[0] -= size
            if budget[0] < 0:
                raise TaskFailed(f"The attachments are larger than {MAX_ATTACHMENTS} bytes")
            data = await trio.to_thread.run_sync(ctx.storage.read_bytes, uri)
        except (NotFound, IllegalArgument) as exc:
            raise TaskFailed(f"{what}[{i}]: unable to read '{uri}': {exc}") from exc
        content_type = str(spec.get("contentType") or mimetypes.guess_type(name)[0] or "application/octet-stream")
        out.append((name, data, content_type))
    return out


def _split_type(content_type: str) -> tuple[str, str]:
    main, _, sub = content_type.partition(";")[0].strip().partition("/")
    return (main, sub) if main and sub else ("application", "octet-stream")


async def build_message(ctx: RunContext) -> tuple[EmailMessage, str, list[str]]:
    """The message, its sender and all its recipients (``to`` then ``cc``)."""
    sender = ctx.prop("from")
    if not sender:
        raise TaskFailed("from is required")
    to = _addresses(ctx.prop("to"), "to")
    cc = _addresses(ctx.prop("cc"), "cc") if ctx.prop("cc") else []
    html = ctx.prop("htmlTextContent")
    budget = [MAX_ATTACHMENTS]
    attachments = await _files(ctx, ctx.prop("attachments"), "attachments", budget)
    images = await _files(ctx, ctx.prop("embeddedImages"), "embeddedImages", budget)
    msg = EmailMessage()
    try:
        msg["From"] = str(sender)
        msg["To"] = ", ".join(to)
        if cc:
            msg["Cc"] = ", ".join(cc)
        if ctx.prop("subject") is not None:
            msg["Subject"] = str(ctx.prop("subject"))
        msg["Disposition-Notification-To"] = str(sender)    # Kestra asks for a return receipt
        msg["Return-Receipt-To"] = str(sender)
    except ValueError as exc:   # a header value with a line break
        raise TaskFailed(f"Invalid e-mail header: {exc}") from exc
    msg.set_content(str(ctx.prop("plainTextContent") or DEFAULT_TEXT))
    if html is not None:
        msg.add_alternative(str(html), subtype="html")
        html_part = msg.get_body(("html",))
        assert html_part is not None
        for name, data, content_type in images:
            main, sub = _split_type(content_type)
            html_part.add_related(data, main, sub, cid=f"<{name}>", filename=name, disposition="inline")
    for name, data, content_type in attachments:
        main, sub = _split_type(content_type)
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg, _addresses(sender, "from")[0], to + cc


class _SMTP(smtplib.SMTP):
    """``smtplib.SMTP`` created unconnected, so that :meth:`_Transport.interrupt` reaches the socket while the
    server's greeting is awaited."""

    def connect(self, host: str = "localhost", port: int = 0,
                source_address: Any = None) -> tuple[int, bytes]:
        # the TLS server name of starttls() (and of SMTP_SSL): smtplib sets it only when its constructor connects
        self._host = host
        return super().connect(host, port, source_address)


class _SMTPS(_SMTP, smtplib.SMTP_SSL):
    """:class:`_SMTP` with TLS from the first byte."""


class _Transport:
    """The SMTP conversation of one send, on the worker thread; :meth:`interrupt` shuts its socket down."""

    def __init__(self, strategy: str, host: str, port: int, timeout: float, username: str | None,
                 password: str | None):
        self.strategy, self.host, self.port, self.timeout = strategy, host, port, timeout
        self.username, self.password = username, password
        self.smtp: smtplib.SMTP | None = None
        self.interrupted = False

    def send(self, msg: EmailMessage, sender: str, recipients: list[str]) -> None:
        if self.strategy == "SMTPS":
            self.smtp = _SMTPS(timeout=self.timeout, context=ssl.create_default_context())
        else:
            self.smtp = _SMTP(timeout=self.timeout)
        with self.smtp as smtp:
            if self.interrupted:
                raise OSError("interrupted")
            smtp.connect(self.host, self.port)
            smtp.ehlo()
            if self.strategy == "SMTP_TLS":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            elif self.strategy == "SMTP" and smtp.has_extn("starttls"):
                unverified = ssl.create_default_context()
                unverified.check_hostname = False
                unverified.verify_mode = ssl.CERT_NONE
                smtp.starttls(context=unverified)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg, sender, recipients)

    def interrupt(self) -> None:
        self.interrupted = True
        sock = self.smtp.sock if self.smtp is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@register
class MailSend(RunnableTask):
    """Send an e-mail over SMTP (see the module documentation)."""

    type = "io.kestra.plugin.notifications.mail.MailSend"
    title = "Send an automated email from a workflow."
    examples = (
        Example("Send an e-mail with a file of the execution attached when the flow fails.",
                "id: mail_on_failure\n"
                "namespace: company.team\n"
                "\n"
                "tasks:\n"
                "  - id: export\n"
                "    type: io.kestra.plugin.core.http.Download\n"
                "    uri: https://example.com/report.csv\n"
                "\n"
                "errors:\n"
                "  - id: send_email\n"
                "    type: io.kestra.plugin.notifications.mail.MailSend\n"
                "    from: kestra@example.com\n"
                "    to: ops@example.com;data@example.com\n"
                "    subject: \"Flow {{ flow.id }} failed\"\n"
                "    host: smtp.example.com\n"
                "    port: 587\n"
                "    transportStrategy: SMTP_TLS\n"
                "    username: kestra\n"
                "    password: \"{{ secret('SMTP_PASSWORD') }}\"\n"
                "    htmlTextContent: \"Execution <b>{{ execution.id }}</b> failed.\"\n", full=True),
    )
    props = {
        "host": Prop(STRING, required=True, description="The e-mail server host."),
        "port": Prop(INTEGER, description="The e-mail server port (default: 465 SMTPS, 587 SMTP_TLS, 25 SMTP)."),
        "username": Prop(STRING, description="The e-mail server username."),
        "password": Prop(STRING, description="The e-mail server password."),
        "transportStrategy": Prop(ENUM, default="SMTPS", values=STRATEGIES,
                                  description="SMTPS (implicit TLS), SMTP_TLS (STARTTLS) or SMTP."),
        "sessionTimeout": Prop(INTEGER, default=10000, description="Timeout of each server exchange, in ms."),
        "from": Prop(STRING, required=True, description="The sender's address."),
        "to": Prop(STRING, required=True, description="Recipients, separated by ';'."),
        "cc": Prop(STRING, description="Carbon-copy recipients, separated by ';'."),
        "subject": Prop(STRING, description="The subject."),
        "htmlTextContent": Prop(STRING, description="The HTML body."),
        "plainTextContent": Prop(STRING, description="The plain-text body."),
        "attachments": _ATTACHMENT,
        "embeddedImages": Prop(LIST, description="Images for the HTML body (cid:NAME): a list of "
                                                 "{name, uri, contentType}."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        msg, sender, recipients = await build_message(ctx)
        strategy = str(ctx.prop("transportStrategy"))
        port = ctx.prop("port") or PORTS[strategy]
        timeout = max(1, ctx.prop("sessionTimeout") or 10000) / 1000
        transport = _Transport(strategy, str(ctx.prop("host")), int(port), timeout, ctx.prop("username"),
                               ctx.prop("password"))
        ctx.logger.debug(f"Sending an email to {', '.join(recipients)}")
        try:
            await run_interruptible(lambda: transport.send(msg, sender, recipients), transport.interrupt,
                                    name="smtp-interrupt")
        except (smtplib.SMTPException, OSError) as exc:
            raise TaskFailed(f"Unable to send the email through {ctx.prop('host')}:{port}: "
                             f"{type(exc).__name__}: {exc}") from exc
        return None
