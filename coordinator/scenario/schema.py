"""The scenario format (`scenarios/*.yaml`) and its validation, before anything starts.

A scenario names its cluster, a seed, and steps run in order. A step does exactly one thing:

    start        simulated task trees (a `POST /_sim/tasks` body)   (`${id}` is then its task id)
    request      one REST call, with `expect`; `background: true` runs it alongside the next steps
    partition / link / slow      install a fault; `for: 2s` or `until: <step id>` removes it again
                                 (`level: net` on a link or partition: packets, with `hosts: netns`)
    kill / pause / resume / restart      a process fault on a node
    heal         `true`: everything (rules, paused, dead); or the id of one fault step
    wait         a duration;   await: the id of a background request;   wait_until: poll a request

A `request` or `wait_until` step may `capture` values of its answer for later steps:
`capture: {model: model_id}` makes `${model}` the answer's `model_id` (a dotted JSON path).

Any step may say `at: 1.5s`: it does not start before that time since the scenario started.
`checks` hold `always` (during the run) and `eventually` (after the final heal, within a deadline);
`sometimes` names events that must happen at least once in the run's history (else: vacuous).

`engine: real` or `engine: sim` says the scenario runs on that engine only (its `description` says
why); it is skipped on the other. `cluster: {hosts: netns}` runs each node process in a network
namespace of its own (real packets, `level: net` faults): such a scenario is skipped, with the
reason in one line, on the sim engine and where namespaces cannot be made (not root, no `nft`). A cluster has up to 16 nodes, or up to 10 000 with `engine: sim`.
`sweep: false` says its expectations hold for its own seed only: a seed sweep runs it once.

Validation is strict and complete before a process starts: unknown keys, bad durations, unknown
node names, unknown or misplaced step references and `${...}` templates are all reported with the
file, line and column (loader.py). Nothing here runs anything.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from coordinator.cluster import ClusterConfig, FaultDetection, NodeConfig
from coordinator.faultspec import Duration, LinkFault, Partition, SlowFault
from coordinator.params import parse_time_value
from coordinator.scenario.loader import LoadError, Marks, ScenarioError, error_at, load, loads
from simnode.discovery import BUILT_IN_ROLES, DEFAULT_ATTRIBUTES, DEFAULT_ROLES
from simnode.errors import OpenSearchError
from simnode.history import EVENT_FIELDS

COORDINATOR = "coordinator"
MAX_NODES = 16  # node processes on the real engine
SIM_MAX_NODES = 10_000  # in-process nodes on the sim engine
ENGINES = ("real", "sim")
NAME = r"[a-z0-9][a-z0-9._-]*"
TEMPLATE = re.compile(r"\$\{([^}]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# -- the cluster ------------------------------------------------------------------------------------


class FaultDetectionSpec(_Strict):
    """OpenSearch's follower checks: `interval`, `timeout`, `retries` (a refused connection at
    once). Scenarios shorten them so that an unreachable node leaves the cluster in a second."""

    interval: Duration = 1.0
    timeout: Duration = 10.0
    retries: int = Field(default=3, ge=1, le=100)


class NodeSpecModel(_Strict):
    name: Annotated[str, Field(pattern=f"^{NAME}$")]
    roles: list[str] | None = None
    attributes: dict[str, str] | None = None

    @field_validator("roles")
    @classmethod
    def _roles(cls, roles: list[str] | None) -> list[str] | None:
        for role in roles or ():
            if role not in BUILT_IN_ROLES:
                raise ValueError(
                    f"unknown role {role!r} (roles: {', '.join(sorted(BUILT_IN_ROLES))})"
                )
        return roles


class ClusterSection(_Strict):
    nodes: int | list[NodeSpecModel] = 3
    # With `nodes: N`: the nodes' names, `opensearch-node{n}` (numbered 1..N); default `node-{n}`.
    name_pattern: str | None = None
    fault_detection: FaultDetectionSpec | Literal[False] = FaultDetectionSpec()
    # Where the node processes run (`tasksim up --hosts`): `loopback` (the default), all on
    # 127.0.0.1; `netns`, each in a network namespace of its own, with its own address, for
    # `level: net` faults (root only: skipped elsewhere, and on the sim engine).
    hosts: Literal["loopback", "netns"] = "loopback"

    @model_validator(mode="after")
    def _name_pattern(self) -> ClusterSection:
        if self.name_pattern is None:
            return self
        if not isinstance(self.nodes, int):
            raise ValueError("name_pattern goes with a node count; a node list names each node")
        if "{n}" not in self.name_pattern:
            raise ValueError(
                f"name_pattern needs {{n}}, e.g. 'opensearch-node{{n}}', not {self.name_pattern!r}"
            )
        for name in self.node_names():
            if re.fullmatch(NAME, name) is None:
                raise ValueError(f"name_pattern gives {name!r}, not a node name ({NAME})")
            if name == COORDINATOR:
                raise ValueError(f"{COORDINATOR!r} is the coordinating node's name")
        return self

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, nodes: int | list[NodeSpecModel]) -> int | list[NodeSpecModel]:
        count = nodes if isinstance(nodes, int) else len(nodes)
        if not 1 <= count <= SIM_MAX_NODES:  # the real engine's limit: `engine_errors`
            raise ValueError(
                f"a scenario cluster has 1 to {MAX_NODES} nodes "
                f"(up to {SIM_MAX_NODES} on the sim engine), not {count}"
            )
        if not isinstance(nodes, int):
            names = [n.name for n in nodes]
            for name in names:
                if names.count(name) > 1:
                    raise ValueError(f"node name {name!r} is used twice")
                if name == COORDINATOR:
                    raise ValueError(f"{COORDINATOR!r} is the coordinating node's name")
        return nodes

    def node_names(self) -> list[str]:
        if isinstance(self.nodes, int):
            pattern = self.name_pattern or "node-{n}"
            return [pattern.replace("{n}", str(i)) for i in range(1, self.nodes + 1)]
        return [n.name for n in self.nodes]

    def names(self) -> list[str]:
        """Every process a fault may name: the coordinating node, then the nodes."""
        return [COORDINATOR, *self.node_names()]

    def to_config(self, seed: int | None) -> ClusterConfig:
        if isinstance(self.nodes, int):
            nodes = tuple(NodeConfig(n) for n in self.node_names())
        else:
            nodes = tuple(
                NodeConfig(
                    n.name,
                    roles=tuple(n.roles) if n.roles is not None else DEFAULT_ROLES,
                    attributes=tuple(n.attributes.items())
                    if n.attributes is not None
                    else DEFAULT_ATTRIBUTES,
                )
                for n in self.nodes
            )
        fd = self.fault_detection
        detection = (
            FaultDetection(enabled=False)
            if fd is False
            else FaultDetection(
                enabled=True, interval=fd.interval, timeout=fd.timeout, retries=fd.retries
            )
        )
        if seed is None:
            return ClusterConfig(nodes=nodes, fault_detection=detection, hosts=self.hosts)
        return ClusterConfig(nodes=nodes, seed=seed, fault_detection=detection, hosts=self.hosts)


# -- requests and expectations ----------------------------------------------------------------------


class RequestSpec(_Strict):
    method: Literal["GET", "POST", "PUT", "DELETE", "HEAD"] = "GET"
    path: Annotated[str, Field(pattern=r"^/")]
    body: Any = None
    headers: dict[str, str] = {}
    timeout: Duration = 30.0  # the client's own limit; `expect: {timeout: true}` wants it hit


class Took(_Strict):
    min: Duration | None = None
    max: Duration | None = None


class TaskExpect(_Strict):
    """Over every task of a list response (any `group_by`): those matching `where`, how many
    (`count`), and what each of them must hold (`all`)."""

    where: dict[str, Any] = {}
    count: Any = None
    all: dict[str, Any] = {}


class Expect(_Strict):
    status: int | None = None
    timeout: bool | None = None  # true: the client gave up, no answer within `timeout`
    took: Took | None = None
    node_failures: dict[str, str] | None = None  # node name → caused_by.type ('*' = any)
    nodes: list[str] | None = None  # exactly these nodes in `nodes` (list responses)
    json_: dict[str, Any] = Field(default={}, alias="json")  # dotted path → value or matcher
    tasks: list[TaskExpect] = []


def _time_value(value: object) -> str:
    """An OpenSearch time value (`"30s"`, `"250ms"`), kept as written: what `POST /_sim/tasks`
    reads (coordinator/simspec.py) with OpenSearch's rules, so no fractions."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"a time value is a string with a unit, e.g. '500ms'; got {value!r}")
    try:
        parse_time_value(value, "time value")
    except OpenSearchError as e:
        raise ValueError(e.reason) from None
    return value


TimeValue = Annotated[str, BeforeValidator(_time_value)]
SELECTOR_WORDS = ("_local", "_all", "_master", "_cluster_manager")


class SimTask(_Strict):
    """A task of `POST /_sim/tasks` (coordinator/simspec.py), field for field."""

    action: str | None = None
    duration: TimeValue | None = None
    cancellable: bool | None = None
    description: str | None = None
    status: dict[str, Any] | None = None
    on_cancel: Literal["immediate", "checkpoint", "ignore"] | None = None
    checkpoint_interval: TimeValue | None = None
    ignore_cancel_for: TimeValue | None = None
    store_result: bool | None = None
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    children: list[SimChild] | None = None

    def size(self) -> int | None:
        """How many tasks the tree registers, when its node selectors say (else None)."""
        total = 1
        for child in self.children or ():
            selector = child.nodes if child.nodes is not None else child.node
            if selector is not None and not _plain_names(selector):
                return None
            nodes = 1 if selector is None else len(selector.split(","))
            inner = child.size()
            if inner is None:
                return None
            total += (child.count or 1) * nodes * inner
        return total

    def named_nodes(self) -> list[str]:
        """The plain node names its children's `node`/`nodes` use (selectors left out)."""
        out: list[str] = []
        for child in self.children or ():
            selector = child.nodes if child.nodes is not None else child.node
            if selector is not None and _plain_names(selector):
                out.extend(selector.split(","))
            out.extend(child.named_nodes())
        return out


class SimChild(SimTask):
    node: str | None = None
    nodes: str | None = None
    count: int | None = Field(default=None, ge=1)
    phase: int | None = Field(default=None, ge=0)
    send_delay: TimeValue | None = None


class StartSpec(SimTask):
    """The body of `POST /_sim/tasks`, plus `running`: wait until every task of the tree(s) is
    registered before the next step (the default; `false` when a fault holds some back)."""

    node: str
    headers: dict[str, str] | None = None
    parent_task_id: str | None = None
    count: int | None = Field(default=None, ge=1, le=10_000)
    running: bool = True

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"running"})


def _plain_names(selector: str) -> bool:
    return all(
        re.fullmatch(NAME, part) is not None and part not in SELECTOR_WORDS
        for part in selector.split(",")
    )


class WaitUntilSpec(_Strict):
    request: RequestSpec
    expect: Expect
    within: Duration
    every: Duration = 0.1


# -- steps ------------------------------------------------------------------------------------------

FAULT_KINDS = ("partition", "link", "slow")
PROCESS_KINDS = ("kill", "pause", "resume", "restart")
STEP_KINDS = (
    "start",
    "request",
    *FAULT_KINDS,
    *PROCESS_KINDS,
    "heal",
    "wait",
    "await",
    "wait_until",
)


class Step(_Strict):
    id: Annotated[str, Field(pattern=f"^{NAME}$")] | None = None
    at: Duration | None = None
    note: str | None = None
    # what the step does: exactly one of
    start: StartSpec | None = None
    request: RequestSpec | None = None
    partition: Partition | None = None
    link: LinkFault | None = None
    slow: SlowFault | None = None
    kill: str | None = None
    pause: str | None = None
    resume: str | None = None
    restart: str | None = None
    heal: bool | str | None = None
    wait: Duration | None = None
    await_: str | None = Field(default=None, alias="await")
    wait_until: WaitUntilSpec | None = None
    # modifiers
    expect: Expect | None = None
    background: bool = False
    for_: Duration | None = Field(default=None, alias="for")
    until: str | None = None
    capture: dict[Annotated[str, Field(pattern=f"^{NAME}$")], str] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in STEP_KINDS if self.value_of(k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"a step does exactly one of {', '.join(STEP_KINDS)} (found: {found})")
        kind = kinds[0]
        if self.expect is not None and kind != "request":
            raise ValueError("'expect' belongs to a 'request' step")
        if self.background and kind != "request":
            raise ValueError("'background' belongs to a 'request' step")
        if self.capture is not None and (kind not in ("request", "wait_until") or self.background):
            raise ValueError(
                "'capture' belongs to a 'request' (not in the background) or 'wait_until' step"
            )
        if (self.for_ is not None or self.until is not None) and kind not in FAULT_KINDS:
            raise ValueError("'for' and 'until' belong to a fault step (partition, link, slow)")
        if self.for_ is not None and self.until is not None:
            raise ValueError("a fault ends 'for' a duration or 'until' a step, not both")
        if self.heal is False:
            raise ValueError("'heal' is true (everything) or the id of a fault step")
        fault = self.fault
        if fault is not None and fault.id is not None:
            raise ValueError("give the fault its id with the step's 'id'")
        return self

    def value_of(self, kind: str) -> Any:
        return getattr(self, "await_" if kind == "await" else kind)

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if self.value_of(k) is not None)

    @property
    def fault(self) -> LinkFault | SlowFault | Partition | None:
        return self.partition or self.link or self.slow

    def label(self, index: int) -> str:
        value = self.value_of(self.kind)
        text = f"{index + 1}. {self.kind}"
        if self.id:
            text += f" [{self.id}]"
        if isinstance(value, str):
            text += f" {value}"
        elif self.kind == "request" and self.request is not None:
            text += f" {self.request.method} {self.request.path}"
        elif self.kind == "wait" and isinstance(value, float):
            text += f" {value:g}s"
        return text


class EventuallySpec(_Strict):
    within: Duration = 10.0
    checks: list[Literal["no_cancelled_descendants", "no_bans", "no_live_work"]] = [
        "no_cancelled_descendants",
        "no_bans",
    ]


def _event_only(value: Any) -> Any:
    return {"event": value} if isinstance(value, str) else value


class SometimesSpec(_Strict):
    """Something that must happen at least once in the run's history (simnode/history.py): an
    event of type `event` whose fields equal `where` (`{event: rpc_drop, where: {to: node-2}}`,
    or just `ban_set`). If it never happens the scenario did not test what it says: `vacuous`."""

    event: str
    where: dict[str, Any] = {}

    @field_validator("event")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in EVENT_FIELDS:
            raise ValueError(
                f"unknown history event {value!r} (one of: {', '.join(sorted(EVENT_FIELDS))})"
            )
        return value

    def label(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.where.items())
        return self.event + (f" where {where}" if where else "")


class Checks(_Strict):
    always: list[Literal["nodes_accounted", "no_child_under_ban"]] = [
        "nodes_accounted",
        "no_child_under_ban",
    ]
    eventually: EventuallySpec = EventuallySpec()
    sometimes: list[Annotated[SometimesSpec, BeforeValidator(_event_only)]] = []


class Scenario(_Strict):
    name: Annotated[str, Field(pattern=f"^{NAME}$")]
    description: str = ""
    # Runs on this engine only (skipped on the other); the description says why.
    engine: Literal["real", "sim"] | None = None
    # False: the expectations hold for this scenario's own seed only (which requests a seeded
    # loss drops, say), so a seed sweep runs it once, with that seed, instead of N seeds.
    sweep: bool = True
    tags: list[str] = []
    seed: int | None = None
    cluster: ClusterSection = ClusterSection()
    timeout: Duration = 60.0
    steps: list[Step] = Field(min_length=1)
    checks: Checks = Checks()

    def default_seed(self) -> int:
        return self.seed if self.seed is not None else zlib.crc32(self.name.encode()) % 100_000


# -- semantic checks --------------------------------------------------------------------------------


def _strings(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k, (*path, k)) if isinstance(k, str) else iter(())
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


def semantic_errors(scenario: Scenario, marks: Marks) -> list[ScenarioError]:
    errors: list[ScenarioError] = []
    names = scenario.cluster.names()
    nodes = scenario.cluster.node_names()

    def err(path: tuple[str | int, ...], message: str) -> None:
        errors.append(error_at(marks, path, message))

    def check_node(path: tuple[str | int, ...], name: str, *, coordinator: bool = True) -> None:
        allowed = names if coordinator else nodes
        if name not in allowed:
            err(path, f"unknown node {name!r} (nodes: {', '.join(allowed)})")

    if not scenario.sweep and scenario.seed is None:
        err(("sweep",), "'sweep: false' is for expectations of one seed: give the 'seed'")
    if scenario.engine is not None and not scenario.description.strip():
        err(("engine",), "a scenario that needs one engine says why in its 'description'")
    if scenario.cluster.hosts == "netns" and scenario.engine == "sim":
        err(("engine",), "'hosts: netns' runs node processes: it needs the real engine, not 'sim'")
    count = len(nodes)
    if count > MAX_NODES and scenario.engine != "sim":
        err(
            ("cluster", "nodes"),
            f"a scenario cluster has 1 to {MAX_NODES} nodes on the real engine, not {count} "
            f"(up to {SIM_MAX_NODES} with 'engine: sim')",
        )

    ids: dict[str, int] = {}
    for i, step in enumerate(scenario.steps):
        if step.id is not None:
            if step.id in ids:
                err(
                    ("steps", i, "id"),
                    f"step id {step.id!r} is used by step {ids[step.id] + 1} already",
                )
            elif step.id in names:
                err(("steps", i, "id"), f"step id {step.id!r} is a node name")
            else:
                ids[step.id] = i

    starts = {s.id for s in scenario.steps if s.id and s.kind == "start"}
    captures: dict[str, int] = {}
    for i, step in enumerate(scenario.steps):
        for name in step.capture or {}:
            spot: tuple[str | int, ...] = ("steps", i, "capture", name)
            if name in captures:
                err(spot, f"{name!r} is captured by step {captures[name] + 1} already")
            elif name in names or name in ids:
                err(spot, f"capture name {name!r} is a node name or a step id")
            else:
                captures[name] = i
    for i, step in enumerate(scenario.steps):
        base: tuple[str | int, ...] = ("steps", i)
        kind = step.kind
        if kind in PROCESS_KINDS:
            name = step.value_of(kind)
            if name == COORDINATOR:
                err(
                    (*base, kind),
                    "the coordinating node runs the scenario's REST API: it cannot be killed, paused or restarted",
                )
            else:
                check_node((*base, kind), name, coordinator=False)
        elif kind == "start" and step.start is not None:
            check_node((*base, "start", "node"), step.start.node)
            for name in sorted(set(step.start.named_nodes())):
                check_node((*base, "start", "children"), name)
        elif step.fault is not None:
            fault = step.fault
            where = (*base, kind)
            if fault.level == "net" and scenario.cluster.hosts != "netns":
                err(
                    (*where, "level"),
                    "'level: net' cuts packets between network namespaces: "
                    "it needs 'cluster: {hosts: netns}'",
                )
            if isinstance(fault, Partition):
                for g, group in enumerate(fault.groups):
                    for name in group:
                        check_node((*where, "groups", g), name)
            elif isinstance(fault, LinkFault):
                for name in fault.from_:
                    check_node((*where, "from"), name)
                for name in fault.to:
                    check_node((*where, "to"), name)
            elif isinstance(fault, SlowFault):
                for name in fault.node:
                    check_node((*where, "node"), name)
                for name in fault.from_:
                    check_node((*where, "from"), name)
            if step.until is not None:
                target = ids.get(step.until)
                if target is None:
                    err((*base, "until"), f"no step with id {step.until!r}")
                elif target <= i:
                    err((*base, "until"), f"step {step.until!r} must come after this step")
        elif kind == "heal" and isinstance(step.heal, str) and step.heal != "all":
            target = ids.get(step.heal)
            if target is None or target >= i or scenario.steps[target].fault is None:
                err((*base, "heal"), f"{step.heal!r} is not the id of an earlier fault step")
        elif kind == "await":
            target = ids.get(step.await_ or "")
            if target is None or target >= i or not scenario.steps[target].background:
                err(
                    (*base, "await"),
                    f"{step.await_!r} is not the id of an earlier background request",
                )
        if step.at is not None and step.at > scenario.timeout:
            err((*base, "at"), "'at' is later than the scenario's timeout")

        # templates and node names inside requests and expectations
        defined = {s.id for s in scenario.steps[:i] if s.id and s.kind == "start"}
        defined |= {name for name, at in captures.items() if at < i}
        requests: list[tuple[tuple[str | int, ...], RequestSpec, Expect | None]] = []
        if step.request is not None:
            requests.append(((*base, "request"), step.request, step.expect))
        if step.wait_until is not None:
            requests.append(
                ((*base, "wait_until", "request"), step.wait_until.request, step.wait_until.expect)
            )
        for path, req, expect in requests:
            spots = list(_strings(req.model_dump(), path))
            if expect is not None:
                expect_path = (*path[:-1], "expect")
                spots += list(_strings(expect.model_dump(exclude_none=True), expect_path))
                for name in expect.node_failures or {}:
                    check_node((*expect_path, "node_failures", name), name)
                for n, name in enumerate(expect.nodes or []):
                    check_node((*expect_path, "nodes", n), name)
            for spot, text in spots:
                for ref in TEMPLATE.findall(text):
                    head = ref.split(".", 1)[0]
                    if head in names:
                        continue
                    if head in defined:
                        continue
                    if head in starts:
                        err(spot, f"${{{ref}}} refers to a start step that comes later")
                    elif head in captures:
                        err(spot, f"${{{ref}}} is captured by a step that comes later")
                    else:
                        err(spot, f"${{{ref}}}: no node or earlier start step named {head!r}")
    return errors


# -- loading ----------------------------------------------------------------------------------------


def validation_errors(e: ValidationError, marks: Marks) -> list[ScenarioError]:
    """pydantic's errors, located. Union branches (`int | list[...]`) leave their own names in a
    location: it is cut to what the file has, and the most specific error of a place wins."""
    items = []
    for item in e.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        keep: tuple[str | int, ...] = ()
        for part in loc:  # the parts the file has: drops union branch tags such as 'int'
            if (*keep, part) in marks.at:
                keep = (*keep, part)
        if kind == "missing":
            items.append((keep, loc, f"missing key {loc[-1]!r}"))
            continue
        msg = str(item["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if kind == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        items.append((keep, loc, msg))
    out: list[ScenarioError] = []
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    for keep, _loc, msg in items:
        deeper = any(
            other_keep[: len(keep)] == keep and len(other_keep) > len(keep)
            for other_keep, _, _ in items
        )
        if deeper or (keep, msg) in seen:
            continue
        seen.add((keep, msg))
        out.append(error_at(marks, keep, msg))
    return out


def parse(data: Any, marks: Marks) -> Scenario:
    if not isinstance(data, dict):
        raise LoadError(
            [error_at(marks, (), "a scenario is a mapping (name, cluster, steps, ...)")]
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as e:
        raise LoadError(_by_line(validation_errors(e, marks))) from None
    errors = semantic_errors(scenario, marks)
    if errors:
        raise LoadError(_by_line(errors))
    return scenario


def _by_line(errors: list[ScenarioError]) -> list[ScenarioError]:
    return sorted(errors, key=lambda e: (e.line or 0, e.column or 0))


def load_scenario(path: Path) -> Scenario:
    data, marks = load(path)
    return parse(data, marks)


def load_scenario_text(text: str, file: str = "<text>") -> Scenario:
    data, marks = loads(text, file)
    return parse(data, marks)


def load_cluster_section(path: Path) -> ClusterSection:
    """The `cluster` section of a scenario file, or a file that is only a cluster section."""
    data, marks = load(path)
    if isinstance(data, dict) and ("steps" in data or "cluster" in data):
        return parse(data, marks).cluster
    try:
        section = ClusterSection.model_validate(data)
    except ValidationError as e:
        raise LoadError(validation_errors(e, marks)) from None
    count = len(section.node_names())
    if count > MAX_NODES:  # `tasksim up` starts node processes: the real engine's limit
        raise LoadError(
            [error_at(marks, ("nodes",), f"a cluster has 1 to {MAX_NODES} nodes, not {count}")]
        )
    return section


def collect(paths: list[Path]) -> list[Path]:
    """Files named, and the `*.yaml`/`*.yml` files inside directories named, in sorted order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files
