"""coinwire.roles: the role names, parse_roles, the services each role runs, and why a set of roles is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinwire.config import ConfigError, load_settings
from coinwire.roles import NEED_GATEWAY, NEEDS, ROLES, SERVICES, RoleError, is_all, parse_roles, refusals, services_of

SHARED = {"store_url": "postgresql://u@db/coinwire", "bus_url": "nats://nats:4222", "cache_url": "redis://redis:6379/0"}
EMBEDDED = {"store_url": "sqlite:////tmp/coinwire.db", "bus_url": "memory://", "cache_url": "memory://"}


def test_the_roles_and_their_tables_name_the_same_roles() -> None:
    assert ROLES == ("api", "gateway", "marketdata", "engine", "tracker", "scheduler", "notifier")
    assert set(SERVICES) == set(NEEDS) == set(ROLES)
    services = [s for role in ROLES for s in SERVICES[role]]
    assert len(services) == len(set(services))  # each service belongs to one role: started once
    assert NEED_GATEWAY < set(ROLES) and "gateway" not in NEED_GATEWAY and "marketdata" not in NEED_GATEWAY


def test_all_and_nothing_are_every_role() -> None:
    assert parse_roles("all") == parse_roles([]) == parse_roles("") == parse_roles(["all"]) == frozenset(ROLES)
    assert parse_roles("api,all") == frozenset(ROLES)
    assert is_all(parse_roles("all")) and not is_all(parse_roles("api,gateway"))


def test_unknown_roles_are_refused_with_the_list_of_roles() -> None:
    for bad in ("bogus", "api,gatway", ["api", "x"], [3]):
        with pytest.raises(RoleError, match="roles are all or a comma list of api, gateway, marketdata"):
            parse_roles(bad)  # type: ignore[arg-type]


@given(st.sets(st.sampled_from(ROLES), min_size=1), st.randoms())
def test_any_set_of_roles_reads_back_whatever_its_order_case_and_spaces(chosen: set[str], rnd: object) -> None:
    names = sorted(chosen)
    rnd.shuffle(names)  # type: ignore[attr-defined]
    text = " , ".join(n.upper() if i % 2 else n for i, n in enumerate(names)) + ",,"
    assert parse_roles(text) == frozenset(chosen) == parse_roles(names)
    assert services_of(chosen) == frozenset(s for r in chosen for s in SERVICES[r])


@given(st.sets(st.sampled_from(ROLES), min_size=1))
def test_a_split_process_is_refused_exactly_when_a_port_it_needs_is_embedded_or_its_gateway_is_missing(chosen: set[str]) -> None:
    gateway_missing = "gateway" not in chosen and bool(chosen & NEED_GATEWAY)
    assert bool(refusals(chosen, **SHARED)) == (gateway_missing and not is_all(chosen))
    embedded = refusals(chosen, **EMBEDDED)
    if is_all(chosen):
        assert embedded == []
    else:
        assert any("COINWIRE_STORE_URL=postgresql://" in p for p in embedded)  # every role needs the shared store
        assert any("COINWIRE_BUS_URL=nats://" in p for p in embedded) == any("bus" in NEEDS[r] for r in chosen)
        assert any("COINWIRE_CACHE_URL=redis://" in p for p in embedded) == any("cache" in NEEDS[r] for r in chosen)


def test_the_messages_name_the_setting_to_change() -> None:
    assert refusals({"marketdata"}, **{**SHARED, "cache_url": "memory://"}) == [
        "role(s) marketdata without every other role in this process need a shared cache: set COINWIRE_CACHE_URL="
        "redis://host:6379/0 (the default memory:// cache is this process's own)"]
    assert refusals({"api"}, **SHARED) == []  # an api replica forwards its calls to the gateway's process
    assert refusals({"engine"}, **SHARED) == [
        "role(s) engine need the gateway role in the same process for now (commands across processes are not there yet): "
        "add gateway, e.g. --roles engine,gateway"]
    assert refusals({"api", "gateway"}, **SHARED) == [] and refusals({"marketdata"}, **SHARED) == []


def test_the_settings_read_roles_from_the_environment_and_refuse_unknown_ones() -> None:
    assert load_settings(env={}).roles == ["all"]
    assert parse_roles(load_settings(env={"COINWIRE_ROLES": "api, gateway"}).roles) == {"api", "gateway"}
    with pytest.raises(ConfigError, match="unknown role nope: roles are all or a comma list of api"):
        load_settings(env={"COINWIRE_ROLES": "api,nope"})
