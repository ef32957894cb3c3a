"""`PUT/GET _cluster/settings` on a real cluster, as OpenSearch answers them: the settings the
api-specification stories set first, flat and nested bodies and answers, `include_defaults`,
null resets, OpenSearch's errors (validated against the spec's error schema), all or nothing, and
the settings in the cluster state's metadata, kept across a node restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import RunningCluster, running_cluster
from tests.openapi import validate

ML = "plugins.ml_commons."


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    with running_cluster(nodes=1, seed=151) as c:
        yield c


def send(cluster: RunningCluster, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    status, answer, _ = cluster.request(method, path, body=data, headers=headers)
    if status >= 400:
        validate(method, path, status, answer)
    return status, answer


def put_ok(cluster: RunningCluster, body: Any, query: str = "") -> Any:
    status, answer = send(cluster, "PUT", f"/_cluster/settings{query}", body)
    assert status == 200, answer
    assert set(answer) == {"acknowledged", "persistent", "transient"}
    assert answer["acknowledged"] is True
    return answer


def settings(cluster: RunningCluster, query: str = "?flat_settings=true") -> Any:
    status, answer = send(cluster, "GET", f"/_cluster/settings{query}")
    assert status == 200, answer
    return answer


@pytest.fixture(autouse=True)
def reset(cluster: RunningCluster) -> Iterator[None]:
    yield
    put_ok(cluster, {"persistent": {"*": None}, "transient": {"*": None}})


def test_the_settings_the_stories_set_first(cluster: RunningCluster) -> None:
    answer = put_ok(
        cluster,
        {
            "persistent": {
                "plugins.ml_commons.jvm_heap_memory_threshold": 100,
                "plugins.ml_commons.native_memory_threshold": 100,
                "plugins.ml_commons.allow_registering_model_via_url": True,
                "plugins.ml_commons.allow_registering_model_via_local_file": True,
                "plugins.ml_commons.model_access_control_enabled": True,
                "cluster.routing.allocation.disk.watermark.low": "95%",
                "cluster.routing.allocation.disk.watermark.high": "97%",
                "cluster.routing.allocation.disk.watermark.flood_stage": "99%",
            }
        },
    )
    # The answer (no flat_settings): nested, values as text, only what the request set.
    assert answer["transient"] == {}
    assert answer["persistent"] == {
        "cluster": {
            "routing": {
                "allocation": {
                    "disk": {"watermark": {"flood_stage": "99%", "high": "97%", "low": "95%"}}
                }
            }
        },
        "plugins": {
            "ml_commons": {
                "allow_registering_model_via_local_file": "true",
                "allow_registering_model_via_url": "true",
                "jvm_heap_memory_threshold": "100",
                "model_access_control_enabled": "true",
                "native_memory_threshold": "100",
            }
        },
    }
    got = settings(cluster)
    assert got["persistent"][f"{ML}native_memory_threshold"] == "100"
    assert list(got["persistent"]) == sorted(got["persistent"])
    assert "defaults" not in got


def test_nested_and_flat_bodies_transient_and_persistent(cluster: RunningCluster) -> None:
    put_ok(cluster, {"persistent": {"search": {"max_buckets": 100}}})
    answer = put_ok(
        cluster,
        {"transient": {"search.max_buckets": "200", "logger.org.opensearch.tasks": "DEBUG"}},
        "?flat_settings=true",
    )
    assert answer == {
        "acknowledged": True,
        "persistent": {},
        "transient": {"logger.org.opensearch.tasks": "DEBUG", "search.max_buckets": "200"},
    }
    got = settings(cluster, "")
    assert got["persistent"] == {"search": {"max_buckets": "100"}}
    assert got["transient"]["search"] == {"max_buckets": "200"}
    _, state = send(cluster, "GET", "/_cluster/state/metadata")
    metadata = state["metadata"]
    assert metadata["settings"] == {"search.max_buckets": "100"}
    assert metadata["transient_settings"] == {
        "logger.org.opensearch.tasks": "DEBUG",
        "search.max_buckets": "200",
    }
    assert list(metadata).index("settings") < list(metadata).index("indices")


def test_include_defaults_shows_every_setting_not_set(cluster: RunningCluster) -> None:
    put_ok(cluster, {"persistent": {f"{ML}ml_task_timeout_in_seconds": 900}})
    got = settings(cluster, "?include_defaults=true&flat_settings=true")
    defaults = got["defaults"]
    assert f"{ML}ml_task_timeout_in_seconds" not in defaults
    assert got["persistent"] == {f"{ML}ml_task_timeout_in_seconds": "900"}
    assert defaults["cluster.routing.allocation.enable"] == "all"
    assert defaults["cluster.routing.allocation.disk.watermark.low"] == "85%"
    assert defaults["search.default_search_timeout"] == "-1"
    assert defaults["indices.recovery.max_bytes_per_sec"] == "40mb"
    assert defaults["cluster.name"] == "tasksim"
    assert defaults[f"{ML}task_dispatcher.eligible_node_role.remote_model"] == ["data", "ml"]
    assert list(defaults) == sorted(defaults)
    nested = settings(cluster, "?include_defaults=true")["defaults"]
    assert nested["action"]["auto_create_index"] == "true"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"persistent": {"nope.setting": 1}}, "persistent setting [nope.setting], not recognized"),
        ({"transient": {"cluster.name": "x"}},
         "transient setting [cluster.name], not dynamically updateable"),
        ({"persistent": {f"{ML}metrics_collection_enabled": True}},
         f"final persistent setting [{ML}metrics_collection_enabled], not updateable"),
        ({"persistent": {f"{ML}native_memory_threshold": 101}},
         f"Failed to parse value [101] for setting [{ML}native_memory_threshold] must be <= 100"),
        ({"persistent": {"action.destructive_requires_name": "yes"}},
         "Failed to parse value [yes] as only [true] or [false] are allowed."),
        ({"persistent": {"cluster.routing.allocation.disk.watermark.low": "95%"}},
         "low disk watermark [95%] more than high disk watermark [90%]"),
        ({"persistent": {"search.default_search_timeout": "10"}},
         "failed to parse setting [search.default_search_timeout] with value [10] as a time "
         "value: unit is missing or unrecognized"),
    ],
)  # fmt: skip
def test_rejected_updates_change_nothing(
    cluster: RunningCluster, body: dict[str, Any], reason: str
) -> None:
    put_ok(cluster, {"persistent": {"search.max_buckets": 7}})
    before = settings(cluster)
    both = {"persistent": {"search.max_buckets": 8, **body.get("persistent", {})}}
    if "transient" in body:
        both["transient"] = body["transient"]
    status, answer = send(cluster, "PUT", "/_cluster/settings", both)
    assert status == 400
    assert answer["error"]["type"] == "illegal_argument_exception"
    assert answer["error"]["reason"] == reason
    assert answer["error"]["root_cause"] == [
        {"type": "illegal_argument_exception", "reason": reason}
    ]
    assert settings(cluster) == before


@pytest.mark.parametrize(
    "body", [{}, {"persistent": {}}, {"persistent": {"plugins": {}}, "transient": {"a": {}}},
             {"plugins.ml_commons.native_memory_threshold": 1}],
)  # fmt: skip
def test_no_settings_to_update(cluster: RunningCluster, body: dict[str, Any]) -> None:
    status, answer = send(cluster, "PUT", "/_cluster/settings", body)
    assert status == 400
    assert answer["error"]["type"] == "action_request_validation_exception"
    assert answer["error"]["reason"] == "Validation Failed: 1: no settings to update;"


def test_null_resets_and_wildcards(cluster: RunningCluster) -> None:
    put_ok(
        cluster, {"persistent": {f"{ML}native_memory_threshold": 50, f"{ML}max_model_on_node": 3}}
    )
    answer = put_ok(cluster, {"persistent": {f"{ML}native_memory_threshold": None}})
    assert answer["persistent"] == {}
    assert settings(cluster)["persistent"] == {f"{ML}max_model_on_node": "3"}
    put_ok(cluster, {"persistent": {"plugins.ml_commons.*": None}})
    got = settings(cluster, "?include_defaults=true&flat_settings=true")
    assert got["persistent"] == {}
    assert got["defaults"][f"{ML}max_model_on_node"] == "10"


def test_settings_stay_in_the_cluster_state_across_a_node_restart(cluster: RunningCluster) -> None:
    put_ok(cluster, {"persistent": {"cluster.routing.allocation.enable": "primaries"}})
    _, before = send(cluster, "GET", "/_cluster/state/metadata,version")
    cluster.sim.restart("node-1")
    _, after = send(cluster, "GET", "/_cluster/state/metadata,version")
    assert after["version"] > before["version"]
    assert after["metadata"]["settings"] == {"cluster.routing.allocation.enable": "primaries"}


def test_a_node_that_does_not_apply_the_state_in_time_makes_it_unacknowledged(
    cluster: RunningCluster,
) -> None:
    """OpenSearch answers `acknowledged: false` when a node has not applied the new cluster state
    within the request's `timeout`; the settings are applied all the same."""
    cluster.sim.pause("node-1")
    try:
        status, answer = send(
            cluster,
            "PUT",
            "/_cluster/settings?timeout=500ms",
            {"transient": {"search.max_buckets": 9}},
        )
        assert status == 200
        assert answer == {
            "acknowledged": False,
            "persistent": {},
            "transient": {"search": {"max_buckets": "9"}},
        }
        assert settings(cluster)["transient"] == {"search.max_buckets": "9"}
    finally:
        cluster.sim.resume("node-1")
    # the same value again changes no state: acknowledged at once
    assert put_ok(cluster, {"transient": {"search.max_buckets": 9}})["acknowledged"] is True


# -- settings that change what the cluster does ----------------------------------------------------


def test_auto_create_index_false_refuses_a_write_to_a_missing_index(
    cluster: RunningCluster,
) -> None:
    put_ok(cluster, {"persistent": {"action.auto_create_index": "false"}})
    status, answer = send(cluster, "PUT", "/autocreate-off/_doc/1", {"a": 1})
    assert status == 404, answer
    cause = answer["error"]["root_cause"][0]
    assert cause["type"] == "index_not_found_exception"
    assert (
        cause["reason"]
        == "no such index [autocreate-off] and [action.auto_create_index] is [false]"
    )
    assert send(cluster, "GET", "/autocreate-off")[0] == 404  # nothing was created
    # In a bulk, the refused index fails its own items; the others are written.
    assert send(cluster, "PUT", "/autocreate-there", {})[0] == 200
    ndjson = (
        b'{"index": {"_index": "autocreate-off", "_id": "1"}}\n{"a": 1}\n'
        b'{"index": {"_index": "autocreate-there", "_id": "1"}}\n{"a": 1}\n'
    )
    status, body, _ = cluster.request(
        "POST", "/_bulk", body=ndjson, headers={"Content-Type": "application/x-ndjson"}
    )
    assert status == 200 and body["errors"] is True, body
    refused, written = (item["index"] for item in body["items"])
    assert refused["status"] == 404 and refused["error"]["type"] == "index_not_found_exception"
    assert "[action.auto_create_index] is [false]" in refused["error"]["reason"]
    assert written["status"] == 201 and written["result"] == "created"
    # A pattern list allows what it names (AutoCreateIndex: +allowed, -refused, first match wins).
    put_ok(cluster, {"persistent": {"action.auto_create_index": "+logs-*,-*"}})
    assert send(cluster, "PUT", "/logs-1/_doc/1", {"a": 1})[0] == 201
    status, answer = send(cluster, "PUT", "/metrics-1/_doc/1", {"a": 1})
    assert status == 404, answer
    send(cluster, "DELETE", "/autocreate-there")
    send(cluster, "DELETE", "/logs-1")


def test_destructive_requires_name_refuses_wildcard_deletes(cluster: RunningCluster) -> None:
    assert send(cluster, "PUT", "/destructive-a", {})[0] == 200
    put_ok(cluster, {"transient": {"action.destructive_requires_name": True}})
    for expression in ("destructive-*", "_all"):
        status, answer = send(cluster, "DELETE", f"/{expression}")
        assert status == 400, answer
        assert answer["error"]["type"] == "illegal_argument_exception"
        assert answer["error"]["reason"] == "Wildcard expressions or all indices are not allowed"
    assert send(cluster, "GET", "/destructive-a")[0] == 200  # still there
    assert send(cluster, "DELETE", "/destructive-a")[0] == 200  # by its name
