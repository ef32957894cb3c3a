from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import RunningCluster, running_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    """A 3-node cluster (plus the coordinating node) shared by the tests of one module."""
    with running_cluster(nodes=3) as c:
        yield c
