"""Settings of the notifier: the server's SMTP relay and the delivery worker's retries.

```toml
[notifications]
attempts = 8          # sends of one delivery before it is parked as a dead letter
base_delay = 2.0      # seconds before the first retry; doubled after each failure
max_delay = 3600.0    # the longest wait between two attempts
poll_interval = 1.0   # seconds between looks at the outbox when nothing woke the worker
recovery_orders = 1000  # newest done orders checked for a missing receipt at start (a crash before the outbox row)

[notifications.smtp]
host = "smtp.example.org"   # empty: no e-mail channel
port = 587
security = "starttls"       # starttls | tls | none
username = "coinwire"
password = ""               # or password_vault = "admin/smtp": that user's vault entry "smtp" holds it
sender = "coinwire <coinwire@example.org>"
```

Each key is also read from `COINWIRE_NOTIFICATIONS_<KEY>` and `COINWIRE_NOTIFICATIONS_SMTP_<KEY>`
(e.g. `COINWIRE_NOTIFICATIONS_SMTP_PASSWORD`), which win over the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["NotificationsConfig", "SmtpConfig", "SECURITY", "check_notifications", "notifications_env", "public_notifications"]

SECURITY = ("starttls", "tls", "none")


class SmtpConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The relay every e-mail goes through; `repr` hides the password."""

    host: str = ""
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = ""
    password_vault: str = ""  # "<user>/<entry>": the secret of that user's vault entry (`coinwire keys set`)
    sender: str = "coinwire@localhost"
    timeout: float = 10.0  # seconds per SMTP conversation
    ca_file: str = ""  # certificates to trust besides the system's (a relay with its own CA)
    verify: bool = True  # check the relay's certificate

    def __repr__(self) -> str:
        return f"SmtpConfig(host={self.host!r}, port={self.port}, security={self.security!r}, password=***)"


class NotificationsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    smtp: SmtpConfig = msgspec.field(default_factory=SmtpConfig)
    attempts: int = 8
    base_delay: float = 2.0
    max_delay: float = 3600.0
    poll_interval: float = 1.0
    recovery_orders: int = 1000


_PREFIX = "COINWIRE_NOTIFICATIONS_"


def notifications_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The `[notifications]` keys set by environment variables, nested like the file's table."""
    out: dict[str, Any] = {}
    for name in ("attempts", "base_delay", "max_delay", "poll_interval", "recovery_orders"):
        raw = env.get(_PREFIX + name.upper())
        if raw:
            out[name] = raw
    smtp = {name: env[_PREFIX + "SMTP_" + name.upper()] for name in SmtpConfig.__struct_fields__
            if env.get(_PREFIX + "SMTP_" + name.upper())}
    if smtp:
        out["smtp"] = smtp
    return out


def check_notifications(cfg: NotificationsConfig) -> list[str]:
    """What is wrong with the settings, as sentences naming the key."""
    problems = []
    smtp = cfg.smtp
    if smtp.security not in SECURITY:
        problems.append(f"notifications.smtp.security must be one of {', '.join(SECURITY)}, got {smtp.security!r}")
    if not 0 < smtp.port < 65536:
        problems.append(f"notifications.smtp.port must be between 1 and 65535, got {smtp.port}")
    if smtp.password and smtp.password_vault:
        problems.append("notifications.smtp: set password or password_vault, not both")
    if smtp.password_vault and smtp.password_vault.count("/") != 1:
        problems.append("notifications.smtp.password_vault must be '<user>/<entry>', e.g. 'admin/smtp'")
    if smtp.timeout <= 0:
        problems.append("notifications.smtp.timeout must be above 0 seconds")
    if not 1 <= cfg.attempts <= 100:
        problems.append(f"notifications.attempts must be between 1 and 100, got {cfg.attempts}")
    if not 0 < cfg.base_delay <= cfg.max_delay:
        problems.append("notifications.base_delay must be above 0 and at most max_delay")
    if cfg.poll_interval <= 0:
        problems.append("notifications.poll_interval must be above 0 seconds")
    if not 0 <= cfg.recovery_orders <= 1_000_000:
        problems.append("notifications.recovery_orders must be between 0 and 1000000")
    return problems


def public_notifications(cfg: NotificationsConfig) -> dict[str, Any]:
    """The settings as `coinwire config show` prints them: the password never."""
    data: dict[str, Any] = msgspec.to_builtins(cfg)
    if data["smtp"]["password"]:
        data["smtp"]["password"] = "***"
    return data
