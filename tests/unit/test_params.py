"""REST parameter parsing: OpenSearch's booleans, time values, comma lists, task ids, consumed
parameters with "did you mean", and the order in which the list/get/cancel requests read them."""

from __future__ import annotations

import pytest

from coordinator.params import (
    MAX_SECONDS,
    Params,
    check_group_by,
    parse_boolean,
    parse_cancel,
    parse_get,
    parse_list,
    parse_list_request,
    parse_time_value,
    split_comma,
    tokenize_comma,
    unrecognized,
)
from simnode.errors import ActionRequestValidationError, IllegalArgumentError
from simnode.taskid import EMPTY_TASK_ID, TaskId


def params(query: str, path: str = "/_tasks") -> Params:
    items = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        items.append((key, value))
    return Params(items, path)


BOOL_ERROR = "Failed to parse value [{}] as only [true] or [false] are allowed."


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        (None, False, False),
        (None, True, True),
        ("", True, True),
        ("   ", False, False),
        ("true", False, True),
        ("false", True, False),
    ],
)
def test_parse_boolean(value: str | None, default: bool, expected: bool) -> None:
    assert parse_boolean(value, default=default) is expected


@pytest.mark.parametrize("value", ["yes", "TRUE", "1", "on", " true"])
def test_parse_boolean_rejects(value: str) -> None:
    with pytest.raises(IllegalArgumentError) as e:
        parse_boolean(value, default=False)
    assert e.value.reason == BOOL_ERROR.format(value)


def test_param_bool_empty_value_turns_it_on_blank_keeps_default() -> None:
    assert params("detailed").param_bool("detailed", False) is True
    assert params("detailed=%20".replace("%20", " ")).param_bool("detailed", False) is False
    assert params("").param_bool("detailed", False) is False


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("1500ms", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("250micros", 250e-6),
        ("10nanos", 10e-9),
        ("0", 0.0),
        ("000", 0.0),
        ("-1", -1.0),
        ("-01", -1.0),
        ("-1s", -1.0),
        (" 2s ", 2.0),
        ("5 s", 5.0),
        ("3S", 3.0),
        ("+4s", 4.0),
    ],
)
def test_time_values(text: str, seconds: float) -> None:
    assert parse_time_value(text, "timeout") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "reason", "cause"),
    [
        (
            "abc",
            "failed to parse setting [timeout] with value [abc] as a time value: unit is missing or unrecognized",
            None,
        ),
        (
            "",
            "failed to parse setting [timeout] with value [] as a time value: unit is missing or unrecognized",
            None,
        ),
        (
            "1M",
            "failed to parse setting [timeout] with value [1M] as a time value: unit is missing or unrecognized",
            None,
        ),
        (
            "-5s",
            "failed to parse setting [timeout] with value [-5s] as a time value: negative durations are not supported",
            None,
        ),
        ("1.5s", "failed to parse [1.5s], fractional time values are not supported", '"1.5"'),
        ("xs", "failed to parse [xs]", '"x"'),
        ("s", "failed to parse [s]", '""'),
        (
            "99999999999999999999s",  # too long for a long, a fine double
            "failed to parse [99999999999999999999s], fractional time values are not supported",
            '"99999999999999999999"',
        ),
    ],
)
def test_time_value_errors(text: str, reason: str, cause: str | None) -> None:
    with pytest.raises(IllegalArgumentError) as e:
        parse_time_value(text, "timeout")
    assert e.value.reason == reason
    if cause is None:
        assert e.value.cause is None
    else:
        assert e.value.cause is not None
        assert e.value.cause.type == "number_format_exception"
        assert e.value.cause.reason == f"For input string: {cause}"


def test_param_time_minus_one_means_no_timeout() -> None:
    assert params("timeout=-1").param_time("timeout") is None
    assert params("timeout=0").param_time("timeout") == 0.0
    assert params("").param_time("timeout") is None


@pytest.mark.parametrize(
    ("text", "items"),
    [
        (None, ()),
        ("", ()),
        ("a", ("a",)),
        ("a,b", ("a", "b")),
        ("a, b", ("a", " b")),
        ("a,,b", ("a", "", "b")),
        ("a,b,,", ("a", "b")),
        (",a", ("", "a")),
        (",", ()),
    ],
)
def test_split_comma_is_java_split(text: str | None, items: tuple[str, ...]) -> None:
    assert split_comma(text) == items


def test_tokenize_comma_trims_and_drops_empty() -> None:
    assert tokenize_comma(" a , b,,a,") == ("a", "b")


def test_unrecognized_single_and_suggestions() -> None:
    candidates = {"detailed", "nodes", "actions", "group_by", "pretty", "human", "timeout"}
    assert (
        unrecognized("/_tasks", ["detail"], candidates)
        == "request [/_tasks] contains unrecognized parameter: [detail] -> did you mean [detailed]?"
    )
    assert (
        unrecognized("/_tasks", ["node"], candidates | {"node_id"})
        == "request [/_tasks] contains unrecognized parameter: [node] -> did you mean any of [nodes, node_id]?"
    )
    assert (
        unrecognized("/_tasks", ["zzz", "a"], candidates)
        == "request [/_tasks] contains unrecognized parameters: [a], [zzz]"
    )


def test_reading_consumes_even_when_absent() -> None:
    p = params("tmeout=1s")
    p.param("timeout")
    with pytest.raises(IllegalArgumentError) as e:
        p.check_unrecognized()
    assert e.value.reason == (
        "request [/_tasks] contains unrecognized parameter: [tmeout] -> did you mean [timeout]?"
    )


def test_response_params_are_allowed_and_suggested() -> None:
    p = params("v=true&tme=x&hh=y")
    with pytest.raises(IllegalArgumentError) as e:
        p.check_unrecognized(frozenset({"v", "h", "time"}))
    # `hh` vs `h` is exactly 0.5 similar: not enough (> 0.5 is needed)
    assert e.value.reason == (
        "request [/_tasks] contains unrecognized parameters: [hh], [tme] -> did you mean [time]?"
    )


def test_source_is_not_consumed_by_tasks_handlers() -> None:
    p = params("source=x&pretty&human&error_trace&filter_path=a&format=json")
    for key in ("format", "filter_path", "pretty", "human", "error_trace"):
        p.param(key)  # what the channel and the controller read
    parse_list(p)
    with pytest.raises(IllegalArgumentError) as e:
        p.check_unrecognized()
    assert e.value.reason == "request [/_tasks] contains unrecognized parameter: [source]"


def test_parse_list_reads_every_parameter() -> None:
    req = parse_list(
        params(
            "nodes=a,b&actions=x*&parent_task_id=n:5&detailed&wait_for_completion=true"
            "&timeout=3s&group_by=parents"
        )
    )
    assert req.nodes == ("a", "b")
    assert req.actions == ("x*",)
    assert req.parent_task_id == TaskId("n", 5)
    assert req.detailed and req.wait_for_completion
    assert req.timeout == 3.0
    assert req.group_by == "parents"


def test_parse_list_defaults_and_unset_parent() -> None:
    req = parse_list(params("parent_task_id=unset"))
    assert req.parent_task_id == EMPTY_TASK_ID
    assert req.group_by == "nodes"
    assert req.timeout is None
    assert not req.detailed and not req.wait_for_completion
    assert parse_list(params("parent_task_id=n:-1")).parent_task_id.is_set() is False
    assert parse_list(params("parent_task_id=")).parent_task_id == EMPTY_TASK_ID


def test_parse_list_first_failure_wins_in_openSearch_order() -> None:
    # detailed is read before parent_task_id, which is read before the timeout
    with pytest.raises(IllegalArgumentError) as e:
        parse_list(params("timeout=abc&parent_task_id=-1&detailed=maybe"))
    assert e.value.reason == BOOL_ERROR.format("maybe")
    with pytest.raises(IllegalArgumentError) as e:
        parse_list(params("timeout=abc&parent_task_id=-1"))
    assert e.value.reason == "malformed task id -1"


def test_group_by_is_checked_after_parsing_and_empty_is_an_error() -> None:
    req = parse_list(params("group_by="))
    assert req.group_by == ""
    with pytest.raises(IllegalArgumentError) as e:
        check_group_by(req.group_by)
    assert e.value.reason == "[group_by] must be one of [nodes], [parents] or [none] but was []"
    for ok in ("nodes", "parents", "none"):
        check_group_by(ok)


def test_cat_list_request_does_not_read_group_by() -> None:
    p = params("group_by=none")
    parse_list_request(p)
    with pytest.raises(IllegalArgumentError):
        p.check_unrecognized()


def test_get_reads_task_id_from_the_path_parameter() -> None:
    p = params("wait_for_completion&timeout=2s", "/_tasks/n:7")
    p.add_path_params({"task_id": "n:7"})
    req = parse_get(p)
    assert req.task_id == TaskId("n", 7)
    assert req.wait_for_completion and req.timeout == 2.0
    p2 = params("", "/_tasks/unset")
    p2.add_path_params({"task_id": "unset"})
    with pytest.raises(ActionRequestValidationError) as e:
        parse_get(p2).validate()
    assert e.value.reason == "Validation Failed: 1: task id is required;"


def test_cancel_has_no_timeout_and_validates_task_id_with_nodes() -> None:
    p = params("nodes=x&timeout=1s", "/_tasks/n:1/_cancel")
    p.add_path_params({"task_id": "n:1"})
    req = parse_cancel(p)
    with pytest.raises(IllegalArgumentError) as e:
        p.check_unrecognized()
    assert e.value.reason == (
        "request [/_tasks/n:1/_cancel] contains unrecognized parameter: [timeout]"
    )
    with pytest.raises(ActionRequestValidationError) as v:
        req.validate()
    assert v.value.reason == "Validation Failed: 1: task id cannot be used together with node ids;"


@pytest.mark.parametrize(
    ("text", "reason", "cause"),
    [
        ("foo", "malformed task id foo", None),
        ("-1", "malformed task id -1", None),
        ("node:abc", "malformed task id node:abc", 'For input string: "abc"'),
        ("a:1:2", "malformed task id a:1:2", 'For input string: "1:2"'),
    ],
)
def test_task_ids(text: str, reason: str, cause: str | None) -> None:
    with pytest.raises(IllegalArgumentError) as e:
        TaskId.parse(text)
    assert e.value.reason == reason
    assert (e.value.cause.reason if e.value.cause else None) == cause


def test_task_id_edge_cases() -> None:
    assert TaskId.parse(":5") == TaskId("", 5)
    assert TaskId.parse("unset") == EMPTY_TASK_ID
    assert str(TaskId.parse("n:-1")) == "unset"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("100000d", 100_000 * 86_400.0),  # a long of days: parses, as in OpenSearch
        ("106751d", 106_751 * 86_400.0),  # just under Long.MAX_VALUE nanoseconds
        ("9223372036854775807nanos", MAX_SECONDS),
        ("1000000d", MAX_SECONDS),  # TimeValue.nanos() saturates at Long.MAX_VALUE
        ("9223372036854775807d", MAX_SECONDS),
    ],
)
def test_huge_time_values_saturate_like_time_value_nanos(text: str, seconds: float) -> None:
    """Issue 14: `timeout=100000d` parsed, then expired at once (a deadline past what gRPC holds).
    OpenSearch parses it to a long and its nanos saturate; so do ours, and the value still fits
    the int64 milliseconds the transport carries."""
    value = parse_time_value(text, "timeout")
    assert value == pytest.approx(seconds)
    assert value <= MAX_SECONDS
    assert int(value * 1000) < 2**63


def test_did_you_mean_skips_candidates_that_cannot_score(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4 kB parameter name cost the loop a 4000 x len(candidate) table per candidate; a
    candidate whose length differs by half or more can never score above 0.5, and is skipped."""
    import coordinator.params as params_module

    calls: list[tuple[str, str]] = []
    original = params_module._levenshtein_similarity

    def counting(a: str, b: str) -> float:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(params_module, "_levenshtein_similarity", counting)
    message = unrecognized("/_tasks", ["x" * 4000], {"actions", "detailed", "nodes"})
    assert message == f"request [/_tasks] contains unrecognized parameter: [{'x' * 4000}]"
    assert calls == []
    assert "did you mean [detailed]" in unrecognized("/_tasks", ["detaild"], {"detailed", "a"})
