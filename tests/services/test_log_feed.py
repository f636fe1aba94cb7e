"""What a log record's context keeps (never a secret-named field), and who may read a log message."""

from __future__ import annotations

from coinwire.auth.abilities import Principal
from coinwire.messages import LogMessage, decode, encode
from coinwire.services.log_feed import LogRing, _context, log_view, visible

ADMIN = Principal(1, "admin", "admin", "pro")
TOM = Principal(2, "tom", "trader", "free")
TESS = Principal(3, "tess", "trader", "free")


def test_secret_named_fields_are_never_copied_and_values_are_plain_and_bounded() -> None:
    fields = {"event": "x", "level": "warning", "timestamp": "t", "password": "p", "refresh_token": "r", "api_key": "k",
              "Authorization": "Bearer z", "exchange": "demo", "order_id": 7, "error": ValueError("boom"), "long": "y" * 5000}
    context = _context(fields)
    assert context == {"exchange": "demo", "order_id": 7, "error": "boom", "long": "y" * 2000}


def test_admins_read_every_message_users_only_their_own_and_the_ring_is_bounded_newest_first() -> None:
    ring = LogRing(3)
    for i, owner in enumerate((None, 2, 3, 2)):
        ring.add(LogMessage("info", "user.orders.manual", f"m{i}", i * 1_000_000_000, {}, owner))
    assert [m["message"] for m in ring.recent(ADMIN, 10)] == ["m3", "m2", "m1"]  # m0 fell off
    assert [m["message"] for m in ring.recent(TOM, 10)] == ["m3", "m1"]
    assert [m["message"] for m in ring.recent(TOM, 1)] == ["m3"]
    assert [m["message"] for m in ring.recent(TESS, 10)] == ["m2"]
    server_warning = LogMessage("warning", "coinwire.gateway", "w", 0)
    assert visible(ADMIN, server_warning) and not visible(TOM, server_warning) and not visible(None, server_warning)
    read_only_admin_key = Principal(1, "admin", "admin", "pro", scopes=("read",))
    assert not visible(read_only_admin_key, server_warning)


def test_a_log_message_crosses_a_network_bus_with_its_context_and_owner() -> None:
    message = LogMessage("error", "coinwire.bus", "m", 1_500_000_000, {"exchange": "demo"}, 2)
    assert decode(encode(message)) == message
    view = log_view(message)
    assert view["level"] == "error" and view["levelname"] == "ERROR" and view["source"] == "coinwire.bus"
    assert view["time"] == 1500 and view["created"] == 1.5 and view["context"] == {"exchange": "demo", "owner_id": 2}
