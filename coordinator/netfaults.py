"""Faults at `level: net`: what a link fault or a partition means as packets, compiled from the
same specs (coordinator/faultspec.py) that the transport level uses. Pure: no I/O — the node hosts
(coordinator/engine/netns.py) place and install the rules.

A `PacketRule` cuts the packets one process (`src`) sends another (`dst`): all of them, or only
those of one side's server connections — `port="dst"`: to the receiver's transport port (the
requests of `src`'s calls to `dst`), `port="src"`: from the sender's transport port (the answers to
`dst`'s calls to `src`). Every node listens on one port, so the port tells a connection's direction.
`drop` is a black hole (TCP retransmits into nothing; the caller's deadline or gRPC's keepalive
decides); `reset` answers with a TCP reset (the connection is refused or reset at once). `p` < 1
cuts a random share of the packets (`numgen random`), which TCP retransmits: loss at this level is
delay and, past a deadline, failure, not a lost request.

A link fault `from` A `to` B is about A's calls to B, as at the transport level:

| action       | A → B, to B's port | B → A, from B's port |
|--------------|--------------------|----------------------|
| blackhole    | drop               | drop                 |
| disconnect   | reset              | reset                |
| drop_request | drop               | —                    |
| loss (p)     | drop with p        | drop with p          |

What cannot be said honestly with packets is refused, with the reason (`NET_UNSUPPORTED`):
`drop_response` (a dropped answer also drops the TCP handshake and acknowledgements of the call's
own connection, so the request would not arrive either), `delay` and `slow` (this kernel has no
netem qdisc to hold packets back), and `methods` (every method of a pair of nodes shares one
connection). A partition cuts whole packets by direction: `both` every packet between two groups,
`one-way` what an earlier group sends a later one (its calls and its answers alike).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

LEVELS = ("transport", "net")
Level = Literal["transport", "net"]

NET_UNSUPPORTED = {
    "drop_response": (
        "'drop_response' is transport-level only: at level net a dropped answer also drops the "
        "TCP handshake and acknowledgements of the call's connection, so the request would not "
        "arrive either (use 'drop_request' or 'blackhole' at level net)"
    ),
    "delay": (
        "'delay' is transport-level only: this kernel has no netem qdisc to hold packets back"
    ),
    "slow": "a slow node is transport-level only: this kernel has no netem qdisc to hold packets back",
    "methods": (
        "'methods' is transport-level only: at level net every method between two nodes shares "
        "one TCP connection"
    ),
}


@dataclass(frozen=True, slots=True)
class PacketRule:
    fault: str
    src: str
    dst: str
    verdict: Literal["drop", "reset"]
    port: Literal["dst", "src"] | None = None
    p: float = 1.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.fault,
            "action": self.verdict,
            "from": [self.src],  # lists, as a transport rule renders them (the checkers read both)
            "to": [self.dst],
        }
        if self.port == "dst":
            out["packets"] = f"to {self.dst}'s transport port"
        elif self.port == "src":
            out["packets"] = f"from {self.src}'s transport port"
        else:
            out["packets"] = "all"
        if self.p < 1.0:
            out["p"] = self.p
        return out


def _expand(names: tuple[str, ...], known: list[str]) -> list[str]:
    return list(names) if names else list(known)


def link_rules(
    fault: str,
    action: str,
    src: tuple[str, ...],
    dst: tuple[str, ...],
    known: list[str],
    *,
    p: float | None = None,
    both_ways: bool = False,
) -> list[PacketRule]:
    """A link fault's packet rules, `src`/`dst` empty for any process of `known`."""
    prob = 1.0 if p is None else p
    pairs = [(a, b) for a in _expand(src, known) for b in _expand(dst, known) if a != b]
    if both_ways:
        seen = set(pairs)
        pairs += [(b, a) for a, b in pairs if (b, a) not in seen]
    rules: list[PacketRule] = []
    for a, b in pairs:
        if action == "blackhole":
            rules += [
                PacketRule(fault, a, b, "drop", "dst"),
                PacketRule(fault, b, a, "drop", "src"),
            ]
        elif action == "disconnect":
            rules += [
                PacketRule(fault, a, b, "reset", "dst"),
                PacketRule(fault, b, a, "reset", "src"),
            ]
        elif action == "drop_request":
            rules.append(PacketRule(fault, a, b, "drop", "dst"))
        elif action == "loss":
            rules += [
                PacketRule(fault, a, b, "drop", "dst", prob),
                PacketRule(fault, b, a, "drop", "src", prob),
            ]
        else:
            raise ValueError(NET_UNSUPPORTED.get(action, f"'{action}' has no level net"))
    return rules


def partition_rules(
    fault: str, groups: list[tuple[str, ...]], direction: str, mode: str
) -> list[PacketRule]:
    verdict: Literal["drop", "reset"] = "drop" if mode == "blackhole" else "reset"
    rules = []
    for i, a in enumerate(groups):
        for j, b in enumerate(groups):
            if i != j and (direction == "both" or i < j):
                rules += [PacketRule(fault, x, y, verdict) for x in a for y in b]
    return rules


_PLAIN = re.compile(r"[A-Za-z0-9_.:@/+-]{1,100}")


def nft_tag(fault: str) -> str:
    """A fault id as nft comments carry it: itself when plain, else a digest."""
    return fault if _PLAIN.fullmatch(fault) else hashlib.sha1(fault.encode()).hexdigest()[:16]


def nft_comment(fault: str) -> str:
    """The quoted comment that tags a rule with its fault id."""
    return f'"tasksim:{nft_tag(fault)}"'
