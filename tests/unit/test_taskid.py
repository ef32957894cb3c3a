"""TaskId parsing and formatting, exactly as OpenSearch's `TaskId(String)` (reference §4)."""

from __future__ import annotations

import pytest

from simnode.errors import IllegalArgumentError
from simnode.taskid import EMPTY_TASK_ID, TaskId


@pytest.mark.parametrize(
    ("text", "node", "number"),
    [
        ("node1:5", "node1", 5),
        ("aoVbTQFxuJ669yKHa-_3sA:17897", "aoVbTQFxuJ669yKHa-_3sA", 17897),
        (":5", "", 5),  # parses; the empty node id then names no node
        ("n:+7", "n", 7),  # Long.parseLong accepts a plus sign
        ("n:9223372036854775807", "n", 2**63 - 1),
    ],
)
def test_parses(text: str, node: str, number: int) -> None:
    tid = TaskId.parse(text)
    assert (tid.node_id, tid.id) == (node, number)
    assert tid.is_set()


@pytest.mark.parametrize("text", [None, "", "unset", "n:-1"])
def test_unset(text: str | None) -> None:
    tid = TaskId.parse(text)
    assert not tid.is_set()
    assert str(tid) == "unset"


def test_empty_is_the_unset_id() -> None:
    assert TaskId.parse(None) == EMPTY_TASK_ID


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("foo", None),
        ("-1", None),
        ("node:abc", 'For input string: "abc"'),
        ("a:1:2", 'For input string: "1:2"'),  # split at the first ':'
        ("n:", 'For input string: ""'),
        ("n:9223372036854775808", 'For input string: "9223372036854775808"'),
        ("n:1.5", 'For input string: "1.5"'),
    ],
)
def test_malformed(text: str, cause: str | None) -> None:
    with pytest.raises(IllegalArgumentError) as info:
        TaskId.parse(text)
    err = info.value
    assert err.reason == f"malformed task id {text}"
    assert err.status == 400
    if cause is None:
        assert err.cause is None
    else:
        assert err.cause is not None
        assert (err.cause.type, err.cause.reason) == ("number_format_exception", cause)
    # A non-OpenSearch exception is its own single root cause.
    assert err.root_causes() == [err]


def test_formats_as_node_colon_id() -> None:
    assert str(TaskId("abc", 12)) == "abc:12"
