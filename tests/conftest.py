from __future__ import annotations

from collections.abc import Iterator

import pytest

from coordinator.testing.profiles import load_profile
from tests.harness import RunningCluster, running_cluster

# HYPOTHESIS_PROFILE=ci|dev|long; `tasksim-ci` (derandomized, bounded) when CI is set.
load_profile()


def pytest_configure(config: pytest.Config) -> None:
    # The `tasksim` plugin comes through its pytest11 entry point once the package is installed
    # (`pip install -e .`); an install older than the entry point still gets it here.
    if not config.pluginmanager.has_plugin("tasksim"):
        config.pluginmanager.import_plugin("coordinator.testing.plugin")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    """A 3-node cluster (plus the coordinating node) shared by the tests of one module."""
    with running_cluster(nodes=3) as c:
        yield c
