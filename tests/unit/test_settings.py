"""coordinator/settings.py: the cluster settings registry and `SettingsUpdater`, with OpenSearch's
messages (Setting.java, AbstractScopedSettings.java, TimeValue, ByteSizeValue, RatioValue,
Booleans, DiskThresholdSettings, EnableAllocationDecider, AutoCreateIndex, MLCommonsSettings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordinator import settings as s
from simnode.errors import IllegalArgumentError

ML = "plugins.ml_commons."


def put(
    body: dict[str, Any], scope: str = "persistent", start: dict[str, Any] | None = None
) -> Any:
    p = dict(start or {})
    if scope == "persistent":
        return s.update(p, {}, body, None)
    return s.update({}, p, None, body)


def reason(body: dict[str, Any], scope: str = "persistent") -> str:
    with pytest.raises(IllegalArgumentError) as e:
        put(body, scope)
    assert e.value.status == 400 and e.value.type == "illegal_argument_exception"
    return e.value.reason


# -- what the stories set first -------------------------------------------------------------


def test_the_settings_the_api_specification_stories_set_are_accepted() -> None:
    body = {
        "plugins.ml_commons.jvm_heap_memory_threshold": 100,
        "plugins.ml_commons.native_memory_threshold": 100,
        "plugins.ml_commons.allow_registering_model_via_url": True,
        "plugins.ml_commons.allow_registering_model_via_local_file": "true",
        "plugins.ml_commons.model_access_control_enabled": False,
        "cluster.routing.allocation.disk.watermark.low": "95%",
        "cluster.routing.allocation.disk.watermark.high": "97%",
        "cluster.routing.allocation.disk.watermark.flood_stage": "99%",
    }
    result = put(body)
    assert result.persistent_updates == {
        "cluster.routing.allocation.disk.watermark.flood_stage": "99%",
        "cluster.routing.allocation.disk.watermark.high": "97%",
        "cluster.routing.allocation.disk.watermark.low": "95%",
        "plugins.ml_commons.allow_registering_model_via_local_file": "true",
        "plugins.ml_commons.allow_registering_model_via_url": "true",
        "plugins.ml_commons.jvm_heap_memory_threshold": "100",
        "plugins.ml_commons.model_access_control_enabled": "false",
        "plugins.ml_commons.native_memory_threshold": "100",
    }
    assert s.value(f"{ML}native_memory_threshold", result.persistent, {}) == 100
    assert s.value(f"{ML}allow_registering_model_via_url", result.persistent, {}) is True


def test_every_ml_commons_setting_is_known_with_its_default() -> None:
    expected = {  # MLCommonsSettings (a sample across types)
        "task_dispatch_policy": "round_robin",
        "max_model_on_node": "10",
        "batch_ingestion_bulk_size": "500",
        "sync_up_job_interval_in_seconds": "10",
        "ml_task_timeout_in_seconds": "600",
        "monitoring_request_count": "100",
        "native_memory_threshold": "90",
        "jvm_heap_memory_threshold": "85",
        "disk_free_space_threshold": "5gb",
        "model_auto_redeploy_success_ratio": "0.8",
        "allow_registering_model_via_url": "false",
        "model_access_control_enabled": "false",
        "remote_inference.enabled": "true",
        "task_dispatcher.eligible_node_role.local_model": ("data", "ml"),
        "rag_pipeline_feature_enabled": "true",
    }
    for name, default in expected.items():
        setting = s.REGISTRY.get(ML + name)
        assert setting is not None, name
        assert setting.default == default, name


# -- the update: SettingsUpdater / AbstractScopedSettings.updateSettings ---------------------------


@pytest.mark.parametrize(
    ("body", "scope", "message"),
    [
        ({"nope.setting": 1}, "persistent", "persistent setting [nope.setting], not recognized"),
        ({"nope.setting": 1}, "transient", "transient setting [nope.setting], not recognized"),
        # a null for an unknown key is no delete: still unknown
        ({"nope.setting": None}, "persistent", "persistent setting [nope.setting], not recognized"),
        ({"cluster.name": "x"}, "persistent",
         "persistent setting [cluster.name], not dynamically updateable"),
        ({"logger.level": "DEBUG"}, "transient",
         "transient setting [logger.level], not dynamically updateable"),
        ({f"{ML}multi_tenancy_enabled": True}, "persistent",
         f"persistent setting [{ML}multi_tenancy_enabled], not dynamically updateable"),
        ({f"{ML}metrics_collection_enabled": True}, "persistent",
         f"final persistent setting [{ML}metrics_collection_enabled], not updateable"),
        ({f"{ML}remote_metadata_type": None}, "transient",
         f"final transient setting [{ML}remote_metadata_type], not updateable"),
    ],
)  # fmt: skip
def test_unknown_static_and_final_settings(body: dict[str, Any], scope: str, message: str) -> None:
    assert reason(body, scope) == message


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        # intSetting / longSetting (Setting.parseInt: min, max; NumberFormatException)
        (f"{ML}ml_task_timeout_in_seconds", 0,
         f"Failed to parse value [0] for setting [{ML}ml_task_timeout_in_seconds] must be >= 1"),
        (f"{ML}native_memory_threshold", 101,
         f"Failed to parse value [101] for setting [{ML}native_memory_threshold] must be <= 100"),
        (f"{ML}native_memory_threshold", "x",
         f"Failed to parse value [x] for setting [{ML}native_memory_threshold]"),
        (f"{ML}native_memory_threshold", 1.5,
         f"Failed to parse value [1.5] for setting [{ML}native_memory_threshold]"),
        ("cluster.max_shards_per_node", 0,
         "Failed to parse value [0] for setting [cluster.max_shards_per_node] must be >= 1"),
        ("search.max_buckets", -1,
         "Failed to parse value [-1] for setting [search.max_buckets] must be >= 0"),
        (f"{ML}monitoring_request_count", 10_000_001,
         f"Failed to parse value [10000001] for setting [{ML}monitoring_request_count] "
         "must be <= 10000000"),
        ("cluster.max_shards_per_node", "2147483648",
         "Failed to parse value [2147483648] for setting [cluster.max_shards_per_node]"),
        # floatSetting / doubleSetting: Double.toString bounds
        (f"{ML}model_auto_redeploy_success_ratio", 1.5,
         f"Failed to parse value [1.5] for setting [{ML}model_auto_redeploy_success_ratio] "
         "must be <= 1.0"),
        ("tasksim.ml.deploy_seconds", -1,
         "Failed to parse value [-1] for setting [tasksim.ml.deploy_seconds] must be >= 0.0"),
        # boolSetting: Booleans.parseBoolean's own message, strict
        (f"{ML}only_run_on_ml_node", "yes",
         "Failed to parse value [yes] as only [true] or [false] are allowed."),
        ("action.destructive_requires_name", "True",
         "Failed to parse value [True] as only [true] or [false] are allowed."),
        ("cluster.blocks.read_only", "", "Failed to parse value [] as only [true] or [false] are allowed."),
        # time values
        ("search.default_search_timeout", "5",
         "failed to parse setting [search.default_search_timeout] with value [5] as a time value: "
         "unit is missing or unrecognized"),
        ("search.default_search_timeout", "1.5s",
         "failed to parse [1.5s], fractional time values are not supported"),
        ("search.default_search_timeout", "-5s",
         "failed to parse setting [search.default_search_timeout] with value [-5s] as a time "
         "value: negative durations are not supported"),
        ("cluster.info.update.interval", "1s",
         "failed to parse value [1s] for setting [cluster.info.update.interval], must be >= [10s]"),
        # byte sizes
        ("indices.recovery.max_bytes_per_sec", "many",
         "failed to parse setting [indices.recovery.max_bytes_per_sec] with value [many] as a size "
         "in bytes: unit is missing or unrecognized"),
        ("indices.recovery.max_bytes_per_sec", "xmb", "failed to parse [xmb]"),
        # watermarks: a ratio/percentage, else bytes
        ("cluster.routing.allocation.disk.watermark.low", "lots",
         "failed to parse setting [cluster.routing.allocation.disk.watermark.low] with value "
         "[lots] as a size in bytes: unit is missing or unrecognized"),
        # enums
        ("cluster.routing.allocation.enable", "some", "Illegal allocation.enable value [SOME]"),
        ("cluster.routing.rebalance.enable", "new_primaries",
         "Illegal rebalance.enable value [NEW_PRIMARIES]"),
        ("cluster.persistent_tasks.allocation.enable", "primaries",
         "Illegal value [PRIMARIES] for [cluster.persistent_tasks.allocation.enable]"),
        ("logger.org.opensearch.tasks", "LOUD", "Unknown level constant [LOUD]."),
        ("search_backpressure.mode", "Enforced", "Invalid SearchBackpressureMode: Enforced"),
        ("search_backpressure.node_duress.cpu_threshold", "1.1",
         "Failed to parse value [1.1] for setting [search_backpressure.node_duress.cpu_threshold] "
         "must be <= 1.0"),
        ("action.auto_create_index", "+a,,b",
         "Can't parse [+a,,b] for setting [action.auto_create_index] must be either "
         "[true, false, or a comma separated list of index patterns]"),
        ("action.auto_create_index", "a,-",
         "Can't parse [a,-] for setting [action.auto_create_index] must contain an index name "
         "after [-]"),
        (f"{ML}max_model_on_node", ["1", "2"],
         f"Found list type value for setting [{ML}max_model_on_node] but but did not expect a "
         "list for it."),
    ],
)  # fmt: skip
def test_bad_values_have_opensearchs_messages(key: str, raw: object, message: str) -> None:
    assert reason({key: raw}) == message


@pytest.mark.parametrize(
    ("key", "raw", "parsed"),
    [
        ("cluster.routing.allocation.enable", "PRIMARIES", "primaries"),
        ("cluster.routing.allocation.enable", "new_primaries", "new_primaries"),
        ("search.default_search_timeout", "30s", 30_000),
        ("search.default_search_timeout", "-1", -1),
        ("search.default_search_timeout", "2m", 120_000),
        ("indices.recovery.max_bytes_per_sec", "100mb", 100 << 20),
        ("indices.recovery.max_bytes_per_sec", "1g", 1 << 30),
        ("cluster.routing.allocation.disk.watermark.low", "0.5", "0.5"),
        ("logger.org.opensearch.tasks", "debug", "DEBUG"),
        ("logger._root", "WARN", "WARN"),
        (f"{ML}trusted_connector_endpoints_regex", ["^https://x/.*$"], ("^https://x/.*$",)),
        (f"{ML}task_dispatcher.eligible_node_role.local_model", "ml,data", ("ml", "data")),
        (f"{ML}model_auto_redeploy_success_ratio", "0.5", 0.5),
        (f"{ML}monitoring_request_count", "+7", 7),
    ],
)  # fmt: skip
def test_good_values_parse(key: str, raw: object, parsed: object) -> None:
    result = put({key: raw})
    assert s.value(key, result.persistent, {}) == parsed


def test_watermarks_must_agree_within_a_scope() -> None:
    low = "cluster.routing.allocation.disk.watermark.low"
    high = "cluster.routing.allocation.disk.watermark.high"
    flood = "cluster.routing.allocation.disk.watermark.flood_stage"
    assert reason({low: "95%"}) == "low disk watermark [95%] more than high disk watermark [90%]"
    assert reason({high: "96%"}) == (
        "high disk watermark [96%] more than flood stage disk watermark [95%]"
    )
    assert reason({low: "10gb", high: "20gb", flood: "5gb"}) == (
        "low disk watermark [10gb] less than high disk watermark [20gb]"
    )
    assert reason({low: "10gb", high: "91%"}) == (
        f"unable to consistently parse [{low}=10gb], [{high}=91%], and [{flood}=95%] as "
        "percentage or bytes"
    )
    assert put({low: "30gb", high: "20gb", flood: "10gb"}).changed


def test_null_resets_wildcards_reset_many_and_all_or_nothing() -> None:
    first = s.update(
        {},
        {},
        {
            "plugins": {
                "ml_commons": {"native_memory_threshold": 99, "jvm_heap_memory_threshold": 98}
            }
        },
        {"search.max_buckets": 10},
    )
    assert first.persistent == {
        f"{ML}jvm_heap_memory_threshold": "98",
        f"{ML}native_memory_threshold": "99",
    }
    assert first.transient == {"search.max_buckets": "10"}
    # transient wins over persistent
    both = s.update(first.persistent, first.transient, {"search.max_buckets": 20}, None)
    assert s.value("search.max_buckets", both.persistent, both.transient) == 10
    # a wildcard null removes every dynamic key it matches; the answer lists only values set
    reset = s.update(
        first.persistent, first.transient, {f"{ML}*": None}, {"search.max_buckets": None}
    )
    assert (reset.persistent, reset.transient) == ({}, {})
    assert (reset.persistent_updates, reset.transient_updates) == ({}, {})
    assert reset.changed
    assert s.value(f"{ML}native_memory_threshold", {}, {}) == 90
    # a bad value anywhere: nothing applies (the caller keeps its scopes)
    before = dict(first.persistent)
    with pytest.raises(IllegalArgumentError):
        s.update(first.persistent, {}, {f"{ML}native_memory_threshold": 1, "nope": 1}, None)
    assert first.persistent == before
    # the same value again changes nothing (no new cluster state)
    again = s.update(
        first.persistent, first.transient, {f"{ML}native_memory_threshold": "99"}, None
    )
    assert not again.changed and again.persistent_updates == {f"{ML}native_memory_threshold": "99"}


def test_render_flat_and_nested_and_defaults() -> None:
    flat = {f"{ML}only_run_on_ml_node": "true", f"{ML}ml_task_timeout_in_seconds": "5"}
    assert s.render(flat, flat_settings=False) == {
        "plugins": {
            "ml_commons": {"ml_task_timeout_in_seconds": "5", "only_run_on_ml_node": "true"}
        }
    }
    assert list(s.render(flat, flat_settings=True)) == sorted(flat)
    found = s.defaults(flat, {"search.max_buckets": "3"}, {"cluster.name": "docs"})
    assert f"{ML}only_run_on_ml_node" not in found and "search.max_buckets" not in found
    assert found["cluster.name"] == "docs"
    assert found["cluster.routing.allocation.disk.watermark.low"] == "85%"
    assert found[f"{ML}task_dispatcher.eligible_node_role.remote_model"] == ("data", "ml")
    assert not any(k.startswith("logger.") and k != "logger.level" for k in found)


def test_auto_create_index_patterns() -> None:
    def allows(raw: str, index: str) -> str | None:
        auto = s.value("action.auto_create_index", {"action.auto_create_index": raw}, {})
        assert isinstance(auto, s.AutoCreate)
        return auto.allows(index)

    assert allows("true", "logs") is None
    assert allows("false", "logs") == (
        "no such index [logs] and [action.auto_create_index] is [false]"
    )
    assert allows("+logs-*,-secret*", "logs-1") is None
    assert allows("+logs-*,-secret*", "secret-1") == (
        "no such index [secret-1] and [action.auto_create_index] contains [-secret*] which "
        "forbids automatic creation of the index"
    )
    assert allows("+logs-*,-secret*", "other") == (
        "no such index [other] and [action.auto_create_index] ([+logs-*,-secret*]) doesn't match"
    )


def test_java_double() -> None:
    assert [s.java_double(x) for x in (0.0, 1.0, 0.8, 100.0, 1e7, 0.05)] == [
        "0.0", "1.0", "0.8", "100.0", "1.0E7", "0.05",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("expression", "refused"),
    [("_all", True), ("*", True), ("logs-*", True), ("a,b*", True), ("", True),
     ("logs", False), ("a,b", False)],
)  # fmt: skip
def test_destructive_requires_name(expression: str, refused: bool) -> None:
    s.fail_destructive(expression, requires_name=False)  # off by default: anything goes
    if refused:
        with pytest.raises(IllegalArgumentError) as e:
            s.fail_destructive(expression, requires_name=True)
        assert e.value.reason == "Wildcard expressions or all indices are not allowed"
    else:
        s.fail_destructive(expression, requires_name=True)


def test_the_cluster_checks_read_its_published_settings(tmp_path: Path) -> None:
    from dataclasses import replace

    from coordinator.cluster import Cluster, ClusterConfig
    from simnode.errors import IndexNotFoundError

    # not started (no process, no port): only its state is read; its log dir is the test's
    cluster = Cluster(ClusterConfig.with_nodes(1, log_dir=tmp_path))
    cluster.check_auto_create("logs")
    cluster.check_destructive("_all")
    cluster.state = replace(
        cluster.state,
        persistent_settings=(("action.auto_create_index", "-logs*,+*"),),
        transient_settings=(("action.destructive_requires_name", "true"),),
    )
    with pytest.raises(IndexNotFoundError) as e:
        cluster.check_auto_create("logs-1")
    assert e.value.status == 404
    assert e.value.reason == (
        "no such index [logs-1] and [action.auto_create_index] contains [-logs*] which forbids "
        "automatic creation of the index"
    )
    assert dict(e.value.metadata)["index"] == "logs-1"
    cluster.check_auto_create("metrics")
    with pytest.raises(IllegalArgumentError):
        cluster.check_destructive("_all")
    cluster.check_destructive("logs-1")


def test_nested_rendering_of_a_key_that_is_also_a_prefix() -> None:
    flat: dict[str, s.Value] = {
        "logger.org.opensearch": "DEBUG",
        "logger.org.opensearch.tasks": "TRACE",
        "logger.org.opensearch.tasks.x": "WARN",
        "search.max_buckets": "3",
    }
    assert s.render(flat, flat_settings=False) == {
        "logger": {
            "org": {
                "opensearch": "DEBUG",
                "opensearch.tasks": "TRACE",
                "opensearch.tasks.x": "WARN",
            }
        },
        "search": {"max_buckets": "3"},
    }


def test_the_settings_travel_in_the_published_cluster_state() -> None:
    from simnode.discovery import ClusterState
    from simnode.wire import cluster_state_from_pb, cluster_state_to_pb

    state = ClusterState(
        version=4,
        persistent_settings=(("a.list", ("x", "y")), ("a.one", "1"), ("a.empty", "")),
        transient_settings=(("b.none", ()),),
    )
    assert cluster_state_from_pb(cluster_state_to_pb(state)) == state
