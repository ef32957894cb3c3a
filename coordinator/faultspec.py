"""How users write faults — for `/_sim/faults`, the Python client and YAML scenarios alike — and
how those specs become `simnode.faults.Rule`s.

One pydantic model per shape, unknown keys rejected, durations as strings with a unit (`500ms`,
`1.5s`, `2m`). Node names are checked against the cluster's names by `to_rules`, with the same
message everywhere. What a rule *does* is decided in simnode/faults.py, never here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from coordinator.netfaults import NET_UNSUPPORTED, Level, PacketRule, link_rules, partition_rules
from simnode._wire import ml_pb2 as mlpb
from simnode._wire import node_pb2 as pb
from simnode.faults import (
    BLACKHOLE,
    DELAY,
    DISCONNECT,
    DROP_REQUEST,
    DROP_RESPONSE,
    SLOW,
    Rule,
)
from simnode.transport import ACTION_OF_METHOD

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(micros|us|ms|s|m|h)")
_UNIT_SECONDS = {"micros": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """`"500ms"` → 0.5. Only strings with a unit: a bare number is ambiguous."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(
            f"a duration is a string with a unit (micros, ms, s, m, h), e.g. '500ms'; got {value!r}"
        )
    m = _DURATION.fullmatch(value.strip())
    if m is None:
        raise ValueError(
            f"invalid duration {value!r}: expected a number and a unit (micros, ms, s, m, h), "
            "e.g. '500ms', '1.5s'"
        )
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def format_duration(seconds: float) -> str:
    """0.5 → `"500ms"`: what `parse_duration` reads back."""
    text = f"{seconds * 1000:.3f}".rstrip("0").rstrip(".")
    return f"{text}ms"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]


def _node_list(value: object) -> object:
    if isinstance(value, str):
        return () if value in ("*", "any") else (value,)
    return value


NodeNames = Annotated[tuple[str, ...], BeforeValidator(_node_list)]

# RPC methods a rule may name: the `Node` and `MlNode` services' methods, or the OpenSearch action
# they carry.
NODE_METHODS = tuple(
    m
    for descriptor, service in ((pb.DESCRIPTOR, "Node"), (mlpb.DESCRIPTOR, "MlNode"))
    for m in descriptor.services_by_name[service].methods_by_name
    if m != "Watch"
)
_METHOD_OF_ACTION = {action: method for method, action in ACTION_OF_METHOD.items()}


def resolve_method(name: str) -> str:
    if name in NODE_METHODS:
        return name
    if name in _METHOD_OF_ACTION:
        return _METHOD_OF_ACTION[name]
    raise ValueError(
        f"unknown method {name!r}: expected one of {', '.join(NODE_METHODS)} "
        "(or the OpenSearch action they carry, e.g. 'internal:admin/tasks/ban')"
    )


def _methods(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        return tuple(resolve_method(str(v)) for v in value)
    return value


Methods = Annotated[tuple[str, ...], BeforeValidator(_methods)]


def _fault_id(value: str) -> str:
    """A fault id is stored, sent to every node and shown by `GET /_sim/faults`: it must be text
    the wire can carry. `"\\ud800"` is valid JSON but no UTF-8 text (a lone surrogate); kept, it
    failed every later rule push (issue 14)."""
    if not value:
        raise ValueError("a fault id must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"a fault id must be valid Unicode text; {value!r} holds a lone surrogate"
        ) from None
    return value


FaultId = Annotated[str, AfterValidator(_fault_id)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class LinkFault(_Strict):
    """Calls from `from` to `to` (names; `*` or absent = any) for `methods` (absent = all)."""

    kind: ClassVar[str] = "link"
    id: FaultId | None = None
    action: Literal["disconnect", "blackhole", "drop_request", "drop_response", "delay", "loss"]
    from_: NodeNames = Field(default=(), alias="from")
    to: NodeNames = ()
    methods: Methods = ()
    p: float | None = Field(default=None, ge=0.0, le=1.0)
    latency: Duration | None = None
    jitter: Duration | None = None
    both_ways: bool = False
    level: Level = "transport"

    @model_validator(mode="after")
    def _check(self) -> LinkFault:
        if self.level == "net":
            if self.action in NET_UNSUPPORTED:
                raise ValueError(NET_UNSUPPORTED[self.action])
            if self.methods:
                raise ValueError(NET_UNSUPPORTED["methods"])
        if self.action == "delay" and self.latency is None:
            raise ValueError("a 'delay' fault needs 'latency'")
        if self.action != "delay" and (self.latency is not None or self.jitter is not None):
            raise ValueError("'latency' and 'jitter' apply to a 'delay' fault only")
        if self.action == "loss" and self.p is None:
            raise ValueError("a 'loss' fault needs 'p', the probability that a request is lost")
        return self


class SlowFault(_Strict):
    """A slow node: `node` waits `latency ± jitter` before each handler runs."""

    kind: ClassVar[str] = "slow"
    id: FaultId | None = None
    node: NodeNames
    latency: Duration
    jitter: Duration | None = None
    from_: NodeNames = Field(default=(), alias="from")
    methods: Methods = ()
    p: float | None = Field(default=None, ge=0.0, le=1.0)
    level: Level = "transport"

    @model_validator(mode="after")
    def _check(self) -> SlowFault:
        if self.level == "net":
            raise ValueError(NET_UNSUPPORTED["slow"])
        if not self.node:
            raise ValueError("'node' must name at least one node")
        return self


class Partition(_Strict):
    """Groups of node names; every node not listed forms one more group (the rest)."""

    kind: ClassVar[str] = "partition"
    id: FaultId | None = None
    groups: list[NodeNames] = Field(min_length=1)
    direction: Literal["both", "one-way"] = "both"
    mode: Literal["blackhole", "disconnect"] = "blackhole"
    methods: Methods = ()
    level: Level = "transport"

    @model_validator(mode="after")
    def _check(self) -> Partition:
        if self.level == "net" and self.methods:
            raise ValueError(NET_UNSUPPORTED["methods"])
        seen: set[str] = set()
        for group in self.groups:
            if not group:
                raise ValueError("a partition group must not be empty")
            for name in group:
                if name in seen:
                    raise ValueError(f"node {name!r} is in more than one partition group")
                seen.add(name)
        return self


FaultSpec = LinkFault | SlowFault | Partition
FAULT_KINDS: dict[str, type[LinkFault] | type[SlowFault] | type[Partition]] = {
    "link": LinkFault,
    "slow": SlowFault,
    "partition": Partition,
}


def parse_fault(body: object) -> FaultSpec:
    """`{"link": {...}}`, `{"slow": {...}}` or `{"partition": {...}}` → the spec (ValueError)."""
    if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in FAULT_KINDS:
        raise ValueError("a fault is an object with exactly one key: " + ", ".join(FAULT_KINDS))
    kind, value = next(iter(body.items()))
    return FAULT_KINDS[kind].model_validate(value)


class UnknownNodeError(ValueError):
    pass


def check_names(names: tuple[str, ...], known: list[str], where: str) -> None:
    for name in names:
        if name not in known:
            raise UnknownNodeError(f"unknown node {name!r} in {where} (nodes: {', '.join(known)})")


def partition_groups(spec: Partition, known: list[str]) -> list[tuple[str, ...]]:
    """The listed groups, then the implicit rest (when anyone is left)."""
    for group in spec.groups:
        check_names(group, known, "partition groups")
    listed = {n for g in spec.groups for n in g}
    rest = tuple(n for n in known if n not in listed)
    return [tuple(g) for g in spec.groups] + ([rest] if rest else [])


def to_rules(spec: FaultSpec, fault_id: str, known: list[str]) -> list[Rule]:
    """The rules a fault installs, all under `fault_id`, for a cluster whose names are `known`."""
    methods = frozenset(spec.methods)
    if isinstance(spec, LinkFault):
        check_names(spec.from_, known, "'from'")
        check_names(spec.to, known, "'to'")
        action = {
            "disconnect": DISCONNECT,
            "blackhole": BLACKHOLE,
            "drop_request": DROP_REQUEST,
            "drop_response": DROP_RESPONSE,
            "delay": DELAY,
            "loss": DROP_REQUEST,
        }[spec.action]
        pairs = [(spec.from_, spec.to)]
        if spec.both_ways:
            pairs.append((spec.to, spec.from_))
        return [
            Rule(
                id=fault_id,
                action=action,
                src=frozenset(src),
                dst=frozenset(dst),
                methods=methods,
                p=1.0 if spec.p is None else spec.p,
                latency=spec.latency or 0.0,
                jitter=spec.jitter or 0.0,
            )
            for src, dst in pairs
        ]
    if isinstance(spec, SlowFault):
        check_names(spec.node, known, "'node'")
        check_names(spec.from_, known, "'from'")
        return [
            Rule(
                id=fault_id,
                action=SLOW,
                src=frozenset(spec.from_),
                dst=frozenset(spec.node),
                methods=methods,
                p=1.0 if spec.p is None else spec.p,
                latency=spec.latency,
                jitter=spec.jitter or 0.0,
            )
        ]
    groups = partition_groups(spec, known)
    rules: list[Rule] = []
    for i, a in enumerate(groups):
        for j, b in enumerate(groups):
            if i == j:
                continue
            if spec.direction == "both" or i < j:
                rules.append(Rule(fault_id, spec.mode, frozenset(a), frozenset(b), methods))
            elif spec.mode == "blackhole":
                # One way: what an earlier group sends a later one is lost — including the
                # answers to the later group's calls, which therefore hang.
                rules.append(Rule(fault_id, DROP_RESPONSE, frozenset(a), frozenset(b), methods))
    return rules


def to_packet_rules(spec: FaultSpec, fault_id: str, known: list[str]) -> list[PacketRule]:
    """A `level: net` fault's packet rules (coordinator/netfaults.py says what they cut)."""
    if isinstance(spec, LinkFault):
        check_names(spec.from_, known, "'from'")
        check_names(spec.to, known, "'to'")
        return link_rules(
            fault_id, spec.action, spec.from_, spec.to, known, p=spec.p, both_ways=spec.both_ways
        )
    if isinstance(spec, Partition):
        return partition_rules(fault_id, partition_groups(spec, known), spec.direction, spec.mode)
    raise ValueError(NET_UNSUPPORTED["slow"])


def rule_to_json(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule.id, "action": rule.action}
    out["from"] = sorted(rule.src) or "*"
    out["to"] = sorted(rule.dst) or "*"
    if rule.methods:
        out["methods"] = sorted(rule.methods)
    if rule.p < 1.0:
        out["p"] = rule.p
    if rule.latency:
        out["latency"] = f"{rule.latency * 1000:g}ms"
    if rule.jitter:
        out["jitter"] = f"{rule.jitter * 1000:g}ms"
    return out
