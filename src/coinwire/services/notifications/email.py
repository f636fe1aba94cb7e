"""The e-mail channel: one message per delivery through the server's SMTP relay (aiosmtplib).

The relay comes from `[notifications.smtp]`: STARTTLS on a plain connection, TLS from the first
byte, or none (a relay on the same host). The message's Message-ID is `<key@host>`, built from
the delivery's idempotency key: a delivery re-sent after a crash between the send and its
record carries the same Message-ID, so the receiving mail system (or the reader's client) can
recognise the repeat. The password comes from the settings or the vault at the moment of the
send and goes nowhere else: a failure's reason names the relay and the SMTP code, never it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib

from coinwire.auth.repository import AuthRepository
from coinwire.auth.vault import MasterKeys, Vault
from coinwire.config.notifications import SmtpConfig
from coinwire.core.errors import CoinwireError
from coinwire.services.notifications.channels import Delivery, DeliveryFailed
from coinwire.store import Store

__all__ = ["EmailChannel", "check_address", "message_id", "vault_password"]

PasswordSource = Callable[[], Awaitable[str]]

# What a person types as an address: one @, a dotted domain, no spaces or angle brackets (RFC 5322's
# full grammar accepts much that no relay delivers; this refuses the typos, the relay judges the rest).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")
_PERMANENT = range(500, 600)


def check_address(address: object) -> str | None:
    """The address if it looks deliverable, else None (the API answers `invalid_email`)."""
    if isinstance(address, str) and len(address) <= 254 and _ADDRESS.fullmatch(address):
        return address
    return None


def message_id(key: str, sender: str) -> str:
    """`<key@host>`: the same for every send of one delivery. Characters a Message-ID cannot hold (the key's `:`)
    become `.`: `trade_receipt:7:email` -> `<trade_receipt.7.email@host>`."""
    host = sender.rpartition("@")[2].strip(" >") or "coinwire.local"
    return f"<{re.sub(r'[^A-Za-z0-9_+-]', '.', key)}@{host}>"


def vault_password(store: Store, keys: MasterKeys, reference: str) -> PasswordSource:
    """The password of `password_vault = "<user>/<entry>"`: that user's vault entry's secret, opened at each send."""
    user_name, _, entry = reference.partition("/")

    async def password() -> str:
        user = await AuthRepository(store).user_by_name(user_name)
        if user is None:
            raise DeliveryFailed(f"notifications.smtp.password_vault names no user {user_name!r}")
        try:
            return (await Vault(store, keys).open(int(user["id"]), entry)).secret
        except CoinwireError as exc:
            raise DeliveryFailed(f"notifications.smtp.password_vault: {exc.code}") from None

    return password


class EmailChannel:
    """Sends a delivery to the address in the user's e-mail settings (`{"address": ...}`)."""

    kind = "email"

    def __init__(self, cfg: SmtpConfig, password: PasswordSource | None = None) -> None:
        self.cfg = cfg
        self._password = password  # from the vault (app.py); None: the configured password

    @property
    def configured(self) -> bool:
        """Whether the server has a relay at all (without one, users cannot choose e-mail)."""
        return bool(self.cfg.host)

    def build(self, address: str, delivery: Delivery) -> EmailMessage:
        """The message: plain text, plus the HTML alternative when the delivery has one."""
        message = EmailMessage()
        message["From"] = self.cfg.sender
        message["To"] = address
        message["Subject"] = delivery.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id(delivery.key, self.cfg.sender)
        message["X-Coinwire-Event"] = delivery.event
        message.set_content(delivery.text)
        if delivery.html is not None:
            message.add_alternative(delivery.html, subtype="html")
        return message

    async def send(self, target: Mapping[str, Any], delivery: Delivery) -> None:
        if not self.configured:
            raise DeliveryFailed("the server has no SMTP relay configured ([notifications.smtp] host)", retryable=False)
        address = check_address(target.get("address"))
        if address is None:
            raise DeliveryFailed("no valid e-mail address is set", retryable=False)
        cfg = self.cfg
        password = await self._password() if self._password is not None else cfg.password
        try:
            await aiosmtplib.send(
                self.build(address, delivery),
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username or None,
                password=(password or None) if cfg.username else None,
                use_tls=cfg.security == "tls",
                start_tls=True if cfg.security == "starttls" else False,
                validate_certs=cfg.verify,
                cert_bundle=cfg.ca_file or None,
                timeout=cfg.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            # the relay's code and first words; a 5xx on the recipient will not change by retrying
            raise DeliveryFailed(f"SMTP relay {cfg.host}:{cfg.port} answered {exc.code}",
                                 retryable=exc.code not in _PERMANENT or exc.code in (535, 530)) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"SMTP relay {cfg.host}:{cfg.port} unreachable or refused: {type(exc).__name__}") from None
