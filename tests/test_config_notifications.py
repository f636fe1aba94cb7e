"""[notifications] settings: the file's table, COINWIRE_NOTIFICATIONS_* per key over it, checks, and the password kept out of views."""

from __future__ import annotations

from pathlib import Path

import pytest

from coinwire.config import ConfigError, load_settings

FILE = """
[notifications]
attempts = 5
base_delay = 1.5
max_delay = 60.0
poll_interval = 0.5
recovery_orders = 200

[notifications.smtp]
host = "smtp.example.org"
port = 465
security = "tls"
username = "coinwire"
password = "file-password-123"
sender = "coinwire <bot@example.org>"
timeout = 7.5
ca_file = "/etc/ssl/relay.pem"
verify = false
"""


def test_the_file_sets_every_key(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(FILE)
    n = load_settings(tmp_path / "c.toml", env={}).notifications
    assert (n.attempts, n.base_delay, n.max_delay, n.poll_interval, n.recovery_orders) == (5, 1.5, 60.0, 0.5, 200)
    s = n.smtp
    assert (s.host, s.port, s.security, s.username, s.password, s.sender, s.timeout, s.ca_file, s.verify) == (
        "smtp.example.org", 465, "tls", "coinwire", "file-password-123", "coinwire <bot@example.org>", 7.5, "/etc/ssl/relay.pem", False)


def test_environment_variables_override_single_keys_and_keep_the_rest_of_the_file(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(FILE)
    env = {"COINWIRE_NOTIFICATIONS_SMTP_PORT": "2525", "COINWIRE_NOTIFICATIONS_SMTP_SECURITY": "starttls",
           "COINWIRE_NOTIFICATIONS_SMTP_PASSWORD": "", "COINWIRE_NOTIFICATIONS_SMTP_PASSWORD_VAULT": "",
           "COINWIRE_NOTIFICATIONS_SMTP_HOST": "relay.internal", "COINWIRE_NOTIFICATIONS_ATTEMPTS": "9",
           "COINWIRE_NOTIFICATIONS_BASE_DELAY": "0.25", "COINWIRE_NOTIFICATIONS_MAX_DELAY": "30",
           "COINWIRE_NOTIFICATIONS_POLL_INTERVAL": "2", "COINWIRE_NOTIFICATIONS_RECOVERY_ORDERS": "0",
           "COINWIRE_NOTIFICATIONS_SMTP_USERNAME": "env-user", "COINWIRE_NOTIFICATIONS_SMTP_SENDER": "env@example.org",
           "COINWIRE_NOTIFICATIONS_SMTP_TIMEOUT": "3", "COINWIRE_NOTIFICATIONS_SMTP_CA_FILE": "/tmp/ca.pem",
           "COINWIRE_NOTIFICATIONS_SMTP_VERIFY": "true"}
    n = load_settings(tmp_path / "c.toml", env=env).notifications
    assert (n.attempts, n.base_delay, n.max_delay, n.poll_interval, n.recovery_orders) == (9, 0.25, 30.0, 2.0, 0)
    s = n.smtp
    assert (s.host, s.port, s.security, s.username, s.sender, s.timeout, s.ca_file, s.verify) == (
        "relay.internal", 2525, "starttls", "env-user", "env@example.org", 3.0, "/tmp/ca.pem", True)
    assert s.password == "file-password-123"  # an empty variable is not set: the file's value stays
    vault = load_settings(env={"COINWIRE_NOTIFICATIONS_SMTP_PASSWORD_VAULT": "admin/smtp"}).notifications.smtp
    assert (vault.password_vault, vault.password) == ("admin/smtp", "")


def test_the_password_never_shows(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(FILE)
    settings = load_settings(tmp_path / "c.toml", env={})
    assert settings.to_public()["notifications"]["smtp"]["password"] == "***"
    assert "file-password-123" not in repr(settings) and "file-password-123" not in str(settings.to_public())


@pytest.mark.parametrize(("notifications", "message"), [
    ({"smtp": {"security": "ssl"}}, "notifications.smtp.security must be one of starttls, tls, none"),
    ({"smtp": {"port": 0}}, "notifications.smtp.port must be between 1 and 65535"),
    ({"smtp": {"password": "x", "password_vault": "admin/smtp"}}, "set password or password_vault, not both"),
    ({"smtp": {"password_vault": "admin"}}, "password_vault must be '<user>/<entry>'"),
    ({"smtp": {"timeout": 0}}, "notifications.smtp.timeout must be above 0"),
    ({"attempts": 0}, "notifications.attempts must be between 1 and 100"),
    ({"base_delay": 10, "max_delay": 5}, "base_delay must be above 0 and at most max_delay"),
    ({"poll_interval": 0}, "poll_interval must be above 0"),
    ({"recovery_orders": -1}, "recovery_orders must be between 0 and 1000000"),
    ({"smtp": {"hots": "x"}}, "invalid configuration"),
])
def test_bad_settings_name_the_key(notifications: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env={}, overrides={"notifications": notifications})
