"""Simulator endpoints for task trees: start any tree, and look at the bans nodes hold.

- `POST /_sim/tasks[?wait_for_completion=true][&timeout=30s]` — start the tree the body describes
  (coordinator/simspec.py) on its node. Without waiting: `{"task": "<node>:<id>"}` (and `"tasks"`
  when `count` > 1), the way `_reindex?wait_for_completion=false` answers. Waiting: the finished
  task as `GET _tasks/<id>` shows a completed one (`completed`, `task`, `response`), or the task's
  error as an error envelope with its status. `timeout` is the deadline of the start (default
  30 s) or of the wait (default none, `-1` none); past it the answer is a 500
  `receive_timeout_transport_exception` and a waited-for task is cancelled as a child whose
  parent's channel closed (`channel was closed`).
- `GET /_sim/bans` — the bans of every node in the cluster (`TaskManager.banedParents`):
  `{"nodes": {"<id>": {"name": ..., "bans": {"<parent task id>": "<reason>"}}}}`.
- `GET /_sim/nodes/{node}/bans` — the same for one node (name or id).

Not OpenSearch APIs: they are the simulator's own controls, under `/_sim`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import trio

from coordinator.cluster import Cluster
from coordinator.http import RestRequest, RestResponse, Router
from coordinator.render import task_info
from coordinator.simspec import parse_sim_request
from simnode._wire import node_pb2 as pb
from simnode.discovery import DiscoveryNode
from simnode.errors import OpenSearchError, ResourceNotFoundError
from simnode.transport import ACTION_OF_METHOD, receive_timeout
from simnode.wire import headers_to_pb, task_info_from_pb

# The deadline of a `POST /_sim/tasks` start (StartTask) unless `timeout` says otherwise.
START_TIMEOUT = 30.0


async def node_status(cluster: Cluster, node: DiscoveryNode) -> pb.NodeStatus:
    status: pb.NodeStatus = await cluster.local.send(node.id, "Status", pb.Empty(), timeout=10)
    return status


def _bans_entry(node: DiscoveryNode, status: pb.NodeStatus) -> dict[str, Any]:
    return {"name": node.name, "bans": {b.parent_task_id: b.reason for b in status.bans}}


def register(router: Router, cluster: Cluster) -> None:
    async def start_tasks(request: RestRequest) -> RestResponse:
        wait = request.params.param_bool("wait_for_completion", False)
        given = request.params.has("timeout")
        timeout = request.params.param_time("timeout")  # None: -1 or absent
        if not wait and not given:
            timeout = START_TIMEOUT
        request.finish(body_allowed=True)
        sim = parse_sim_request(
            request.json_body() or {},
            cluster.state,
            cluster.local.local.id,
            request.task_headers,
        )
        node = cluster.state.get(sim.node_id)
        assert node is not None
        run = pb.RunTaskRequest(
            spec=sim.spec,
            parent_task=sim.parent_task_id,
            headers=headers_to_pb(sim.headers),
            copies=sim.copies,
        )
        human = request.human
        if not wait:
            started = await cluster.local.send(node.id, "StartTask", run, timeout=timeout)
            body: dict[str, Any] = {"task": started.task_id}
            if sim.copies > 1:
                body["tasks"] = list(started.task_ids)
            return RestResponse(body)
        if node.id == cluster.local.local.id:
            # Not the loopback link: the simulated client's work is a `transport` task on every
            # node, the coordinating node included (as StartTask makes it).
            answer = await _run_here(cluster, node, run, timeout)
        else:
            answer = await cluster.transport.call(node, "RunTask", run, timeout=timeout)
        out: dict[str, Any] = {
            "completed": True,
            "task": task_info(task_info_from_pb(answer.task), human=human),
        }
        if answer.HasField("response_json"):
            out["response"] = json.loads(answer.response_json)
        return RestResponse(out)

    async def _run_here(
        cluster: Cluster, node: DiscoveryNode, run: pb.RunTaskRequest, timeout: float | None
    ) -> pb.RunTaskResponse:
        """The coordinating node runs the tree itself (the local shortcut). The wait ends at
        `timeout` as a transport deadline ends it: the caller gives up with the timeout, and the
        task, left running in the node's background, is cancelled as its channel closed."""
        closed = trio.Event()
        done = trio.Event()
        outcome: list[pb.RunTaskResponse | OpenSearchError] = []
        started = trio.current_time()
        request_id = cluster.transport.next_request_id()

        async def runner() -> None:
            try:
                outcome.append(
                    await cluster.local.run_task(run, local=False, channel_closed=closed)
                )
            except OpenSearchError as e:
                outcome.append(e)
            finally:
                done.set()

        cluster.local.spawn("a task started by POST /_sim/tasks", runner)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                await done.wait()
        finally:
            if not done.is_set():
                closed.set()
        if not outcome:
            elapsed = int((trio.current_time() - started) * 1000)
            raise receive_timeout(node, ACTION_OF_METHOD["RunTask"], request_id, elapsed)
        if isinstance(outcome[0], OpenSearchError):
            raise outcome[0]
        return outcome[0]

    async def all_bans(request: RestRequest) -> RestResponse:
        request.finish()
        nodes: dict[str, Any] = {}
        failures: list[dict[str, Any]] = []
        results: dict[str, pb.NodeStatus | OpenSearchError] = {}

        async def one(node: DiscoveryNode) -> None:
            try:
                results[node.id] = await node_status(cluster, node)
            except OpenSearchError as e:
                results[node.id] = e

        async with trio.open_nursery() as nursery:
            for node in cluster.state.nodes:
                nursery.start_soon(one, node)
        for node in cluster.state.nodes:
            result = results[node.id]
            if isinstance(result, OpenSearchError):
                failures.append(result.xcontent())
            else:
                nodes[node.id] = _bans_entry(node, result)
        body: dict[str, Any] = {}
        if failures:
            body["node_failures"] = failures
        body["nodes"] = nodes
        return RestResponse(body)

    async def node_bans(request: RestRequest) -> RestResponse:
        request.finish()
        name = request.path_params["node"]
        node = cluster.state.get(name) or cluster.state.by_name(name)
        if node is None:
            raise ResourceNotFoundError(f"no node [{name}] in the cluster")
        status = await node_status(cluster, node)
        return RestResponse({"nodes": {node.id: _bans_entry(node, status)}})

    router.add("POST", "/_sim/tasks", start_tasks)
    router.add("GET", "/_sim/bans", all_bans)
    router.add("GET", "/_sim/nodes/{node}/bans", node_bans)
