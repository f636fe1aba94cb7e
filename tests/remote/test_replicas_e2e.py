"""End-to-end API tests of one server, run again against an api replica apart from the gateway's process.

The same test functions as tests/api/test_auth.py, with `server` being replica B of a cluster of an
all-in-one server on NATS and two api replicas (tests/remote/cluster.py): what one process answers, a
replica answers the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.test_auth import (  # noqa: F401 - the fixtures and tests, collected here against a replica
    test_a_viewer_cannot_trade_or_follow_others_orders_over_rpc,
    test_a_viewer_reads_but_cannot_trade_or_create,
    test_order_pushes_reach_only_their_owner,
    test_two_users_never_see_each_others_wallet_sets_and_orders,
    tokens,
    users,
)
from tests.remote.cluster import replicas_cluster
from tests.server import ServerProcess

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # the gateway's process runs every role (an all-in-one server on NATS serves replicas too)
    with replicas_cluster(tmp_path_factory.mktemp("replicas"), gateway_roles="all") as cluster:
        yield cluster.b
