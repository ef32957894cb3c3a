"""`Registry.matching` decides each criterion once per call; it must accept exactly the tasks that
`TaskFilter.match` (OpenSearch's `BaseTasksRequest.match`) accepts, in registration order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simnode.registry import Registry, TaskFilter
from simnode.taskid import EMPTY_TASK_ID, TaskId

ACTIONS = [
    "cluster:monitor/tasks/lists",
    "cluster:monitor/tasks/lists[n]",
    "indices:data/read/search",
    "indices:data/read/search[phase/query]",
    "indices:data/write/reindex",
]
PATTERNS = [*ACTIONS, "*", "indices:*", "*[n]", "*search*", "cluster:*/lists", "nothing", ""]
PARENTS = [EMPTY_TASK_ID, TaskId("other", 1), TaskId("other", 2), TaskId("n", 1)]


@given(
    tasks=st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.sampled_from(PARENTS), st.booleans()),
        max_size=30,
    ),
    gone=st.sets(st.integers(1, 30), max_size=5),
    actions=st.lists(st.sampled_from(PATTERNS), max_size=3),
    task_id=st.sampled_from(
        [EMPTY_TASK_ID, TaskId("n", 3), TaskId("elsewhere", 4), TaskId("n", 99)]
    ),
    parent=st.sampled_from(PARENTS),
    cancellable_only=st.booleans(),
)
def test_matching_is_match_over_every_task(
    tasks: list[tuple[str, TaskId, bool]],
    gone: set[int],
    actions: list[str],
    task_id: TaskId,
    parent: TaskId,
    cancellable_only: bool,
) -> None:
    registry = Registry("n")
    registered = [
        registry.register(action=a, parent=p, cancellable=c, now_millis=0, now_nanos=0)
        for a, p, c in tasks
    ]
    for task in registered:
        if task.id in gone:
            registry.unregister(task)
    task_filter = TaskFilter(
        actions=tuple(actions),
        task_id=task_id,
        parent_task_id=parent,
        cancellable_only=cancellable_only,
    )
    expected = [t for t in registry if task_filter.match(t)]
    assert registry.matching(task_filter) == expected


def test_matching_keeps_registration_order_across_actions() -> None:
    registry = Registry("n")
    for action in ["b", "a", "b", "c", "a"]:
        registry.register(action=action, now_millis=0, now_nanos=0)
    found = registry.matching(TaskFilter(actions=("a", "b")))
    assert [(t.id, t.action) for t in found] == [(1, "b"), (2, "a"), (3, "b"), (5, "a")]
