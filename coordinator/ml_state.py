"""ML Commons' task and model documents, the ML task state machine, and the `_search` subset.

Everything that decides what an ML task looks like and which state it may move to lives here, as
plain values and pure functions (a clock is an argument; no trio, no grpc, no I/O):

- the vocabularies (`MLTaskState`, `MLTaskType`, `FunctionName`, `MLModelState` of ML Commons);
- `TRANSITIONS`, the state machine as one table of (state, event) → state. The events are the
  things that happen to a task: the coordinator dispatched its work, every worker answered, some
  failed, the sync-up found it stuck, its workers stopped answering or answer again, a remote job
  was cancelled or expired. A transition that is not in the table is a bug (`IllegalTransition`);
  an event for a task that is already done is ignored by the caller (`is_done`);
- `MLTask` / `MLModel` and their JSON (`MLTask.toXContent`, `MLModel.toXContent`: field order,
  fields only when set, `is_async` always, never `task_id` — the document id is the task id);
- the rules that turn observations into events: the deploy outcome (`deploy_outcome`), the sync-up
  timeout (`timed_out`), and tasksim's UNREACHABLE rule (`reachability_event`);
- the subset of the search DSL that `_plugins/_ml/tasks/_search` understands (`parse_search`,
  `run_search`), rendered as OpenSearch's `SearchResponse`;
- the memory circuit breaker's message (the ML cluster settings live in coordinator/settings.py).

The UNREACHABLE rule (tasksim's; ML Commons sets UNREACHABLE only for remote batch jobs): a RUNNING
task whose workers that still owe their part have *all* failed every sync-up probe for at least
`tasksim.ml.unreachable_after_seconds` becomes UNREACHABLE, its `error` the JSON map node → the last
probe failure. When any of them answers a probe again the task goes back to RUNNING (the `error` is
dropped) and finishes as its workers report; if the node leaves the cluster instead, its part fails
and the task ends COMPLETED_WITH_ERROR or FAILED. The sync-up timeout (`timeout after N seconds`)
applies to UNREACHABLE tasks as to RUNNING ones.
"""

from __future__ import annotations

import base64
import json
import operator
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from simnode.discovery import ClusterState
from simnode.errors import IllegalArgumentError, OpenSearchError, StatusError

ML_TASK_INDEX: Final = ".plugins-ml-task"
ML_MODEL_INDEX: Final = ".plugins-ml-model"

# -- vocabularies (ML Commons' enums, in declaration order) -----------------------------------------

CREATED, RUNNING, COMPLETED, FAILED = "CREATED", "RUNNING", "COMPLETED", "FAILED"
CANCELLED, COMPLETED_WITH_ERROR, CANCELLING = "CANCELLED", "COMPLETED_WITH_ERROR", "CANCELLING"
EXPIRED, UNREACHABLE = "EXPIRED", "UNREACHABLE"
TASK_STATES: Final = (
    CREATED,
    RUNNING,
    COMPLETED,
    FAILED,
    CANCELLED,
    COMPLETED_WITH_ERROR,
    CANCELLING,
    EXPIRED,
    UNREACHABLE,
)
# MLTaskManager.TASK_DONE_STATES, plus EXPIRED: nothing moves a task out of these.
DONE_STATES: Final = frozenset({COMPLETED, COMPLETED_WITH_ERROR, FAILED, CANCELLED, EXPIRED})

TASK_TYPES: Final = (
    "TRAINING",
    "PREDICTION",
    "TRAINING_AND_PREDICTION",
    "EXECUTION",
    "UPLOAD_MODEL",
    "LOAD_MODEL",
    "REGISTER_MODEL",
    "DEPLOY_MODEL",
    "BATCH_INGEST",
    "BATCH_PREDICTION",
    "AGENT_EXECUTION",
)
FUNCTION_NAMES: Final = (
    "LINEAR_REGRESSION",
    "KMEANS",
    "AD_LIBSVM",
    "SAMPLE_ALGO",
    "LOCAL_SAMPLE_CALCULATOR",
    "FIT_RCF",
    "BATCH_RCF",
    "ANOMALY_LOCALIZATION",
    "RCF_SUMMARIZE",
    "LOGISTIC_REGRESSION",
    "TEXT_EMBEDDING",
    "METRICS_CORRELATION",
    "REMOTE",
    "SPARSE_ENCODING",
    "SPARSE_TOKENIZE",
    "TEXT_SIMILARITY",
    "QUESTION_ANSWERING",
    "AGENT",
    "CONNECTOR",
    "TOOL",
)
# What `_train/<algorithm>` can run in tasksim (ML Commons' trainable built-in algorithms).
TRAINABLE: Final = frozenset(
    {"KMEANS", "LINEAR_REGRESSION", "LOGISTIC_REGRESSION", "FIT_RCF", "BATCH_RCF", "AD_LIBSVM"}
)
MODEL_STATES: Final = (
    "TRAINED",
    "UPLOADING",
    "UPLOADED",
    "LOADING",
    "LOADED",
    "PARTIALLY_LOADED",
    "UNLOADED",
    "LOAD_FAILED",
    "REGISTERING",
    "REGISTERED",
    "DEPLOYING",
    "DEPLOYED",
    "PARTIALLY_DEPLOYED",
    "UNDEPLOYED",
    "DEPLOY_FAILED",
)


def function_name(value: str) -> str:
    """`FunctionName.from`: upper-cased, else `Wrong function name`."""
    upper = value.upper()
    if upper not in FUNCTION_NAMES:
        raise IllegalArgumentError("Wrong function name")
    return upper


# ML Commons' pre-trained models (name → versions, function): what registering without `url`
# accepts; anything else fails inside the task, as `registerPrebuiltModel` does.
_SENTENCE = "huggingface/sentence-transformers/"
PRETRAINED: Final[Mapping[str, tuple[tuple[str, ...], str]]] = {
    **{
        _SENTENCE + name: (("1.0.1", "1.0.2"), "TEXT_EMBEDDING")
        for name in (
            "all-distilroberta-v1",
            "all-MiniLM-L6-v2",
            "all-MiniLM-L12-v2",
            "all-mpnet-base-v2",
            "msmarco-distilbert-base-tas-b",
            "multi-qa-MiniLM-L6-cos-v1",
            "multi-qa-mpnet-base-dot-v1",
            "paraphrase-MiniLM-L3-v2",
            "paraphrase-multilingual-MiniLM-L12-v2",
            "paraphrase-mpnet-base-v2",
            "distiluse-base-multilingual-cased-v1",
        )
    },
    "amazon/neural-sparse/opensearch-neural-sparse-encoding-v1": (("1.0.1",), "SPARSE_ENCODING"),
    "amazon/neural-sparse/opensearch-neural-sparse-encoding-v2-distill": (
        ("1.0.0",),
        "SPARSE_ENCODING",
    ),
    "amazon/neural-sparse/opensearch-neural-sparse-encoding-doc-v1": (
        ("1.0.1",),
        "SPARSE_ENCODING",
    ),
    "amazon/neural-sparse/opensearch-neural-sparse-tokenizer-v1": (("1.0.1",), "SPARSE_TOKENIZE"),
    "huggingface/cross-encoders/ms-marco-MiniLM-L-6-v2": (("1.0.2",), "TEXT_SIMILARITY"),
    "huggingface/cross-encoders/ms-marco-MiniLM-L-12-v2": (("1.0.2",), "TEXT_SIMILARITY"),
}


def pretrained_function(name: str, version: str) -> str | None:
    """The function of a known pre-trained model (name and version), else None."""
    known = PRETRAINED.get(name)
    if known is None or version not in known[0]:
        return None
    return known[1]


# `plugins.ml_commons.local_model.eligible_node_roles` / `remote_model.eligible_node_roles`.
ELIGIBLE_ROLES: Final = ("data", "ml")


def eligible_nodes(state: ClusterState, function: str, only_ml_nodes: bool) -> list[str]:
    """`DiscoveryNodeHelper.getEligibleNodes`, in cluster-state order: remote models on any node
    with an eligible role; local models only on `ml` nodes when `only_run_on_ml_node`."""
    out = []
    for node in state.nodes:
        if function != "REMOTE" and only_ml_nodes:
            ok = node.has_role("ml")
        else:
            ok = any(node.has_role(r) for r in ELIGIBLE_ROLES)
        if ok:
            out.append(node.id)
    return out


# -- the state machine ------------------------------------------------------------------------------


class IllegalTransition(ValueError):
    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"ML task in state [{state}] cannot take event [{event}]")
        self.state = state
        self.event = event


DISPATCHED = "dispatched"  # the work was handed to the worker(s)
SUCCEEDED = "succeeded"  # every worker did its part
PARTLY_FAILED = "partly_failed"  # some workers failed, some did their part
FAILED_EVENT = "failed"  # the work failed (every worker, or the only one)
TIMED_OUT = "timed_out"  # the sync-up found it untouched for ml_task_timeout_in_seconds
WORKERS_UNREACHABLE = "workers_unreachable"  # tasksim's UNREACHABLE rule fired
WORKERS_REACHABLE = "workers_reachable"  # a pending worker answers the sync-up again
CANCEL = "cancel"  # cancel requested (remote batch job)
CANCEL_CONFIRMED = "cancel_confirmed"  # the remote job reports cancelled
REMOTE_EXPIRED = "remote_expired"  # the remote job reports expired
EVENTS: Final = (
    DISPATCHED,
    SUCCEEDED,
    PARTLY_FAILED,
    FAILED_EVENT,
    TIMED_OUT,
    WORKERS_UNREACHABLE,
    WORKERS_REACHABLE,
    CANCEL,
    CANCEL_CONFIRMED,
    REMOTE_EXPIRED,
)

# (state, event) → next state. Every ML task moves only along these edges.
TRANSITIONS: Final[Mapping[tuple[str, str], str]] = {
    # REGISTER_MODEL stays CREATED while the worker downloads (ML Commons never sets RUNNING).
    (CREATED, DISPATCHED): RUNNING,
    (CREATED, SUCCEEDED): COMPLETED,
    (CREATED, FAILED_EVENT): FAILED,
    (CREATED, TIMED_OUT): FAILED,
    (CREATED, CANCEL): CANCELLING,
    (RUNNING, SUCCEEDED): COMPLETED,
    (RUNNING, PARTLY_FAILED): COMPLETED_WITH_ERROR,
    (RUNNING, FAILED_EVENT): FAILED,
    (RUNNING, TIMED_OUT): FAILED,
    (RUNNING, WORKERS_UNREACHABLE): UNREACHABLE,
    (RUNNING, CANCEL): CANCELLING,
    (RUNNING, REMOTE_EXPIRED): EXPIRED,
    (UNREACHABLE, WORKERS_REACHABLE): RUNNING,
    (UNREACHABLE, SUCCEEDED): COMPLETED,
    (UNREACHABLE, PARTLY_FAILED): COMPLETED_WITH_ERROR,
    (UNREACHABLE, FAILED_EVENT): FAILED,
    (UNREACHABLE, TIMED_OUT): FAILED,
    (UNREACHABLE, CANCEL): CANCELLING,
    (CANCELLING, CANCEL_CONFIRMED): CANCELLED,
    (CANCELLING, FAILED_EVENT): FAILED,
    (CANCELLING, TIMED_OUT): FAILED,
    (CANCELLING, REMOTE_EXPIRED): EXPIRED,
}


def next_state(state: str, event: str) -> str:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def is_done(state: str) -> bool:
    return state in DONE_STATES


# -- documents --------------------------------------------------------------------------------------

_ABSENT: Any = object()


@dataclass(frozen=True)
class MLTask:
    """One `.plugins-ml-task` document (`MLTask`); `task_id` is its `_id`, never in the source."""

    task_id: str
    task_type: str
    state: str
    create_time: int
    last_update_time: int
    is_async: bool
    model_id: str | None = None
    function_name: str | None = None
    input_type: str | None = None
    progress: float | None = None
    output_index: str | None = None
    worker_node: tuple[str, ...] | None = None
    error: str | None = None
    user: dict[str, Any] | None = None
    remote_job: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    tenant_id: str | None = None

    def source(self) -> dict[str, Any]:
        """`MLTask.toXContent` without `task_id`: this order, each field only when set."""
        out: dict[str, Any] = {}
        for name in (
            "model_id",
            "task_type",
            "function_name",
            "state",
            "input_type",
            "progress",
            "output_index",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.worker_node is not None:
            out["worker_node"] = list(self.worker_node)
        for name in ("create_time", "last_update_time", "error", "user"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["is_async"] = self.is_async
        for name in ("remote_job", "response", "tenant_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def moved(self, event: str, now_millis: int, **fields: Any) -> MLTask:
        """`MLTaskManager.updateMLTask` with a state change: the next state per `TRANSITIONS`,
        `last_update_time` now, and `fields` set (a `None` value removes the field)."""
        return replace(
            self, state=next_state(self.state, event), last_update_time=now_millis, **fields
        )

    def updated(self, now_millis: int, **fields: Any) -> MLTask:
        return replace(self, last_update_time=now_millis, **fields)


@dataclass(frozen=True)
class MLModel:
    """One `.plugins-ml-model` document (the model meta document; chunks are not simulated)."""

    model_id: str
    name: str
    algorithm: str
    model_version: str
    created_time: int
    last_updated_time: int
    model_group_id: str | None = None
    description: str | None = None
    model_format: str | None = None
    model_state: str | None = None
    model_content_size_in_bytes: int | None = None
    model_content_hash_value: str | None = None
    model_config: dict[str, Any] | None = None
    last_registered_time: int | None = None
    last_deployed_time: int | None = None
    last_undeployed_time: int | None = None
    auto_redeploy_retry_times: int | None = None
    total_chunks: int | None = None
    planning_worker_node_count: int | None = None
    current_worker_node_count: int | None = None
    planning_worker_nodes: tuple[str, ...] = ()
    deploy_to_all_nodes: bool = False
    is_hidden: bool = False

    def source(self) -> dict[str, Any]:
        """`MLModel.toXContent` as `GET _plugins/_ml/models/<id>` shows it (no content, no id)."""
        out: dict[str, Any] = {"name": self.name}
        if self.model_group_id is not None:
            out["model_group_id"] = self.model_group_id
        out["algorithm"] = self.algorithm
        out["model_version"] = self.model_version
        for name in (
            "description",
            "model_format",
            "model_state",
            "model_content_size_in_bytes",
            "model_content_hash_value",
            "model_config",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["created_time"] = self.created_time
        out["last_updated_time"] = self.last_updated_time
        for name in (
            "last_registered_time",
            "last_deployed_time",
            "last_undeployed_time",
            "auto_redeploy_retry_times",
            "total_chunks",
            "planning_worker_node_count",
            "current_worker_node_count",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.planning_worker_nodes:
            out["planning_worker_nodes"] = list(self.planning_worker_nodes)
        if self.deploy_to_all_nodes:
            out["deploy_to_all_nodes"] = True
        out["is_hidden"] = self.is_hidden
        return out


def doc_id(rng: random.Random) -> str:
    """An auto-generated document id: 20 URL-safe base64 characters, as OpenSearch makes them."""
    return base64.urlsafe_b64encode(rng.randbytes(15)).decode("ascii")


# -- rules that turn observations into events -------------------------------------------------------


def errors_json(errors: Mapping[str, str]) -> str:
    """`MLExceptionUtils.toJsonString(map)`: the node → message map as compact JSON."""
    return json.dumps(dict(errors), separators=(",", ":"), ensure_ascii=False)


def deploy_outcome(workers: Iterable[str], errors: Mapping[str, str]) -> tuple[str, str | None]:
    """`TransportForwardAction` DEPLOY_MODEL_DONE once no worker is pending: every worker fine →
    COMPLETED; some failed → COMPLETED_WITH_ERROR; all failed → FAILED; `error` is the map."""
    workers = list(workers)
    if not errors:
        return SUCCEEDED, None
    failed_all = all(w in errors for w in workers)
    return (FAILED_EVENT if failed_all else PARTLY_FAILED), errors_json(
        {w: errors[w] for w in workers if w in errors}
    )


def deploy_model_state(workers: Iterable[str], errors: Mapping[str, str]) -> str:
    workers = list(workers)
    if not errors:
        return "DEPLOYED"
    return "DEPLOY_FAILED" if all(w in errors for w in workers) else "PARTIALLY_DEPLOYED"


def timed_out(
    task: MLTask,
    now_millis: int,
    timeout_seconds: int,
    running_deploy_tasks: frozenset[str] = frozenset(),
) -> bool:
    """`TransportSyncUpOnNodeAction.cleanUpLocalCache`: untouched for longer than the timeout —
    except a DEPLOY_MODEL task still CREATED that some node reports as deploying."""
    if is_done(task.state) or now_millis <= task.last_update_time + timeout_seconds * 1000:
        return False
    return not (
        task.task_type == "DEPLOY_MODEL"
        and task.state == CREATED
        and task.task_id in running_deploy_tasks
    )


def timeout_error(timeout_seconds: int) -> str:
    return f"timeout after {timeout_seconds} seconds"


def reachability_event(
    state: str,
    pending: Iterable[str],
    unreachable_since: Mapping[str, float],
    now: float,
    after: float,
) -> str | None:
    """tasksim's UNREACHABLE rule (module docstring): RUNNING → UNREACHABLE when every pending
    worker has been unreachable for `after` seconds; UNREACHABLE → RUNNING when one answers."""
    pending = list(pending)
    if not pending:
        return None
    all_gone = all(w in unreachable_since and now - unreachable_since[w] >= after for w in pending)
    if state == RUNNING and all_gone:
        return WORKERS_UNREACHABLE
    if state == UNREACHABLE and any(w not in unreachable_since for w in pending):
        return WORKERS_REACHABLE
    return None


# -- errors of the ML REST API ----------------------------------------------------------------------


def task_not_found() -> OpenSearchError:
    return StatusError("Failed to find task", 404)


def model_not_found() -> OpenSearchError:
    return StatusError("Failed to find model", 404)


def delete_running_task() -> OpenSearchError:
    """`DeleteTaskTransportAction`: a plain `Exception` → HTTP 500, type `exception`."""
    return OpenSearchError("Task cannot be deleted in running state. Try after some time.")


class ParsingError(OpenSearchError):
    """`ParsingException` (search DSL problems)."""

    type = "parsing_exception"
    status = 400


class QueryShardError(OpenSearchError):
    type = "query_shard_exception"
    status = 400


# -- the search subset ------------------------------------------------------------------------------

# The `.plugins-ml-task` mapping: keyword fields match exactly, `error` is text, times are dates.
KEYWORD_FIELDS: Final = frozenset(
    {
        "model_id",
        "task_type",
        "function_name",
        "state",
        "input_type",
        "output_index",
        "worker_node",
        "tenant_id",
    }
)
TEXT_FIELDS: Final = frozenset({"error"})
NUMERIC_FIELDS: Final = frozenset({"create_time", "last_update_time", "progress"})
BOOLEAN_FIELDS: Final = frozenset({"is_async"})
MAPPED_FIELDS: Final = KEYWORD_FIELDS | TEXT_FIELDS | NUMERIC_FIELDS | BOOLEAN_FIELDS

Query = Callable[[str, dict[str, Any]], bool]


@dataclass(frozen=True)
class SearchRequest:
    query: Query
    scoring: bool  # False for pure filter context (hits score 0.0)
    size: int = 10
    from_: int = 0
    sort: tuple[tuple[str, bool], ...] = ()  # (field, descending)


def _values(source: dict[str, Any], name: str) -> list[Any]:
    value = source.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"\W+", text.lower()) if t}


def _same(field_name: str, doc_value: Any, wanted: Any) -> bool:
    if field_name in BOOLEAN_FIELDS:
        return str(doc_value).lower() == str(wanted).lower()
    if field_name in NUMERIC_FIELDS:
        try:
            return float(doc_value) == float(wanted)
        except (TypeError, ValueError):
            return False
    return str(doc_value) == str(wanted) if not isinstance(wanted, bool) else False


def _single_field(kind: str, body: Any) -> tuple[str, Any]:
    if not isinstance(body, dict) or len(body) != 1:
        raise ParsingError(f"[{kind}] query doesn't support multiple fields, found {len(body)}")
    ((name, value),) = body.items()
    return name, value


def _term(body: Any) -> Query:
    name, value = _single_field("term", body)
    if isinstance(value, dict):
        value = value.get("value")

    def match(_id: str, source: dict[str, Any]) -> bool:
        if name == "_id":
            return bool(_id == value)
        return any(_same(name, v, value) for v in _values(source, name))

    return match


def _terms(body: Any) -> Query:
    if not isinstance(body, dict):
        raise ParsingError("[terms] query malformed, no start_object after query name")
    fields = {k: v for k, v in body.items() if k != "boost"}
    if len(fields) != 1:
        raise ParsingError("[terms] query does not support multiple fields")
    ((name, wanted),) = fields.items()
    if not isinstance(wanted, list):
        raise ParsingError(f"[terms] query does not support [{name}]")

    def match(_id: str, source: dict[str, Any]) -> bool:
        if name == "_id":
            return _id in wanted
        return any(_same(name, v, w) for v in _values(source, name) for w in wanted)

    return match


def _match(body: Any) -> Query:
    name, value = _single_field("match", body)
    if isinstance(value, dict):
        value = value.get("query")
    if name in TEXT_FIELDS:
        wanted = _tokens(str(value))
        return lambda _id, source: any(wanted & _tokens(str(v)) for v in _values(source, name))
    return _term({name: value})


_RANGE_OPS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _range(body: Any) -> Query:
    name, bounds = _single_field("range", body)
    if not isinstance(bounds, dict):
        raise ParsingError("[range] query malformed, no start_object after query name")
    checks: list[tuple[Callable[[float, float], bool], float]] = []
    for op, bound in bounds.items():
        if op in ("format", "boost"):
            continue
        compare = _RANGE_OPS.get(op)
        if compare is None:
            raise ParsingError(f"[range] query does not support [{op}]")
        try:
            checks.append((compare, float(bound)))
        except (TypeError, ValueError):
            raise ParsingError(f"[range] query does not support [{op}] = [{bound}]") from None

    def match(_id: str, source: dict[str, Any]) -> bool:
        for v in _values(source, name):
            try:
                x = float(v)
            except (TypeError, ValueError):
                continue
            if all(compare(x, b) for compare, b in checks):
                return True
        return False

    return match


def _exists(body: Any) -> Query:
    if not isinstance(body, dict) or "field" not in body:
        raise ParsingError("[exists] must be provided with a [field]")
    name = body["field"]
    return lambda _id, source: bool(_values(source, name))


def _ids(body: Any) -> Query:
    wanted = set(body.get("values", [])) if isinstance(body, dict) else set()
    return lambda _id, _source: _id in wanted


def _clauses(value: Any) -> list[Query]:
    items = value if isinstance(value, list) else [value]
    return [parse_query(item)[0] for item in items]


def _bool(body: Any) -> tuple[Query, bool]:
    if not isinstance(body, dict):
        raise ParsingError("[bool] query malformed, no start_object after query name")
    unknown = set(body) - {"must", "filter", "should", "must_not", "minimum_should_match", "boost"}
    if unknown:
        raise ParsingError(f"[bool] query does not support [{sorted(unknown)[0]}]")
    must = _clauses(body.get("must", []))
    filters = _clauses(body.get("filter", []))
    should = _clauses(body.get("should", []))
    must_not = _clauses(body.get("must_not", []))
    minimum = body.get("minimum_should_match")
    if minimum is None:
        minimum = 0 if (must or filters) else (1 if should else 0)
    minimum = int(minimum)

    def match(_id: str, source: dict[str, Any]) -> bool:
        if not all(q(_id, source) for q in must + filters):
            return False
        if any(q(_id, source) for q in must_not):
            return False
        return sum(1 for q in should if q(_id, source)) >= minimum

    return match, bool(must or should)


def parse_query(query: Any) -> tuple[Query, bool]:
    """One query clause → (predicate, scoring). The supported subset: match_all, match_none,
    term, terms, match, range, exists, ids, bool."""
    if not isinstance(query, dict) or len(query) != 1:
        raise ParsingError("[_na] query malformed, must start with start_object")
    ((kind, body),) = query.items()
    if kind == "match_all":
        return (lambda _id, _s: True), True
    if kind == "match_none":
        return (lambda _id, _s: False), True
    if kind == "bool":
        return _bool(body)
    parsers: dict[str, Callable[[Any], Query]] = {
        "term": _term,
        "terms": _terms,
        "match": _match,
        "range": _range,
        "exists": _exists,
        "ids": _ids,
    }
    parser = parsers.get(kind)
    if parser is None:
        raise ParsingError(f"unknown query [{kind}]")
    return parser(body), True


def _sort(spec: Any) -> tuple[tuple[str, bool], ...]:
    items = spec if isinstance(spec, list) else [spec]
    out: list[tuple[str, bool]] = []
    for item in items:
        if isinstance(item, str):
            name, order = item, "asc"
        elif isinstance(item, dict) and len(item) == 1:
            ((name, how),) = item.items()
            order = how.get("order", "asc") if isinstance(how, dict) else str(how)
        else:
            raise ParsingError(
                "malformed sort format, within the sort array, an object, or an actual string are allowed"
            )
        if order not in ("asc", "desc"):
            raise IllegalArgumentError(f"Unknown SortOrder [{order}]")
        if name not in MAPPED_FIELDS and name not in ("_score", "_doc"):
            raise QueryShardError(f"No mapping found for [{name}] in order to sort on")
        if name in TEXT_FIELDS:
            raise IllegalArgumentError(
                f"Text fields are not optimised for operations that require per-document field "
                f"data like aggregations and sorting, so these operations are disabled by default. "
                f"Please use a keyword field instead. Alternatively, set fielddata=true on [{name}] "
                f"in order to load field data by uninverting the inverted index. Note that this can "
                f"use significant memory."
            )
        out.append((name, order == "desc"))
    return tuple(out)


_SEARCH_KEYS = frozenset(
    {
        "query",
        "size",
        "from",
        "sort",
        "_source",
        "track_total_hits",
        "seq_no_primary_term",
        "version",
    }
)


def parse_search(body: Any) -> SearchRequest:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ParsingError("Expected [START_OBJECT] but found [START_ARRAY]")
    unknown = set(body) - _SEARCH_KEYS
    if unknown:
        raise ParsingError(f"Unknown key for a START_OBJECT in [{sorted(unknown)[0]}].")
    query, scoring = parse_query(body.get("query", {"match_all": {}}))
    try:
        size = int(body.get("size", 10))
        from_ = int(body.get("from", 0))
    except (TypeError, ValueError) as e:
        raise ParsingError(f"[size] and [from] must be numbers: {e}") from None
    if size < 0:
        raise IllegalArgumentError(f"[size] parameter cannot be negative, found [{size}]")
    if from_ < 0:
        raise IllegalArgumentError(f"[from] parameter cannot be negative, found [{from_}]")
    sort = _sort(body["sort"]) if "sort" in body else ()
    return SearchRequest(query=query, scoring=scoring, size=size, from_=from_, sort=sort)


@dataclass(frozen=True)
class StoredDoc:
    """A document of a simulated index, with its write metadata."""

    id: str
    source: dict[str, Any]
    version: int
    seq_no: int
    primary_term: int = 1


def _sort_key(field_name: str, source: dict[str, Any]) -> Any:
    values = _values(source, field_name)
    return values[0] if values else None


def _by(field_name: str) -> Callable[[StoredDoc], Any]:
    def key(doc: StoredDoc) -> Any:
        return _sort_key(field_name, doc.source)

    return key


def run_search(
    index: str, docs: Iterable[StoredDoc], req: SearchRequest, *, took: int = 1, shards: int = 1
) -> dict[str, Any]:
    """The `SearchResponse` of ML Commons' search actions (`seqNoAndPrimaryTerm` and `version` on)."""
    hits = [d for d in docs if req.query(d.id, d.source)]
    for name, descending in reversed(req.sort):
        if name in ("_score", "_doc"):
            continue
        present = [d for d in hits if _sort_key(name, d.source) is not None]
        missing = [d for d in hits if _sort_key(name, d.source) is None]
        present.sort(key=_by(name), reverse=descending)
        hits = present + missing  # missing values sort last either way (`_last`)
    total = len(hits)
    page = hits[req.from_ : req.from_ + req.size]
    score: float | None = (1.0 if req.scoring else 0.0) if not req.sort else None
    rendered = []
    for d in page:
        hit: dict[str, Any] = {
            "_index": index,
            "_id": d.id,
            "_version": d.version,
            "_seq_no": d.seq_no,
            "_primary_term": d.primary_term,
            "_score": score,
            "_source": d.source,
        }
        if req.sort:
            hit["sort"] = [_sort_value(name, d) for name, _ in req.sort]
        rendered.append(hit)
    return {
        "took": took,
        "timed_out": False,
        "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": total, "relation": "eq"},
            "max_score": score if total else None,
            "hits": rendered,
        },
    }


def _sort_value(name: str, doc: StoredDoc) -> Any:
    if name == "_doc":
        return doc.seq_no
    if name == "_score":
        return 1.0
    value = _sort_key(name, doc.source)
    if value is None:
        return None
    return value


# -- the memory circuit breaker --------------------------------------------------------------------

CIRCUIT_BREAKER_OPEN: Final = "Memory Circuit Breaker is open, please check your resources!"
NATIVE_CIRCUIT_BREAKER_OPEN: Final = (
    "Native Memory Circuit Breaker is open, please check your resources!"
)


def open_circuit_breaker(
    heap_used: int, heap_threshold: int, native_used: int, native_threshold: int
) -> str | None:
    """`MLCircuitBreakerService.checkOpenCB` for the two memory breakers: a breaker is open when
    the usage is above its threshold (`plugins.ml_commons.jvm_heap_memory_threshold`,
    `native_memory_threshold`: 100 never opens, 0 opens at any usage); the JVM heap breaker is
    looked at first. The message, or None when both are closed."""
    if heap_used > heap_threshold:
        return CIRCUIT_BREAKER_OPEN
    if native_used > native_threshold:
        return NATIVE_CIRCUIT_BREAKER_OPEN
    return None
