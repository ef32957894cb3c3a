"""The fault model: link rules, the envelope of a call, the one decision, and a call's life on a
faulty link. Everything that decides what a fault does lives here (DESIGN.md rule 4); the gRPC
transport and server only carry the verdicts out.

Theory of operation. A `Rule` names a set of calls — caller (`src`) and callee (`dst`) node names and
RPC methods, each empty for "any" — and what happens to them:

- `disconnect`: the call fails at once, as a refused or reset connection does (UNAVAILABLE);
- `blackhole`: nothing crosses the link. A new request is held on the caller's side; a call already
  in flight gets neither its response nor its cancellation across. The caller waits until its
  deadline (or until the node leaves the cluster); the receiver never hears of it. When the link
  heals, whatever is still owed is delivered late, as TCP retransmission would: a held request whose
  caller still waits is sent, a held response reaches a caller that still waits, a held cancellation
  reaches the receiver;
- `drop_request`: the request is lost for good (the caller waits until its deadline);
- `drop_response`: the receiver gets the request and acts; its answer is lost, the caller times out;
  a caller *without* a deadline (a cancel, a ban: OpenSearch gives them none) would wait forever,
  so when the link heals it fails with `node_disconnected_exception`, as an in-flight request
  fails when its connection is reset (`UNBOUNDED_TABLE`); a caller with a deadline waits for it;
- `delay`: the request leaves after `latency ± jitter` seconds (then the other rules still apply);
- `slow`: the *callee* (`dst`) waits `latency ± jitter` before its handler runs — a slow node.

`p` < 1 makes any rule apply to a random share of the calls (message loss with a probability).

`decide(rules, envelope, rng)` consults the rules in install order; the first that gives a
non-`PASS` verdict wins (tokio-rs/turmoil's rule chain). Link rules are decided by the caller's side
(`CLIENT`), `slow` by the callee's (`SERVER`): both sides of every process ask the same function.
The rng is keyed by the envelope's identity (`rng_for`: seed, caller, callee, method, per-link
sequence number), never by arrival order, so a seed gives the same decisions for the same calls.

A call that crosses a link is a small state machine (`CALL_TABLE`): the transport feeds it the link's
verdict when the call starts and again whenever the rules change, the RPC's completion, and the
caller giving up (deadline, cancellation, node left); the table answers with the new state and the
effects to carry out (send, cancel the RPC, deliver, fail the caller).

Pure: no trio, no grpc, no I/O. `FaultTable` is the one mutable object: a process's current rules
(an immutable snapshot), their version and hit counts; it is written by the owning trio loop only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

# -- rules ------------------------------------------------------------------------------------------

DISCONNECT = "disconnect"
BLACKHOLE = "blackhole"
DROP_REQUEST = "drop_request"
DROP_RESPONSE = "drop_response"
DELAY = "delay"
SLOW = "slow"
ACTIONS = (DISCONNECT, BLACKHOLE, DROP_REQUEST, DROP_RESPONSE, DELAY, SLOW)


class Side(Enum):
    CLIENT = "client"  # the caller's interceptor (link rules)
    SERVER = "server"  # the callee's interceptor (slow node)


@dataclass(frozen=True, slots=True)
class Rule:
    """One fault. Several rules may share an `id` (a partition is one rule per pair of groups)."""

    id: str
    action: str
    src: frozenset[str] = frozenset()  # caller node names; empty = any
    dst: frozenset[str] = frozenset()  # callee node names; empty = any
    methods: frozenset[str] = (
        frozenset()
    )  # RPC method names (ListTasks, BanParent, ...); empty = any
    p: float = 1.0
    latency: float = 0.0  # seconds, for delay and slow
    jitter: float = 0.0  # seconds, uniform in [-jitter, +jitter]

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action [{self.action}], expected one of {ACTIONS}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"[p] must be within [0, 1] but was [{self.p}]")
        if self.latency < 0 or self.jitter < 0:
            raise ValueError("[latency] and [jitter] must not be negative")

    @property
    def side(self) -> Side:
        return Side.SERVER if self.action == SLOW else Side.CLIENT

    def matches(self, env: Envelope) -> bool:
        return (
            self.side is env.side
            and (not self.src or env.src in self.src)
            and (not self.dst or env.dst in self.dst)
            and (not self.methods or env.method in self.methods)
        )


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a fault decision may look at: who calls whom, which method, the call's sequence
    number on that link and method, and which side asks."""

    src: str
    dst: str
    method: str
    seq: int
    side: Side = Side.CLIENT


def rng_for(seed: str, env: Envelope) -> random.Random:
    """The rng of one decision, keyed by the run's seed and the envelope's identity."""
    return random.Random(f"{seed}|{env.src}|{env.dst}|{env.method}|{env.seq}|{env.side.value}")


# -- the decision -----------------------------------------------------------------------------------


class Verdict(Enum):
    PASS = "pass"
    DELAY = "delay"  # wait `delay` seconds first (caller side: before sending; callee: before the handler)
    FAIL = "fail"  # fail fast, UNAVAILABLE
    HOLD = "hold"  # black-hole: hold until healed or the caller gives up
    DROP_REQUEST = "drop_request"
    DROP_RESPONSE = "drop_response"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0
    rule_id: str = ""


PASS = Decision(Verdict.PASS)

_VERDICT_OF_ACTION = {
    DISCONNECT: Verdict.FAIL,
    BLACKHOLE: Verdict.HOLD,
    DROP_REQUEST: Verdict.DROP_REQUEST,
    DROP_RESPONSE: Verdict.DROP_RESPONSE,
    DELAY: Verdict.DELAY,
    SLOW: Verdict.DELAY,
}


def decide(
    rules: Sequence[Rule], env: Envelope, rng: random.Random, *, skip_delays: bool = False
) -> Decision:
    """The verdict for `env`: rules in install order, the first non-PASS verdict wins.

    A rule with `p` < 1 draws from `rng` (in rule order) and passes when the draw misses.
    `skip_delays` re-decides a call whose delay has elapsed, so that a latency rule composes with
    the rules after it (a slow *and* lossy link)."""
    for rule in rules:
        if not rule.matches(env):
            continue
        if rule.p < 1.0 and rng.random() >= rule.p:
            continue
        verdict = _VERDICT_OF_ACTION[rule.action]
        if verdict is Verdict.DELAY:
            if skip_delays:
                continue
            delay = rule.latency
            if rule.jitter:
                delay += rng.uniform(-rule.jitter, rule.jitter)
            return Decision(verdict, max(0.0, delay), rule.id)
        return Decision(verdict, 0.0, rule.id)
    return PASS


# -- a call on a faulty link ------------------------------------------------------------------------


class CallState(Enum):
    QUEUED = "queued"  # request held by a black-hole, not sent
    LOST = "lost"  # request or response lost for good: the caller waits for its deadline
    OPEN = "open"  # request delivered, the link passes
    CLOGGED = "clogged"  # request delivered, the link now black-holed: response and cancel held
    MUTED = "muted"  # request delivered, its response will be dropped
    RESPONSE_HELD = "response_held"  # the response arrived while clogged; the caller still waits
    CANCEL_OWED = "cancel_owed"  # the caller gave up while clogged; the receiver must hear it later
    DONE = "done"


class LinkEvent(Enum):
    CLEAR = "clear"  # the rules now let the call pass
    CLOG = "clog"  # ... black-hole it
    CUT = "cut"  # ... disconnect it
    MUTE = "mute"  # ... drop its response
    LOSE = "lose"  # ... drop its request
    RESPONSE = "response"  # the RPC completed (answer or error)
    GIVE_UP = "give_up"  # the caller stopped waiting (deadline, cancelled, node left)


class Effect(Enum):
    SEND = "send"  # start the RPC now
    CANCEL_RPC = "cancel_rpc"  # cancel the RPC: the receiver sees it
    DELIVER = "deliver"  # hand the RPC's outcome to the caller
    FAIL_CALLER = "fail_caller"  # the connection broke: node_disconnected_exception


S, E, X = CallState, LinkEvent, Effect
_ = ()

# (state, event) → (new state, effects). Missing pairs leave the state unchanged, no effect.
CALL_TABLE: dict[tuple[CallState, LinkEvent], tuple[CallState, tuple[Effect, ...]]] = {
    # a request held by a black-hole
    (S.QUEUED, E.CLEAR): (S.OPEN, (X.SEND,)),
    (S.QUEUED, E.MUTE): (S.MUTED, (X.SEND,)),
    (S.QUEUED, E.LOSE): (S.LOST, _),
    (S.QUEUED, E.CUT): (S.DONE, (X.FAIL_CALLER,)),
    (S.QUEUED, E.GIVE_UP): (S.DONE, _),
    # a request (or response) that is lost: nothing will arrive (see UNBOUNDED_TABLE for a heal)
    (S.LOST, E.CUT): (S.DONE, (X.FAIL_CALLER,)),
    (S.LOST, E.GIVE_UP): (S.DONE, _),
    # in flight on a passing link
    (S.OPEN, E.CLOG): (S.CLOGGED, _),
    (S.OPEN, E.MUTE): (S.MUTED, _),
    (S.OPEN, E.CUT): (S.DONE, (X.CANCEL_RPC, X.FAIL_CALLER)),
    (S.OPEN, E.RESPONSE): (S.DONE, (X.DELIVER,)),
    (S.OPEN, E.GIVE_UP): (S.DONE, (X.CANCEL_RPC,)),
    # in flight, the link black-holed since
    (S.CLOGGED, E.CLEAR): (S.OPEN, _),
    (S.CLOGGED, E.LOSE): (S.OPEN, _),
    (S.CLOGGED, E.MUTE): (S.MUTED, _),
    (S.CLOGGED, E.CUT): (S.DONE, (X.CANCEL_RPC, X.FAIL_CALLER)),
    (S.CLOGGED, E.RESPONSE): (S.RESPONSE_HELD, _),
    (S.CLOGGED, E.GIVE_UP): (S.CANCEL_OWED, _),
    # in flight, its response to be dropped
    (S.MUTED, E.CLEAR): (S.OPEN, _),
    (S.MUTED, E.LOSE): (S.OPEN, _),
    (S.MUTED, E.CLOG): (S.CLOGGED, _),
    (S.MUTED, E.CUT): (S.DONE, (X.CANCEL_RPC, X.FAIL_CALLER)),
    (S.MUTED, E.RESPONSE): (S.LOST, _),
    (S.MUTED, E.GIVE_UP): (S.DONE, (X.CANCEL_RPC,)),
    # a response held by a black-hole
    (S.RESPONSE_HELD, E.CLEAR): (S.DONE, (X.DELIVER,)),
    (S.RESPONSE_HELD, E.LOSE): (S.DONE, (X.DELIVER,)),
    (S.RESPONSE_HELD, E.MUTE): (S.LOST, _),
    (S.RESPONSE_HELD, E.CUT): (S.DONE, (X.FAIL_CALLER,)),
    (S.RESPONSE_HELD, E.GIVE_UP): (S.DONE, _),
    # a cancellation held by a black-hole (the caller is gone already)
    (S.CANCEL_OWED, E.CLEAR): (S.DONE, (X.CANCEL_RPC,)),
    (S.CANCEL_OWED, E.LOSE): (S.DONE, (X.CANCEL_RPC,)),
    (S.CANCEL_OWED, E.MUTE): (S.DONE, (X.CANCEL_RPC,)),
    (S.CANCEL_OWED, E.CUT): (S.DONE, (X.CANCEL_RPC,)),
    (S.CANCEL_OWED, E.RESPONSE): (S.DONE, _),
}
# What differs for a caller without a deadline: it must not wait forever for what is lost. When
# the link heals it learns that its connection was reset (`node_disconnected_exception`). A caller
# with a deadline waits for it (a follower check must not see a reset, or a heal would make the
# node leave the cluster).
UNBOUNDED_TABLE: dict[tuple[CallState, LinkEvent], tuple[CallState, tuple[Effect, ...]]] = {
    (S.LOST, E.CLEAR): (S.DONE, (X.FAIL_CALLER,)),
}
del S, E, X, _

_START: dict[Verdict, tuple[CallState, tuple[Effect, ...]]] = {
    Verdict.PASS: (CallState.OPEN, (Effect.SEND,)),
    Verdict.DELAY: (CallState.OPEN, (Effect.SEND,)),
    Verdict.HOLD: (CallState.QUEUED, ()),
    Verdict.DROP_REQUEST: (CallState.LOST, ()),
    Verdict.DROP_RESPONSE: (CallState.MUTED, (Effect.SEND,)),
}

_EVENT_OF_VERDICT = {
    Verdict.PASS: LinkEvent.CLEAR,
    Verdict.DELAY: LinkEvent.CLEAR,
    Verdict.HOLD: LinkEvent.CLOG,
    Verdict.FAIL: LinkEvent.CUT,
    Verdict.DROP_RESPONSE: LinkEvent.MUTE,
    Verdict.DROP_REQUEST: LinkEvent.LOSE,
}


def start_call(verdict: Verdict) -> tuple[CallState, tuple[Effect, ...]]:
    """The first state of a call that the link lets start (`FAIL` never starts one)."""
    if verdict is Verdict.FAIL:
        raise ValueError("a call that fails fast has no state")
    return _START[verdict]


def link_event(verdict: Verdict) -> LinkEvent:
    """What a re-decision (the rules changed) means for a call already started."""
    return _EVENT_OF_VERDICT[verdict]


def step(
    state: CallState, event: LinkEvent, *, unbounded: bool = False
) -> tuple[CallState, tuple[Effect, ...]]:
    """One transition of `CALL_TABLE` (`UNBOUNDED_TABLE` first for a caller without a deadline)."""
    if state is CallState.DONE:
        return state, ()
    if unbounded and (state, event) in UNBOUNDED_TABLE:
        return UNBOUNDED_TABLE[(state, event)]
    return CALL_TABLE.get((state, event), (state, ()))


# -- a process's rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleSet:
    """What the control channel installs, all at once: a version, the run's seed, the rules."""

    version: int = 0
    seed: str = ""
    rules: tuple[Rule, ...] = ()


@dataclass
class FaultTable:
    """One process's fault state: its own node name, the current `RuleSet`, per-link sequence
    numbers and how often each rule fired. Mutated only by the process's trio loop; `rules` is an
    immutable snapshot that grpc threads may read at any time."""

    local: str = ""
    current: RuleSet = field(default_factory=RuleSet)
    hits: dict[str, int] = field(default_factory=dict)
    _seq: dict[tuple[str, str], int] = field(default_factory=dict)
    _listeners: list[Callable[[], None]] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self.current.version

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.current.rules

    def install(self, rule_set: RuleSet) -> bool:
        """Replace the rules (the control channel's SetRules) and tell every listener; False, and
        nothing changes, for a rule set older than the current one.

        Rule sets may arrive out of order: a push that timed out on a starved process is still
        delivered, and when the next push (a heal) finds it pending, grpc's worker threads race
        to the loop and the older set can land last — silently undoing the heal that the process
        had just acknowledged. The newest version wins, whatever the arrival order."""
        if rule_set.version < self.current.version:
            return False
        self.current = rule_set
        for listener in list(self._listeners):
            listener()
        return True

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def envelope(self, dst: str, method: str) -> Envelope:
        """A new outbound call's envelope, with the next sequence number on (dst, method)."""
        key = (dst, method)
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        return Envelope(self.local, dst, method, seq, Side.CLIENT)

    def decide(self, env: Envelope, *, skip_delays: bool = False, count: bool = True) -> Decision:
        rules = self.current.rules
        if not rules:
            return PASS
        decision = decide(rules, env, rng_for(self.current.seed, env), skip_delays=skip_delays)
        if count and decision.verdict is not Verdict.PASS:
            self.hits[decision.rule_id] = self.hits.get(decision.rule_id, 0) + 1
        return decision


def rules_by_id(rules: Iterable[Rule]) -> dict[str, list[Rule]]:
    out: dict[str, list[Rule]] = {}
    for rule in rules:
        out.setdefault(rule.id, []).append(rule)
    return out
