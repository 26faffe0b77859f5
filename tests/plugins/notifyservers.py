"""Local servers for the notification tests: an HTTP server recording webhook calls, and an SMTP server
(aiosmtpd) with optional STARTTLS or implicit TLS (a self-signed certificate made here) and AUTH."""
from __future__ import annotations

import contextlib
import datetime as _dt
import email
import email.policy
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator


#### webhooks ###############################################################################################

@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: str


class _Hooks(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        body = self.server.files.get(self.path)  # type: ignore[attr-defined]
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        self.server.calls.append(Call(self.path, {k.lower(): v for k, v in self.headers.items()}, body))  # type: ignore[attr-defined]
        code, answer = (500, b"invalid_payload") if self.path.startswith("/fail") else (200, b"ok")
        self.send_response(code)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hooks)
        self.calls: list[Call] = []
        self.files: dict[str, bytes] = {}    # path → body served to GET
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    """Records each POST (``calls``); a path starting with ``/fail`` answers 500 ``invalid_payload``; a GET
    answers the body ``files`` holds for its path (404 otherwise)."""
    server = WebhookServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


#### SMTP ###################################################################################################

def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: (certificate file, key file)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = _dt.datetime.now(_dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - _dt.timedelta(days=1))
            .not_valid_after(now + _dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Any   # email.message.EmailMessage


@dataclass
class SmtpServer:
    host: str
    port: int
    cafile: Path | None
    received: list[Mail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _Recorder:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.server.received.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_server(tmp_path: Path, *, tls: str | None = None, user: str | None = None,
                password: str | None = None) -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1: ``tls`` None (plain), ``"starttls"`` (STARTTLS required) or
    ``"implicit"`` (SMTPS). With ``user``, AUTH is required and only ``user``/``password`` log in."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cafile = None
    kwargs: dict[str, Any] = {}
    if tls:
        cafile, keyfile = make_certificate(tmp_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cafile, keyfile)
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
    server = SmtpServer("127.0.0.1", _free_port(), cafile)
    if user:
        def authenticate(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = data.login.decode() == user and data.password.decode() == password
            if ok:
                server.logins.append(user)
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls is not None)
    controller = Controller(_Recorder(server), hostname="127.0.0.1", port=server.port, **kwargs)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
