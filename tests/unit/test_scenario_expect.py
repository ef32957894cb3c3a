"""Expectations and checks as plain functions of plain values."""

from __future__ import annotations

from coordinator.scenario import checks
from coordinator.scenario.expect import Answer, Context, check, check_path, match_value, render
from coordinator.scenario.schema import Expect

CTX = Context({"coordinator": "C", "node-1": "N1", "node-2": "N2"}, {"work": ["N1:7", "N1:8"]})

LIST = {
    "node_failures": [
        {
            "type": "failed_node_exception",
            "reason": "Failed node [N2]",
            "node_id": "N2",
            "caused_by": {"type": "receive_timeout_transport_exception", "reason": "..."},
        }
    ],
    "nodes": {
        "C": {"name": "coordinator", "tasks": {"C:1": {"node": "C", "id": 1, "action": "list"}}},
        "N1": {
            "name": "node-1",
            "tasks": {
                "N1:7": {"node": "N1", "id": 7, "action": "reindex", "cancelled": False},
                "N1:9": {"node": "N1", "id": 9, "action": "list[n]", "parent_task_id": "C:1"},
            },
        },
    },
}


def expect(**kw: object) -> Expect:
    return Expect.model_validate(kw)


def test_templates() -> None:
    assert render("/_tasks/${work}?nodes=${node-1}", CTX) == "/_tasks/N1:7?nodes=N1"
    assert render({"x": ["${work.1}", "${work.count}"]}, CTX) == {"x": ["N1:8", "2"]}


def test_paths_and_matchers() -> None:
    assert check_path(LIST, "nodes.N1.tasks.N1:7.action", "reindex") is None
    assert check_path(LIST, "nodes.*.tasks.*", {"count": 3}) is None
    assert check_path(LIST, "nodes.*.tasks.*.id", {"gte": 1, "count": {"lt": 4}}) is None
    assert check_path(LIST, "node_failures.0.caused_by.type", {"matches": "timeout"}) is None
    assert check_path(LIST, "nodes.N1.name", {"in": ["node-1", "node-2"]}) is None
    assert check_path(LIST, "nodes.N3", {"exists": False}) is None
    assert (
        check_path(LIST, "nodes.N1.tasks.N1:7.action", "search")
        == "nodes.N1.tasks.N1:7.action: expected 'search', got 'reindex'"
    )
    assert check_path(LIST, "nodes.*.tasks.*", {"count": 2}) == (
        "nodes.*.tasks.*: count: expected 2, got 3"
    )
    assert check_path(LIST, "nope", 1) == "nope: expected 1, but it is missing"
    assert match_value(3, {"type": "number"}) is None
    assert match_value(True, {"type": "number"}) == "expected type 'number', got True"


def test_an_expect_block() -> None:
    answer = Answer(200, LIST, 0.5)
    ok = expect(
        status=200,
        took={"min": "400ms", "max": "1s"},
        node_failures={"node-2": "receive_timeout_transport_exception"},
        nodes=["coordinator", "node-1"],
        json={"nodes.${node-1}.tasks.${work}.cancelled": False},
        tasks=[{"where": {"action": "list[n]"}, "count": 1, "all": {"parent_task_id": "C:1"}}],
    )
    assert check(ok, answer, CTX, client_timeout=5) == []
    bad = expect(
        status=404,
        took={"max": "100ms"},
        node_failures={"node-2": "node_disconnected_exception"},
        nodes=["node-1"],
        tasks=[{"where": {"action": "reindex"}, "all": {"cancelled": True}}],
    )
    problems = check(bad, answer, CTX, client_timeout=5)
    assert problems[0].startswith("status: expected 404, got 200: {'node_failures': ")
    assert problems[1:] == [
        "took: expected at most 0.1s, got 0.500s",
        "node_failures: expected {'node-2': 'node_disconnected_exception'}, got {'node-2': 'receive_timeout_transport_exception'}",
        "nodes: expected ['node-1'], got ['coordinator', 'node-1']",
        "tasks where {'action': 'reindex'}: task N1:7 cancelled: expected True, got False",
    ]
    assert (
        check(expect(timeout=True), Answer(None, None, 2.0, timed_out=True), CTX, client_timeout=2)
        == []
    )
    assert check(
        expect(status=200), Answer(None, None, 2.0, timed_out=True), CTX, client_timeout=2
    ) == ["no answer within the client timeout (2s)"]


def test_nodes_accounted() -> None:
    names = {"C": "coordinator", "N1": "node-1", "N2": "node-2", "N3": "node-3"}
    members = {"C", "N1", "N2"}
    assert checks.nodes_accounted(LIST, members, members, names) == []
    assert checks.nodes_accounted(LIST, members | {"N3"}, members | {"N3"}, names) == [
        "node node-3 was targeted but is in neither nodes nor node_failures"
    ]
    twice = {**LIST, "node_failures": [*LIST["node_failures"], {"node_id": "N1", "type": "x"}]}
    assert checks.nodes_accounted(twice, members, members, names) == [
        "node node-1 is accounted for in both nodes and node_failures"
    ]
    # a node that left while the request ran may be missing
    assert checks.nodes_accounted(LIST, members | {"N3"}, members, names) == []


def test_children_under_ban_and_orphans() -> None:
    sample = {
        "node-2": {
            "id": "N2",
            "pid": 10,
            "bans": [{"parent_task_id": "N1:7", "reason": "by user request", "mark": 4}],
            "tasks": [
                {
                    "id": 3,
                    "parent_task_id": "N1:7",
                    "action": "a",
                    "cancellable": True,
                    "cancelled": True,
                },
                {
                    "id": 5,
                    "parent_task_id": "N1:7",
                    "action": "b",
                    "cancellable": True,
                    "cancelled": False,
                },
                {
                    "id": 6,
                    "parent_task_id": "N1:7",
                    "action": "c",
                    "cancellable": False,
                    "cancelled": False,
                },
            ],
        }
    }
    assert checks.children_under_ban(sample) == [
        "node-2: cancellable task 5 (b) started under the ban of its parent N1:7"
    ]
    history = checks.TaskHistory()
    history.observe_cancelled(["N1:7"])
    assert len(history.orphans(sample)) == 3
    assert checks.bans_left(sample) == ["node-2 still bans N1:7 (by user request)"]
    # a restarted node (new pid) forgets what its previous process ran
    restarted = {
        "node-2": {
            "id": "N2",
            "pid": 11,
            "bans": [],
            "tasks": [
                {
                    "id": 3,
                    "parent_task_id": None,
                    "action": "a",
                    "cancellable": True,
                    "cancelled": False,
                }
            ],
        }
    }
    history.observe(
        {
            "node-2": {
                "id": "N2",
                "pid": 10,
                "tasks": [
                    {
                        "id": 3,
                        "parent_task_id": None,
                        "action": "a",
                        "cancellable": True,
                        "cancelled": True,
                    }
                ],
            }
        }
    )
    assert history.orphans(restarted) == []
