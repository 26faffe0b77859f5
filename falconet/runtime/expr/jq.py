"""A pure-Python subset of jq, for Kestra's ``jq(expr)`` filter (which returns the list of all outputs).

Supported: identity ``.``, fields ``.a.b`` / ``."a-b"`` / ``.["a"]``, indexes ``.[0]`` / ``.[-1]``, slices
``.[1:3]``, iteration ``.[]``, optional ``?``, recursive descent ``..``, pipes ``|``, commas ``,``, parentheses,
literals, array ``[…]`` and object ``{a: …, "b": …, c}`` construction, ``+ - * / %``, comparisons, ``and``/
``or``, alternative ``//``, ``if … then … elif … else … end``, and the builtins ``length keys keys_unsorted
values map select has to_entries from_entries with_entries add first last not type tostring tonumber
ascii_downcase ascii_upcase empty sort sort_by group_by unique unique_by reverse min max min_by max_by
contains startswith endswith split join ltrimstr rtrimstr test tojson fromjson any all flatten range
floor ceil round sqrt abs in inside index map_values paths error``.
Not supported: variables (``as $x``), reduce/foreach, string interpolation, assignment operators, formats.
"""
from __future__ import annotations

import functools
import json
import re
from typing import Any, Iterator

from falconet.runtime.expr.jq_runtime import (
    JqError, Program, _BUILTINS, _COMPARE, _add, _as_key, _binary, _chain, _div, _index, _index_const, _iterate,
    _mod, _mul, _neg, _recurse, _slice, _sub, _then, _truthy, _try,
)

#### Lexer ##################################################################################################

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\.|//|==|!=|<=|>=|[.\[\]{}()|,:;?<>+\-*/%])
""", re.VERBOSE)


def _tokens(program: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(program):
        m = _TOKEN.match(program, pos)
        if not m:
            raise JqError(f"Unable to compile jq expression '{program}': unexpected character at {pos}")
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        text = m.group()
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "num":
            out.append(("lit", float(text) if any(c in text for c in ".eE") else int(text)))
        elif kind == "str":
            out.append(("lit", json.loads(text)))
        elif kind == "field":
            out.append(("field", text[1:]))
        else:
            out.append((kind, text))
    out.append(("end", None))
    return out


#### Parser → closures ######################################################################################

def _const(value: Any) -> Program:
    return lambda v: iter([value])


def _identity(v: Any) -> Iterator[Any]:
    return iter([v])


def _comma(a: Program, b: Program) -> Program:
    return lambda v: _chain(a(v), b(v))


def _or(a: Program, b: Program) -> Program:
    return lambda v: (True if _truthy(x) else _truthy(y) for x in a(v) for y in ([True] if _truthy(x) else b(v)))


def _and(a: Program, b: Program) -> Program:
    return lambda v: (False if not _truthy(x) else _truthy(y) for x in a(v)
                      for y in ([False] if not _truthy(x) else b(v)))


def _optional(p: Program) -> Program:
    return lambda v: _try(p, v)


def _collect(p: Program) -> Program:
    return lambda v: iter([list(p(v))])


class _Parser:
    def __init__(self, program: str):
        self.program = program
        self.toks = _tokens(program)
        self.i = 0

    def peek(self) -> tuple[str, Any]:
        return self.toks[self.i]

    def at(self, *values: str) -> bool:
        kind, val = self.toks[self.i]
        return kind in ("op", "ident") and val in values

    def take(self) -> tuple[str, Any]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, val = self.take()
        if val != value or kind not in ("op", "ident"):
            raise JqError(f"Unable to compile jq expression '{self.program}': expected '{value}', got '{val}'")

    def parse(self) -> Program:
        prog = self.pipe()
        if self.peek()[0] != "end":
            raise JqError(f"Unable to compile jq expression '{self.program}': unexpected '{self.peek()[1]}'")
        return prog

    def pipe(self) -> Program:
        left = self.comma()
        if self.at("|"):
            self.take()
            right = self.pipe()
            return lambda v: (out for mid in left(v) for out in right(mid))
        return left

    def comma(self) -> Program:
        left = self.alternative()
        while self.at(","):
            self.take()
            left = _comma(left, self.alternative())
        return left

    def alternative(self) -> Program:
        left = self.logic_or()
        if self.at("//"):
            self.take()
            right = self.alternative()

            def alt(v: Any, a: Program = left, b: Program = right) -> Iterator[Any]:
                found = [x for x in _try(a, v) if x is not None and x is not False]
                yield from found if found else b(v)
            return alt
        return left

    def logic_or(self) -> Program:
        left = self.logic_and()
        while self.at("or"):
            self.take()
            left = _or(left, self.logic_and())
        return left

    def logic_and(self) -> Program:
        left = self.compare()
        while self.at("and"):
            self.take()
            left = _and(left, self.compare())
        return left

    def compare(self) -> Program:
        left = self.additive()
        if self.at("==", "!=", "<", "<=", ">", ">="):
            op = self.take()[1]
            right = self.additive()
            return _binary(left, right, _COMPARE[op])
        return left

    def additive(self) -> Program:
        left = self.multiplicative()
        while self.at("+", "-"):
            op = self.take()[1]
            left = _binary(left, self.multiplicative(), _add if op == "+" else _sub)
        return left

    def multiplicative(self) -> Program:
        left = self.postfix()
        while self.at("*", "/", "%"):
            op = self.take()[1]
            left = _binary(left, self.postfix(), {"*": _mul, "/": _div, "%": _mod}[op])
        return left

    def postfix(self) -> Program:
        prog = self.term()
        while True:
            kind, val = self.peek()
            if kind == "field":
                self.take()
                prog = _then(prog, _index_const(val))
            elif kind == "op" and val == "." and self.toks[self.i + 1][0] == "lit" \
                    and isinstance(self.toks[self.i + 1][1], str):
                self.take()
                prog = _then(prog, _index_const(self.take()[1]))
            elif kind == "op" and val == "[" or (kind == "op" and val == "." and self.toks[self.i + 1][1] == "["):
                if val == ".":
                    self.take()
                prog = _then(prog, self.bracket())
            elif kind == "op" and val == "?":
                self.take()
                prog = _optional(prog)
            else:
                return prog

    def bracket(self) -> Program:
        self.expect("[")
        if self.at("]"):
            self.take()
            return _iterate
        if self.at(":"):
            self.take()
            upper = self.pipe()
            self.expect("]")
            return lambda v: (_slice(v, None, u) for u in upper(v))
        index = self.pipe()
        if self.at(":"):
            self.take()
            stop = _const(None) if self.at("]") else self.pipe()
            self.expect("]")
            return lambda v: (_slice(v, lo, hi) for lo in index(v) for hi in stop(v))
        self.expect("]")
        return lambda v: (_index(v, k) for k in index(v))

    def term(self) -> Program:
        kind, val = self.take()
        if kind == "lit":
            return _const(val)
        if kind == "field":
            return _index_const(val)
        if kind == "op":
            if val == ".":
                nxt = self.peek()
                if nxt[0] == "lit" and isinstance(nxt[1], str):
                    self.take()
                    return _index_const(nxt[1])
                if nxt == ("op", "["):
                    return self.bracket()
                return _identity
            if val == "..":
                return _recurse
            if val == "(":
                inner = self.pipe()
                self.expect(")")
                return inner
            if val == "[":
                if self.at("]"):
                    self.take()
                    return lambda v: iter([[]])
                inner = self.pipe()
                self.expect("]")
                return _collect(inner)
            if val == "{":
                return self.object()
            if val == "-":
                operand = self.postfix()
                return lambda v: (_neg(x) for x in operand(v))
        if kind == "ident":
            if val in ("true", "false", "null"):
                return _const({"true": True, "false": False, "null": None}[val])
            if val == "if":
                return self.conditional()
            return self.call(val)
        raise JqError(f"Unable to compile jq expression '{self.program}': unexpected '{val}'")

    def conditional(self) -> Program:
        cond = self.pipe()
        self.expect("then")
        then = self.pipe()
        if self.at("elif"):
            self.take()
            other = self.conditional()
            return lambda v: (o for c in cond(v) for o in (then(v) if _truthy(c) else other(v)))
        otherwise: Program = _identity  # `if c then t end` is `if c then t else . end`
        if self.at("else"):
            self.take()
            otherwise = self.pipe()
        self.expect("end")
        return lambda v: (o for c in cond(v) for o in (then(v) if _truthy(c) else otherwise(v)))

    def object(self) -> Program:
        entries: list[tuple[Program, Program]] = []
        while not self.at("}"):
            kind, val = self.take()
            if kind in ("ident", "lit") and isinstance(val, str):
                key = _const(val)
                if not self.at(":"):                            # {a} shorthand = {a: .a}
                    entries.append((key, _index_const(val)))
                    if not self.at("}"):
                        self.expect(",")
                    continue
            elif kind == "op" and val == "(":
                key = self.pipe()
                self.expect(")")
            else:
                raise JqError(f"Unable to compile jq expression '{self.program}': bad object key '{val}'")
            self.expect(":")
            entries.append((key, self.alternative()))
            if not self.at("}"):
                self.expect(",")
        self.expect("}")

        def build(v: Any) -> Iterator[Any]:
            results: list[dict[str, Any]] = [{}]
            for key_prog, val_prog in entries:
                results = [{**r, _as_key(k): x} for r in results for k in key_prog(v) for x in val_prog(v)]
            yield from results
        return build

    def call(self, name: str) -> Program:
        args: list[Program] = []
        if self.at("("):
            self.take()
            args.append(self.pipe())
            while self.at(";"):
                self.take()
                args.append(self.pipe())
            self.expect(")")
        key = (name, len(args))
        if key not in _BUILTINS:
            raise JqError(f"Unable to compile jq expression '{self.program}': {name}/{len(args)} is not defined")
        return _BUILTINS[key](*args)


#### Entry point ############################################################################################

@functools.lru_cache(maxsize=512)
def compile_jq(program: str) -> Program:
    """Compile a jq program (cached). Raises :class:`JqError` on a syntax error."""
    return _Parser(program).parse()


def jq(value: Any, program: str) -> list[Any]:
    """All outputs of ``program`` run on ``value`` (a JSON-like value), as a list."""
    prog = compile_jq(program)
    try:
        return list(prog(value))
    except JqError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        raise JqError(f"Failed to resolve JQ expression '{program}': {exc}") from None
