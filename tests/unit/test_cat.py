"""`_cat` tables: columns shown (`h`, aliases, wildcards, `ts`), `v`, `s`, value units, padding
(with `RestTable.pad`'s byte overflow), JSON rows, help, and the rows of `_cat/tasks` and
`_cat/nodes`."""

from __future__ import annotations

import pytest

from coordinator.cat import (
    ByteSize,
    CatOptions,
    Column,
    NodeStats,
    Table,
    TimeValue,
    UnsupportedOperationError,
    node_roles,
    nodes_rows,
    nodes_table,
    render_help,
    render_json,
    render_text,
    render_value,
    tasks_rows,
    tasks_table,
)
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.registry import ResourceStats, TaskInfo
from simnode.taskid import TaskId


def table() -> Table:
    t = Table(
        [
            Column.of("name", "alias:n;desc:the name"),
            Column.of("size", "alias:sz,si;text-align:right"),
            Column.of("hidden", "default:false;alias:hd"),
            Column.of("timestamp", "alias:ts"),
        ]
    )
    t.rows = [["bb", ByteSize(2048), "x", "10:00:00"], ["a", ByteSize(1 << 30), None, "11:00:00"]]
    return t


def test_default_columns_and_header_line() -> None:
    assert render_text(table(), CatOptions(v=True)) == (
        "name size timestamp\nbb    2kb 10:00:00\na     1gb 11:00:00\n"
    )
    assert render_text(table(), CatOptions(ts=False)) == "bb 2kb\na  1gb\n"


def test_h_with_aliases_wildcards_and_unknown_names() -> None:
    assert render_text(table(), CatOptions(h="sz,hd,nope,n", v=True)) == (
        " sz hd n\n2kb x  bb\n1gb    a\n"
    )
    # a wildcard matches names and aliases; an empty last cell still gets its separator
    assert render_text(table(), CatOptions(h="s*,hd", v=True)) == "size hd\n 2kb x\n 1gb \n"


def test_sort_by_name_alias_and_direction() -> None:
    assert render_text(table(), CatOptions(h="n", s=("n",))) == "a\nbb\n"
    assert render_text(table(), CatOptions(h="n", s=("sz:desc",))) == "a\nbb\n"
    assert render_text(table(), CatOptions(h="n", s=("hidden:asc",))) == "a\nbb\n"  # null first
    with pytest.raises(UnsupportedOperationError) as e:
        render_text(table(), CatOptions(s=("nope",)))
    assert e.value.reason == "Unable to sort by unknown sort key `nope`"
    assert e.value.status == 500


def test_units() -> None:
    assert render_value(ByteSize(1536), size="b") == "1536"
    assert render_value(ByteSize(1536), size="kb") == "1"
    assert str(ByteSize(1536)) == "1.5kb"
    assert str(ByteSize(int(15.66 * (1 << 30)))) == "15.6gb"
    assert str(ByteSize(512)) == "512b"
    assert render_value(TimeValue(2_500_000_000), time="ms") == "2500"
    assert render_value(TimeValue(2_500_000_000)) == "2.5s"
    assert render_value(None) is None


def test_json_rows_are_strings_keyed_by_display_name() -> None:
    assert render_json(table(), CatOptions(h="n,sz,hd")) == [
        {"n": "bb", "sz": "2kb", "hd": "x"},
        {"n": "a", "sz": "1gb", "hd": None},
    ]


def test_pad_wraps_like_a_java_byte() -> None:
    t = Table([Column.of("a"), Column.of("b")])
    t.rows = [["x" * 200, "1"], ["y", "2"]]
    text = render_text(t, CatOptions())
    # 199 spaces would be needed after "y": (byte) 199 is negative, so none are written
    assert text.splitlines() == ["x" * 200 + " 1", "y 2"]


def test_help() -> None:
    assert render_help(table()) == (
        "name      | n     | the name     \n"
        "size      | sz,si | not available\n"
        "hidden    | hd    | not available\n"
        "timestamp | ts    | not available\n"
    )


# -- _cat/tasks -------------------------------------------------------------------------------------

A = DiscoveryNode("AAAAAAA", "node-a", ip="10.0.0.1", port=9300)
STATE = ClusterState(cluster_manager_node_id="AAAAAAA", nodes=(A,))


def task(id: int, start: int, parent: int | None = None, **kw: object) -> TaskInfo:
    return TaskInfo(
        node="AAAAAAA" if id < 100 else "GONE000",
        id=id,
        type="transport",
        action=f"act{id}",
        start_time_in_millis=start,
        running_time_in_nanos=1_500_000,
        cancellable=False,
        cancelled=False,
        parent_task_id=TaskId("AAAAAAA", parent) if parent else TaskId("", -1),
        **kw,  # type: ignore[arg-type]
    )


def test_tasks_rows_are_groups_by_start_time_with_children_after_their_parent() -> None:
    tasks = [
        task(1, 5000),
        task(2, 1000),
        task(3, 6000, parent=1, headers=(("X-Opaque-Id", "q"),)),
        task(4, 5500, parent=1),
        task(101, 10),
    ]
    t = tasks_rows(tasks_table(False), tasks, STATE, detailed=False, version="2.19.0")
    rows = render_json(t, CatOptions(h="id,pti,node_id,ip,po,n,v,x,ts,time"))
    assert [r["id"] for r in rows] == ["101", "2", "1", "4", "3"]
    assert rows[0] == {
        "id": "101",
        "pti": "-",
        "node_id": "GONE",
        "ip": "-",
        "po": "-",
        "n": "-",
        "v": "-",
        "x": "-",
        "ts": "00:00:00",
        "time": "1.5ms",
    }
    assert rows[4]["x"] == "q" and rows[4]["pti"] == "AAAAAAA:1" and rows[4]["po"] == "9300"


def test_tasks_detailed_adds_description_and_resource_stats() -> None:
    t = tasks_rows(
        tasks_table(True),
        [task(1, 5, description="d", resource_stats=ResourceStats())],
        STATE,
        detailed=True,
        version="2.19.0",
    )
    row = render_json(t, CatOptions(h="description,resource_stats"))[0]
    assert row["description"] == "d"
    assert row["resource_stats"] is not None
    assert row["resource_stats"].startswith('{\n  "average" : {\n    "cpu_time_in_nanos" : 0,')
    assert [c.name for c in tasks_table(True).columns if c.shown_by_default][-1] == "description"


# -- _cat/nodes -------------------------------------------------------------------------------------


def test_node_roles() -> None:
    assert node_roles(A) == ("dimr", "cluster_manager,data,ingest,remote_cluster_client")
    assert node_roles(DiscoveryNode("c", "c", roles=())) == ("-", "-")
    assert node_roles(DiscoveryNode("c", "c", roles=("ml",))) == ("-", "ml")


def test_nodes_rows() -> None:
    coord = DiscoveryNode("CCCCCC", "coordinator", ip="127.0.0.1", port=9301, roles=())
    state = ClusterState(cluster_manager_node_id="AAAAAAA", nodes=(coord, A))
    stats = {
        "CCCCCC": NodeStats(
            pid=42,
            heap_used=1 << 20,
            heap_max=1 << 30,
            ram_used=1 << 29,
            ram_total=1 << 30,
            open_fds=10,
            max_fds=100,
            cpu_percent=7,
            load=(1.0, 0.5, -1.0),
            uptime_nanos=90 * 10**9,
        )
    }
    t = nodes_rows(
        nodes_table(),
        state,
        lambda n: stats.get(n.id, NodeStats()),
        version="2.19.0",
        build_type="tar",
        build_hash="h",
        http_address=lambda n: "127.0.0.1:9200" if n.id == "CCCCCC" else None,
    )
    assert render_text(t, CatOptions(v=True)).splitlines() == [
        "ip        heap.percent ram.percent cpu load_1m load_5m load_15m node.role node.roles                                        cluster_manager name",
        "127.0.0.1            0          50   7    1.00    0.50          -         -                                                 -               coordinator",
        "10.0.0.1                                                        dimr      cluster_manager,data,ingest,remote_cluster_client *               node-a",
    ]
    row = render_json(t, CatOptions(h="id,pid,po,http,hc,hm,fdp,u,m,type,b"))[0]
    assert row == {
        "id": "CCCC",
        "pid": "42",
        "po": "9301",
        "http": "127.0.0.1:9200",
        "hc": "1mb",
        "hm": "1gb",
        "fdp": "10",
        "u": "1.5m",
        "m": "-",
        "type": "tar",
        "b": "h",
    }
