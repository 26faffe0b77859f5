"""Translate Kestra's Pebble templates into Jinja2 source with the same meaning.

A template is scanned into text, ``{{ … }}`` prints, ``{% … %}`` tags, ``{# … #}`` comments and
``{% raw %}``/``{% verbatim %}`` blocks. Each expression is tokenized and parsed with Pebble's operator
precedences (Kestra adds ``??``/``???`` at 120), then re-emitted as a fully parenthesised Jinja expression.
Constructs Jinja lacks become calls to ``__f_*`` helpers registered by :mod:`.env`:

=====================  =======================================================================
Pebble                 Jinja emitted
=====================  =======================================================================
``a ?? b``             ``((a) if __f_isset(a) else (b))`` — ``b`` evaluated only when needed
``a ??? b``            ``((a) if __f_isdef(a) else (b))``; chains: ``(x if t(x) else y if t(y) else z)``
``c ? a : b``          ``((a) if __f_bool(c) else (b))``
``a == b``/``equals``  ``__f_eq(a, b)`` (numbers compare by value, like Pebble)
``a contains b``       ``__f_contains(a, b)``; ``a in b`` → ``__f_contains(b, a)``
``a ~ b ~ c``          ``__f_concat(a, b, c)`` (print rules apply to every part)
``a .. b``             ``__f_range(a, b)`` (inclusive)
``a + b - c``          ``__f_arith(a, '+', b, '-', c)`` (numbers, list ± item, Java ``/`` ``%``)
``f(x)``               ``__f_fn_f(x)`` — functions can never be shadowed by variables
``loop.index``         ``__f_loop(loop, 'index')``: ``loop.index0`` in a for loop (0-based)
``{% elseif %}``       ``{% elif %}``; ``{% for x in m %}`` walks map entries (``x.key``, ``x.value``)
=====================  =======================================================================

Left-associative chains (``~``, ``and``/``or``, ``+ -``, ``* / %``, ``??``/``???``) are emitted flat, so long
chains stay shallow for Jinja's recursive parser. Names starting with ``__`` are rejected (sandbox).
Newlines inside a tag are kept so that Jinja line numbers are the template's.
"""
from __future__ import annotations

import dataclasses
import re
from typing import AbstractSet

from falconet.runtime.expr.base import ExpressionError

#### Tokens #################################################################################################

_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")
_OPERATORS = ("???", "??", "..", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "~", "|", "?",
              ":", ",", ".", "(", ")", "[", "]", "{", "}", "=")
_OPEN = {"(": ")", "[": "]", "{": "}"}


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    kind: str      # "name", "num", "str", "istr" (interpolated string), "op", "end"
    value: object  # str for most; for "istr" a tuple of str | list[Token]
    pos: int


class _Source:
    """The template text with position → line mapping for error messages."""

    def __init__(self, text: str):
        self.text = text

    def error(self, message: str, pos: int) -> ExpressionError:
        line = self.text.count("\n", 0, max(pos, 0)) + 1
        return ExpressionError(f"Unable to parse the expression `{self.text}`: {message} at line {line}")


def _lex(src: _Source, pos: int, closers: tuple[str, ...]) -> tuple[list[Token], int, str]:
    """Tokenize from ``pos`` until one of ``closers`` appears outside brackets and strings.

    Returns the tokens, the position just after the closer and the closer found.
    """
    text = src.text
    tokens: list[Token] = []
    stack: list[str] = []
    n = len(text)
    while True:
        m = _SPACE.match(text, pos)
        if m:
            pos = m.end()
        if pos >= n:
            raise src.error(f"unexpected end of template, expected `{closers[-1]}`", pos)
        if not stack:
            for closer in closers:
                if text.startswith(closer, pos):
                    tokens.append(Token("end", closer, pos))
                    return tokens, pos + len(closer), closer
        ch = text[pos]
        if ch == "'" or ch == '"':
            token, pos = _lex_string(src, pos)
            tokens.append(token)
            continue
        if ch.isdigit():
            m = _NUMBER.match(text, pos)
            assert m is not None
            tokens.append(Token("num", m.group(), pos))
            pos = m.end()
            continue
        m = _NAME.match(text, pos)
        if m:
            tokens.append(Token("name", m.group(), pos))
            pos = m.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, pos):
                if op in _OPEN:
                    stack.append(_OPEN[op])
                elif op in (")", "]", "}"):
                    if not stack or stack[-1] != op:
                        raise src.error(f"unexpected `{op}`", pos)
                    stack.pop()
                tokens.append(Token("op", op, pos))
                pos += len(op)
                break
        else:
            raise src.error(f"unexpected character `{ch}`", pos)


def _lex_string(src: _Source, pos: int) -> tuple[Token, int]:
    """A quoted string, as Pebble reads it: a backslash escapes the next character while looking for the
    closing quote, but only ``\\'`` (resp. ``\\"``) is unescaped — ``\\n`` or ``\\d`` stay as written (YAML
    already decoded its own escapes). Double-quoted strings interpolate ``#{expr}``."""
    text = src.text
    quote = text[pos]
    start = pos
    pos += 1
    parts: list[object] = []
    buf: list[str] = []
    while True:
        if pos >= len(text):
            raise src.error("unterminated string", start)
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text):
            nxt = text[pos + 1]
            buf.append(nxt if nxt == quote else "\\" + nxt)   # Pebble only unescapes the quote itself
            pos += 2
        elif ch == quote:
            pos += 1
            break
        elif quote == '"' and text.startswith("#{", pos):
            parts.append("".join(buf))
            buf = []
            inner, pos, _ = _lex(src, pos + 2, ("}",))
            parts.append(inner)
        else:
            buf.append(ch)
            pos += 1
    if parts:
        parts.append("".join(buf))
        return Token("istr", tuple(parts), start), pos
    return Token("str", "".join(buf), start), pos


#### Expression parser ######################################################################################

# Pebble's binary operators and precedences (io.pebbletemplates CoreExtension + Kestra's Extension).
_BINARY = {
    "or": 10, "and": 15, "is": 20, "contains": 20, "in": 20, "not in": 20,
    "==": 30, "equals": 30, "!=": 30, ">": 30, "<": 30, ">=": 30, "<=": 30,
    "+": 40, "-": 40, "*": 60, "/": 60, "%": 60, "|": 100, "~": 110, "..": 120, "??": 120, "???": 120,
}
_UNARY_PRECEDENCE = 500
_CONSTANTS = {"true": "true", "false": "false", "null": "none", "none": "none",
              "True": "true", "False": "false", "None": "none"}
_LOOP_ATTRS = frozenset({"index", "revindex"})


@dataclasses.dataclass(frozen=True)
class Names:
    """What exists: function, filter and test names (checked at translation time, like Pebble)."""

    functions: AbstractSet[str]
    filters: AbstractSet[str]
    tests: AbstractSet[str]


class _Parser:
    def __init__(self, src: _Source, tokens: list[Token], names: Names):
        self.src, self.tokens, self.names, self.i = src, tokens, names, 0
        #: emitted source -> (chain kind, operands) for left-associative chains, which are emitted flat
        #: (``a ~ b ~ c`` → one call) so that long chains neither nest deeply nor duplicate operands
        self.chains: dict[str, tuple[str, list[str]]] = {}

    def chain(self, kind: str, a: str, b: str, ops: str = "") -> list[str]:
        """The operands of ``a <kind> b`` when ``a`` is itself a chain of that kind (else ``[a, b]``).
        For arithmetic chains ``ops`` is the operator, stored between operands."""
        found = self.chains.get(a)
        parts = list(found[1]) if found is not None and found[0] == kind else [a]
        if ops:
            parts.append(repr(ops))
        parts.append(b)
        return parts

    def emit_chain(self, kind: str, parts: list[str], text: str) -> str:
        self.chains[text] = (kind, parts)
        return text

    # -- token helpers -------------------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at(self, value: str, kind: str = "op", offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok.kind == kind and tok.value == value

    def expect(self, value: str, kind: str = "op") -> Token:
        tok = self.next()
        if tok.kind != kind or tok.value != value:
            raise self.unexpected(tok, f"`{value}`")
        return tok

    def expect_name(self) -> str:
        tok = self.next()
        if tok.kind != "name":
            raise self.unexpected(tok, "a name")
        return self.check_name(tok)

    def check_name(self, tok: Token) -> str:
        name = str(tok.value)
        if name.startswith("__"):
            raise self.src.error(f"access to `{name}` is not allowed", tok.pos)
        return name

    def unexpected(self, tok: Token, expected: str) -> ExpressionError:
        found = "end of expression" if tok.kind == "end" else f"`{tok.value}`"
        return self.src.error(f"unexpected {found}, expected {expected}", tok.pos)

    def done(self) -> None:
        tok = self.peek()
        if tok.kind != "end":
            raise self.unexpected(tok, "end of expression")

    # -- grammar -------------------------------------------------------------------------------------------
    def expression(self) -> str:
        """expression := binary(0) [ '?' expression ':' expression ]"""
        cond = self.binary(0)
        if self.at("?"):
            self.next()
            yes = self.expression()
            self.expect(":")
            no = self.expression()
            return f"(({yes}) if __f_bool({cond}) else ({no}))"
        return cond

    def binary_op(self) -> str | None:
        tok = self.peek()
        if tok.kind == "op" and tok.value in _BINARY:
            return str(tok.value)
        if tok.kind == "name":
            if tok.value == "not" and self.at("in", "name", 1):
                return "not in"
            if tok.value in ("or", "and", "is", "contains", "in", "equals"):
                return str(tok.value)
        return None

    def binary(self, min_prec: int) -> str:
        left = self.unary()
        while True:
            op = self.binary_op()
            if op is None or _BINARY[op] < min_prec:
                return left
            self.next()
            if op == "not in":
                self.next()
            prec = _BINARY[op]
            if op == "|":
                left = self.filter_call(left)
            elif op == "is":
                left = self.test(left)
            else:
                left = self.combine(op, left, self.binary(prec + 1))

    def combine(self, op: str, a: str, b: str) -> str:
        if op in ("==", "equals"):
            return f"__f_eq({a}, {b})"
        if op == "!=":
            return f"(not __f_eq({a}, {b}))"
        if op in ("and", "or"):
            parts = self.chain(op, a, b)
            return self.emit_chain(op, parts, "(" + f" {op} ".join(f"__f_bool({p})" for p in parts) + ")")
        if op in ("??", "???"):
            # coalescing is associative: emit right-nested so each operand appears twice, not 2^n times
            found = self.chains.get(a)
            pairs = list(found[1]) if found is not None and found[0] == "coalesce" else [a]
            pairs += [op, b]
            text = f"({pairs[-1]})"
            for i in range(len(pairs) - 3, -1, -2):        # `x if t(x) else y if t(y) else z`: no nesting
                test = "__f_isset" if pairs[i + 1] == "??" else "__f_isdef"
                text = f"({pairs[i]}) if {test}({pairs[i]}) else {text}"
            return self.emit_chain("coalesce", pairs, f"({text})")
        if op == "contains":
            return f"__f_contains({a}, {b})"
        if op == "in":
            return f"__f_contains({b}, {a})"
        if op == "not in":
            return f"(not __f_contains({b}, {a}))"
        if op == "~":
            parts = self.chain("~", a, b)
            return self.emit_chain("~", parts, "__f_concat(" + ", ".join(parts) + ")")
        if op == "..":
            return f"__f_range({a}, {b})"
        if op in ("+", "-", "*", "/", "%"):
            group = "additive" if op in "+-" else "multiplicative"
            parts = self.chain(group, a, b, op)
            return self.emit_chain(group, parts, "__f_arith(" + ", ".join(parts) + ")")
        return f"({a} {op} {b})"                       # < > <= >=

    def unary(self) -> str:
        if self.at("not", "name"):
            self.next()
            return f"(not __f_bool({self.binary(_UNARY_PRECEDENCE)}))"
        if self.at("-"):
            self.next()
            return f"(-{self.binary(_UNARY_PRECEDENCE)})"
        if self.at("+"):
            self.next()
            return f"(+{self.binary(_UNARY_PRECEDENCE)})"
        return self.postfix(self.primary())

    def primary(self) -> str:
        tok = self.next()
        if tok.kind == "num":
            return f"({tok.value})"
        if tok.kind == "str":
            return repr(tok.value)
        if tok.kind == "istr":
            parts = []
            for part in tok.value:  # type: ignore[attr-defined]
                if isinstance(part, str):
                    if part:
                        parts.append(repr(part))
                else:
                    sub = _Parser(self.src, part, self.names)
                    parts.append(sub.expression())
                    sub.done()
            return "__f_concat(" + ", ".join(parts or ["''"]) + ")"
        if tok.kind == "name":
            name = str(tok.value)
            if name in _CONSTANTS:
                return _CONSTANTS[name]
            name = self.check_name(tok)
            if self.at("("):
                if name not in self.names.functions:
                    raise self.src.error(f"Function or Macro [{name}] does not exist", tok.pos)
                return f"__f_fn_{name}({self.arguments()})"
            return name
        if tok.kind == "op":
            if tok.value == "(":
                inner = self.expression()
                self.expect(")")
                return f"({inner})"
            if tok.value == "[":
                items = []
                while not self.at("]"):
                    items.append(self.expression())
                    if not self.at("]"):
                        self.expect(",")
                self.expect("]")
                return "[" + ", ".join(items) + "]"
            if tok.value == "{":
                pairs = []
                while not self.at("}"):
                    key = self.expression()
                    self.expect(":")
                    pairs.append(f"{key}: {self.expression()}")
                    if not self.at("}"):
                        self.expect(",")
                self.expect("}")
                return "{" + ", ".join(pairs) + "}"
        raise self.unexpected(tok, "a value")

    def postfix(self, base: str) -> str:
        while True:
            if self.at("."):
                dot = self.next()
                tok = self.next()
                if tok.kind == "num":                       # list.0 (Pebble allows numeric attributes)
                    base = f"{base}[{tok.value}]"
                    continue
                if tok.kind != "name":
                    raise self.unexpected(tok, "an attribute name")
                attr = self.check_name(tok)
                if base == "loop" and attr in _LOOP_ATTRS:       # Pebble's 0-based counters, if a loop
                    base = f"__f_loop(loop, {attr!r})"
                elif attr.isidentifier():
                    base = f"{base}.{attr}"
                else:                                       # `$` is legal in Pebble names, not in Jinja
                    base = f"{base}[{attr!r}]"
                if self.at("("):
                    raise self.src.error(f"calling method `{attr}` is not allowed", dot.pos)
            elif self.at("["):
                self.next()
                if self.at(":"):
                    lower = ""
                else:
                    lower = self.expression()
                if self.at(":"):
                    self.next()
                    upper = "" if self.at("]") else self.expression()
                    base = f"{base}[{lower}:{upper}]"
                else:
                    base = f"{base}[{lower}]"
                self.expect("]")
            else:
                return base

    def arguments(self) -> str:
        """'(' [arg {',' arg}] ')' where arg := NAME '=' expression | expression"""
        self.expect("(")
        args = []
        while not self.at(")"):
            if self.peek().kind == "name" and self.at("=", offset=1):
                name = self.expect_name()
                self.next()
                args.append(f"{name}={self.expression()}")
            else:
                args.append(self.expression())
            if not self.at(")"):
                self.expect(",")
        self.expect(")")
        return ", ".join(args)

    def filter_call(self, left: str) -> str:
        tok = self.peek()
        name = self.expect_name()
        if name not in self.names.filters:
            raise self.src.error(f"Filter [{name}] does not exist", tok.pos)
        if self.at("("):
            return f"(({left})|{name}({self.arguments()}))"
        return f"(({left})|{name})"

    def test(self, left: str) -> str:
        negate = False
        if self.at("not", "name"):
            self.next()
            negate = True
        tok = self.peek()
        name = self.expect_name()
        if name not in self.names.tests:
            raise self.src.error(f"Wrong operand [{name}] for test", tok.pos)
        call = f"({self.arguments()})" if self.at("(") else ""
        return f"(({left}) is {'not ' if negate else ''}{name}{call})"

    def filter_chain(self) -> str:
        """For ``{% filter a | b(x) %}``: the Jinja filter section header."""
        parts = []
        while True:
            tok = self.peek()
            name = self.expect_name()
            if name not in self.names.filters:
                raise self.src.error(f"Filter [{name}] does not exist", tok.pos)
            parts.append(name + (f"({self.arguments()})" if self.at("(") else ""))
            if not self.at("|"):
                return "|".join(parts)
            self.next()


#### Template scanner #######################################################################################

_RAW_END = {
    "raw": re.compile(r"\{%-?\s*endraw\s*-?%\}"),
    "verbatim": re.compile(r"\{%-?\s*endverbatim\s*-?%\}"),
}
_TAG_NAME = re.compile(r"\s*([A-Za-z_]+)")
_BLOCK_TAGS = {"if": "endif", "for": "endfor", "filter": "endfilter"}


@dataclasses.dataclass(frozen=True)
class Translation:
    """The Jinja source of a template, and — when the template is exactly one ``{{ expr }}`` with only
    whitespace around — the Jinja source of that expression (for typed rendering)."""

    source: str
    single_expression: str | None


def translate(template: str, names: Names) -> Translation:
    """Translate Pebble ``template`` to Jinja. Raises :class:`ExpressionError` on a syntax error."""
    src = _Source(template)
    out: list[str] = []
    pos = 0
    n = len(template)
    prints: list[str] = []
    other_constructs = False
    stack: list[tuple[str, int]] = []      # open block tags, for Pebble-like error messages
    while pos < n:
        start = template.find("{", pos)
        while start != -1 and template[start + 1:start + 2] not in ("{", "%", "#"):
            start = template.find("{", start + 1)
        if start == -1:
            out.append(template[pos:])
            if template[pos:].strip():
                other_constructs = True
            break
        if start > pos:
            out.append(template[pos:start])
            if template[pos:start].strip():
                other_constructs = True
        kind = template[start + 1]
        if kind == "#":
            end = template.find("#}", start + 2)
            if end == -1:
                raise src.error("unclosed comment", start)
            out.append(template[start:end + 2])
            other_constructs = True
            pos = end + 2
            continue
        trim_left = template.startswith("-", start + 2)
        body = start + 3 if trim_left else start + 2
        if kind == "{":
            tokens, pos, closer = _lex(src, body, ("-}}", "}}"))
            parser = _Parser(src, tokens, names)
            if parser.peek().kind == "end":
                raise src.error("empty expression", start)
            expr = parser.expression()
            parser.done()
            prints.append(expr)
            newlines = "\n" * template.count("\n", start, pos)
            out.append(f"{{{{{'-' if trim_left else ''} {expr} {newlines}{'-' if closer == '-}}' else ''}}}}}")
            continue
        # a tag
        other_constructs = True
        m = _TAG_NAME.match(template, body)
        if not m:
            raise src.error("missing tag name", start)
        tag = m.group(1)
        if tag in _RAW_END:
            close = template.find("%}", m.end())
            if close == -1 or template[m.end():close].strip("- \t\r\n"):
                raise src.error(f"malformed `{tag}` tag", start)
            end_tag = _RAW_END[tag].search(template, close + 2)
            if end_tag is None:
                raise src.error(f"missing `end{tag}`", start)
            out.append("{% raw %}" + template[close + 2:end_tag.start()] + "{% endraw %}")
            pos = end_tag.end()
            continue
        tokens, pos, closer = _lex(src, m.end(), ("-%}", "%}"))
        parser = _Parser(src, tokens, names)
        newlines = "\n" * template.count("\n", start, pos)
        head = _tag(tag, parser, src, start, stack)
        parser.done()
        out.append(f"{{%{'-' if trim_left else ''} {head} {newlines}{'-' if closer == '-%}' else ''}%}}")
    if stack:
        tag, at = stack[-1]
        raise src.error(f"unclosed `{tag}` tag, expected `{_BLOCK_TAGS[tag]}`", at)
    single = prints[0] if len(prints) == 1 and not other_constructs else None
    return Translation("".join(out), single)


def _tag(tag: str, parser: _Parser, src: _Source, at: int, stack: list[tuple[str, int]]) -> str:
    """The Jinja header for one Pebble tag (``if``, ``elseif``, ``else``, ``for``, ``set``, ``filter``…)."""
    if tag in ("if", "elseif", "elif"):
        if tag == "if":
            stack.append(("if", at))
        elif not stack or stack[-1][0] != "if":
            raise src.error(f"unexpected `{tag}`", at)
        return f"{'if' if tag == 'if' else 'elif'} __f_bool({parser.expression()})"
    if tag == "else":
        if not stack or stack[-1][0] not in ("if", "for"):
            raise src.error("unexpected `else`", at)
        return "else"
    if tag in ("endif", "endfor", "endfilter"):
        opener = tag[3:]
        if not stack or stack[-1][0] != opener:
            raise src.error(f"unexpected `{tag}`", at)
        stack.pop()
        return tag
    if tag == "for":
        stack.append(("for", at))
        var = parser.expect_name()
        parser.expect("in", "name")
        return f"for {var} in __f_iter({parser.expression()})"
    if tag == "set":
        var = parser.expect_name()
        parser.expect("=")
        return f"set {var} = {parser.expression()}"
    if tag == "filter":
        stack.append(("filter", at))
        return f"filter {parser.filter_chain()}"
    raise src.error(f"Unexpected tag name [{tag}]", at)
