"""The `_cat` tables: OpenSearch's `Table` and `RestTable`, and the rows of `_cat/tasks` and
`_cat/nodes`.

Everything that decides what a `_cat` answer looks like lives here: the columns with their
attributes (`default`, `alias`, `text-align`, `desc`), which columns are shown (`h` with aliases and
`*` wildcards; the defaults otherwise; `ts=false` hides `timestamp`), the header line (`v`), the
row order (`s` with `:asc`/`:desc`), the value rendering (`bytes`, `time`), the text layout
(padding, right alignment, the last column never padded — and `RestTable.pad`'s `byte` arithmetic,
so a column more than 127 characters wider than a cell is not padded), `format=json` (every value a
string), and `help`. Pure: rows are built from plain values; no I/O.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coordinator.params import Params, split_comma
from coordinator.render import TaskGroup, resource_stats, task_groups, time_value
from simnode.discovery import ClusterState, DiscoveryNode
from simnode.errors import OpenSearchError
from simnode.regex import simple_match
from simnode.registry import TaskInfo

# Response parameters of every `_cat` action (`AbstractCatAction.RESPONSE_PARAMS`).
CAT_RESPONSE_PARAMS = frozenset(
    {"format", "h", "v", "ts", "pri", "bytes", "size", "time", "s", "timeout"}
)


class UnsupportedOperationError(OpenSearchError):
    """`java.lang.UnsupportedOperationException` (a 500, as OpenSearch answers it)."""

    type = "unsupported_operation_exception"
    status = 500


# -- values -----------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class TimeValue:
    """A duration cell: `TimeValue.toString()` unless `time=<unit>` asks for a whole number."""

    nanos: int

    def __str__(self) -> str:
        return time_value(self.nanos)


_BYTE_UNITS = (("pb", 1 << 50), ("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10))


@dataclass(frozen=True, order=True)
class ByteSize:
    """A size cell: `ByteSizeValue.toString()` (`15.6gb`) unless `bytes=<unit>` is given."""

    bytes: int

    def __str__(self) -> str:
        for suffix, scale in _BYTE_UNITS:
            if self.bytes >= scale:
                return _format1(self.bytes / scale) + suffix
        return f"{self.bytes}b"


def _format1(value: float) -> str:
    """`Strings.format1Decimals`: one fraction digit, truncated, dropped when it is 0."""
    integral, _, fraction = repr(float(value)).partition(".")
    digit = fraction[:1]
    return integral if not digit or digit == "0" else f"{integral}.{digit}"


_TIME_DIVISORS = {
    "nanos": 1,
    "micros": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86400 * 10**9,
}
_BYTE_DIVISORS = {
    "b": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "m": 1 << 20,
    "mb": 1 << 20,
    "g": 1 << 30,
    "gb": 1 << 30,
    "t": 1 << 40,
    "tb": 1 << 40,
    "p": 1 << 50,
    "pb": 1 << 50,
}


def render_value(value: Any, *, time: str | None = None, size: str | None = None) -> str | None:
    """`RestTable.renderValue`."""
    if value is None:
        return None
    if isinstance(value, TimeValue) and time in _TIME_DIVISORS:
        return str(value.nanos // _TIME_DIVISORS[time])
    if isinstance(value, ByteSize) and size in _BYTE_DIVISORS:
        return str(value.bytes // _BYTE_DIVISORS[size])
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- the table --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    attrs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, spec: str = "") -> Column:
        """`Table.addCell(name, "default:false;alias:ac;desc:...")`."""
        attrs: dict[str, str] = {}
        for part in spec.split(";"):
            key, sep, value = part.partition(":")
            if sep:
                attrs[key] = value
        return cls(name, attrs)

    @property
    def aliases(self) -> tuple[str, ...]:
        return split_comma(self.attrs.get("alias"))

    @property
    def shown_by_default(self) -> bool:
        return self.attrs.get("default", "true") != "false"

    @property
    def right_aligned(self) -> bool:
        return self.attrs.get("text-align") == "right"


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def index(self, name: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.name == name)

    def alias_map(self) -> dict[str, str]:
        """`Table.getAliasMap`: every name and alias → the column name (later columns win)."""
        out: dict[str, str] = {}
        for c in self.columns:
            out[c.name] = c.name
            for alias in c.aliases:
                out[alias] = c.name
        return out


@dataclass(frozen=True)
class CatOptions:
    """The response parameters a `_cat` answer is written with (read after the request ran)."""

    h: str | None = None
    v: bool = False
    ts: bool = True
    s: tuple[str, ...] | None = None
    time: str | None = None
    bytes: str | None = None
    format: str | None = None

    @classmethod
    def read(cls, params: Params, accept: str | None = None) -> CatOptions:
        return cls(
            h=params.peek("h"),
            v=params.param_bool("v", False),
            ts=params.param_bool("ts", True),
            s=split_comma(params.peek("s")) if params.has("s") else None,
            time=params.peek("time"),
            bytes=params.peek("bytes"),
            format=params.peek("format") if params.has("format") else _format_of(accept),
        )

    @property
    def json(self) -> bool:
        return self.format is not None and self.format.lower() == "json"


def _format_of(accept: str | None) -> str | None:
    """`XContentType.fromMediaType(Accept)`, for the one type tasksim writes (JSON)."""
    if accept is None:
        return None
    media = accept.split(";")[0].strip().lower()
    return "json" if media == "application/json" else None


def display_columns(table: Table, opts: CatOptions) -> list[tuple[str, str]]:
    """`RestTable.buildDisplayHeaders`: (column name, display name) pairs."""
    shown: list[tuple[str, str]] = []

    def timestamp_ok(name: str) -> bool:
        return opts.ts if name in ("timestamp", "epoch") else True

    if opts.h is None:
        return [
            (c.name, c.name) for c in table.columns if c.shown_by_default and timestamp_ok(c.name)
        ]
    wanted: dict[str, None] = {}
    for header in split_comma(opts.h):
        if "*" in header:
            for c in table.columns:
                if simple_match(header, c.name) or any(simple_match(header, a) for a in c.aliases):
                    wanted.setdefault(c.name, None)
        else:
            wanted.setdefault(header, None)
    for possibility in wanted:
        found: tuple[str, str] | None = None
        if table.column(possibility) is not None:
            found = (possibility, possibility)
        else:
            for c in table.columns:
                if possibility in c.aliases:
                    found = (c.name, possibility)
        if found is not None and timestamp_ok(found[0]):
            shown.append(found)
    return shown


def _compare(a: Any, b: Any) -> int:
    """`TableIndexComparator` for one column: nulls first, same-class values naturally, else text."""
    if a is None and b is None:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    if type(a) is type(b):
        return int(a > b) - int(a < b)
    return int(str(a) > str(b)) - int(str(a) < str(b))


def row_order(table: Table, opts: CatOptions) -> list[int]:
    """`RestTable.getRowOrder`: `s=col[:asc|:desc],...`, by name or alias."""
    order = list(range(len(table.rows)))
    if opts.s is None:
        return order
    aliases = table.alias_map()
    keys: list[tuple[int, bool]] = []
    for item in opts.s:
        reverse = False
        name = item
        if name.endswith(":desc"):
            name, reverse = name[: -len(":desc")], True
        elif name.endswith(":asc"):
            name = name[: -len(":asc")]
        if name not in aliases:
            raise UnsupportedOperationError(f"Unable to sort by unknown sort key `{name}`")
        keys.append((table.index(aliases[name]), reverse))

    def cmp(i: int, j: int) -> int:
        for col, reverse in keys:
            c = _compare(table.rows[i][col], table.rows[j][col])
            if c:
                return -c if reverse else c
        return 0

    return sorted(order, key=functools.cmp_to_key(cmp))


def _pad(text: str | None, width: int, *, right: bool, last: bool) -> str:
    """`RestTable.pad`, with its `byte leftOver` (a difference over 127 wraps and pads nothing)."""
    value = text or ""
    left_over = (width - len(value) + 128) % 256 - 128
    if left_over > 0 and right:
        return " " * left_over + value
    if last or left_over <= 0:
        return value
    return value + " " * left_over


def render_text(table: Table, opts: CatOptions) -> str:
    """`RestTable.buildTextPlainResponse`."""
    shown = display_columns(table, opts)
    columns = [table.index(name) for name, _ in shown]
    order = row_order(table, opts)
    cells = [
        [render_value(table.rows[r][c], time=opts.time, size=opts.bytes) for c in columns]
        for r in order
    ]
    widths = [0] * len(shown)
    if opts.v:
        widths = [len(display) for _, display in shown]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value or ""))
    last = len(shown) - 1
    lines: list[str] = []
    if opts.v:
        lines.append(
            " ".join(
                _pad(
                    display,
                    widths[i],
                    right=table.columns[columns[i]].right_aligned,
                    last=i == last,
                )
                for i, (_, display) in enumerate(shown)
            )
        )
    for row in cells:
        lines.append(
            " ".join(
                _pad(
                    value, widths[i], right=table.columns[columns[i]].right_aligned, last=i == last
                )
                for i, value in enumerate(row)
            )
        )
    return "".join(line + "\n" for line in lines)


def render_json(table: Table, opts: CatOptions) -> list[dict[str, str | None]]:
    """`RestTable.buildXContentBuilder`: one object per row, display names → rendered strings."""
    shown = display_columns(table, opts)
    return [
        {
            display: render_value(table.rows[r][table.index(name)], time=opts.time, size=opts.bytes)
            for name, display in shown
        }
        for r in row_order(table, opts)
    ]


def render_help(table: Table) -> str:
    """`AbstractCatAction` with `help`: `name | aliases | description`, left-aligned."""
    rows = [
        (c.name, c.attrs.get("alias", ""), c.attrs.get("desc", "not available"))
        for c in table.columns
    ]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    return "".join(
        " | ".join(v + " " * (widths[i] - len(v)) for i, v in enumerate(r)) + "\n" for r in rows
    )


# -- _cat/tasks -------------------------------------------------------------------------------------


def tasks_table(detailed: bool) -> Table:
    """`RestTasksAction.getTableWithHeader`."""
    columns = [
        Column.of("id", "default:false;desc:id of the task with the node"),
        Column.of("action", "alias:ac;desc:task action"),
        Column.of("task_id", "alias:ti;desc:unique task id"),
        Column.of("parent_task_id", "alias:pti;desc:parent task id"),
        Column.of("type", "alias:ty;desc:task type"),
        Column.of("start_time", "alias:start;desc:start time in ms"),
        Column.of("timestamp", "alias:ts,hms,hhmmss;desc:start time in HH:MM:SS"),
        Column.of("running_time_ns", "default:false;alias:time;desc:running time ns"),
        Column.of("running_time", "default:true;alias:time;desc:running time"),
        Column.of("node_id", "default:false;alias:ni;desc:unique node id"),
        Column.of("ip", "default:true;alias:i;desc:ip address"),
        Column.of("port", "default:false;alias:po;desc:bound transport port"),
        Column.of("node", "default:true;alias:n;desc:node name"),
        Column.of("version", "default:false;alias:v;desc:es version"),
        Column.of("x_opaque_id", "default:false;alias:x;desc:X-Opaque-ID header"),
    ]
    if detailed:
        columns.append(Column.of("description", "default:true;alias:desc;desc:task action"))
        columns.append(
            Column.of("resource_stats", "default:false;desc:resource consumption info of the task")
        )
    return Table(columns)


def hms(epoch_millis: int) -> str:
    moment = _dt.datetime.fromtimestamp(epoch_millis / 1000, tz=_dt.UTC)
    return moment.strftime("%H:%M:%S")


def _pretty_json(value: Any, indent: int = 0) -> str:
    """`Strings.toString(JSON, x, pretty=true, human=true)`: Jackson's pretty printer, no final LF."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict) and value:
        items = [f"{pad}{json.dumps(k)} : {_pretty_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, dict):
        return "{ }"
    return json.dumps(value)


def tasks_rows(
    table: Table,
    tasks: Sequence[TaskInfo],
    state: ClusterState,
    *,
    detailed: bool,
    version: str,
    full_id: bool = False,
) -> Table:
    """`RestTasksAction.buildGroups`: task groups (by parent) sorted by start time, each followed
    by its children, depth first (with an explicit stack: a parent chain has no depth limit)."""

    def add(group: TaskGroup) -> None:
        t = group.task
        node = state.get(t.node)
        row: list[Any] = [
            t.id,
            t.action,
            str(t.task_id),
            str(t.parent_task_id) if t.parent_task_id.is_set() else "-",
            t.type,
            t.start_time_in_millis,
            hms(t.start_time_in_millis),
            t.running_time_in_nanos,
            TimeValue(t.running_time_in_nanos),
            t.node if full_id else t.node[:4],
            node.ip if node is not None else "-",
            node.port if node is not None else "-",
            node.name if node is not None else "-",
            version if node is not None else "-",
            dict(t.headers).get("X-Opaque-Id", "-"),
        ]
        if detailed:
            row.append(t.description)
            row.append(
                _pretty_json(resource_stats(t.resource_stats))
                if t.resource_stats is not None
                else None
            )
        table.rows.append(row)

    def by_start(groups: list[TaskGroup]) -> list[TaskGroup]:
        return sorted(groups, key=lambda g: g.task.start_time_in_millis)

    stack = list(reversed(by_start(task_groups(list(tasks)))))
    while stack:
        group = stack.pop()
        add(group)
        stack.extend(reversed(by_start(group.children)))
    return table


# -- _cat/nodes -------------------------------------------------------------------------------------

# DiscoveryNodeRole.roleNameAbbreviation for the roles OpenSearch knows.
ROLE_ABBREVIATIONS = {
    "cluster_manager": "m",
    "master": "m",
    "data": "d",
    "ingest": "i",
    "remote_cluster_client": "r",
    "search": "s",
    "warm": "w",
}


def nodes_table() -> Table:
    """`RestNodesAction.getTableWithHeader`: the columns tasksim can fill (node identity, process,
    memory, CPU, load, roles); the per-index statistics columns are left out."""
    return Table(
        [
            Column.of("id", "default:false;alias:id,nodeId;desc:unique node id"),
            Column.of("pid", "default:false;alias:p;desc:process id"),
            Column.of("ip", "alias:i;desc:ip address"),
            Column.of("port", "default:false;alias:po;desc:bound transport port"),
            Column.of("http_address", "default:false;alias:http;desc:bound http address"),
            Column.of("version", "default:false;alias:v;desc:es version"),
            Column.of("type", "default:false;alias:t;desc:es distribution type"),
            Column.of("build", "default:false;alias:b;desc:es build hash"),
            Column.of("jdk", "default:false;alias:j;desc:jdk version"),
            Column.of(
                "heap.current", "default:false;alias:hc,heapCurrent;text-align:right;desc:used heap"
            ),
            Column.of("heap.percent", "alias:hp,heapPercent;text-align:right;desc:used heap ratio"),
            Column.of(
                "heap.max",
                "default:false;alias:hm,heapMax;text-align:right;desc:max configured heap",
            ),
            Column.of(
                "ram.current",
                "default:false;alias:rc,ramCurrent;text-align:right;desc:used machine memory",
            ),
            Column.of(
                "ram.percent", "alias:rp,ramPercent;text-align:right;desc:used machine memory ratio"
            ),
            Column.of(
                "ram.max",
                "default:false;alias:rm,ramMax;text-align:right;desc:total machine memory",
            ),
            Column.of(
                "file_desc.current",
                "default:false;alias:fdc,fileDescriptorCurrent;text-align:right;desc:used file descriptors",
            ),
            Column.of(
                "file_desc.percent",
                "default:false;alias:fdp,fileDescriptorPercent;text-align:right;desc:used file descriptor ratio",
            ),
            Column.of(
                "file_desc.max",
                "default:false;alias:fdm,fileDescriptorMax;text-align:right;desc:max file descriptors",
            ),
            Column.of("cpu", "alias:cpu;text-align:right;desc:recent cpu usage"),
            Column.of("load_1m", "alias:l;text-align:right;desc:1m load avg"),
            Column.of("load_5m", "alias:l;text-align:right;desc:5m load avg"),
            Column.of("load_15m", "alias:l;text-align:right;desc:15m load avg"),
            Column.of("uptime", "default:false;alias:u;text-align:right;desc:node uptime"),
            Column.of(
                "node.role",
                "alias:r,role,nodeRole;desc:m:master eligible node, d:data node, i:ingest node, -:coordinating node only",
            ),
            Column.of("node.roles", "alias:rs,all roles;desc: -:coordinating node only"),
            Column.of("cluster_manager", "alias:cm,m,master;desc:*:current cluster manager"),
            Column.of("name", "alias:n;desc:node name"),
        ]
    )


@dataclass(frozen=True)
class NodeStats:
    """What a node's process reports (`nodes info` + `nodes stats` in OpenSearch); None = unknown."""

    pid: int | None = None
    heap_used: int | None = None
    heap_max: int | None = None
    ram_used: int | None = None
    ram_total: int | None = None
    open_fds: int | None = None
    max_fds: int | None = None
    cpu_percent: int | None = None
    load: tuple[float, float, float] | None = None
    uptime_nanos: int | None = None
    jdk: str | None = None


def _percent(used: int | None, total: int | None) -> int | None:
    if used is None or total is None:
        return None
    return 0 if total <= 0 else int(100 * used / total)


def _load(value: float | None) -> str | None:
    return None if value is None or value == -1 else f"{value:.2f}"


def node_roles(node: DiscoveryNode) -> tuple[str, str]:
    """(`node.role`, `node.roles`): known roles abbreviated and sorted; all roles by name."""
    if not node.roles:
        return "-", "-"
    known = sorted(ROLE_ABBREVIATIONS[r] for r in node.roles if r in ROLE_ABBREVIATIONS)
    return ("".join(known) if known else "-"), ",".join(sorted(node.roles))


def nodes_rows(
    table: Table,
    state: ClusterState,
    stats: Callable[[DiscoveryNode], NodeStats],
    *,
    version: str,
    build_type: str,
    build_hash: str,
    http_address: Callable[[DiscoveryNode], str | None],
    full_id: bool = False,
) -> Table:
    """`RestNodesAction.buildTable`, one row per node in the cluster state."""
    manager = state.cluster_manager_node_id or None
    for node in state.nodes:
        st = stats(node)
        role, roles = node_roles(node)
        load = st.load or (None, None, None)
        http = http_address(node)
        table.rows.append(
            [
                node.id if full_id else node.id[:4],
                st.pid,
                node.ip,
                node.port,
                http if http is not None else "-",
                version,
                build_type if st.pid is not None else None,
                build_hash if st.pid is not None else None,
                st.jdk,
                None if st.heap_used is None else ByteSize(st.heap_used),
                _percent(st.heap_used, st.heap_max),
                None if st.heap_max is None else ByteSize(st.heap_max),
                None if st.ram_used is None else ByteSize(st.ram_used),
                _percent(st.ram_used, st.ram_total),
                None if st.ram_total is None else ByteSize(st.ram_total),
                st.open_fds,
                None if st.open_fds is None else _percent(st.open_fds, st.max_fds),
                st.max_fds,
                None if st.cpu_percent is None else str(st.cpu_percent),
                _load(load[0]),
                _load(load[1]),
                _load(load[2]),
                None if st.uptime_nanos is None else TimeValue(st.uptime_nanos),
                role,
                roles,
                "x" if manager is None else ("*" if manager == node.id else "-"),
                node.name,
            ]
        )
    return table
