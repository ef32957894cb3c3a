"""The scripts of `_reindex` and `_update_by_query`: a small subset of Painless, parsed and run on
plain values.

OpenSearch runs a by-query script once per document on a `ctx` map (`_index`, `_id`, `_version`,
`_routing`, `_source`, `op`) with the request's `params`. tasksim understands the forms users and
OpenSearch's own REST tests write:

- statements: `a = b`, `a += b` (`-=`, `*=`, `/=`, `%=`), `a++`/`a--`/`++a`/`--a`, typed local
  declarations (`def x = ...`, `int`, `long`, `double`, `float`, `boolean`, `String`), blocks,
  `if (...) {...} else if (...) {...} else {...}`, `return`, separated by `;`;
- expressions: number, string (`'...'` or `"..."`), `true`/`false`/`null` literals; `ctx...`,
  `params...` and local variables, with `.field` and `['field']`/`[n]` access on maps and lists;
  `+ - * / %` (Java's integer arithmetic; `+` with a string concatenates), comparisons,
  `== !=`, `&& || !`, `?:`, parentheses; the methods `remove`, `containsKey`, `get`, `put`,
  `getOrDefault`, `size`, `isEmpty`, `contains`, `add`, `equals`, `length`, `toUpperCase`,
  `toLowerCase`, `trim`, `startsWith`, `endsWith`, `substring`.

Anything else (loops, casts, lambdas, regexes, `new`, functions, stored scripts, other languages)
is refused before it runs, with Painless' own envelope of a compile error: `script_exception`,
`reason: compile error`, `script_stack`, `script`, `lang`, `position`, and an
`illegal_argument_exception` cause that says what tasksim does not support. A script that fails
while it runs is `script_exception` / `runtime error`, as Painless reports it.

Pure: no I/O. `compile_script` parses once; `execute` runs the program on one `ctx`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simnode.errors import IllegalArgumentError, OpenSearchError, ResourceNotFoundError

LANG = "painless"
TYPES = frozenset({"def", "int", "long", "short", "byte", "double", "float", "boolean", "String"})
UNSUPPORTED_KEYWORDS = frozenset(
    {"for", "while", "do", "new", "try", "catch", "throw", "break", "continue", "instanceof"}
)
SUPPORTED = (
    "assignments, ++/--, typed locals, if/else, return, literals, ctx/params access, arithmetic, "
    "comparisons and boolean operators"
)


class ScriptError(OpenSearchError):
    """`ScriptException`: `script_stack`, `script`, `lang`, `position` after the reason."""

    type = "script_exception"
    status = 400

    @classmethod
    def at(cls, reason: str, source: str, offset: int, cause: OpenSearchError) -> ScriptError:
        start, end = _statement_bounds(source, offset)
        pointer = " " * (offset - start) + "^---- HERE"
        return cls(
            reason,
            cause=cause,
            metadata=[
                ("script_stack", [source[start:end], pointer]),
                ("script", source),
                ("lang", LANG),
                ("position", {"offset": offset, "start": start, "end": end}),
            ],
        )


class NullPointerError(OpenSearchError):
    type = "null_pointer_exception"
    status = 400


class ArithmeticError_(OpenSearchError):
    type = "arithmetic_exception"
    status = 400


class ClassCastError(OpenSearchError):
    type = "class_cast_exception"
    status = 400


def _statement_bounds(source: str, offset: int) -> tuple[int, int]:
    """The statement around `offset`, as Painless' `getPreviousStatement`/`getNextStatement`."""
    start = 0
    for i in range(min(offset, len(source)) - 1, -1, -1):
        if source[i] in ";{}":
            start = i + 1
            break
    end = len(source)
    for i in range(offset, len(source)):
        if source[i] in ";{}":
            end = i
            break
    return start, end


# -- the request's `script` -------------------------------------------------------------------------


@dataclass
class Script:
    source: str
    params: dict[str, Any] = field(default_factory=dict)
    lang: str = LANG
    _program: list[Any] | None = None

    def program(self) -> list[Any]:
        """Compile once (OpenSearch compiles on first use, when the first document comes)."""
        if self._program is None:
            self._program = compile_script(self.source)
        return self._program


def parse_script(body: Any) -> Script:
    """`Script.parse`: a string (inline painless) or `{source|id, lang, params, options}`."""
    if isinstance(body, str):
        return Script(body)
    if not isinstance(body, dict):
        raise IllegalArgumentError("[script] must be a string or an object")
    known = {"source", "inline", "id", "lang", "params", "options"}
    for key in body:
        if key not in known:
            raise IllegalArgumentError(f"[script] unknown field [{key}]")
    if "id" in body:
        if "source" in body or "inline" in body:
            raise IllegalArgumentError("must specify either [source] for an inline script or [id]")
        # tasksim keeps no stored scripts: the look-up of any id fails as it does in OpenSearch
        # for an id never stored.
        raise ResourceNotFoundError(f"unable to find script [{body['id']}] in cluster state")
    source = body.get("source", body.get("inline"))
    if not isinstance(source, str):
        raise IllegalArgumentError("must specify either [source] for an inline script or [id]")
    lang = body.get("lang", LANG)
    if lang != LANG:
        raise IllegalArgumentError(f"script_lang not supported [{lang}]")
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise IllegalArgumentError("[params] must be an object")
    return Script(source, dict(params))


# -- tokens -----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+|//[^\n]*|/\*.*?\*/)
      |(?P<num>\d+\.\d*(?:[eE][+-]?\d+)?[dDfF]?|\.\d+[dDfF]?|\d+[lLdDfF]?)
      |(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      |(?P<id>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<op>\+\+|--|\+=|-=|\*=|/=|%=|==|!=|<=|>=|&&|\|\||[-+*/%=<>!?:;.,(){}\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Tok:
    kind: str  # num, str, id, op, eof
    text: str
    pos: int


def tokenize(source: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise _CompileError(f"unexpected character [{source[pos]}].", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Tok(kind, m.group(), pos))
        pos = m.end()
    out.append(Tok("eof", "<EOF>", len(source)))
    return out


class _CompileError(Exception):
    def __init__(self, reason: str, pos: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pos = pos


class _RuntimeError(Exception):
    def __init__(self, error: OpenSearchError, pos: int) -> None:
        super().__init__(error.reason)
        self.error = error
        self.pos = pos


class _Return(Exception):
    pass


# -- parser: statements and expressions become closures over an environment -------------------------

Env = dict[str, Any]
Expr = Callable[[Env], Any]
Stmt = Callable[[Env], None]


@dataclass
class _Ref:
    """An assignable place: a local variable, or a key/index of a container."""

    get: Callable[[Env], Any]
    set: Callable[[Env, Any], None]


class _Parser:
    def __init__(self, source: str) -> None:
        self.toks = tokenize(source)
        self.i = 0
        self.scopes: list[set[str]] = [{"ctx", "params"}]

    # helpers
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def peek(self, n: int) -> Tok:
        return self.toks[min(self.i + n, len(self.toks) - 1)]

    def take(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        return self.tok.kind in ("op", "id") and self.tok.text in texts

    def expect(self, text: str) -> Tok:
        if not self.at(text):
            self.fail_here()
        return self.take()

    def fail_here(self) -> None:
        tok = self.tok
        if tok.kind == "id" and tok.text in UNSUPPORTED_KEYWORDS:
            raise _CompileError(
                f"tasksim does not support [{tok.text}] in scripts; it runs a subset of painless: "
                f"{SUPPORTED}",
                tok.pos,
            )
        text = tok.text if tok.kind == "eof" else f"'{tok.text}'"
        raise _CompileError(f"invalid sequence of tokens near [{text}].", tok.pos)

    def declared(self, name: str) -> bool:
        return any(name in s for s in self.scopes)

    # statements
    def program(self) -> list[Stmt]:
        stmts: list[Stmt] = []
        while self.tok.kind != "eof":
            if self.at(";"):
                self.take()
                continue
            stmts.append(self.statement())
        return stmts

    def statement(self) -> Stmt:
        if self.at("{"):
            return self.block()
        if self.at("if"):
            return self.if_statement()
        if self.at("return"):
            self.take()
            value: Expr | None = None
            if not self.at(";", "}") and self.tok.kind != "eof":
                value = self.expression()
            self.end_statement()
            expr = value

            def ret(env: Env) -> None:
                if expr is not None:
                    expr(env)
                raise _Return()

            return ret
        if self.tok.kind == "id" and self.tok.text in TYPES:
            return self.declaration()
        expr = self.expression()
        self.end_statement()

        def run(env: Env) -> None:
            expr(env)

        return run

    def end_statement(self) -> None:
        if self.at(";"):
            self.take()
        elif not (self.at("}") or self.tok.kind == "eof"):
            self.fail_here()

    def block(self) -> Stmt:
        self.expect("{")
        self.scopes.append(set())
        body: list[Stmt] = []
        while not self.at("}"):
            if self.tok.kind == "eof":
                self.fail_here()
            if self.at(";"):
                self.take()
                continue
            body.append(self.statement())
        self.take()
        self.scopes.pop()

        def run(env: Env) -> None:
            for s in body:
                s(env)

        return run

    def if_statement(self) -> Stmt:
        self.expect("if")
        self.expect("(")
        cond = self.expression()
        pos = self.tok.pos
        self.expect(")")
        then = self.statement()
        other: Stmt | None = None
        if self.at("else"):
            self.take()
            other = self.statement()

        def run(env: Env) -> None:
            value = cond(env)
            if not isinstance(value, bool):
                raise _RuntimeError(
                    ClassCastError(f"Cannot cast {_java_class(value)} to java.lang.Boolean"), pos
                )
            if value:
                then(env)
            elif other is not None:
                other(env)

        return run

    def declaration(self) -> Stmt:
        self.take()  # the type
        name_tok = self.take()
        if name_tok.kind != "id" or name_tok.text in TYPES:
            self.i -= 1
            self.fail_here()
        name = name_tok.text
        if self.declared(name):
            raise _CompileError(f"variable [{name}] is already defined", name_tok.pos)
        value: Expr | None = None
        if self.at("="):
            self.take()
            value = self.expression()
        self.scopes[-1].add(name)
        self.end_statement()
        init = value

        def run(env: Env) -> None:
            env[name] = init(env) if init is not None else None

        return run

    # expressions, lowest precedence first
    def expression(self) -> Expr:
        return self.assignment()

    def assignment(self) -> Expr:
        start = self.i
        left = self.ternary()
        if self.at("=", "+=", "-=", "*=", "/=", "%="):
            op = self.take()
            ref = self.ref_of(start, op)
            right = self.assignment()
            if op.text == "=":

                def assign(env: Env) -> Any:
                    value = right(env)
                    ref.set(env, value)
                    return value

                return assign
            binary = _BINARY[op.text[0]]

            def compound(env: Env) -> Any:
                value = binary(ref.get(env), right(env), op.pos)
                ref.set(env, value)
                return value

            return compound
        return left

    def ref_of(self, start: int, at: Tok) -> _Ref:
        """Re-parse the tokens from `start` as an assignable place."""
        end = self.i
        self.i = start
        ref = self.place()
        if self.i != end - 1:
            raise _CompileError(
                "invalid assignment: cannot assign a value to a non-variable", at.pos
            )
        self.i = end
        return ref

    def place(self) -> _Ref:
        tok = self.take()
        if tok.kind != "id" or tok.text in ("true", "false", "null"):
            raise _CompileError(
                "invalid assignment: cannot assign a value to a non-variable", tok.pos
            )
        if not self.declared(tok.text):
            raise _CompileError(f"cannot resolve symbol [{tok.text}]", tok.pos)
        name = tok.text
        if name in ("ctx", "params") and not self.at(".", "["):
            raise _CompileError(f"invalid assignment: cannot assign a value to [{name}]", tok.pos)
        current: Expr = lambda env: env[name]  # noqa: E731
        ref = _Ref(current, lambda env, v: env.__setitem__(name, v))
        while self.at(".", "["):
            ref = self.member(current)
            current = ref.get
        return ref

    def member(self, target: Expr) -> _Ref:
        """`.name` or `[expr]` after `target`, as a place."""
        op = self.take()
        if op.text == ".":
            tok = self.take()
            if tok.kind != "id":
                self.i -= 1
                self.fail_here()
            key: Expr = lambda env: tok.text  # noqa: E731
        else:
            key = self.expression()
            self.expect("]")
        pos = op.pos

        def get(env: Env) -> Any:
            return _load(target(env), key(env), pos)

        def put(env: Env, value: Any) -> None:
            _store(target(env), key(env), value, pos)

        return _Ref(get, put)

    def ternary(self) -> Expr:
        cond = self.binary(0)
        if self.at("?"):
            pos = self.take().pos
            yes = self.expression()
            self.expect(":")
            no = self.expression()
            return lambda env: yes(env) if _truth(cond(env), pos) else no(env)
        return cond

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("||",),
        ("&&",),
        ("==", "!="),
        ("<", "<=", ">", ">="),
        ("+", "-"),
        ("*", "/", "%"),
    )

    def binary(self, level: int) -> Expr:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.tok.kind == "op" and self.tok.text in self._LEVELS[level]:
            op = self.take()
            right = self.binary(level + 1)
            left = _combine(op, left, right)
        return left

    def unary(self) -> Expr:
        if self.at("!"):
            pos = self.take().pos
            inner = self.unary()
            return lambda env: not _truth(inner(env), pos)
        if self.at("-"):
            pos = self.take().pos
            inner = self.unary()
            return lambda env: _negate(inner(env), pos)
        if self.at("+"):
            self.take()
            return self.unary()
        if self.at("++", "--"):
            op = self.take()
            ref = self.place()
            delta = 1 if op.text == "++" else -1

            def pre(env: Env) -> Any:
                value = _add(ref.get(env), delta, op.pos)
                ref.set(env, value)
                return value

            return pre
        cast = self.at("(") and self.peek(1).text in TYPES and self.peek(2).text == ")"
        if cast:  # `(int) x` starts like a parenthesised expression
            raise _CompileError(
                f"tasksim does not support casts in scripts; it runs a subset of painless: "
                f"{SUPPORTED}",
                self.tok.pos,
            )
        return self.postfix()

    def postfix(self) -> Expr:
        start = self.i
        expr = self.primary()
        while True:
            if self.at(".") and self.peek(2).text == "(":
                self.take()
                name = self.take()
                if name.kind != "id":
                    self.i -= 1
                    self.fail_here()
                self.expect("(")
                args: list[Expr] = []
                while not self.at(")"):
                    args.append(self.expression())
                    if not self.at(")"):
                        self.expect(",")
                self.take()
                expr = _call(expr, name, args)
            elif self.at(".", "["):
                expr = self.member(expr).get
            elif self.at("++", "--"):
                op = self.tok
                end = self.i
                self.i = start
                ref = self.place()
                if self.i != end:
                    raise _CompileError(
                        "invalid assignment: cannot assign a value to a non-variable", op.pos
                    )
                self.take()
                delta = 1 if op.text == "++" else -1

                def post(env: Env, ref: _Ref = ref, delta: int = delta, pos: int = op.pos) -> Any:
                    value = ref.get(env)
                    ref.set(env, _add(value, delta, pos))
                    return value

                expr = post
            else:
                return expr

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "num":
            self.take()
            value = _number(tok.text)
            return lambda env: value
        if tok.kind == "str":
            self.take()
            text = _unquote(tok.text)
            return lambda env: text
        if tok.kind == "id":
            if tok.text in ("true", "false", "null"):
                self.take()
                literal = {"true": True, "false": False, "null": None}[tok.text]
                return lambda env: literal
            if tok.text in UNSUPPORTED_KEYWORDS or tok.text in TYPES:
                self.fail_here()
            self.take()
            if self.at("("):
                raise _CompileError(
                    f"tasksim does not support calling functions ([{tok.text}]) in scripts; it "
                    f"runs a subset of painless: {SUPPORTED}",
                    tok.pos,
                )
            if not self.declared(tok.text):
                if tok.text[0].isupper():  # a class: Math, Integer, LocalDateTime, ...
                    raise _CompileError(
                        f"tasksim does not support classes ([{tok.text}]) in scripts; it runs a "
                        f"subset of painless: {SUPPORTED}",
                        tok.pos,
                    )
                raise _CompileError(f"cannot resolve symbol [{tok.text}]", tok.pos)
            name = tok.text
            return lambda env: env[name]
        if self.at("("):
            self.take()
            inner = self.expression()
            self.expect(")")
            return inner
        if self.at("["):
            raise _CompileError(
                "tasksim does not support list or map initializers in scripts; it runs a subset "
                f"of painless: {SUPPORTED}",
                tok.pos,
            )
        self.fail_here()
        raise AssertionError("unreachable")


# -- values: Java's semantics on JSON values --------------------------------------------------------


def _number(text: str) -> int | float:
    body = text.rstrip("lLdDfF") if not text.isdigit() else text
    if text[-1] in "dDfF" or "." in body or "e" in body.lower():
        return float(body)
    return int(body)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), body)


def _java_class(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return "java.lang.Integer"
    if isinstance(value, float):
        return "java.lang.Double"
    if isinstance(value, str):
        return "java.lang.String"
    if isinstance(value, dict):
        return "java.util.HashMap"
    return "java.util.ArrayList"


def _to_string(value: Any) -> str:
    """`String.valueOf`, as `+` concatenates."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value) if not value.is_integer() or abs(value) >= 1e7 else f"{value:.1f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_to_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_to_string(v) for v in value) + "]"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _truth(value: Any, pos: int) -> bool:
    if not isinstance(value, bool):
        raise _RuntimeError(
            ClassCastError(f"Cannot cast {_java_class(value)} to java.lang.Boolean"), pos
        )
    return value


def _numbers(a: Any, b: Any, op: str, pos: int) -> None:
    if not (_is_number(a) and _is_number(b)):
        if a is None or b is None:
            raise _RuntimeError(
                NullPointerError(f"cannot apply [{op}] operation to a null value"), pos
            )
        raise _RuntimeError(
            ClassCastError(
                f"Cannot apply [{op}] operation to types [{_java_class(a)}] and [{_java_class(b)}]."
            ),
            pos,
        )


def _add(a: Any, b: Any, pos: int) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        return _to_string(a) + _to_string(b)
    _numbers(a, b, "+", pos)
    return a + b


def _sub(a: Any, b: Any, pos: int) -> Any:
    _numbers(a, b, "-", pos)
    return a - b


def _mul(a: Any, b: Any, pos: int) -> Any:
    _numbers(a, b, "*", pos)
    return a * b


def _div(a: Any, b: Any, pos: int) -> Any:
    _numbers(a, b, "/", pos)
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            raise _RuntimeError(ArithmeticError_("/ by zero"), pos)
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    if b == 0:
        return math.copysign(math.inf, a) if a else math.nan
    return a / b


def _rem(a: Any, b: Any, pos: int) -> Any:
    _numbers(a, b, "%", pos)
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            raise _RuntimeError(ArithmeticError_("/ by zero"), pos)
        return a - b * _div(a, b, pos)
    return math.fmod(a, b)


def _negate(a: Any, pos: int) -> Any:
    _numbers(a, 0, "-", pos)
    return -a


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _compare(op: str) -> Callable[[Any, Any, int], bool]:
    def cmp(a: Any, b: Any, pos: int) -> bool:
        _numbers(a, b, op, pos)
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])

    return cmp


_BINARY: dict[str, Callable[[Any, Any, int], Any]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _rem,
    "<": _compare("<"),
    "<=": _compare("<="),
    ">": _compare(">"),
    ">=": _compare(">="),
    "==": lambda a, b, pos: _equal(a, b),
    "!=": lambda a, b, pos: not _equal(a, b),
}


def _combine(op: Tok, left: Expr, right: Expr) -> Expr:
    pos = op.pos
    if op.text == "&&":
        return lambda env: _truth(left(env), pos) and _truth(right(env), pos)
    if op.text == "||":
        return lambda env: _truth(left(env), pos) or _truth(right(env), pos)
    binary = _BINARY[op.text]
    return lambda env: binary(left(env), right(env), pos)


def _null(what: str, pos: int) -> _RuntimeError:
    return _RuntimeError(
        NullPointerError(f"cannot access method/field [{what}] from a null def reference"), pos
    )


def _load(target: Any, key: Any, pos: int) -> Any:
    if target is None:
        return _raise(_null(str(key), pos))
    if isinstance(target, dict):
        return target.get(key if isinstance(key, str) else _to_string(key))
    if isinstance(target, list):
        if key == "length" or key == "size":
            return len(target)
        if not isinstance(key, int) or isinstance(key, bool):
            raise _RuntimeError(IllegalArgumentError(f"Illegal list shortcut value [{key}]."), pos)
        if not -len(target) <= key < len(target):
            raise _RuntimeError(
                IllegalArgumentError(f"Index {key} out of bounds for length {len(target)}"), pos
            )
        return target[key]
    raise _RuntimeError(
        IllegalArgumentError(f"dynamic getter [{_java_class(target)}, {key}] not found"),
        pos,
    )


def _store(target: Any, key: Any, value: Any, pos: int) -> None:
    if target is None:
        _raise(_null(str(key), pos))
    if isinstance(target, dict):
        target[key if isinstance(key, str) else _to_string(key)] = value
        return
    if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
        if not -len(target) <= key < len(target):
            raise _RuntimeError(
                IllegalArgumentError(f"Index {key} out of bounds for length {len(target)}"), pos
            )
        target[key] = value
        return
    raise _RuntimeError(
        IllegalArgumentError(f"dynamic setter [{_java_class(target)}, {key}] not found"), pos
    )


def _raise(error: _RuntimeError) -> Any:
    raise error


_METHODS: dict[tuple[type, str], Callable[..., Any]] = {
    (dict, "remove"): lambda t, k: t.pop(k, None),
    (dict, "containsKey"): lambda t, k: k in t,
    (dict, "get"): lambda t, k: t.get(k),
    (dict, "getOrDefault"): lambda t, k, d: t.get(k, d),
    (dict, "put"): lambda t, k, v: (t.get(k), t.__setitem__(k, v))[0],
    (dict, "size"): lambda t: len(t),
    (dict, "isEmpty"): lambda t: not t,
    (list, "add"): lambda t, v: (t.append(v), True)[1],
    (list, "contains"): lambda t, v: any(_equal(x, v) for x in t),
    (list, "get"): lambda t, i: t[i],
    (list, "size"): lambda t: len(t),
    (list, "isEmpty"): lambda t: not t,
    (list, "remove"): lambda t, i: t.pop(i),
    (str, "length"): lambda t: len(t),
    (str, "toUpperCase"): lambda t: t.upper(),
    (str, "toLowerCase"): lambda t: t.lower(),
    (str, "trim"): lambda t: t.strip(),
    (str, "contains"): lambda t, s: _to_string(s) in t,
    (str, "startsWith"): lambda t, s: t.startswith(_to_string(s)),
    (str, "endsWith"): lambda t, s: t.endswith(_to_string(s)),
    (str, "substring"): lambda t, a, b=None: t[a:b],
}


def _call(target: Expr, name: Tok, args: list[Expr]) -> Expr:
    pos = name.pos
    method = name.text

    def call(env: Env) -> Any:
        obj = target(env)
        values = [a(env) for a in args]
        if obj is None:
            raise _null(method, pos)
        if method == "equals" and len(values) == 1:
            return _equal(obj, values[0])
        kind = dict if isinstance(obj, dict) else list if isinstance(obj, list) else type(obj)
        fn = _METHODS.get((kind, method))
        if fn is None:
            raise _RuntimeError(
                IllegalArgumentError(
                    f"dynamic method [{_java_class(obj)}, {method}/{len(values)}] not found"
                ),
                pos,
            )
        try:
            return fn(obj, *values)
        except (TypeError, IndexError, KeyError) as e:
            raise _RuntimeError(
                IllegalArgumentError(
                    f"dynamic method [{_java_class(obj)}, {method}/{len(values)}] failed: {e}"
                ),
                pos,
            ) from None

    return call


# -- entry points -----------------------------------------------------------------------------------


def compile_script(source: str) -> list[Any]:
    """Parse `source`; a script tasksim cannot run is a `compile error`."""
    try:
        return list(_Parser(source).program())
    except _CompileError as e:
        raise ScriptError.at(
            "compile error", source, e.pos, IllegalArgumentError(e.reason)
        ) from None
    except RecursionError:
        raise ScriptError.at(
            "compile error", source, 0, IllegalArgumentError("script is too deeply nested")
        ) from None


def execute(script: Script, ctx: dict[str, Any]) -> None:
    """Run the script on `ctx` (changed in place)."""
    program = script.program()
    env: Env = {"ctx": ctx, "params": script.params}
    try:
        for stmt in program:
            stmt(env)
    except _Return:
        return
    except _RuntimeError as e:
        raise ScriptError.at("runtime error", script.source, e.pos, e.error) from None
    except RecursionError:
        raise ScriptError.at(
            "runtime error", script.source, 0, IllegalArgumentError("script is too deeply nested")
        ) from None
