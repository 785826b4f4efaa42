"""What a new cluster holds before any controller runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from skiff.apiserver.server import SYSTEM_NAMESPACES
from skiff.client import Client
from tests.cluster_fixture import Cluster, running_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("bootstrap"),
                         extra_args=("--no-controllers",)) as c:
        yield c


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[Client]:
    c = Client.from_kubeconfig(cluster.kubeconfig)
    yield c
    await c.close()


async def test_system_namespaces_hold_a_default_account_from_the_start(client: Client) -> None:
    # No service account controller runs here: the API server made them, so a pod sent
    # as soon as the cluster answers passes service account admission.
    for ns in SYSTEM_NAMESPACES:
        sa = await client.get("", "v1", "serviceaccounts", "default", ns)
        assert sa["metadata"]["namespace"] == ns
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "early"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    created = await client.create("", "v1", "pods", pod, "default")
    assert created["spec"]["serviceAccountName"] == "default"
    await client.delete("", "v1", "pods", "early", "default")
