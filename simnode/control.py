"""The control channel's messages: fault rule sets to and from protobuf, and a node's inspection
(its bans with their marks, its live tasks, its rule version and hit counts).

Only shapes move here; no decision is taken (simnode/faults.py decides). Imports protobuf, never
grpc or trio; `inspection` reads the registry and must run on the node's trio thread.
"""

from __future__ import annotations

from simnode._wire import control_pb2 as cpb
from simnode.faults import FaultTable, Rule, RuleSet
from simnode.node import Node


def rule_to_pb(rule: Rule) -> cpb.FaultRule:
    return cpb.FaultRule(
        id=rule.id,
        action=rule.action,
        src=sorted(rule.src),
        dst=sorted(rule.dst),
        methods=sorted(rule.methods),
        p=rule.p,
        latency_seconds=rule.latency,
        jitter_seconds=rule.jitter,
    )


def rule_from_pb(msg: cpb.FaultRule) -> Rule:
    return Rule(
        id=msg.id,
        action=msg.action,
        src=frozenset(msg.src),
        dst=frozenset(msg.dst),
        methods=frozenset(msg.methods),
        p=msg.p,
        latency=msg.latency_seconds,
        jitter=msg.jitter_seconds,
    )


def rule_set_to_pb(rule_set: RuleSet) -> cpb.FaultRuleSet:
    return cpb.FaultRuleSet(
        version=rule_set.version,
        seed=rule_set.seed,
        rules=[rule_to_pb(r) for r in rule_set.rules],
    )


def rule_set_from_pb(msg: cpb.FaultRuleSet) -> RuleSet:
    return RuleSet(
        version=msg.version, seed=msg.seed, rules=tuple(rule_from_pb(r) for r in msg.rules)
    )


def inspection(node: Node, faults: FaultTable, *, tasks: bool) -> cpb.Inspection:
    """The node's ground truth, read on its trio thread."""
    registry = node.registry
    marks = registry.ban_marks
    msg = cpb.Inspection(
        node=node.local.name,
        node_id=node.local.id,
        pid=node.pid,
        rules_version=faults.version,
        bans=[
            cpb.BanEntry(parent_task_id=str(parent), reason=reason, mark=marks.get(parent, 0))
            for parent, reason in registry.bans.items()
        ],
        hits=[cpb.RuleHits(rule_id=k, hits=v) for k, v in sorted(faults.hits.items())],
    )
    if tasks:
        msg.tasks.extend(
            cpb.TaskEntry(
                id=t.id,
                parent_task_id=str(t.parent) if t.parent.is_set() else "",
                action=t.action,
                cancellable=t.cancellable,
                cancelled=t.cancelled is not None,
                start_time_in_millis=t.start_time_millis,
            )
            for t in registry
        )
    return msg
