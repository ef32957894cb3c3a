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
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from coordinator import documents
from coordinator.documents import Document as StoredDoc
from coordinator.documents import (
    IndexMapping,
    SearchRequest,
    Target,
    check_sort,
)
from coordinator.documents import (
    ParsingError as ParsingError,
)
from coordinator.documents import (
    QueryShardError as QueryShardError,
)
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


# -- the search subset ------------------------------------------------------------------------------
# One query DSL in the house: coordinator/documents/. ML Commons' task search is a search of the
# `.plugins-ml-task` index, whose mapping is fixed (keyword fields match exactly, `error` is text,
# times are dates), with `version` and `seq_no_primary_term` on.

ML_TASK_MAPPING: Final = IndexMapping.of(
    {
        **{
            name: "keyword"
            for name in (
                "model_id",
                "task_type",
                "function_name",
                "state",
                "input_type",
                "output_index",
                "worker_node",
                "tenant_id",
            )
        },
        "error": "text",
        "create_time": "date",
        "last_update_time": "date",
        "progress": "float",
        "is_async": "boolean",
    }
)


def parse_search(body: Any) -> SearchRequest:
    """`_plugins/_ml/tasks/_search`'s body, with the mapping's sort checks done up front."""
    request = documents.parse_search(body)
    check_sort(request.sort, [ML_TASK_MAPPING])
    return replace(request, version=True, seq_no_primary_term=True)


def run_search(
    index: str, docs: Iterable[StoredDoc], req: SearchRequest, *, took: int = 1, shards: int = 1
) -> dict[str, Any]:
    """The `SearchResponse` of ML Commons' search actions."""
    target = Target(index, tuple(docs), ML_TASK_MAPPING)
    return documents.search(
        [target],
        req,
        took=took,
        shards={"total": shards, "successful": shards, "skipped": 0, "failed": 0},
    )


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
