"""Orders, fills and wallet lines are left out of the garbage collector (msgspec `gc=False`);
that is only safe while every field holds a scalar, so no instance can close a reference cycle."""

from __future__ import annotations

import gc

import msgspec.inspect as mi
import pytest

from coinwire.core.orders import Fill, Order
from coinwire.core.wallets import WalletLine
from tests.store.test_store_contract import fill, order

_SCALARS = (mi.IntType, mi.StrType, mi.BoolType, mi.NoneType, mi.EnumType)


def _scalar(kind: mi.Type) -> bool:
    if isinstance(kind, mi.UnionType):
        return all(_scalar(member) for member in kind.types)
    return isinstance(kind, _SCALARS)


@pytest.mark.parametrize("record", [Order, Fill, WalletLine])
def test_untracked_records_hold_only_scalars(record: type) -> None:
    assert record.__struct_config__.gc is False
    containers = [f.name for f in mi.type_info(record).fields if not _scalar(f.type)]
    assert containers == [], f"{record.__name__}: a container field could close a cycle the collector never sees"


def test_instances_are_not_tracked() -> None:
    assert not gc.is_tracked(order(1))
    assert not gc.is_tracked(fill(1, 1))
