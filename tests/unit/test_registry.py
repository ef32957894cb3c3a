"""The node registry (OpenSearch's TaskManager without threads): ids, parents, headers, matching,
cancellation, bans and the TaskInfo snapshot rules."""

from __future__ import annotations

import pytest

from simnode.errors import IllegalArgumentError, TaskCancelledError
from simnode.registry import (
    DIRECT,
    TRANSPORT,
    Registry,
    Task,
    TaskFilter,
    task_headers,
)
from simnode.taskid import TaskId

T0_MS = 1_700_000_000_000


def reg(registry: Registry, action: str = "a") -> Task:
    return registry.register(action=action, now_millis=T0_MS, now_nanos=1_000)


def test_ids_start_at_one_and_increase_per_node() -> None:
    a, b = Registry("A"), Registry("B")
    assert [reg(a).id, reg(a).id, reg(b).id] == [1, 2, 1]


def test_unregister_keeps_ids_increasing() -> None:
    r = Registry("A")
    first = reg(r)
    r.unregister(first)
    assert reg(r).id == 2
    assert len(r) == 1


def test_snapshot_not_detailed_omits_detailed_fields() -> None:
    r = Registry("A")
    task = r.register(
        action="indices:data/write/reindex",
        now_millis=T0_MS,
        now_nanos=1_000,
        cancellable=True,
        description="reindex from [a] to [b]",
        status={"total": 5},
        parent=TaskId("B", 3),
    )
    info = task.info(detailed=False, now_nanos=2_500)
    assert info.running_time_in_nanos == 1_500
    assert info.start_time_in_millis == T0_MS
    assert (info.description, info.status, info.resource_stats) == (None, None, None)
    assert info.parent_task_id == TaskId("B", 3)
    assert info.cancellation_time_millis is None
    detailed = task.info(detailed=True, now_nanos=2_500)
    assert detailed.description == "reindex from [a] to [b]"
    assert detailed.status == {"total": 5}
    assert detailed.resource_stats is not None


def test_type_is_transport_or_direct() -> None:
    r = Registry("A")
    assert r.register(action="x", now_millis=0, now_nanos=0).type == TRANSPORT
    assert r.register(action="x", now_millis=0, now_nanos=0, type=DIRECT).type == DIRECT


def test_first_cancel_wins() -> None:
    r = Registry("A")
    task = r.register(action="x", now_millis=0, now_nanos=0, cancellable=True)
    assert r.cancel(task, "by user request", now_millis=10, now_nanos=10)
    assert not r.cancel(task, "channel was closed", now_millis=20, now_nanos=20)
    assert task.cancelled is not None
    assert (task.cancelled.reason, task.cancelled.time_millis) == ("by user request", 10)
    assert task.info(detailed=False, now_nanos=30).cancellation_time_millis == 10


def test_non_cancellable_task_cannot_be_cancelled() -> None:
    r = Registry("A")
    task = r.register(action="x", now_millis=0, now_nanos=0)
    with pytest.raises(IllegalArgumentError):
        r.cancel(task, "by user request", now_millis=0, now_nanos=0)


def test_banned_parent_rejects_new_cancellable_child_but_not_plain_tasks() -> None:
    r = Registry("A")
    parent = TaskId("B", 7)
    r.set_ban(parent, "by user request")
    with pytest.raises(TaskCancelledError) as info:
        r.register(action="child", now_millis=0, now_nanos=0, cancellable=True, parent=parent)
    assert info.value.reason == "Task cancelled before it started: by user request"
    assert info.value.type == "task_cancelled_exception" and info.value.status == 500
    plain = r.register(action="plain", now_millis=0, now_nanos=0, parent=parent)
    assert plain.id == 2  # the rejected child consumed id 1, as OpenSearch's register does
    r.remove_ban(parent)
    assert r.register(action="child", now_millis=0, now_nanos=0, cancellable=True, parent=parent)


def test_set_ban_returns_cancellable_children_and_records_only_when_asked() -> None:
    r = Registry("A")
    parent = TaskId("B", 1)
    c1 = r.register(action="c", now_millis=0, now_nanos=0, cancellable=True, parent=parent)
    r.register(action="c", now_millis=0, now_nanos=0, parent=parent)
    assert r.set_ban(parent, "x", record=False) == [c1]
    assert r.bans == {}
    r.set_ban(parent, "x")
    assert r.bans == {parent: "x"}
    r.remove_bans_of_node("B")
    assert r.bans == {}


def test_cancelled_parent_cannot_start_children() -> None:
    r = Registry("A")
    parent = r.register(action="p", now_millis=0, now_nanos=0, cancellable=True)
    r.register_child_node(parent, "B")
    r.register_child_node(parent, "B")
    assert parent.child_nodes == {"B": 2}
    r.cancel(parent, "by user request", now_millis=0, now_nanos=0)
    with pytest.raises(TaskCancelledError) as info:
        r.register_child_node(parent, "C")
    assert info.value.reason == (
        "The parent task was cancelled, shouldn't start any child tasks, by user request"
    )
    r.unregister_child_node(parent, "B")
    r.unregister_child_node(parent, "B")
    assert parent.child_nodes == {}


def test_matching_follows_base_tasks_request_match() -> None:
    r = Registry("A")
    search = r.register(
        action="indices:data/read/search", now_millis=0, now_nanos=0, cancellable=True
    )
    child = r.register(
        action="indices:data/read/search[phase/query]",
        now_millis=0,
        now_nanos=0,
        parent=TaskId("A", 1),
    )
    listing = r.register(action="cluster:monitor/tasks/lists[n]", now_millis=0, now_nanos=0)
    assert r.matching(TaskFilter(actions=("indices:*",))) == [search, child]
    assert r.matching(TaskFilter(actions=("*search",))) == [search]
    assert r.matching(TaskFilter(actions=("INDICES:*",))) == []  # case-sensitive
    assert r.matching(TaskFilter(actions=("nope", "cluster:*"))) == [listing]
    assert r.matching(TaskFilter(parent_task_id=TaskId("A", 1))) == [child]
    assert r.matching(TaskFilter(task_id=TaskId("A", 3))) == [listing]
    assert r.matching(TaskFilter(cancellable_only=True)) == [search]


def test_task_headers_copy_x_opaque_id_case_insensitively() -> None:
    assert task_headers([("x-opaque-id", "abc"), ("other", "1")]) == (("X-Opaque-Id", "abc"),)
    assert task_headers([]) == ()


def test_task_headers_size_limit() -> None:
    # 2 * (len("X-Opaque-Id") + len(value)) may not pass 8192 bytes.
    ok = "v" * (4096 - len("X-Opaque-Id"))
    assert task_headers([("X-Opaque-Id", ok)]) == (("X-Opaque-Id", ok),)
    with pytest.raises(IllegalArgumentError) as info:
        task_headers([("X-Opaque-Id", ok + "v")])
    assert info.value.reason == "Request exceeded the maximum size of task headers 8kb"


def test_task_info_rejects_cancelled_non_cancellable() -> None:
    from simnode.registry import TaskInfo

    with pytest.raises(IllegalArgumentError, match="task cannot be cancelled"):
        TaskInfo("A", 1, "transport", "x", 0, 0, cancellable=False, cancelled=True)
