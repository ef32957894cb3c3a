"""The worker side of ML Commons on one node: the models it holds in memory and the ML work it does.

What lives here: the node's part of the ML actions the coordinating node sends over `MlNode`
(proto/tasksim/v1/ml.proto) — load a model (`cluster:admin/opensearch/ml/deploy_model_on_nodes[n]`),
drop models (`cluster:admin/opensearch/ml/undeploy_model[n]`), download and register a model
(`cluster:admin/opensearch/ml/forward`), train one (`cluster:admin/opensearch/ml/train`), and answer
the sync-up (`cluster:admin/opensearch/ml/syncup[n]`) with what it has deployed and is deploying.
Each part is a transport task in the node's registry for as long as it runs, child of the
coordinating task, so `_tasks` shows ML work where it happens and a killed node takes its models
and its running parts with it.

What never lives here: ML task documents, models' metadata, states and decisions about them — those
are the coordinator's (coordinator/ml.py, coordinator/ml_state.py). Like node.py, only the trio loop
touches this state; handlers take and return protobuf messages; no grpc import.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from typing import Any

import trio

from simnode import jsontext
from simnode._wire import ml_pb2 as mlpb
from simnode.errors import IllegalArgumentError, OpenSearchError
from simnode.node import Node
from simnode.registry import Task
from simnode.taskid import TaskId
from simnode.wire import headers_from_pb

DEPLOY_ON_NODES_ACTION = "cluster:admin/opensearch/ml/deploy_model_on_nodes"
UNDEPLOY_MODEL_ACTION = "cluster:admin/opensearch/ml/undeploy_model"
FORWARD_ACTION = "cluster:admin/opensearch/ml/forward"
TRAIN_ACTION = "cluster:admin/opensearch/ml/train"
SYNC_UP_ACTION = "cluster:admin/opensearch/ml/syncup"

DEPLOYED = "deployed"
UNDEPLOYED = "undeployed"
NOT_FOUND = "not_found"

CHUNK_BYTES = 10_000_000  # ML Commons splits model files into 10 MB chunks


@dataclass
class LoadedModel:
    model_id: str
    function_name: str
    loaded_at_millis: int


def validate_training(function_name: str, parameters: dict[str, Any]) -> None:
    """The algorithms' own parameter checks (`KMeans.validateParameters` and friends)."""
    if function_name == "KMEANS":
        centroids = parameters.get("centroids")
        if centroids is not None and int(centroids) <= 0:
            raise IllegalArgumentError("K should be positive.")
        iterations = parameters.get("iterations")
        if iterations is not None and int(iterations) <= 0:
            raise IllegalArgumentError("Iterations should be positive.")


def content_of(name: str) -> tuple[int, str, int]:
    """A registered model's simulated file: (size in bytes, sha256, chunk count), stable per name."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    size = 20_000_000 + int(digest[:8], 16) % 400_000_000
    return size, digest, -(-size // CHUNK_BYTES)


_workers: weakref.WeakKeyDictionary[Node, MlWorker] = weakref.WeakKeyDictionary()


class MlWorker:
    """The ML part of one node. `MlWorker.of(node)` is the node's one instance."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.models: dict[str, LoadedModel] = {}
        self.deploying: dict[str, str] = {}  # ML task id → model id, while loading

    @classmethod
    def of(cls, node: Node) -> MlWorker:
        worker = _workers.get(node)
        if worker is None:
            worker = _workers[node] = cls(node)
        return worker

    def _register(self, action: str, req: Any, *, local: bool) -> Task:
        return self.node.register(
            action,
            local=local,
            parent=TaskId.parse(req.parent_task),
            headers=headers_from_pb(req.headers),
        )

    def _now_millis(self) -> int:
        assert self.node.clock is not None
        return self.node.clock.now_millis()

    # -- cluster:admin/opensearch/ml/deploy_model_on_nodes[n] ------------------------------------

    async def deploy_model(
        self, req: mlpb.DeployModelRequest, *, local: bool
    ) -> mlpb.DeployModelResponse:
        task = self._register(f"{DEPLOY_ON_NODES_ACTION}[n]", req, local=local)
        self.deploying[req.task_id] = req.model_id
        try:
            await trio.sleep(req.load_millis / 1000)
            if req.fail_reason:
                raise OpenSearchError(req.fail_reason)
            self.models[req.model_id] = LoadedModel(
                req.model_id, req.function_name, self._now_millis()
            )
            return mlpb.DeployModelResponse(
                node_id=self.node.local.id, model_id=req.model_id, status=DEPLOYED
            )
        finally:
            self.deploying.pop(req.task_id, None)
            self.node.unregister(task)

    # -- cluster:admin/opensearch/ml/undeploy_model[n] -------------------------------------------

    async def undeploy_model(
        self, req: mlpb.UndeployModelRequest, *, local: bool
    ) -> mlpb.UndeployModelResponse:
        task = self._register(f"{UNDEPLOY_MODEL_ACTION}[n]", req, local=local)
        try:
            wanted = list(req.model_ids) or list(self.models)
            statuses = []
            for model_id in wanted:
                found = self.models.pop(model_id, None) is not None
                statuses.append(
                    mlpb.ModelStatus(model_id=model_id, status=UNDEPLOYED if found else NOT_FOUND)
                )
            return mlpb.UndeployModelResponse(node_id=self.node.local.id, statuses=statuses)
        finally:
            self.node.unregister(task)

    # -- cluster:admin/opensearch/ml/forward (REGISTER_MODEL) ------------------------------------

    async def register_model(
        self, req: mlpb.RegisterModelRequest, *, local: bool
    ) -> mlpb.RegisterModelResponse:
        task = self._register(FORWARD_ACTION, req, local=local)
        try:
            await trio.sleep(req.duration_millis / 1000)
            if req.fail_reason:
                raise IllegalArgumentError(req.fail_reason)
            size, digest, chunks = content_of(req.name)
            return mlpb.RegisterModelResponse(
                model_content_size_in_bytes=size,
                model_content_hash_value=digest,
                total_chunks=chunks,
            )
        finally:
            self.node.unregister(task)

    # -- cluster:admin/opensearch/ml/train -------------------------------------------------------

    async def train_model(
        self, req: mlpb.TrainModelRequest, *, local: bool
    ) -> mlpb.TrainModelResponse:
        task = self._register(TRAIN_ACTION, req, local=local)
        try:
            parameters = jsontext.loads(req.parameters_json) if req.parameters_json else {}
            validate_training(req.function_name, parameters)
            await trio.sleep(req.duration_millis / 1000)
            digest = hashlib.sha256(f"{req.task_id}{req.parameters_json}".encode()).hexdigest()
            return mlpb.TrainModelResponse(model_content_hash_value=digest)
        finally:
            self.node.unregister(task)

    # -- cluster:admin/opensearch/ml/syncup[n] ---------------------------------------------------

    async def sync_up(self, req: mlpb.SyncUpRequest, *, local: bool) -> mlpb.SyncUpResponse:
        task = self._register(f"{SYNC_UP_ACTION}[n]", req, local=local)
        try:
            return mlpb.SyncUpResponse(
                node_id=self.node.local.id,
                deployed_model_ids=sorted(self.models),
                running_deploy_model_ids=list(self.deploying.values()),
                running_deploy_task_ids=list(self.deploying),
            )
        finally:
            self.node.unregister(task)
