"""The cluster settings: what each known setting is, how its value is read, and how an update of
`_cluster/settings` is applied — OpenSearch's `Setting`, `ClusterSettings` and `SettingsUpdater`.

Everything that decides which setting exists, what values it takes and what an update does lives
here, as plain values and pure functions (no trio, no grpc, no I/O):

- `Setting`: a key (or a prefix, as `logger.`), a default as OpenSearch shows it, a parser that
  raises OpenSearch's exact message, and its properties (`Dynamic`, `NodeScope`, `Final`);
- `REGISTRY`: the core settings users set in tests (allocation, disk watermarks, shard limits,
  `action.*`, `search.*`, recovery, blocks, `logger.*`), every ML Commons setting of
  `MLCommonsSettings` with its default and bounds, and tasksim's own `tasksim.*`;
- `update`: `SettingsUpdater.updateSettings` — transient, then persistent; a `null` (or a key
  ending in `*`) removes; an unknown key is `... setting [x], not recognized`, a static one `not
  dynamically updateable`, a final one `final ... not updateable`; each scope is then validated on
  its own (the disk watermarks depend on each other) and the merged result once more; all or
  nothing;
- `value`: the effective value of a setting (transient over persistent over the default), parsed;
- `defaults`: `ClusterSettings.diff` — every registered setting not set, with its default (what
  `GET _cluster/settings?include_defaults` shows);
- `flatten` / `nest`: a request body (flat or nested) to flat keys, and flat keys back to the
  nested objects OpenSearch renders without `flat_settings`.

Values are kept as OpenSearch keeps them: as text (a list setting as a list of text), exactly as
given; they are parsed on read. tasksim's ML Commons default of `only_run_on_ml_node` is `false`
(ML Commons': `true`), because tasksim's nodes have no `ml` role unless a cluster gives them one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from coordinator.params import parse_time_value
from simnode.errors import IllegalArgumentError
from simnode.regex import simple_match

Value = str | tuple[str, ...]  # a setting's stored value: text, or a list of text
Parser = Callable[[Value, str], Any]

DYNAMIC: Final = "Dynamic"
NODE_SCOPE: Final = "NodeScope"
DYNAMIC_NODE: Final = frozenset({DYNAMIC, NODE_SCOPE})  # most cluster settings' properties
FINAL: Final = "Final"


class SettingsError(IllegalArgumentError):
    """A rejected update or value (OpenSearch: `IllegalArgumentException`/`SettingsException`,
    answered as a 400 `illegal_argument_exception`, as OpenSearch 2.x does)."""


@dataclass(frozen=True)
class Setting:
    key: str
    default: Value
    parser: Parser
    properties: frozenset[str] = DYNAMIC_NODE
    doc: str = ""
    prefix: bool = False  # an affix setting: `key` is a prefix (`logger.`), any key below matches
    is_list: bool = False

    @property
    def dynamic(self) -> bool:
        return DYNAMIC in self.properties

    @property
    def final(self) -> bool:
        return FINAL in self.properties

    def matches(self, key: str) -> bool:
        if self.prefix:
            return (
                key.startswith(self.key) and _AFFIX_REST.fullmatch(key[len(self.key) :]) is not None
            )
        return key == self.key

    def parse(self, raw: Value, key: str | None = None) -> Any:
        """The typed value of `raw`, or OpenSearch's message for it (`Setting.get`)."""
        key = key or self.key
        if isinstance(raw, tuple) and not self.is_list:
            raise SettingsError(
                f"Found list type value for setting [{key}] but but did not expect a list for it."
            )
        return self.parser(raw, key)


_AFFIX_REST = re.compile(r"(?:[-\w]+[.])*[-\w]+")


# -- value parsers (OpenSearch's messages, word for word) -------------------------------------------


def _text(raw: Value) -> str:
    return raw if isinstance(raw, str) else ",".join(raw)


def java_double(x: float) -> str:
    """`Double.toString`: `0.0`, `100.0`, `0.8`, `1.0E7`."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0 or 1e-3 <= abs(x) < 1e7:
        text = repr(float(x))
        return text if "." in text or "e" in text else text + ".0"
    mantissa, exponent = f"{x:.16E}".split("E")
    digits = repr(float(mantissa))  # shortest form of the mantissa
    return f"{digits}E{int(exponent)}"


def parse_boolean(raw: str) -> bool:
    """`Booleans.parseBoolean`: exactly `true` or `false`."""
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise SettingsError(f"Failed to parse value [{raw}] as only [true] or [false] are allowed.")


def bool_setting(raw: Value, key: str) -> bool:
    return parse_boolean(_text(raw))


_JAVA_INT = re.compile(r"[+-]?\d+")
_JAVA_DOUBLE = re.compile(r"[+-]?(?:NaN|Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fFdD]?)")


def _bounded(lo: float, hi: float, bits: int | None) -> Parser:
    def parse(raw: Value, key: str) -> Any:
        text = _text(raw)
        value: float
        if bits is not None:
            if _JAVA_INT.fullmatch(text) is None or not (
                -(2 ** (bits - 1)) <= int(text) < 2 ** (bits - 1)
            ):
                raise SettingsError(f"Failed to parse value [{text}] for setting [{key}]")
            value = int(text)
            shown_lo, shown_hi = str(int(lo)), str(int(hi))
        else:
            stripped = text.strip()
            if _JAVA_DOUBLE.fullmatch(stripped) is None:
                raise SettingsError(f"Failed to parse value [{text}] for setting [{key}]")
            value = float(stripped.rstrip("fFdD") if stripped[-1:] in "fFdD" else stripped)
            shown_lo, shown_hi = java_double(lo), java_double(hi)
        if value < lo:
            raise SettingsError(
                f"Failed to parse value [{text}] for setting [{key}] must be >= {shown_lo}"
            )
        if value > hi:
            raise SettingsError(
                f"Failed to parse value [{text}] for setting [{key}] must be <= {shown_hi}"
            )
        return value

    return parse


INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
DOUBLE_MAX = 1.7976931348623157e308
DOUBLE_MIN_POSITIVE = 5e-324  # Double.MIN_VALUE, the default lower bound of doubleSetting


def int_setting(lo: int = INT_MIN, hi: int = INT_MAX) -> Parser:
    return _bounded(lo, hi, 32)


def long_setting(lo: int = LONG_MIN, hi: int = LONG_MAX) -> Parser:
    return _bounded(lo, hi, 64)


def double_setting(lo: float = DOUBLE_MIN_POSITIVE, hi: float = DOUBLE_MAX) -> Parser:
    return _bounded(lo, hi, None)


def parse_time_millis(raw: str, key: str) -> float:
    """`TimeValue.parseTimeValue` (coordinator/params.py's, one grammar) → milliseconds (`-1` is
    -1), its failures as a setting's."""
    try:
        seconds = parse_time_value(raw, key)
    except IllegalArgumentError as e:
        raise SettingsError(e.reason) from e
    return -1 if seconds == -1 else seconds * 1000


def time_setting(min_rep: str | None = None) -> Parser:
    def parse(raw: Value, key: str) -> float:
        text = _text(raw)
        millis = parse_time_millis(text, key)
        if min_rep is not None and millis < parse_time_millis(min_rep, key):
            raise SettingsError(
                f"failed to parse value [{text}] for setting [{key}], must be >= [{min_rep}]"
            )
        return millis

    return parse


_BYTE_UNITS: Final = (
    ("k", 1 << 10),
    ("kb", 1 << 10),
    ("m", 1 << 20),
    ("mb", 1 << 20),
    ("g", 1 << 30),
    ("gb", 1 << 30),
    ("t", 1 << 40),
    ("tb", 1 << 40),
    ("p", 1 << 50),
    ("pb", 1 << 50),
    ("b", 1),
)


def parse_bytes(raw: str, key: str) -> int:
    """`ByteSizeValue.parseBytesSizeValue` → bytes (`-1` is -1)."""
    lower = raw.lower().strip()
    for suffix, unit in _BYTE_UNITS:
        if lower.endswith(suffix):
            number = lower[: -len(suffix)].strip()
            if _JAVA_INT.fullmatch(number) is not None:
                size = int(number)
            elif _JAVA_DOUBLE.fullmatch(number) is not None:
                size = math.floor(float(number.rstrip("fFdD")) * unit) // unit
            else:
                raise SettingsError(f"failed to parse [{raw}]")
            if size < -1:
                raise SettingsError(
                    f"failed to parse setting [{key}] with value [{raw}] as a size in bytes"
                )
            return size * unit
    if lower == "-1":
        return -1
    if lower == "0":
        return 0
    raise SettingsError(
        f"failed to parse setting [{key}] with value [{raw}] as a size in bytes: "
        "unit is missing or unrecognized"
    )


def byte_size_setting(raw: Value, key: str) -> int:
    return parse_bytes(_text(raw), key)


def parse_ratio_percent(raw: str) -> float:
    """`RatioValue.parseRatioValue` → percent."""
    if raw.endswith("%"):
        number = raw[:-1]
        if _JAVA_DOUBLE.fullmatch(number.strip()) is None:
            raise SettingsError(
                f"Invalid percentage: [{number}]. Must be a ratio in the form 0.0-1.0"
            )
        percent = float(number.strip().rstrip("fFdD"))
        if not 0 <= percent <= 100:
            raise SettingsError(f"Percentage should be in [0-100], got [{number}]")
        return abs(percent)
    if _JAVA_DOUBLE.fullmatch(raw.strip()) is None:
        raise SettingsError(f"Invalid ratio or percentage [{raw}]")
    ratio = float(raw.strip().rstrip("fFdD"))
    if not 0 <= ratio <= 1:
        raise SettingsError(f"Ratio should be in [0-1.0], got [{java_double(ratio)}]")
    return 100.0 * abs(ratio)


def watermark_setting(raw: Value, key: str) -> str:
    """`DiskThresholdSettings.validWatermarkSetting`: a ratio/percentage, else a byte size."""
    text = _text(raw)
    try:
        parse_ratio_percent(text)
    except SettingsError:
        parse_bytes(text, key)
    return text


def enum_setting(values: Iterable[str], message: str) -> Parser:
    """An enum parsed from its upper-cased name; `message` has `{}` for the upper-cased value."""
    names = {v.upper() for v in values}

    def parse(raw: Value, key: str) -> str:
        upper = _text(raw).upper()
        if upper not in names:
            raise SettingsError(message.format(upper))
        return upper.lower()

    return parse


def backpressure_mode_setting(raw: Value, key: str) -> str:
    """`SearchBackpressureMode.fromName`: the exact name."""
    text = _text(raw)
    if text not in ("monitor_only", "enforced", "disabled"):
        raise SettingsError(f"Invalid SearchBackpressureMode: {text}")
    return text


_LOG_LEVELS: Final = ("OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "ALL")


def log_level_setting(raw: Value, key: str) -> str:
    """log4j's `Level.valueOf`."""
    name = _text(raw).strip().upper()
    if name not in _LOG_LEVELS:
        raise SettingsError(f"Unknown level constant [{name}].")
    return name


def string_setting(raw: Value, key: str) -> str:
    return _text(raw)


def list_setting(raw: Value, key: str) -> tuple[str, ...]:
    if isinstance(raw, tuple):
        return raw
    return tuple(p.strip() for p in raw.split(",")) if raw else ()


@dataclass(frozen=True)
class AutoCreate:
    """`AutoCreateIndex.AutoCreate`: `true`, `false`, or `+pattern,-pattern,...`."""

    enabled: bool
    expressions: tuple[tuple[str, bool], ...] = ()
    text: str = "true"

    def allows(self, index: str) -> str | None:
        """None when `index` may be created, else the reason `index_not_found_exception` gives."""
        if not self.enabled:
            return f"no such index [{index}] and [action.auto_create_index] is [false]"
        if not self.expressions:
            return None
        for pattern, include in self.expressions:
            if simple_match(pattern, index):
                return (
                    None
                    if include
                    else (
                        f"no such index [{index}] and [action.auto_create_index] contains "
                        f"[-{pattern}] which forbids automatic creation of the index"
                    )
                )
        return (
            f"no such index [{index}] and [action.auto_create_index] ([{self.text}]) doesn't match"
        )


def fail_destructive(expression: str, requires_name: bool) -> None:
    """`DestructiveOperations.failDestructive`: with `action.destructive_requires_name`, a delete
    of `_all`, of no index or of any name with `*` is refused."""
    if not requires_name:
        return
    names = [n for n in expression.split(",") if n]
    if not names or any(n == "_all" or "*" in n for n in names):
        raise SettingsError("Wildcard expressions or all indices are not allowed")


def auto_create_setting(raw: Value, key: str) -> AutoCreate:
    text = _text(raw)
    try:
        return AutoCreate(parse_boolean(text), text=text)
    except SettingsError:
        pass
    expressions: list[tuple[str, bool]] = []
    for part in text.split(","):
        pattern = part.strip()
        if not pattern:
            raise SettingsError(
                f"Can't parse [{text}] for setting [action.auto_create_index] must be either "
                "[true, false, or a comma separated list of index patterns]"
            )
        if pattern[0] in "+-":
            if len(pattern) == 1:
                raise SettingsError(
                    f"Can't parse [{text}] for setting [action.auto_create_index] must contain "
                    f"an index name after [{pattern}]"
                )
            expressions.append((pattern[1:], pattern[0] == "+"))
        else:
            expressions.append((pattern, True))
    return AutoCreate(True, tuple(expressions), text)


# -- the registry -----------------------------------------------------------------------------------

_STATIC = frozenset({NODE_SCOPE})
_FINAL = frozenset({NODE_SCOPE, FINAL})
ALLOCATION = "cluster.routing.allocation."
WATERMARKS: Final = (
    f"{ALLOCATION}disk.watermark.low",
    f"{ALLOCATION}disk.watermark.high",
    f"{ALLOCATION}disk.watermark.flood_stage",
)

_CORE: Final = (
    Setting("cluster.name", "opensearch", string_setting, _STATIC),
    Setting("node.name", "", string_setting, _STATIC),
    Setting(
        f"{ALLOCATION}enable",
        "all",
        enum_setting(
            ("all", "primaries", "new_primaries", "none"), "Illegal allocation.enable value [{}]"
        ),
    ),
    Setting(
        "cluster.routing.rebalance.enable",
        "all",
        enum_setting(
            ("all", "primaries", "replicas", "none"), "Illegal rebalance.enable value [{}]"
        ),
    ),
    Setting(
        "cluster.persistent_tasks.allocation.enable",
        "all",
        enum_setting(
            ("all", "none"), "Illegal value [{}] for [cluster.persistent_tasks.allocation.enable]"
        ),
    ),
    Setting(f"{ALLOCATION}cluster_concurrent_rebalance", "2", int_setting(-1)),
    Setting(f"{ALLOCATION}disk.threshold_enabled", "true", bool_setting),
    Setting(WATERMARKS[0], "85%", watermark_setting),
    Setting(WATERMARKS[1], "90%", watermark_setting),
    Setting(WATERMARKS[2], "95%", watermark_setting),
    Setting("cluster.info.update.interval", "30s", time_setting("10s")),
    Setting("cluster.max_shards_per_node", "1000", int_setting(1)),
    Setting("cluster.blocks.read_only", "false", bool_setting),
    Setting("cluster.blocks.read_only_allow_delete", "false", bool_setting),
    Setting("action.auto_create_index", "true", auto_create_setting),
    Setting("action.destructive_requires_name", "false", bool_setting),
    Setting("search.default_search_timeout", "-1", time_setting()),
    Setting("search.cancel_after_time_interval", "-1", time_setting()),
    Setting("search.default_keep_alive", "5m", time_setting()),
    Setting("search.max_buckets", "65535", int_setting(0)),
    Setting("search.allow_expensive_queries", "true", bool_setting),
    Setting("indices.recovery.max_bytes_per_sec", "40mb", byte_size_setting),
    Setting("task_resource_tracking.enabled", "true", bool_setting),
    Setting("task_resource_consumers.enabled", "false", bool_setting),
    Setting("search_backpressure.mode", "monitor_only", backpressure_mode_setting),
    Setting("search_backpressure.node_duress.num_successive_breaches", "3", int_setting(1)),
    Setting("search_backpressure.node_duress.cpu_threshold", "0.9", double_setting(0.0, 1.0)),
    Setting("search_backpressure.node_duress.heap_threshold", "0.7", double_setting(0.0, 1.0)),
    Setting("logger.level", "INFO", log_level_setting, _STATIC),
    Setting("logger.", "INFO", log_level_setting, prefix=True),
)

ML: Final = "plugins.ml_commons."
_TRUSTED_ENDPOINTS: Final = (
    r"^https://runtime\.sagemaker\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://api\.sagemaker\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://api\.openai\.com/.*$",
    r"^https://api\.cohere\.ai/.*$",
    r"^https://api\.deepseek\.com/.*$",
    r"^https://bedrock-runtime\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://bedrock-agent-runtime\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://bedrock\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://textract\..*[a-z0-9-]\.amazonaws\.com$",
    r"^https://comprehend\..*[a-z0-9-]\.amazonaws\.com$",
    r"^https://rekognition(-fips)?\..*[a-z0-9-]\.amazonaws\.com$",
)


def _ml_bool(name: str, default: bool, properties: frozenset[str] = DYNAMIC_NODE) -> Setting:
    return Setting(ML + name, "true" if default else "false", bool_setting, properties)


def _ml_int(name: str, default: int, lo: int = INT_MIN, hi: int = INT_MAX) -> Setting:
    return Setting(ML + name, str(default), int_setting(lo, hi))


def _ml_str(name: str, default: str, properties: frozenset[str] = DYNAMIC_NODE) -> Setting:
    return Setting(ML + name, default, string_setting, properties)


def _ml_list(name: str, default: tuple[str, ...]) -> Setting:
    return Setting(ML + name, default, list_setting, is_list=True)


# MLCommonsSettings, in its order.
_ML_COMMONS: Final = (
    _ml_str("task_dispatch_policy", "round_robin"),
    _ml_int("max_model_on_node", 10, 0, 10000),
    _ml_int("max_register_model_tasks_per_node", 10, 0, 10),
    _ml_int("max_batch_inference_tasks", 10, 0, 500),
    _ml_int("max_batch_ingestion_tasks", 10, 0, 500),
    _ml_int("batch_ingestion_bulk_size", 500, 100, 100000),
    _ml_int("max_deploy_model_tasks_per_node", 10, 0, 10),
    _ml_int("max_ml_task_per_node", 10, 0, 10000),
    Setting(
        ML + "only_run_on_ml_node",
        "false",
        bool_setting,
        doc="local models only on nodes with the `ml` role (ML Commons' default is true; "
        "tasksim's nodes have no `ml` role by default)",
    ),
    _ml_bool("enable_inhouse_python_model", False),
    Setting(
        ML + "sync_up_job_interval_in_seconds",
        "10",
        int_setting(0, 86400),
        doc="the sync-up cron's interval (0 disables it)",
    ),
    Setting(
        ML + "ml_task_timeout_in_seconds",
        "600",
        int_setting(1, 86400),
        doc="a task untouched this long is FAILED by the sync-up",
    ),
    Setting(ML + "monitoring_request_count", "100", long_setting(0, 10_000_000)),
    _ml_str(
        "trusted_url_regex",
        "^(https?|ftp|file)://[-a-zA-Z0-9+&@#/%?=~_|!:,.;]*[-a-zA-Z0-9+&@#/%=~_|]",
    ),
    _ml_int("native_memory_threshold", 90, 0, 100),
    _ml_int("jvm_heap_memory_threshold", 85, 0, 100),
    Setting(ML + "disk_free_space_threshold", "5gb", byte_size_setting),
    _ml_str("exclude_nodes._name", ""),
    Setting(
        ML + "allow_custom_deployment_plan",
        "false",
        bool_setting,
        doc="deploy accepts `node_ids`",
    ),
    _ml_bool("model_auto_deploy.enable", True),
    _ml_bool("model_auto_redeploy.enable", True),
    _ml_int("model_auto_redeploy.lifetime_retry_times", 3),
    Setting(ML + "model_auto_redeploy_success_ratio", "0.8", double_setting(0.0, 1.0)),
    _ml_bool("allow_registering_model_via_url", False),
    _ml_bool("allow_registering_model_via_local_file", False),
    _ml_bool("remote_inference.enabled", True),
    _ml_bool("local_model.enabled", True),
    _ml_bool("model_access_control_enabled", False),
    _ml_bool("connector_access_control_enabled", False),
    _ml_bool("offline_batch_ingestion_enabled", True),
    _ml_bool("offline_batch_inference_enabled", True),
    _ml_list("trusted_connector_endpoints_regex", _TRUSTED_ENDPOINTS),
    _ml_list("task_dispatcher.eligible_node_role.remote_model", ("data", "ml")),
    _ml_list("task_dispatcher.eligible_node_role.local_model", ("data", "ml")),
    _ml_bool("index_insight_feature_enabled", False),
    _ml_bool("memory_feature_enabled", True),
    _ml_bool("mcp_connector_enabled", False),
    _ml_bool("mcp_server_enabled", False),
    _ml_bool("rag_pipeline_feature_enabled", True),
    _ml_bool("agent_framework_enabled", True),
    _ml_bool("connector.private_ip_enabled", False),
    _ml_bool("execute_tools_enabled", True),
    _ml_list("remote_job.status_field", ("status", "Status", "TransformJobStatus")),
    _ml_str("remote_job.status_regex.completed", "(complete|completed|partiallyCompleted)"),
    _ml_str("remote_job.status_regex.cancelled", "(stopped|cancelled)"),
    _ml_str("remote_job.status_regex.cancelling", "(stopping|cancelling)"),
    _ml_str("remote_job.status_regex.expired", "(expired|timeout)"),
    _ml_str("remote_job.status_regex.failed", "(failed)"),
    _ml_bool("controller_enabled", True),
    _ml_bool("safe_delete_model", False),
    _ml_bool("multi_tenancy_enabled", False, _STATIC),
    _ml_str("remote_metadata_type", "", _FINAL),
    _ml_str("remote_metadata_endpoint", "", _FINAL),
    _ml_str("remote_metadata_region", "", _FINAL),
    _ml_str("remote_metadata_service_name", "", _FINAL),
    _ml_bool("metrics_collection_enabled", False, _FINAL),
    _ml_bool("metrics_static_collection_enabled", False),
    _ml_bool("agentic_memory_enabled", True),
    _ml_str("remote_metadata_global_tenant_id", "", _FINAL),
    _ml_str("remote_metadata_global_resource_cache_ttl", "", _FINAL),
    _ml_bool("stream_enabled", False),
    _ml_bool("ag_ui_enabled", False),
)

_TASKSIM: Final = (
    Setting(
        "tasksim.ml.register_seconds",
        "1.0",
        double_setting(0.0, 86400.0),
        doc="how long a worker takes to download and register a model",
    ),
    Setting(
        "tasksim.ml.deploy_seconds",
        "1.0",
        double_setting(0.0, 86400.0),
        doc="how long a worker takes to load a model",
    ),
    Setting(
        "tasksim.ml.train_seconds",
        "1.0",
        double_setting(0.0, 86400.0),
        doc="how long a worker takes to train a model",
    ),
    Setting(
        "tasksim.ml.unreachable_after_seconds",
        "30.0",
        double_setting(0.0, 86400.0),
        doc="how long all pending workers must fail the sync-up before a RUNNING task is "
        "UNREACHABLE",
    ),
    Setting(
        "tasksim.ml.sync_up_timeout_seconds",
        "5.0",
        double_setting(0.05, 3600.0),
        doc="how long the sync-up waits for one node",
    ),
    Setting(
        "tasksim.ml.jvm_heap_used_percent",
        "50",
        int_setting(0, 100),
        doc="every node's simulated JVM heap use, against plugins.ml_commons.jvm_heap_memory_threshold",
    ),
    Setting(
        "tasksim.ml.native_memory_used_percent",
        "50",
        int_setting(0, 100),
        doc="every node's simulated memory use, against plugins.ml_commons.native_memory_threshold",
    ),
    Setting(
        "tasksim.ml.deploy_fail_nodes",
        "",
        string_setting,
        doc="comma-separated node names whose model loading fails (memory circuit breaker open)",
    ),
)


@dataclass(frozen=True)
class Registry:
    """`ClusterSettings`: the known settings by key, and the affix (prefix) ones."""

    settings: tuple[Setting, ...]
    by_key: dict[str, Setting] = field(init=False, repr=False, compare=False)
    affixes: tuple[Setting, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_key", {s.key: s for s in self.settings if not s.prefix})
        object.__setattr__(self, "affixes", tuple(s for s in self.settings if s.prefix))

    def get(self, key: str) -> Setting | None:
        found = self.by_key.get(key)
        if found is not None:
            return found
        return next((s for s in self.affixes if s.matches(key)), None)


REGISTRY: Final = Registry((*_CORE, *_ML_COMMONS, *_TASKSIM))

# -- request bodies and rendering ------------------------------------------------------------------


def to_value(raw: Any) -> Value | None:
    """A JSON value as OpenSearch's `Settings` keeps it: text, a list of text, None for null."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float):
        return json.dumps(raw)
    if isinstance(raw, list):
        return tuple(v for v in (to_value(x) for x in raw) if isinstance(v, str))
    return str(raw)


def flatten(body: Any, prefix: str = "") -> dict[str, Value | None]:
    """`{"plugins": {"ml_commons": {"x": 1}}}` and `{"plugins.ml_commons.x": 1}` alike → flat."""
    out: dict[str, Value | None] = {}
    if not isinstance(body, dict):
        return out
    for key, raw in body.items():
        name = f"{prefix}{key}"
        if isinstance(raw, dict):
            out.update(flatten(raw, f"{name}."))
        else:
            out[name] = to_value(raw)
    return out


def _shown(value: Value) -> str | list[str]:
    return list(value) if isinstance(value, tuple) else value


def render(flat: Mapping[str, Value], *, flat_settings: bool) -> dict[str, Any]:
    """`Settings.toXContent`: sorted flat keys, or the nested objects of `getAsStructuredMap`
    (a key that is both a value and a prefix, `logger.a` and `logger.a.b`, keeps the longer one
    dotted: `{"logger": {"a": "DEBUG", "a.b": "TRACE"}}`)."""
    if flat_settings:
        return {k: _shown(flat[k]) for k in sorted(flat)}
    out: dict[str, Any] = {}
    for name in sorted(flat):
        _structure(out, "", name, _shown(flat[name]))
    return out


def _structure(node: dict[str, Any], prefix: str, key: str, shown: Any) -> None:
    """`Settings.processSetting`, step by step."""
    while True:
        head, dot, rest = key.partition(".")
        if not dot:
            inner = node.get(prefix + key)
            if isinstance(inner, dict):  # a map is there: it goes dotted beside the value
                for k, v in inner.items():
                    node[f"{prefix}{key}.{k}"] = v
            node[prefix + key] = shown
            return
        existing = node.get(prefix + head)
        if existing is None:
            child: dict[str, Any] = {}
            node[prefix + head] = child
            node, prefix, key = child, "", rest
        elif isinstance(existing, dict):
            node, prefix, key = existing, "", rest
        else:  # a value is there: fall back to the dotted key
            prefix, key = f"{prefix}{head}.", rest


# -- updates ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """The outcome of `update`: the new scopes and what the request set in each."""

    persistent: dict[str, Value]
    transient: dict[str, Value]
    persistent_updates: dict[str, Value]
    transient_updates: dict[str, Value]
    changed: bool


def _apply_scope(
    to_apply: Mapping[str, Value | None],
    target: dict[str, Value],
    updates: dict[str, Value],
    scope: str,
    registry: Registry,
) -> bool:
    """`AbstractScopedSettings.updateSettings(..., onlyDynamic=true)`."""
    changed = False
    removes: list[str] = []
    sets: dict[str, Value] = {}
    for key in sorted(to_apply):
        raw = to_apply[key]
        setting = registry.get(key)
        valid_delete = setting is not None and setting.dynamic and not setting.final
        if raw is None and (valid_delete or key.endswith("*")):
            removes.append(key)
        elif setting is None:
            raise SettingsError(f"{scope} setting [{key}], not recognized")
        elif raw is not None and setting.dynamic and not setting.final:
            setting.parse(raw, key)  # validateWithoutDependencies
            sets[key] = raw
            updates[key] = raw
            changed |= target.get(key) != raw
        elif setting.final:
            raise SettingsError(f"final {scope} setting [{key}], not updateable")
        else:
            raise SettingsError(f"{scope} setting [{key}], not dynamically updateable")
    for pattern in removes:
        for key in [k for k in target if simple_match(pattern, k)]:
            setting = registry.get(key)
            if setting is not None and setting.dynamic and not setting.final:
                del target[key]
                changed = True
    target.update(sets)
    return changed


def validate(settings: Mapping[str, Value], registry: Registry = REGISTRY) -> None:
    """`ClusterSettings.validate(settings, true)` for what tasksim checks: every value parses, and
    the disk watermarks agree with each other (`DiskThresholdSettings`' validators)."""
    for key in sorted(settings):
        setting = registry.get(key)
        if setting is None:
            raise SettingsError(
                f"unknown setting [{key}] please check that any required plugins are installed, "
                "or check the breaking changes documentation for removed settings"
            )
        setting.parse(settings[key], key)
    if any(w in settings for w in WATERMARKS):
        low, high, flood = (_text(settings.get(w, _default_of(registry, w))) for w in WATERMARKS)
        _check_watermarks(low, high, flood)


def _default_of(registry: Registry, key: str) -> Value:
    setting = registry.get(key)
    assert setting is not None
    return setting.default


def _check_watermarks(low: str, high: str, flood: str) -> None:
    try:
        lo, hi, fl = (parse_ratio_percent(w) for w in (low, high, flood))
    except SettingsError:
        pass
    else:
        if lo > hi:
            raise SettingsError(
                f"low disk watermark [{low}] more than high disk watermark [{high}]"
            )
        if hi > fl:
            raise SettingsError(
                f"high disk watermark [{high}] more than flood stage disk watermark [{flood}]"
            )
        return
    try:
        lo_b, hi_b, fl_b = (
            parse_bytes(w, k) for w, k in zip((low, high, flood), WATERMARKS, strict=True)
        )
    except SettingsError:
        raise SettingsError(
            f"unable to consistently parse [{WATERMARKS[0]}={low}], [{WATERMARKS[1]}={high}], "
            f"and [{WATERMARKS[2]}={flood}] as percentage or bytes"
        ) from None
    if lo_b < hi_b:
        raise SettingsError(f"low disk watermark [{low}] less than high disk watermark [{high}]")
    if hi_b < fl_b:
        raise SettingsError(
            f"high disk watermark [{high}] less than flood stage disk watermark [{flood}]"
        )


def update(
    persistent: Mapping[str, Value],
    transient: Mapping[str, Value],
    persistent_body: Any,
    transient_body: Any,
    registry: Registry = REGISTRY,
) -> Update:
    """`SettingsUpdater.updateSettings`: all or nothing; raises `SettingsError`."""
    new_t, new_p = dict(transient), dict(persistent)
    updates_t: dict[str, Value] = {}
    updates_p: dict[str, Value] = {}
    changed = _apply_scope(flatten(transient_body), new_t, updates_t, "transient", registry)
    changed |= _apply_scope(flatten(persistent_body), new_p, updates_p, "persistent", registry)
    if changed:
        validate(new_t, registry)
        validate(new_p, registry)
    validate({**new_p, **new_t}, registry)  # validateUpdate: the merged settings apply
    return Update(new_p, new_t, updates_p, updates_t, changed)


# -- reading ----------------------------------------------------------------------------------------


def raw_value(
    key: str,
    persistent: Mapping[str, Value],
    transient: Mapping[str, Value],
    registry: Registry = REGISTRY,
) -> Value:
    """The text in effect: transient over persistent over the default."""
    if key in transient:
        return transient[key]
    if key in persistent:
        return persistent[key]
    setting = registry.get(key)
    if setting is None:
        raise KeyError(key)
    return setting.default


def value(
    key: str,
    persistent: Mapping[str, Value],
    transient: Mapping[str, Value],
    registry: Registry = REGISTRY,
) -> Any:
    """The parsed value in effect (a stored value always parses: `update` validated it)."""
    setting = registry.get(key)
    if setting is None:
        raise KeyError(key)
    return setting.parse(raw_value(key, persistent, transient, registry), key)


def defaults(
    persistent: Mapping[str, Value],
    transient: Mapping[str, Value],
    node_settings: Mapping[str, Value] | None = None,
    registry: Registry = REGISTRY,
) -> dict[str, Value]:
    """`ClusterSettings.diff(metadata.settings(), nodeSettings)`: every registered (non-affix)
    setting not set in either scope, with the node's value or the default."""
    node_settings = node_settings or {}
    return {
        s.key: node_settings.get(s.key, s.default)
        for s in registry.by_key.values()
        if s.key not in persistent and s.key not in transient
    }
