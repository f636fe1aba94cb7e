"""Runtime settings in the store: the configuration's until an admin sets them, then the admin's, kept; never unsafe."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from coinwire.auth.site_settings import RegistrationSettings, SiteSettings
from coinwire.core.errors import InvalidInput
from coinwire.store import Store
from coinwire.store.tables import site_settings

CLOSED = RegistrationSettings(self_registration=False, registration_role="viewer")
OPEN_VIEWERS = RegistrationSettings(self_registration=True, registration_role="viewer")


async def _rows(store: Store) -> dict[str, tuple[str, int | None]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(site_settings.c.key, site_settings.c.value, site_settings.c.updated_by))
        return {key: (value, by) for key, value, by in rows}


async def test_the_configuration_gives_the_defaults_until_an_admin_sets_one(store: Store) -> None:
    assert await SiteSettings(store, CLOSED).get() == CLOSED
    assert await SiteSettings(store, OPEN_VIEWERS).open_role() == "viewer"
    assert await SiteSettings(store, CLOSED).open_role() is None
    assert await _rows(store) == {}  # reading writes nothing


async def test_an_admins_choice_wins_over_the_configuration_and_outlives_the_process(store: Store) -> None:
    first = SiteSettings(store, OPEN_VIEWERS)
    now = await first.update({"self_registration": False, "registration_role": None}, user_id=1)
    assert now == CLOSED
    assert await _rows(store) == {"self_registration": ("false", 1)}  # only what was set: the role still follows the config
    restarted = SiteSettings(store, RegistrationSettings(self_registration=True, registration_role="trader"))
    assert await restarted.get() == RegistrationSettings(self_registration=False, registration_role="trader")
    assert await restarted.open_role() is None
    await restarted.update({"self_registration": True, "registration_role": "viewer"}, user_id=2)
    assert await SiteSettings(store, CLOSED).open_role() == "viewer"
    assert await _rows(store) == {"self_registration": ("true", 2), "registration_role": ('"viewer"', 2)}


@pytest.mark.parametrize("role", ["admin", "root", "", "Viewer"])
async def test_a_role_other_than_viewer_or_trader_is_refused_and_nothing_written(store: Store, role: str) -> None:
    settings = SiteSettings(store, CLOSED)
    with pytest.raises(InvalidInput) as refused:
        await settings.update({"self_registration": True, "registration_role": role}, user_id=1)
    assert refused.value.code == "invalid_role"
    assert await _rows(store) == {}
    assert await settings.open_role() is None



async def test_a_row_that_is_not_a_valid_setting_falls_back_to_the_configuration(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(site_settings).values(key="registration_role", value='"admin"', updated_at=1, updated_by=None))
    assert await SiteSettings(store, CLOSED).get() == CLOSED
    async with store.engine.begin() as conn:
        await conn.execute(site_settings.update().values(value="not json"))
    assert await SiteSettings(store, OPEN_VIEWERS).get() == OPEN_VIEWERS
