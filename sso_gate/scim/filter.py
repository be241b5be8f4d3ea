"""RFC 7644 §3.4.2.2 filters and §3.5.2 PATCH paths: parsing, evaluation against stored
resources, the equalities a storage layer may use as an indexed pre-filter, and a formatter
(``parse_filter(format_filter(f)) == f``).

The parser is a hand-written recursive descent over a single-regex tokenizer; its recursion is
bounded by ``max_depth`` (parentheses, ``not`` and value filters), never by the input length:
``and``/``or`` chains are built and walked iteratively. Parses are memoized by text (the AST
is immutable), since IdPs repeat the same few filters.

Leniency beyond the RFC 7644 ABNF: ``true``/``false``/``null`` are accepted in any case, and
any whitespace separates tokens. Evaluation lives in ``_evaluate.py`` and is re-exported here.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import TypeAlias

from sso_gate.scim._evaluate import check_filter, evaluate, indexable_equalities, matches_value
from sso_gate.scim._paths import (
    NAME,
    OPERATORS,
    URN_PREFIX,
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    Value,
    ValuePath,
    spine,
    split_urn,
)
from sso_gate.scim.errors import SCIMError

__all__ = [
    "OPERATORS",
    "And",
    "AttrPath",
    "Compare",
    "Filter",
    "Not",
    "Or",
    "PatchPath",
    "Present",
    "Value",
    "ValuePath",
    "check_filter",
    "evaluate",
    "format_filter",
    "format_path",
    "indexable_equalities",
    "matches_value",
    "parse_filter",
    "parse_path",
]


# --- tokenizer and parser ---------------------------------------------------------------------

_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
    | (?P<str>"[^"\\]*(?:\\.[^"\\]*)*")
    | (?P<num>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    | (?P<word>{URN_PREFIX}?{NAME}(?:\.{NAME})?)
    | (?P<sub>\.{NAME})
    | (?P<punct>[()\[\]])
    | (?P<err>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_Token: TypeAlias = tuple[str, str, int]  # (kind, text, offset); kind "(" etc. for punctuation
_KEYWORD_VALUES: dict[str, Value] = {"true": True, "false": False, "null": None}


class _Parser:
    __slots__ = ("toks", "i", "max_depth", "scim_type", "what", "in_brackets")

    def __init__(self, text: str, max_depth: int, scim_type: str, what: str) -> None:
        self.scim_type = scim_type
        self.what = what
        self.max_depth = max_depth
        self.in_brackets = False
        self.i = 0
        toks: list[_Token] = []
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind == "ws":
                continue
            if kind == "err":
                char = m.group()
                if char == '"':
                    raise self.error("unterminated string", m.start())
                raise self.error(f"unexpected character {char!r}", m.start())
            toks.append((m.group() if kind == "punct" else str(kind), m.group(), m.start()))
        toks.append(("end", "", len(text)))
        self.toks = toks

    def error(self, message: str, offset: int) -> SCIMError:
        return SCIMError(
            f"invalid {self.what} at character {offset + 1}: {message}", scim_type=self.scim_type
        )

    def found(self) -> str:
        kind, text, _ = self.toks[self.i]
        return "end of input" if kind == "end" else repr(text[:40])

    def expect(self, kind: str) -> None:
        tok = self.toks[self.i]
        if tok[0] != kind:
            raise self.error(f"expected '{kind}', found {self.found()}", tok[2])
        self.i += 1

    def enter(self, depth: int, offset: int) -> None:
        if depth >= self.max_depth:
            raise self.error(f"{self.what} nests deeper than {self.max_depth}", offset)

    def keyword(self, word: str) -> bool:
        kind, text, _ = self.toks[self.i]
        if kind == "word" and text.lower() == word:
            self.i += 1
            return True
        return False

    def parse_or(self, depth: int) -> Filter:
        # RFC 7644 §3.4.2.2 precedence: "not" binds tighter than "and", which binds tighter
        # than "or"; both binary operators associate to the left.
        left = self.parse_and(depth)
        while self.keyword("or"):
            left = Or(left, self.parse_and(depth))
        return left

    def parse_and(self, depth: int) -> Filter:
        left = self.parse_term(depth)
        while self.keyword("and"):
            left = And(left, self.parse_term(depth))
        return left

    def parse_term(self, depth: int) -> Filter:
        kind, text, offset = self.toks[self.i]
        if kind == "(":
            self.enter(depth, offset)
            self.i += 1
            inner = self.parse_or(depth + 1)
            self.expect(")")
            return inner
        if kind != "word":
            raise self.error(
                f"expected an attribute path, '(' or 'not (', found {self.found()}", offset
            )
        if text.lower() == "not" and self.toks[self.i + 1][0] == "(":
            self.enter(depth, offset)
            self.i += 2
            inner = self.parse_or(depth + 1)
            self.expect(")")
            return Not(inner)
        path = word_path(text)
        self.i += 1
        kind, word, offset = self.toks[self.i]
        if kind == "[":
            return ValuePath(path, self.value_filter(path, depth, offset))
        if kind == "word":
            op = word.lower()
            if op == "pr":
                self.i += 1
                return Present(path)
            if op in OPERATORS:
                self.i += 1
                return Compare(path, op, self.value())
        raise self.error(
            f"expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '{text}', "
            f"found {self.found()}",
            offset,
        )

    def value_filter(self, path: AttrPath, depth: int, offset: int) -> Filter:
        if self.in_brackets:
            raise self.error("value filters cannot be nested", offset)
        if path.sub is not None:
            raise self.error(f"a value filter cannot follow the sub-attribute '{path}'", offset)
        self.enter(depth, offset)
        self.i += 1
        self.in_brackets = True
        inner = self.parse_or(depth + 1)
        self.in_brackets = False
        self.expect("]")
        return inner

    def value(self) -> Value:
        kind, text, offset = self.toks[self.i]
        self.i += 1
        if kind == "str":
            if "\\" not in text:
                return text[1:-1]
            try:
                decoded: str = json.loads(text, strict=False)
            except ValueError:
                raise self.error("invalid escape sequence in string", offset) from None
            return decoded
        if kind == "num":
            try:
                number = float(text) if any(c in text for c in ".eE") else int(text)
            except ValueError:
                raise self.error("number out of range", offset) from None
            if isinstance(number, float) and math.isinf(number):
                raise self.error("number out of range", offset)
            return number
        if kind == "word" and text.lower() in _KEYWORD_VALUES:
            return _KEYWORD_VALUES[text.lower()]
        self.i -= 1
        raise self.error(
            "expected a value (a quoted string, a number, true, false or null), "
            f"found {self.found()}",
            offset,
        )

    def finish(self) -> None:
        kind, _, offset = self.toks[self.i]
        if kind != "end":
            raise self.error(f"unexpected {self.found()}", offset)


def word_path(text: str) -> AttrPath:
    urn, rest = split_urn(text)
    attr, _, sub = rest.partition(".")
    return AttrPath(urn, attr, sub or None)


def parse_filter(text: str, *, max_length: int = 4096, max_depth: int = 32) -> Filter:
    """Parse a ``filter`` query parameter; ``invalidFilter`` on any error.

    Attribute names, operators and ``and``/``or``/``not`` are case-insensitive; the names keep
    the client's spelling in the AST. ``true``/``false``/``null`` are also accepted in any case.
    """
    if len(text) > max_length:
        raise SCIMError(f"filter is longer than {max_length} characters", scim_type="invalidFilter")
    return _parse_filter(text, max_depth)


@lru_cache(maxsize=1024)
def _parse_filter(text: str, max_depth: int) -> Filter:
    parser = _Parser(text, max_depth, "invalidFilter", "filter")
    if parser.toks[0][0] == "end":
        raise SCIMError("filter is empty", scim_type="invalidFilter")
    result = parser.parse_or(0)
    parser.finish()
    return result


def parse_path(text: str) -> PatchPath:
    """Parse a PATCH ``path``; ``invalidPath`` on any error (including inside the brackets).

    A URN prefix ends at the last ":" before the attribute name, so
    ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`` is the
    enterprise schema, attribute ``manager``, sub-attribute ``value``.
    """
    if len(text) > 4096:
        raise SCIMError("path is longer than 4096 characters", scim_type="invalidPath")
    return _parse_path(text)


@lru_cache(maxsize=1024)
def _parse_path(text: str) -> PatchPath:
    parser = _Parser(text, 32, "invalidPath", "path")
    kind, word, offset = parser.toks[0]
    if kind != "word":
        raise parser.error(f"expected an attribute path, found {parser.found()}", offset)
    attr = word_path(word)
    parser.i = 1
    value_filter = sub = None
    kind, _, offset = parser.toks[1]
    if kind == "[":
        value_filter = parser.value_filter(attr, 0, offset)
        kind, word, _ = parser.toks[parser.i]
        if kind == "sub":
            sub = word[1:]
            parser.i += 1
    parser.finish()
    return PatchPath(attr, value_filter, sub)


# --- formatting -------------------------------------------------------------------------------


def format_filter(f: Filter) -> str:
    """The canonical text of ``f``: lower-case operators, JSON literals, minimal parentheses."""
    kind = type(f)
    if kind is Compare:
        assert isinstance(f, Compare)
        return f"{f.path} {f.op} {_literal(f.value)}"
    if kind is Present:
        assert isinstance(f, Present)
        return f"{f.path} pr"
    if kind is Not:
        assert isinstance(f, Not)
        return f"not ({format_filter(f.inner)})"
    if kind is ValuePath:
        assert isinstance(f, ValuePath)
        return f"{f.path}[{format_filter(f.filter)}]"
    texts = []
    for i, part in enumerate(spine(f)):
        text = format_filter(part)
        # Left-associative chains need parentheses only around a right operand of the same
        # operator, and around an "or" inside an "and".
        if (i > 0 and type(part) is kind) or (kind is And and type(part) is Or):
            text = f"({text})"
        texts.append(text)
    return (" and " if kind is And else " or ").join(texts)


def format_path(path: PatchPath) -> str:
    text = str(path.attr)
    if path.value_filter is not None:
        text += f"[{format_filter(path.value_filter)}]"
    return f"{text}.{path.sub}" if path.sub else text


def _literal(value: Value) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)
