"""Attribute paths (RFC 7644 §3.10) and the filter AST (RFC 7644 §3.4.2.2), shared by the
schema, filter and PATCH modules.

Kept apart from ``filter.py`` so that ``schema.py`` can resolve paths without importing the
filter grammar, and so the evaluator can live in its own module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

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
    "parse_attr_path",
    "spine",
    "split_urn",
]


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``[schema ":"] attr ["." sub]``, spelled exactly as the client wrote it.

    Names are matched case-insensitively later (RFC 7643 §2.1), so the parse keeps the client's
    spelling and ``schema.find_attribute`` maps it to the canonical attribute.
    """

    schema: str | None
    attr: str
    sub: str | None = None

    def __str__(self) -> str:
        text = f"{self.schema}:{self.attr}" if self.schema else self.attr
        return f"{text}.{self.sub}" if self.sub else text


# RFC 7644 §3.10 ABNF: ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA.
# "$ref" (RFC 7643 §2.3.7) is the one name starting with "$", so "$" is allowed as well.
NAME = r"[A-Za-z$][A-Za-z0-9_$-]*"
# A schema URI ends at the last ":" before the attribute name: the URN itself contains dots
# ("...:2.0:User") but no brackets, quotes, parentheses or spaces.
URN_PREFIX = r"(?:[uU][rR][nN]:[^\s\"()\[\]]*:)"
_ATTR_PATH = re.compile(rf"({URN_PREFIX})?({NAME})(?:\.({NAME}))?")


def split_urn(text: str) -> tuple[str | None, str]:
    """``"urn:a:b:attr.sub"`` → ``("urn:a:b", "attr.sub")``; no URN → ``(None, text)``."""
    if text[:4].lower() == "urn:":
        head, _, tail = text.rpartition(":")
        return head, tail
    return None, text


def parse_attr_path(text: str) -> AttrPath | None:
    """A plain attribute path (no value filter), or None when ``text`` is not one."""
    m = _ATTR_PATH.fullmatch(text)
    if m is None:
        return None
    urn, attr, sub = m.groups()
    return AttrPath(urn[:-1] if urn else None, attr, sub)


Value: TypeAlias = str | int | float | bool | None
OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})


@dataclass(frozen=True, slots=True)
class Compare:
    """``path op value``; ``op`` is lower-case (operators are case-insensitive on input)."""

    path: AttrPath
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Present:
    """``path pr``."""

    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    """``left and right``. Chains are left-deep: ``a and b and c`` is ``And(And(a, b), c)``."""

    left: Filter
    right: Filter

    # A 4096-character filter can chain ~450 operands; the generated recursive __eq__, __hash__
    # and __repr__ would exceed Python's recursion limit on such a chain, so these walk it.
    def __eq__(self, other: object) -> bool:
        return _chain_eq(self, other)

    def __hash__(self) -> int:
        return hash(("and", *spine(self)))

    def __repr__(self) -> str:
        return _chain_repr(self)


@dataclass(frozen=True, slots=True)
class Or:
    """``left or right``, left-deep like ``And``."""

    left: Filter
    right: Filter

    def __eq__(self, other: object) -> bool:
        return _chain_eq(self, other)

    def __hash__(self) -> int:
        return hash(("or", *spine(self)))

    def __repr__(self) -> str:
        return _chain_repr(self)


@dataclass(frozen=True, slots=True)
class Not:
    """``not (inner)``."""

    inner: Filter


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``path[filter]``: the filter's paths name sub-attributes of ``path``."""

    path: AttrPath
    filter: Filter


Filter: TypeAlias = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 §3.5.2): ``attrPath`` or ``valuePath ["." subAttr]``."""

    attr: AttrPath
    value_filter: Filter | None = None
    sub: str | None = None


def spine(f: Filter) -> list[Filter]:
    """The operands of a left-leaning chain of the same binary operator, left to right."""
    kind = type(f)
    rights: list[Filter] = []
    node = f
    while type(node) is kind and isinstance(node, And | Or):
        rights.append(node.right)
        node = node.left
    rights.append(node)
    rights.reverse()
    return rights


def _chain_eq(a: And | Or, b: object) -> bool:
    if type(a) is not type(b):
        return False
    assert isinstance(b, And | Or)
    return spine(a) == spine(b)


def _chain_repr(f: And | Or) -> str:
    operands = spine(f)
    name = type(f).__name__
    head = f"{name}(left=" * (len(operands) - 1) + repr(operands[0])
    return head + "".join(f", right={op!r})" for op in operands[1:])
