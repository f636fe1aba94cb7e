"""Real local servers the notification tests deliver to: an SMTP server (aiosmtpd) and an HTTP webhook receiver.

Both run in a thread of the test process, so a coinwire server process (or the test's own
event loop) talks to them over real sockets, as it would to the outside world.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from coinwire.services.notifications.webhook import verify_signature
from tests.server import free_port

__all__ = ["SmtpReceiver", "WebhookReceiver", "self_signed"]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiver.add(envelope.content, list(envelope.rcpt_tos))
        return "250 OK"


class SmtpReceiver:
    """An SMTP server on 127.0.0.1 that keeps every message; `distinct` dedupes them on Message-ID, as a mail system can.

    `security`: "none", "starttls" (STARTTLS required) or "tls" (TLS from the first byte), with a
    self-signed certificate made in `folder`; `login`: (user, password) that AUTH must give.
    """

    def __init__(self, folder: Path, security: str = "none", login: tuple[str, str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._lock = threading.Lock()
        self.cert = None
        kwargs: dict[str, Any] = {}
        if security != "none":
            self.cert, key = self_signed(folder)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, key)
            if security == "tls":
                kwargs["ssl_context"] = context
            else:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = True
        if login is not None:
            expected = login

            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == expected
                return AuthResult(success=ok, handled=False)

            kwargs["authenticator"] = authenticate
            # STARTTLS: AUTH only after it; implicit TLS is encrypted from the first byte, which aiosmtpd's
            # session does not know, so it must not hold AUTH back there
            kwargs["auth_require_tls"] = security == "starttls"
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)

    def add(self, raw: bytes, rcpt: list[str]) -> None:
        with self._lock:
            message = message_from_bytes(raw, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
            self.recipients.append(rcpt)

    @staticmethod
    def body(message: EmailMessage, kind: str) -> str:
        """The message's `plain` or `html` part."""
        part = message.get_body((kind,))
        assert part is not None, f"no {kind} part"
        return str(part.get_content()).replace("\r\n", "\n")

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def ids(self) -> Counter[str]:
        with self._lock:
            return Counter(str(m["Message-ID"]) for m in self.messages)

    def distinct(self) -> dict[str, EmailMessage]:
        """The messages by Message-ID, the first of each."""
        out: dict[str, EmailMessage] = {}
        with self._lock:
            for m in self.messages:
                out.setdefault(str(m["Message-ID"]), m)
        return out


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that answers 500 to the first `fail_first` POSTs, then 200; keeps every request."""

    def __init__(self, secret: str, fail_first: int = 0, status: int = 500) -> None:
        self.secret, self.fail_first, self.status = secret, fail_first, status
        self.requests: list[dict[str, Any]] = []  # every POST: headers, body, whether its signature verified, answered
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                failing = len(receiver.requests) < receiver.fail_first
                receiver.requests.append({
                    "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                    "verified": verify_signature(receiver.secret, body, self.headers.get("X-Coinwire-Signature")),
                    "answered": receiver.status if failing else 200})
                self.send_response(receiver.status if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[dict[str, Any]]:
        """The requests answered 200 with their JSON bodies decoded."""
        return [r | {"json": json.loads(r["body"])} for r in self.requests if r["answered"] == 200]
