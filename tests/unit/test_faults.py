"""The fault model with plain values: rule matching, the decision, determinism, the call table."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simnode.faults import (
    CALL_TABLE,
    PASS,
    CallState,
    Effect,
    Envelope,
    FaultTable,
    LinkEvent,
    Rule,
    RuleSet,
    Side,
    Verdict,
    decide,
    link_event,
    rng_for,
    start_call,
    step,
)


def env(src: str = "coordinator", dst: str = "node-2", method: str = "ListTasks", seq: int = 1):
    return Envelope(src, dst, method, seq)


def rule(action: str, **kw: object) -> Rule:
    kw.setdefault("id", action)
    for key in ("src", "dst", "methods"):
        if key in kw:
            kw[key] = frozenset(kw[key])  # type: ignore[arg-type]
    return Rule(action=action, **kw)  # type: ignore[arg-type]


RNG = random.Random(0)


def test_no_rules_pass() -> None:
    assert decide([], env(), RNG) == PASS


def test_match_on_caller_callee_and_method() -> None:
    r = rule("blackhole", src={"coordinator"}, dst={"node-2"}, methods={"ListTasks"})
    assert decide([r], env(), RNG).verdict is Verdict.HOLD
    assert decide([r], env(dst="node-3"), RNG) == PASS
    assert decide([r], env(src="node-1"), RNG) == PASS
    assert decide([r], env(method="CancelTasks"), RNG) == PASS


def test_empty_sets_mean_any() -> None:
    assert decide([rule("disconnect")], env(), RNG).verdict is Verdict.FAIL


def test_first_non_pass_rule_wins_in_install_order() -> None:
    rules = [
        rule("blackhole", id="a", dst={"node-3"}),  # does not match
        rule("drop_response", id="b"),
        rule("disconnect", id="c"),
    ]
    decision = decide(rules, env(), RNG)
    assert (decision.verdict, decision.rule_id) == (Verdict.DROP_RESPONSE, "b")


def test_slow_is_decided_by_the_callee_only() -> None:
    slow = rule("slow", dst={"node-2"}, latency=0.5)
    assert decide([slow], env(), RNG) == PASS
    server = Envelope("coordinator", "node-2", "ListTasks", 1, Side.SERVER)
    decision = decide([slow], server, RNG)
    assert decision.verdict is Verdict.DELAY and decision.delay == 0.5
    assert decide([rule("blackhole")], server, RNG) == PASS


def test_jitter_stays_within_bounds_and_never_negative() -> None:
    r = rule("delay", latency=0.05, jitter=0.1)
    delays = [decide([r], env(seq=i), rng_for("s", env(seq=i))).delay for i in range(200)]
    assert all(0.0 <= d <= 0.15 for d in delays)
    assert len(set(delays)) > 100


def test_skip_delays_lets_later_rules_decide() -> None:
    rules = [rule("delay", latency=0.2), rule("drop_request")]
    assert decide(rules, env(), RNG).verdict is Verdict.DELAY
    assert decide(rules, env(), RNG, skip_delays=True).verdict is Verdict.DROP_REQUEST


def test_probability_is_seeded_by_envelope_identity() -> None:
    lossy = [rule("drop_request", p=0.3)]

    def run(seed: str) -> list[Verdict]:
        return [
            decide(lossy, e, rng_for(seed, e)).verdict for e in (env(seq=i) for i in range(500))
        ]

    first, again, other = run("42"), run("42"), run("43")
    assert first == again
    assert first != other
    dropped = first.count(Verdict.DROP_REQUEST)
    assert 100 < dropped < 200  # about 30 %


def test_rule_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault action"):
        Rule(id="x", action="explode")
    with pytest.raises(ValueError, match=r"\[p\] must be within"):
        Rule(id="x", action="drop_request", p=1.5)


def test_fault_table_sequences_hits_and_listeners() -> None:
    table = FaultTable(local="node-1")
    assert table.envelope("node-2", "RunTask").seq == 1
    assert table.envelope("node-2", "RunTask").seq == 2
    assert table.envelope("node-3", "RunTask").seq == 1
    calls: list[int] = []
    table.on_change(lambda: calls.append(table.version))
    table.install(RuleSet(version=3, seed="7", rules=(rule("blackhole", id="cut"),)))
    assert calls == [3]
    e = table.envelope("node-2", "BanParent")
    assert table.decide(e).verdict is Verdict.HOLD
    assert table.decide(e, count=False).verdict is Verdict.HOLD
    assert table.hits == {"cut": 1}


def test_an_older_rule_set_arriving_late_changes_nothing() -> None:
    """A partition's push that timed out lands after the heal's: the heal stands."""
    table = FaultTable(local="node-1")
    changes: list[int] = []
    table.on_change(lambda: changes.append(table.version))
    cut = RuleSet(version=5, seed="7", rules=(rule("blackhole", id="cut"),))
    healed = RuleSet(version=6, seed="7")
    assert table.install(healed) is True
    assert table.install(cut) is False
    assert table.current == healed and changes == [6]
    assert table.decide(table.envelope("node-2", "RunTask")).verdict is Verdict.PASS
    # The same version again (a catch-up) and newer ones are installed; so is anything by a
    # restarted process, which starts from version 0.
    assert table.install(healed) is True
    assert table.install(RuleSet(version=7, seed="7", rules=cut.rules)) is True
    assert changes == [6, 6, 7]
    fresh = FaultTable(local="node-1")
    assert fresh.install(cut) is True and fresh.version == 5


# -- the call state table ---------------------------------------------------------------------------


def test_the_table_only_names_reachable_states() -> None:
    for (state, _event), (new, _effects) in CALL_TABLE.items():
        assert state is not CallState.DONE
        assert isinstance(new, CallState)


def test_blackhole_then_heal_delivers_the_request_late() -> None:
    state, effects = start_call(Verdict.HOLD)
    assert (state, effects) == (CallState.QUEUED, ())
    state, effects = step(state, LinkEvent.CLEAR)
    assert (state, effects) == (CallState.OPEN, (Effect.SEND,))


def test_blackhole_caller_gives_up_receiver_hears_nothing() -> None:
    state, _ = start_call(Verdict.HOLD)
    state, effects = step(state, LinkEvent.GIVE_UP)
    assert (state, effects) == (CallState.DONE, ())
    assert step(state, LinkEvent.CLEAR) == (CallState.DONE, ())


def test_clogged_in_flight_call_holds_its_cancellation_until_heal() -> None:
    state, _ = start_call(Verdict.PASS)
    state, _ = step(state, link_event(Verdict.HOLD))
    state, effects = step(state, LinkEvent.GIVE_UP)
    assert (state, effects) == (CallState.CANCEL_OWED, ())
    state, effects = step(state, link_event(Verdict.PASS))
    assert (state, effects) == (CallState.DONE, (Effect.CANCEL_RPC,))


def test_clogged_response_is_delivered_after_heal() -> None:
    state, _ = start_call(Verdict.PASS)
    state, _ = step(state, LinkEvent.CLOG)
    state, effects = step(state, LinkEvent.RESPONSE)
    assert (state, effects) == (CallState.RESPONSE_HELD, ())
    assert step(state, LinkEvent.CLEAR) == (CallState.DONE, (Effect.DELIVER,))


def test_drop_response_lets_the_receiver_act_and_the_caller_wait() -> None:
    state, effects = start_call(Verdict.DROP_RESPONSE)
    assert (state, effects) == (CallState.MUTED, (Effect.SEND,))
    state, effects = step(state, LinkEvent.RESPONSE)
    assert (state, effects) == (CallState.LOST, ())
    assert step(state, LinkEvent.CLEAR) == (CallState.LOST, ())  # it waits for its deadline
    # Without a deadline it would wait forever: on heal its connection is reset (issue 14, #7).
    assert step(state, LinkEvent.LOSE, unbounded=True) == (CallState.LOST, ())
    assert step(state, LinkEvent.CLEAR, unbounded=True) == (CallState.DONE, (Effect.FAIL_CALLER,))


def test_a_lost_request_without_a_deadline_fails_its_caller_when_the_link_heals() -> None:
    state, effects = start_call(Verdict.DROP_REQUEST)
    assert (state, effects) == (CallState.LOST, ())
    assert step(state, LinkEvent.CLEAR, unbounded=True) == (CallState.DONE, (Effect.FAIL_CALLER,))
    assert step(state, LinkEvent.CLEAR) == (CallState.LOST, ())


def test_disconnect_of_an_in_flight_call_breaks_both_ends() -> None:
    state, _ = start_call(Verdict.PASS)
    assert step(state, LinkEvent.CUT) == (CallState.DONE, (Effect.CANCEL_RPC, Effect.FAIL_CALLER))


def test_fail_fast_has_no_call_state() -> None:
    with pytest.raises(ValueError):
        start_call(Verdict.FAIL)


_EVENTS = st.sampled_from(list(LinkEvent))
_STARTS = st.sampled_from([v for v in Verdict if v is not Verdict.FAIL])


@given(_STARTS, st.lists(_EVENTS, max_size=12), st.booleans())
def test_call_invariants(start: Verdict, events: list[LinkEvent], unbounded: bool) -> None:
    """Whatever the link does: the request is sent at most once, the caller is answered at most
    once and never after it gave up, a cancellation follows a send, a response follows a send, and
    once the link is clear nothing stays owed to a caller that gave up, and a caller without a
    deadline that still waits is answered or has its RPC in flight: it never waits forever."""
    state, effects = start_call(start)
    log: list[Effect] = list(effects)
    sent = Effect.SEND in effects
    gave_up = answered = responded = False
    for event in events:
        if event is LinkEvent.RESPONSE and (not sent or responded):
            continue  # only an RPC that was sent completes, once
        if event is LinkEvent.GIVE_UP and (gave_up or answered):
            continue  # a caller gives up once, and not after its answer
        state, effects = step(state, event, unbounded=unbounded)
        log.extend(effects)
        sent = sent or Effect.SEND in effects
        responded = responded or event is LinkEvent.RESPONSE
        for effect in effects:
            if effect in (Effect.DELIVER, Effect.FAIL_CALLER):
                assert not gave_up and not answered
                answered = True
            if effect is Effect.CANCEL_RPC:
                assert sent
        gave_up = gave_up or event is LinkEvent.GIVE_UP
    assert log.count(Effect.SEND) <= 1
    if Effect.DELIVER in log:
        assert responded
    # Heal, then the caller gives up if it still waits: nothing may remain owed.
    state, effects = step(state, LinkEvent.CLEAR, unbounded=unbounded)
    if unbounded:
        assert state in (CallState.DONE, CallState.OPEN)
        if state is CallState.OPEN:  # in flight: its response will end it
            assert Effect.SEND in log or Effect.SEND in effects
            assert not responded
    answered = answered or any(e in (Effect.DELIVER, Effect.FAIL_CALLER) for e in effects)
    if not answered:
        state, _ = step(state, LinkEvent.GIVE_UP)
    if responded or not sent or gave_up or not answered:
        assert state in (CallState.DONE, CallState.LOST, CallState.OPEN)
    assert state is not CallState.CANCEL_OWED
