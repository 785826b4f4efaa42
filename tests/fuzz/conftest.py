"""A cluster of its own for the fuzzers: random DELETEs and PATCHes must not touch
the objects other test modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bad_input_client import RawClient
from tests.e2e.conftest import Cluster, start_cluster


@pytest.fixture(scope="module")
def fuzz_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh `skiff up` per fuzz module."""
    c = start_cluster(tmp_path_factory.mktemp("skiff-fuzz"))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def fuzz_api(fuzz_cluster: Cluster) -> RawClient:
    """A raw client for the fuzz cluster."""
    return RawClient(fuzz_cluster.data_dir, fuzz_cluster.port, timeout=30)
