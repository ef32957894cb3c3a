"""Conversions between the pure core's values and the protobuf messages of `proto/`.

Only shapes move here; no decision is taken. Imports protobuf, never grpc or trio.
"""

from __future__ import annotations

from collections.abc import Iterable

from simnode import jsontext
from simnode._wire import node_pb2 as pb
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.errors import OpenSearchError
from simnode.registry import Headers, ResourceStats, TaskInfo, UsageStats
from simnode.taskid import TaskId


def headers_to_pb(headers: Iterable[tuple[str, str]]) -> list[pb.Header]:
    return [pb.Header(key=k, value=v) for k, v in headers]


def headers_from_pb(headers: Iterable[pb.Header]) -> Headers:
    return tuple((h.key, h.value) for h in headers)


def error_to_pb(err: OpenSearchError) -> pb.ErrorCause:
    msg = pb.ErrorCause(
        type=err.type,
        reason=err.reason,
        status=err.status,
        metadata=[
            pb.ErrorMeta(key=k, value=v)
            if isinstance(v, str)
            else pb.ErrorMeta(key=k, json=jsontext.dumps(v))
            for k, v in err.metadata
        ],
    )
    if err.cause is not None:
        msg.caused_by.CopyFrom(error_to_pb(err.cause))
    return msg


def error_from_pb(msg: pb.ErrorCause) -> OpenSearchError:
    cause = error_from_pb(msg.caused_by) if msg.HasField("caused_by") else None
    return OpenSearchError.from_parts(
        msg.type,
        msg.reason,
        status=msg.status or 500,
        metadata=[
            (m.key, jsontext.loads(m.json) if m.HasField("json") else m.value) for m in msg.metadata
        ],
        cause=cause,
    )


def _usage_to_pb(u: UsageStats) -> pb.UsageStats:
    return pb.UsageStats(cpu_time_in_nanos=u.cpu_time_in_nanos, memory_in_bytes=u.memory_in_bytes)


def _usage_from_pb(u: pb.UsageStats) -> UsageStats:
    return UsageStats(u.cpu_time_in_nanos, u.memory_in_bytes)


def task_info_to_pb(info: TaskInfo) -> pb.TaskInfo:
    msg = pb.TaskInfo(
        node=info.node,
        id=info.id,
        type=info.type,
        action=info.action,
        start_time_in_millis=info.start_time_in_millis,
        running_time_in_nanos=info.running_time_in_nanos,
        cancellable=info.cancellable,
        cancelled=info.cancelled,
        headers=headers_to_pb(info.headers),
    )
    if info.status is not None:
        msg.status_json = jsontext.dumps(info.status)
    if info.description is not None:
        msg.description = info.description
    if info.parent_task_id.is_set():
        msg.parent_task_id = str(info.parent_task_id)
    if info.resource_stats is not None:
        rs = info.resource_stats
        msg.resource_stats.CopyFrom(
            pb.ResourceStats(
                total=_usage_to_pb(rs.total),
                average=_usage_to_pb(rs.average),
                min=_usage_to_pb(rs.min),
                max=_usage_to_pb(rs.max),
                thread_executions=rs.thread_executions,
                active_threads=rs.active_threads,
            )
        )
    if info.cancellation_time_millis is not None:
        msg.cancellation_time_millis = info.cancellation_time_millis
    return msg


def task_info_from_pb(msg: pb.TaskInfo) -> TaskInfo:
    resource_stats = None
    if msg.HasField("resource_stats"):
        rs = msg.resource_stats
        resource_stats = ResourceStats(
            total=_usage_from_pb(rs.total),
            average=_usage_from_pb(rs.average),
            min=_usage_from_pb(rs.min),
            max=_usage_from_pb(rs.max),
            thread_executions=rs.thread_executions,
            active_threads=rs.active_threads,
        )
    return TaskInfo(
        node=msg.node,
        id=msg.id,
        type=msg.type,
        action=msg.action,
        start_time_in_millis=msg.start_time_in_millis,
        running_time_in_nanos=msg.running_time_in_nanos,
        cancellable=msg.cancellable,
        cancelled=msg.cancelled,
        parent_task_id=TaskId.parse(msg.parent_task_id)
        if msg.HasField("parent_task_id")
        else TaskId.parse(None),
        headers=headers_from_pb(msg.headers),
        status=jsontext.loads(msg.status_json) if msg.HasField("status_json") else None,
        description=msg.description if msg.HasField("description") else None,
        resource_stats=resource_stats,
        cancellation_time_millis=(
            msg.cancellation_time_millis if msg.HasField("cancellation_time_millis") else None
        ),
    )


def discovery_node_to_pb(node: DiscoveryNode) -> pb.DiscoveryNode:
    return pb.DiscoveryNode(
        id=node.id,
        name=node.name,
        host=node.host,
        ip=node.ip,
        port=node.port,
        roles=list(node.roles),
        attributes=headers_to_pb(node.attributes),
        ephemeral_id=node.ephemeral_id,
    )


def discovery_node_from_pb(msg: pb.DiscoveryNode) -> DiscoveryNode:
    return DiscoveryNode(
        id=msg.id,
        name=msg.name,
        host=msg.host,
        ip=msg.ip,
        port=msg.port,
        roles=tuple(msg.roles),
        attributes=headers_from_pb(msg.attributes),
        ephemeral_id=msg.ephemeral_id,
    )


def cluster_state_to_pb(state: ClusterState) -> pb.ClusterState:
    return pb.ClusterState(
        cluster_name=state.cluster_name,
        cluster_uuid=state.cluster_uuid,
        version=state.version,
        cluster_manager_node_id=state.cluster_manager_node_id,
        nodes=[discovery_node_to_pb(n) for n in state.nodes],
        tasks_index_node_id=state.tasks_index_node_id,
        persistent_settings=[_setting_to_pb(k, v) for k, v in state.persistent_settings],
        transient_settings=[_setting_to_pb(k, v) for k, v in state.transient_settings],
    )


def _setting_to_pb(key: str, value: str | tuple[str, ...]) -> pb.Setting:
    if isinstance(value, tuple):
        return pb.Setting(key=key, values=list(value), is_list=True)
    return pb.Setting(key=key, values=[value])


def _setting_from_pb(msg: pb.Setting) -> tuple[str, str | tuple[str, ...]]:
    if msg.is_list:
        return msg.key, tuple(msg.values)
    return msg.key, msg.values[0] if msg.values else ""


def cluster_state_from_pb(msg: pb.ClusterState) -> ClusterState:
    return ClusterState(
        cluster_name=msg.cluster_name,
        cluster_uuid=msg.cluster_uuid,
        version=msg.version,
        cluster_manager_node_id=msg.cluster_manager_node_id,
        nodes=tuple(discovery_node_from_pb(n) for n in msg.nodes),
        tasks_index_node_id=msg.tasks_index_node_id,
        persistent_settings=tuple(_setting_from_pb(s) for s in msg.persistent_settings),
        transient_settings=tuple(_setting_from_pb(s) for s in msg.transient_settings),
    )
