"""The Painless subset of by-query scripts (coordinator/painless.py): what the scripts of
OpenSearch's reindex-module REST tests do to `ctx`, Java's arithmetic, and the 400s (compile error,
runtime error) for what tasksim does not run."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.painless import Script, ScriptError, execute, parse_script
from simnode.errors import IllegalArgumentError, ResourceNotFoundError


def run(source: str, doc: dict[str, Any], **ctx_extra: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {"_index": "twitter", "_id": "1", "_version": 1, "_routing": None}
    ctx.update(ctx_extra)
    ctx["_source"] = doc
    ctx["op"] = "index"
    execute(parse_script(source), ctx)
    return ctx


def test_concatenation_and_assignment() -> None:
    # update_by_query/80_scripting.yml "Update a document using update_by_query"
    ctx = run('ctx._source.user = "not" + ctx._source.user', {"user": "foobar"})
    assert ctx["_source"] == {"user": "notfoobar"}


def test_if_else_sets_op() -> None:
    source = (
        'if (ctx._source.user == "foobar") {ctx._source.user = "not" + ctx._source.user} '
        'else {ctx.op = "noop"}'
    )
    assert run(source, {"user": "foobar"})["_source"]["user"] == "notfoobar"
    other = run(source, {"user": "foo"})
    assert other["op"] == "noop" and other["_source"] == {"user": "foo"}


def test_typed_local_remainder_and_else_if() -> None:
    # update_by_query/80_scripting.yml "Update all docs with one deletion and one noop"
    source = """
        int choice = ctx._source.level % 3;
        if (choice == 0) {
          ctx._source.last_updated = "2016-01-02T00:00:00Z";
        } else if (choice == 1) {
          ctx.op = "noop";
        } else {
          ctx.op = "delete";
        }"""
    assert run(source, {"level": 9})["_source"]["last_updated"] == "2016-01-02T00:00:00Z"
    assert run(source, {"level": 10})["op"] == "noop"
    assert run(source, {"level": 11})["op"] == "delete"


def test_metadata_assignments() -> None:
    # reindex/85_scripting.yml: ctx._id from the source, ctx._version = null, ctx._index
    source = "ctx._id = ctx._source.lang + '_' + ctx._source.id; ctx._version = null"
    ctx = run(source, {"lang": "en", "id": 123})
    assert ctx["_id"] == "en_123" and ctx["_version"] is None
    assert run("ctx._index = 'other'", {})["_index"] == "other"


def test_params_increment_and_remove() -> None:
    script = parse_script(
        {
            "source": "ctx._source.n += params.step; ctx._source.c++; ctx._source.remove('x')",
            "params": {"step": 5},
        }
    )
    ctx = {"_source": {"n": 1, "c": 0, "x": True}, "op": "index"}
    execute(script, ctx)
    assert ctx["_source"] == {"n": 6, "c": 1}


def test_literals_of_every_kind() -> None:
    ctx = run(
        "ctx._source.s = 'x'; ctx._source.i = 3; ctx._source.f = 1.5; ctx._source.b = false; "
        "ctx._source.z = null",
        {},
    )
    assert ctx["_source"] == {"s": "x", "i": 3, "f": 1.5, "b": False, "z": None}


def test_java_integer_arithmetic() -> None:
    ctx = run(
        "ctx._source.a = -7 / 2; ctx._source.b = -7 % 3; ctx._source.c = 7 / 2.0; "
        "ctx._source.d = 'n' + 1 + 2; ctx._source.e = 1 + 2 + 'n'; ctx._source.f = 'v' + null",
        {},
    )
    assert ctx["_source"] == {"a": -3, "b": -1, "c": 3.5, "d": "n12", "e": "3n", "f": "vnull"}


def test_boolean_operators_and_ternary() -> None:
    ctx = run(
        "ctx._source.t = ctx._source.x > 1 && !(ctx._source.x >= 5) ? 'mid' : 'out'",
        {"x": 3},
    )
    assert ctx["_source"]["t"] == "mid"


def _cause(e: ScriptError) -> tuple[str, str]:
    assert e.cause is not None
    return e.cause.type, e.cause.reason


def test_syntax_error_is_a_compile_error() -> None:
    # update_by_query/80_scripting.yml "Totally broken scripts report the error properly"
    with pytest.raises(ScriptError) as info:
        run("syntax errors are fun!", {"user": "foobar"})
    err = info.value
    body = err.xcontent()
    assert (err.status, body["type"], body["reason"]) == (400, "script_exception", "compile error")
    assert list(body) == [
        "type",
        "reason",
        "script_stack",
        "script",
        "lang",
        "position",
        "caused_by",
    ]
    assert body["script"] == "syntax errors are fun!" and body["lang"] == "painless"
    assert body["script_stack"][1].endswith("^---- HERE")
    assert body["caused_by"]["type"] == "illegal_argument_exception"


def test_unknown_symbol_is_a_compile_error() -> None:
    with pytest.raises(ScriptError) as info:
        run("ctx._source.a = foo", {})
    assert _cause(info.value) == ("illegal_argument_exception", "cannot resolve symbol [foo]")
    position = dict(info.value.metadata)["position"]
    assert position == {"offset": 16, "start": 0, "end": 19}
    assert dict(info.value.metadata)["script_stack"] == [
        "ctx._source.a = foo",
        "                ^---- HERE",
    ]


@pytest.mark.parametrize(
    ("source", "word"),
    [
        ("for (def x : ctx._source.list) { ctx._source.n = x }", "for"),
        ("while (true) { ctx.op = 'noop' }", "while"),
        ("ctx._source.l = new ArrayList()", "new"),
        ("ctx._source.n = (int) ctx._source.x", "casts"),
        ("ctx._source.n = Math.max(1, 2)", "Math"),
    ],
)
def test_unsupported_forms_say_so(source: str, word: str) -> None:
    with pytest.raises(ScriptError) as info:
        run(source, {"x": 1.5})
    kind, reason = _cause(info.value)
    assert info.value.reason == "compile error"
    assert kind == "illegal_argument_exception"
    assert "tasksim does not support" in reason and word in reason


def test_null_access_is_a_runtime_error() -> None:
    with pytest.raises(ScriptError) as info:
        run("ctx._source.a.b = 1", {})
    assert info.value.reason == "runtime error"
    assert _cause(info.value)[0] == "null_pointer_exception"


def test_script_objects() -> None:
    assert parse_script("ctx.op = 'noop'") == Script("ctx.op = 'noop'")
    with pytest.raises(IllegalArgumentError, match=r"script_lang not supported \[expression\]"):
        parse_script({"source": "1", "lang": "expression"})
    with pytest.raises(ResourceNotFoundError, match=r"unable to find script \[my_update_script\]"):
        parse_script({"id": "my_update_script"})


def test_script_error_crosses_the_wire() -> None:
    from simnode.wire import error_from_pb, error_to_pb

    with pytest.raises(ScriptError) as info:
        run("syntax errors are fun!", {})
    back = error_from_pb(error_to_pb(info.value))
    assert back.xcontent() == info.value.xcontent()
