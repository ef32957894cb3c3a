"""Parameters OpenSearch's docs page lists for `GET _tasks` that OpenSearch itself rejects:
`master_timeout` / `cluster_manager_timeout` (RestListTasksAction reads neither) are OpenSearch's
400 `unrecognized parameter`, validated against the spec's error schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import RunningCluster, running_cluster
from tests.openapi import validate


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    with running_cluster(nodes=1, seed=155) as c:
        yield c


@pytest.mark.parametrize("param", ["master_timeout", "cluster_manager_timeout"])
def test_cluster_manager_timeouts_on_list_tasks_are_rejected(
    cluster: RunningCluster, param: str
) -> None:
    status, body = cluster.get(f"/_tasks?{param}=30s")
    validate("GET", f"/_tasks?{param}=30s", status, body)
    reason = f"request [/_tasks] contains unrecognized parameter: [{param}]"
    assert (status, body["error"]["type"], body["error"]["reason"]) == (
        400,
        "illegal_argument_exception",
        reason,
    )
    assert body["error"]["root_cause"] == [{"type": "illegal_argument_exception", "reason": reason}]
