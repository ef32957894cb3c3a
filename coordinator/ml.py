"""ML Commons on the coordinating node: the ML task and model stores and the operations on them.

What lives here: the `.plugins-ml-task` and `.plugins-ml-model` indices (`DocIndex`: documents
with `_version` / `_seq_no`, created on the first write, as OpenSearch creates indices on demand),
the routing table (which node holds which model), and the operations of the ML REST API:
register, deploy, undeploy, train, get/delete/search tasks, get a model, cancel a batch job. Each
operation is a transport task on the coordinating node (`_tasks` shows it) and sends its per-node
work to the workers over `MlNode` (simnode/ml.py), whose parts are transport tasks there, children
of the coordinating task.

The background work of an ML task (a deploy, an async training, a registration) runs in the
coordinating node's nursery inside a cancel scope of its own, so that the sync-up can end a stuck
task. The sync-up cron (`cluster:admin/opensearch/ml/syncup`, every
`plugins.ml_commons.sync_up_job_interval_in_seconds`) asks every node what it holds, refreshes the
routing table and the deployed models' states, fails the tasks untouched for
`plugins.ml_commons.ml_task_timeout_in_seconds`, and applies tasksim's UNREACHABLE rule
(coordinator/ml_state.py says exactly when). It starts with the first ML request.

Every decision (states, documents, search) is taken in coordinator/ml_state.py, the settings are
read from coordinator/settings.py's registry; this module carries it out. Only the coordinator's trio loop touches this state.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar

import trio

from coordinator.cluster import Cluster
from coordinator.documents import Document, IndexDocs, IndexMapping
from coordinator.ml_state import (
    CIRCUIT_BREAKER_OPEN,
    CREATED,
    DISPATCHED,
    FAILED_EVENT,
    ML_MODEL_INDEX,
    ML_TASK_INDEX,
    RUNNING,
    SUCCEEDED,
    TIMED_OUT,
    TRAINABLE,
    WORKERS_UNREACHABLE,
    MLModel,
    MLTask,
    delete_running_task,
    deploy_model_state,
    deploy_outcome,
    doc_id,
    eligible_nodes,
    errors_json,
    function_name,
    is_done,
    model_not_found,
    open_circuit_breaker,
    parse_search,
    pretrained_function,
    reachability_event,
    run_search,
    task_not_found,
    timed_out,
    timeout_error,
)
from simnode import jsontext
from simnode._wire import ml_pb2 as mlpb
from simnode.errors import (
    IllegalArgumentError,
    IndexNotFoundError,
    NoSuchNodeError,
    OpenSearchError,
    StatusError,
)
from simnode.registry import Headers, Task
from simnode.taskid import TaskId
from simnode.wire import headers_to_pb

REGISTER_ACTION = "cluster:admin/opensearch/ml/register_model"
DEPLOY_ACTION = "cluster:admin/opensearch/ml/deploy_model"
DEPLOY_ON_NODES_ACTION = "cluster:admin/opensearch/ml/deploy_model_on_nodes"
UNDEPLOY_MODELS_ACTION = "cluster:admin/opensearch/ml/undeploy_models"
UNDEPLOY_MODEL_ACTION = "cluster:admin/opensearch/ml/undeploy_model"
TRAIN_ACTION = "cluster:admin/opensearch/ml/train"
GET_TASK_ACTION = "cluster:admin/opensearch/ml/tasks/get"
DELETE_TASK_ACTION = "cluster:admin/opensearch/ml/tasks/delete"
SEARCH_TASKS_ACTION = "cluster:admin/opensearch/ml/tasks/search"
CANCEL_TASK_ACTION = "cluster:admin/opensearch/ml/tasks/cancel"
GET_MODEL_ACTION = "cluster:admin/opensearch/ml/models/get"
SYNC_UP_ACTION = "cluster:admin/opensearch/ml/syncup"

T = TypeVar("T")


class DocIndex(Generic[T]):
    """A simulated one-shard index of typed values: the documents (`_version`, `_seq_no`,
    `_primary_term` 1) are the house's document store (coordinator/documents, `IndexDocs`); this
    keeps the typed value of each beside it.

    The stored `_source` is what partial updates make of it, as ML Commons updates its documents
    (`updateMLTask`): fields already there keep their place, new ones are appended, dropped ones
    go. (`GET` re-renders the document in its canonical order; `_search` shows the `_source`.)
    ML Commons reads its own writes, so its searches see the live documents.
    """

    def __init__(self, name: str, render: Callable[[T], dict[str, Any]]) -> None:
        self.name = name
        self.exists = False
        self._render = render
        self._docs = IndexDocs(name, mapping=IndexMapping(dynamic=False))
        self._values: dict[str, T] = {}
        # Told of every write: (id, the value before or None, the value now).
        self.on_put: Callable[[str, T | None, T], None] | None = None

    def get(self, doc_id: str) -> T | None:
        return self._values.get(doc_id)

    def put(self, doc_id: str, value: T) -> None:
        self.exists = True
        old = self._values.get(doc_id)
        if self.on_put is not None:
            self.on_put(doc_id, old, value)
        fresh = self._render(value)
        stored = self._docs.get(doc_id)
        if stored is not None:
            source = {k: v for k, v in stored.source.items() if k in fresh}
            source.update(fresh)
            fresh = source
        self._docs.index(doc_id, fresh)
        self._values[doc_id] = value

    def delete(self, doc_id: str) -> tuple[int, int] | None:
        """Remove a document; (new `_version`, `_seq_no`) of the delete, or None if absent."""
        if self._values.pop(doc_id, None) is None:
            return None
        result = self._docs.delete(doc_id)
        return result.version, result.seq_no

    def values(self) -> list[T]:
        return list(self._values.values())

    def stored(self) -> list[Document]:
        """The documents in the order they were first written (as ML Commons' searches list them)."""
        docs = (self._docs.get(doc_id) for doc_id in self._values)
        return [d for d in docs if d is not None]


class MlService:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.tasks: DocIndex[MLTask] = DocIndex(ML_TASK_INDEX, MLTask.source)
        if cluster.recorder is not None:  # every state an ML task takes goes into the history
            self.tasks.on_put = self._record_state
        self.models: DocIndex[MLModel] = DocIndex(ML_MODEL_INDEX, MLModel.source)
        self.routing: dict[str, set[str]] = {}  # model id → nodes that hold it
        self._routed_at: dict[str, float] = {}  # model id → last routing change (trio time)
        self.pending: dict[str, set[str]] = {}  # ML task id → workers that still owe their part
        self.unreachable_since: dict[str, float] = {}  # node id → first failed sync-up (trio time)
        self.last_probe_error: dict[str, str] = {}
        self._rng = random.Random(f"{cluster.config.seed}/ml")
        self._scopes: dict[str, trio.CancelScope] = {}  # the ML task "cache": tasks still running
        self._groups: dict[str, tuple[str, int]] = {}  # model name → (model group id, versions)
        self._next_worker = 0
        self._cron_started = False
        self._settings_changed = trio.Event()
        cluster.settings_listeners.append(self.settings_changed)

    # -- helpers ---------------------------------------------------------------------------------

    def _record_state(self, task_id: str, old: MLTask | None, new: MLTask) -> None:
        if self.cluster.recorder is not None and (old is None or old.state != new.state):
            self.cluster.recorder.record(
                "ml_task_state",
                ml_task=task_id,
                state=new.state,
                previous=old.state if old is not None else None,
                task_type=new.task_type,
            )

    def _now(self) -> int:
        clock = self.cluster.local.clock
        assert clock is not None
        return clock.now_millis()

    def _register(self, action: str, headers: Headers, parent: TaskId | None = None) -> Task:
        kwargs: dict[str, Any] = {} if parent is None else {"parent": parent}
        return self.cluster.local.register(action, local=False, headers=headers, **kwargs)

    def _unregister(self, task: Task) -> None:
        self.cluster.local.unregister(task)

    def _new_id(self) -> str:
        return doc_id(self._rng)

    def setting(self, name: str) -> Any:
        return self.cluster.setting(name)

    def settings_changed(self) -> None:
        self._settings_changed.set()
        self._settings_changed = trio.Event()

    def start(self) -> None:
        """Start the sync-up cron on the first ML request (idempotent)."""
        if not self._cron_started:
            self._cron_started = True
            self.cluster.local.spawn("the ML sync-up cron", self._cron)

    def _eligible(self, function: str) -> list[str]:
        return eligible_nodes(
            self.cluster.state, function, self.setting("plugins.ml_commons.only_run_on_ml_node")
        )

    def _dispatch(self, function: str) -> str:
        """`MLTaskDispatcher`: the next eligible node, round robin."""
        nodes = self._eligible(function)
        if not nodes:
            raise IllegalArgumentError("no eligible node found")
        node = nodes[self._next_worker % len(nodes)]
        self._next_worker += 1
        return node

    async def _call(self, node_id: str, method: str, request: Any) -> Any:
        """One node's part, through the coordinating node's links (itself: the loopback link)."""
        if node_id != self.cluster.local.local.id and self.cluster.state.get(node_id) is None:
            raise NoSuchNodeError.of(node_id)
        timeout = self.setting("tasksim.ml.sync_up_timeout_seconds") if method == "SyncUp" else None
        return await self.cluster.local.send(node_id, method, request, timeout=timeout)

    def _spawn(self, task_id: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run an ML task's background work in its own cancel scope (the sync-up may end it)."""
        scope = trio.CancelScope()
        self._scopes[task_id] = scope

        async def run() -> None:
            try:
                with scope:
                    await work()
            except Exception as e:  # a bug in the work: this ML task fails, the rest serves on
                error = self.cluster.local.log_bug(e, f"ML task [{task_id}]")
                self._move(task_id, FAILED_EVENT, error=error.reason)
            finally:
                if self._scopes.get(task_id) is scope:
                    del self._scopes[task_id]
                self.pending.pop(task_id, None)

        self.cluster.local.spawn(f"ML task [{task_id}]", run)

    def _move(self, task_id: str, event: str, **fields: Any) -> MLTask | None:
        """Apply an event to a stored task; a deleted or finished task ignores it."""
        task = self.tasks.get(task_id)
        if task is None or is_done(task.state):
            return None
        moved = task.moved(event, self._now(), **fields)
        self.tasks.put(task_id, moved)
        return moved

    def _route(self, model_id: str, node_id: str, present: bool) -> None:
        nodes = self.routing.setdefault(model_id, set())
        if present:
            nodes.add(node_id)
        else:
            nodes.discard(node_id)
        self._routed_at[model_id] = trio.current_time()

    def _update_model(self, model_id: str, **fields: Any) -> None:
        model = self.models.get(model_id)
        if model is not None:
            self.models.put(model_id, replace(model, last_updated_time=self._now(), **fields))

    # -- register --------------------------------------------------------------------------------

    def register_model(self, body: Any, headers: Headers) -> dict[str, Any]:
        """`TransportRegisterModelAction`: a REGISTER_MODEL task, the download on a worker."""
        me = self._register(REGISTER_ACTION, headers)
        try:
            if not isinstance(body, dict):
                raise IllegalArgumentError("model name is null")
            name = body.get("name")
            if not name:
                raise IllegalArgumentError("model name is null")
            function = function_name(str(body.get("function_name") or "TEXT_EMBEDDING"))
            is_remote = function == "REMOTE" or "connector_id" in body or "connector" in body
            model_format = body.get("model_format")
            url = body.get("url")
            if not is_remote:
                if model_format is None:
                    raise IllegalArgumentError("model format is null")
                if url is not None and body.get("model_config") is None:
                    raise IllegalArgumentError("model config is null")
            fail_reason = ""
            if not is_remote and url is None:
                known = pretrained_function(str(name), str(body.get("version", "")))
                if known is None:
                    fail_reason = (
                        "This model is not in the pre-trained model list, please check your "
                        "parameters."
                    )
                else:
                    function = known
            # Dispatch first: with no eligible node nothing is created.
            worker = "" if is_remote else self._dispatch(function)
            now = self._now()
            group_id, version = self._model_group(str(name), body.get("model_group_id"))
            model_id = self._new_id()
            model = MLModel(
                model_id=model_id,
                name=str(name),
                algorithm="REMOTE" if is_remote else function,
                model_version=str(version),
                created_time=now,
                last_updated_time=now,
                model_group_id=group_id,
                description=body.get("description"),
                model_format=None if is_remote else str(model_format),
                model_state="REGISTERED" if is_remote else "REGISTERING",
                model_config=body.get("model_config"),
                last_registered_time=now if is_remote else None,
            )
            self.models.put(model_id, model)
            task_id = self._new_id()
            if is_remote:
                # A remote model is only metadata: registered at once, its task COMPLETED.
                task = MLTask(
                    task_id=task_id,
                    task_type="REGISTER_MODEL",
                    state="COMPLETED",
                    create_time=now,
                    last_update_time=now,
                    is_async=False,
                    model_id=model_id,
                    function_name="REMOTE",
                    worker_node=(self.cluster.local.local.id,),
                )
                self.tasks.put(task_id, task)
                return {"task_id": task_id, "status": "CREATED", "model_id": model_id}
            task = MLTask(
                task_id=task_id,
                task_type="REGISTER_MODEL",
                state=CREATED,
                create_time=now,
                last_update_time=now,
                is_async=True,
                function_name=function,
                worker_node=(worker,),
            )
            self.tasks.put(task_id, task)
            self.pending[task_id] = {worker}
            request = mlpb.RegisterModelRequest(
                task_id=task_id,
                model_id=model_id,
                name=str(name),
                duration_millis=int(self.setting("tasksim.ml.register_seconds") * 1000),
                fail_reason=fail_reason,
                parent_task=str(me.task_id),
                headers=headers_to_pb(headers),
            )

            async def work() -> None:
                try:
                    answer = await self._call(worker, "RegisterModel", request)
                except OpenSearchError as e:
                    self._move(task_id, FAILED_EVENT, error=e.reason)
                    self.models.delete(
                        model_id
                    )  # ML Commons deletes the model of a failed register
                    return
                self._update_model(
                    model_id,
                    model_state="REGISTERED",
                    last_registered_time=self._now(),
                    total_chunks=answer.total_chunks,
                    model_content_hash_value=answer.model_content_hash_value,
                    model_content_size_in_bytes=answer.model_content_size_in_bytes,
                )
                self._move(task_id, SUCCEEDED, model_id=model_id)

            self._spawn(task_id, work)
            return {"task_id": task_id, "status": "CREATED"}
        finally:
            self._unregister(me)

    def _model_group(self, name: str, given: Any) -> tuple[str, int]:
        if given:
            group = str(given)
            versions = sum(1 for m in self.models.values() if m.model_group_id == group)
            return group, versions + 1
        group, count = self._groups.get(name, (self._new_id(), 0))
        self._groups[name] = (group, count + 1)
        return group, count + 1

    # -- deploy ----------------------------------------------------------------------------------

    def deploy_model(self, model_id: str, body: Any, headers: Headers) -> dict[str, Any]:
        """`TransportDeployModelAction`: a DEPLOY_MODEL task on the eligible nodes."""
        me = self._register(DEPLOY_ACTION, headers)
        try:
            model = self.models.get(model_id)
            if model is None:
                raise model_not_found()
            wanted = body.get("node_ids") if isinstance(body, dict) else None
            custom = bool(wanted)
            if custom and not self.setting("plugins.ml_commons.allow_custom_deployment_plan"):
                raise IllegalArgumentError("Don't allow custom deployment plan")
            eligible = self._eligible(model.algorithm)
            if custom:
                assert isinstance(wanted, list)
                targets = [str(n) for n in wanted if str(n) in eligible]
            else:
                targets = eligible
            if not targets:
                raise IllegalArgumentError("no eligible node found")
            now = self._now()
            task_id = self._new_id()
            task = MLTask(
                task_id=task_id,
                task_type="DEPLOY_MODEL",
                state=CREATED,
                create_time=now,
                last_update_time=now,
                is_async=True,
                model_id=model_id,
                function_name=model.algorithm,
                worker_node=tuple(targets),
            )
            self.tasks.put(task_id, task)
            self.pending[task_id] = set(targets)
            self._spawn(task_id, lambda: self._deploy(task_id, model, targets, not custom, headers))
            return {"task_id": task_id, "task_type": "DEPLOY_MODEL", "status": "CREATED"}
        finally:
            self._unregister(me)

    async def _deploy(
        self, task_id: str, model: MLModel, targets: list[str], to_all: bool, headers: Headers
    ) -> None:
        """`updateModelDeployStatusAndTriggerOnNodesAction` + DEPLOY_MODEL_DONE per worker."""
        on_nodes = self._register(DEPLOY_ON_NODES_ACTION, headers)
        try:
            self._update_model(
                model.model_id,
                model_state="DEPLOYING",
                planning_worker_node_count=len(targets),
                planning_worker_nodes=tuple(targets),
                deploy_to_all_nodes=to_all,
            )
            self._move(task_id, DISPATCHED)
            failing = {
                n.strip() for n in str(self.setting("tasksim.ml.deploy_fail_nodes")).split(",")
            }
            load_millis = int(self.setting("tasksim.ml.deploy_seconds") * 1000)
            breaker = open_circuit_breaker(
                self.setting("tasksim.ml.jvm_heap_used_percent"),
                self.setting("plugins.ml_commons.jvm_heap_memory_threshold"),
                self.setting("tasksim.ml.native_memory_used_percent"),
                self.setting("plugins.ml_commons.native_memory_threshold"),
            )
            errors: dict[str, str] = {}

            async def one(node_id: str) -> None:
                node = self.cluster.state.get(node_id)
                request = mlpb.DeployModelRequest(
                    model_id=model.model_id,
                    task_id=task_id,
                    function_name=model.algorithm,
                    load_millis=load_millis,
                    fail_reason=CIRCUIT_BREAKER_OPEN
                    if node is not None and node.name in failing
                    else breaker or "",
                    parent_task=str(on_nodes.task_id),
                    headers=headers_to_pb(headers),
                )
                try:
                    await self._call(node_id, "DeployModel", request)
                    self._route(model.model_id, node_id, True)
                except OpenSearchError as e:
                    errors[node_id] = e.reason
                finally:
                    self.pending.get(task_id, set()).discard(node_id)

            async with trio.open_nursery() as nursery:
                for node_id in targets:
                    nursery.start_soon(one, node_id)
            event, error = deploy_outcome(targets, errors)
            self._move(task_id, event, error=error)
            self._update_model(
                model.model_id,
                model_state=deploy_model_state(targets, errors),
                last_deployed_time=self._now(),
                current_worker_node_count=len(targets) - len(errors),
            )
        finally:
            self._unregister(on_nodes)

    # -- undeploy --------------------------------------------------------------------------------

    async def undeploy_models(
        self, model_ids: list[str], node_ids: list[str], headers: Headers
    ) -> dict[str, Any]:
        """`TransportUndeployModelsAction` → the `undeploy_model` nodes action on every node."""
        me = self._register(UNDEPLOY_MODELS_ACTION, headers)
        try:
            if any(self.models.get(m) is None for m in model_ids):
                raise model_not_found()
            nodes_task = self._register(UNDEPLOY_MODEL_ACTION, headers, parent=me.task_id)
            try:
                targets = [n.id for n in self.cluster.state.nodes]
                if node_ids:
                    targets = [n for n in targets if n in node_ids]
                answers: dict[str, mlpb.UndeployModelResponse] = {}
                request = mlpb.UndeployModelRequest(
                    model_ids=model_ids,
                    parent_task=str(nodes_task.task_id),
                    headers=headers_to_pb(headers),
                )

                async def one(node_id: str) -> None:
                    try:
                        answers[node_id] = await self._call(node_id, "UndeployModel", request)
                    except OpenSearchError:
                        pass  # a FailedNodeException: not in the rendered response

                async with trio.open_nursery() as nursery:
                    for node_id in targets:
                        nursery.start_soon(one, node_id)
            finally:
                self._unregister(nodes_task)
            out: dict[str, Any] = {}
            touched: set[str] = set()  # models undeployed somewhere: their documents change
            for node_id in targets:
                answer = answers.get(node_id)
                if answer is None or not answer.statuses:
                    continue
                out[node_id] = {"stats": {s.model_id: s.status for s in answer.statuses}}
                for s in answer.statuses:
                    if s.status == "undeployed":
                        touched.add(s.model_id)
                        self._route(s.model_id, node_id, False)
            for model_id in touched:
                model = self.models.get(model_id)
                if model is None:
                    continue
                left = len(self.routing.get(model_id, set()))
                if left == 0:
                    self.routing.pop(model_id, None)
                    self._update_model(
                        model_id,
                        model_state="UNDEPLOYED",
                        last_undeployed_time=self._now(),
                        current_worker_node_count=0,
                        planning_worker_node_count=0,
                        planning_worker_nodes=(),
                        deploy_to_all_nodes=False,
                    )
                else:
                    self._update_model(
                        model_id,
                        model_state="PARTIALLY_DEPLOYED",
                        current_worker_node_count=left,
                    )
            return out
        finally:
            self._unregister(me)

    # -- train -----------------------------------------------------------------------------------

    async def train(
        self, algorithm: str, body: Any, is_async: bool, headers: Headers
    ) -> dict[str, Any]:
        """`TransportTrainingTaskAction` → `MLTrainingTaskRunner` on the dispatched node."""
        me = self._register(TRAIN_ACTION, headers)
        try:
            function = function_name(algorithm)
            if function not in TRAINABLE:
                raise IllegalArgumentError(f"Unsupported algorithm: {function}")
            body = body if isinstance(body, dict) else {}
            parameters = body.get("parameters") or {}
            input_type = (
                "SEARCH_QUERY" if "input_query" in body or "input_index" in body else "DATA_FRAME"
            )
            worker = self._dispatch(function)
            # A SEARCH_QUERY input reads its indices (`MLInputDatasetHandler`): a missing one
            # fails the training with `index_not_found_exception`.
            input_error: OpenSearchError | None = None
            if input_type == "SEARCH_QUERY":
                indices = body.get("input_index") or []
                names = indices if isinstance(indices, list) else [indices]
                try:
                    self.cluster.indices.resolve(
                        ",".join(str(n) for n in names), allow_no_indices=False
                    )
                except OpenSearchError as e:
                    input_error = e
            if input_error is not None and not is_async:
                raise input_error
            now = self._now()
            task_id = self._new_id() if is_async else ""
            request = mlpb.TrainModelRequest(
                task_id=task_id,
                function_name=function,
                parameters_json=jsontext.dumps(parameters),
                duration_millis=int(self.setting("tasksim.ml.train_seconds") * 1000),
                parent_task=str(me.task_id),
                headers=headers_to_pb(headers),
            )

            def store_model(answer: mlpb.TrainModelResponse) -> str:
                model_id = self._new_id()
                at = self._now()
                self.models.put(
                    model_id,
                    MLModel(
                        model_id=model_id,
                        name=function,
                        algorithm=function,
                        model_version="1",
                        created_time=at,
                        last_updated_time=at,
                        model_state="TRAINED",
                        model_content_hash_value=answer.model_content_hash_value,
                    ),
                )
                return model_id

            if not is_async:
                answer = await self._call(worker, "TrainModel", request)
                return {"model_id": store_model(answer), "status": "COMPLETED"}
            task = MLTask(
                task_id=task_id,
                task_type="TRAINING",
                state=CREATED,
                create_time=now,
                last_update_time=now,
                is_async=True,
                function_name=function,
                input_type=input_type,
                worker_node=(worker,),
            )
            self.tasks.put(task_id, task)
            self.pending[task_id] = {worker}

            async def work() -> None:
                self._move(task_id, DISPATCHED)
                if input_error is not None:
                    self._move(task_id, FAILED_EVENT, error=input_error.reason)
                    return
                try:
                    answer = await self._call(worker, "TrainModel", request)
                except OpenSearchError as e:
                    self._move(task_id, FAILED_EVENT, error=e.reason)
                    return
                self._move(task_id, SUCCEEDED, model_id=store_model(answer))

            self._spawn(task_id, work)
            return {"task_id": task_id, "status": "CREATED"}
        finally:
            self._unregister(me)

    # -- tasks -----------------------------------------------------------------------------------

    def get_task(self, task_id: str, headers: Headers) -> dict[str, Any]:
        me = self._register(GET_TASK_ACTION, headers)
        try:
            task = self.tasks.get(task_id)
            if task is None:
                raise task_not_found()
            return task.source()
        finally:
            self._unregister(me)

    def delete_task(self, task_id: str, headers: Headers) -> dict[str, Any]:
        me = self._register(DELETE_TASK_ACTION, headers)
        try:
            task = self.tasks.get(task_id)
            if task is None:
                err = task_not_found()
                if not self.tasks.exists:
                    err.cause = IndexNotFoundError.of(ML_TASK_INDEX)
                raise err
            if task.state == RUNNING:
                raise delete_running_task()
            deleted = self.tasks.delete(task_id)
            assert deleted is not None
            version, seq_no = deleted
            shards = self._shard_copies()
            return {
                "_index": ML_TASK_INDEX,
                "_id": task_id,
                "_version": version,
                "result": "deleted",
                "_shards": {"total": shards, "successful": shards, "failed": 0},
                "_seq_no": seq_no,
                "_primary_term": 1,
            }
        finally:
            self._unregister(me)

    def _shard_copies(self) -> int:
        """ML system indices: one shard, `auto_expand_replicas: 0-1`."""
        data = [n for n in self.cluster.state.nodes if n.has_role("data")]
        return 2 if len(data) > 1 else 1

    def search_tasks(self, body: Any, headers: Headers) -> dict[str, Any]:
        me = self._register(SEARCH_TASKS_ACTION, headers)
        try:
            request = parse_search(body)
            if not self.tasks.exists:
                raise IndexNotFoundError.of(ML_TASK_INDEX)
            return run_search(ML_TASK_INDEX, self.tasks.stored(), request, shards=1)
        finally:
            self._unregister(me)

    def cancel_task(self, task_id: str, headers: Headers) -> dict[str, Any]:
        """`CancelBatchJobTransportAction`: only remote batch predictions have a job to cancel."""
        me = self._register(CANCEL_TASK_ACTION, headers)
        try:
            task = self.tasks.get(task_id)
            if task is None:
                raise StatusError("Fail to find task", 404)
            raise IllegalArgumentError(
                "The task ID you provided does not have any associated batch job"
            )
        finally:
            self._unregister(me)

    # -- models ----------------------------------------------------------------------------------

    def get_model(self, model_id: str, headers: Headers) -> dict[str, Any]:
        me = self._register(GET_MODEL_ACTION, headers)
        try:
            model = self.models.get(model_id)
            if model is None:
                raise model_not_found()
            return model.source()
        finally:
            self._unregister(me)

    # -- the sync-up cron ------------------------------------------------------------------------

    async def _cron(self) -> None:
        while True:
            interval = self.setting("plugins.ml_commons.sync_up_job_interval_in_seconds")
            changed = self._settings_changed
            with trio.move_on_after(interval if interval > 0 else 3600):
                await changed.wait()
                continue  # a setting changed: start the wait again with the new interval
            if interval > 0:
                try:
                    await self.sync_up()
                except Exception as e:  # a bug in one sync-up: logged, the cron runs on
                    self.cluster.local.log_bug(e, "the ML sync-up")

    async def sync_up(self) -> None:
        """One sync-up round (`MLSyncUpCron.run`)."""
        started = trio.current_time()
        parent = self._register(SYNC_UP_ACTION, ())
        results: dict[str, mlpb.SyncUpResponse | OpenSearchError] = {}
        try:
            request = mlpb.SyncUpRequest(parent_task=str(parent.task_id))

            async def one(node_id: str) -> None:
                try:
                    results[node_id] = await self._call(node_id, "SyncUp", request)
                except OpenSearchError as e:
                    results[node_id] = e

            async with trio.open_nursery() as nursery:
                for node in self.cluster.state.nodes:
                    nursery.start_soon(one, node.id)
        finally:
            self._unregister(parent)
        self._after_sync_up(results, started)

    def _after_sync_up(
        self, results: dict[str, mlpb.SyncUpResponse | OpenSearchError], started: float
    ) -> None:
        now = trio.current_time()
        in_cluster = {n.id for n in self.cluster.state.nodes}
        for node_id in list(self.unreachable_since):
            if node_id not in in_cluster:
                del self.unreachable_since[node_id]
                self.last_probe_error.pop(node_id, None)
        running_deploys: set[str] = set()
        deployed: dict[str, set[str]] = {}
        for node_id, result in results.items():
            if isinstance(result, OpenSearchError):
                self.unreachable_since.setdefault(node_id, now)
                self.last_probe_error[node_id] = result.reason
                continue
            self.unreachable_since.pop(node_id, None)
            self.last_probe_error.pop(node_id, None)
            running_deploys.update(result.running_deploy_task_ids)
            for model_id in result.deployed_model_ids:
                deployed.setdefault(model_id, set()).add(node_id)
        self._refresh_routing(results, deployed, in_cluster, started)
        # The sync-up's timeout: tasks still running on this node, untouched for too long.
        timeout = self.setting("plugins.ml_commons.ml_task_timeout_in_seconds")
        now_millis = self._now()
        for task_id in list(self._scopes):
            task = self.tasks.get(task_id)
            if task is not None and timed_out(
                task, now_millis, timeout, frozenset(running_deploys)
            ):
                self._move(task_id, TIMED_OUT, error=timeout_error(timeout))
                self._scopes[task_id].cancel()
        # tasksim's UNREACHABLE rule.
        after = self.setting("tasksim.ml.unreachable_after_seconds")
        for task_id, pending in list(self.pending.items()):
            task = self.tasks.get(task_id)
            if task is None:
                continue
            event = reachability_event(task.state, pending, self.unreachable_since, now, after)
            if event == WORKERS_UNREACHABLE:
                error = errors_json(
                    {w: self.last_probe_error.get(w, "unreachable") for w in sorted(pending)}
                )
                self._move(task_id, event, error=error)
            elif event is not None:
                self._move(task_id, event, error=None)

    def _refresh_routing(
        self,
        results: dict[str, mlpb.SyncUpResponse | OpenSearchError],
        deployed: dict[str, set[str]],
        in_cluster: set[str],
        started: float,
    ) -> None:
        """Rebuild the routing table from the nodes that answered (a node that did not keep its
        entries), then the deployed models' states (`refreshModelState`). A model whose routing
        changed while the round was under way (a deploy or undeploy answered) keeps it: the
        round's answers are older than that change."""
        answered = {n for n, r in results.items() if not isinstance(r, OpenSearchError)}
        models = set(self.routing) | set(deployed)
        for model_id in models:
            if self._routed_at.get(model_id, -1.0) >= started:
                continue
            kept = {
                n
                for n in self.routing.get(model_id, set())
                if n in in_cluster and n not in answered
            }
            nodes = kept | deployed.get(model_id, set())
            if nodes:
                self.routing[model_id] = nodes
            else:
                self.routing.pop(model_id, None)
        for model in self.models.values():
            if model.model_state not in ("DEPLOYED", "PARTIALLY_DEPLOYED"):
                continue
            if self._routed_at.get(model.model_id, -1.0) >= started:
                continue
            count = len(self.routing.get(model.model_id, set()))
            planned = model.planning_worker_node_count or count
            state = (
                "DEPLOY_FAILED"
                if count == 0
                else ("PARTIALLY_DEPLOYED" if count < planned else "DEPLOYED")
            )
            if state != model.model_state or count != model.current_worker_node_count:
                self._update_model(
                    model.model_id, model_state=state, current_worker_node_count=count
                )
