"""Fixtures shared by the integration tests in this folder.

`cluster` is one real `skiff up` per test module (without node agents); a module that
needs other flags defines its own `cluster`, and `client` and `ns` follow it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from skiff.client import Client
from tests.cluster_fixture import Cluster, running_cluster
from tests.controller_helpers import new_namespace


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running cluster for the tests of one module."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[Client]:
    """An API client of `cluster`, closed after the test."""
    c = Client.from_kubeconfig(cluster.kubeconfig, component="test")
    yield c
    await c.close()


@pytest.fixture
async def ns(client: Client) -> str:
    """A fresh namespace for one test."""
    return await new_namespace(client)
