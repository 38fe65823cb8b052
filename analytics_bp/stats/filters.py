"""The Stats API's filters as Plausible's Stats API v2 defines them: parsed, validated, echoed and
matched against one record; pure, no Flask, no I/O.

A filter is a leaf `[operator, dimension, [values]]` with an optional fourth item
`{"case_sensitive": bool}` (default true), or a tree: `["and", [filters]]`, `["or", [filters]]`,
`["not", filter]`. The query's list of filters is their conjunction. Operators: `is`, `contains`
and `matches` (an RE2 regular expression, found anywhere in the value, as ClickHouse's `match`)
are true when any value matches; `is_not`, `contains_not` and `matches_not` are their negations,
so a record without the dimension passes them.

Why RE2 (google-re2) and not Python's `re`: a caller's pattern must not be able to take
exponential time (RE2 is linear in the input), and InfluxDB evaluates the same pattern with Go's
`regexp`, which implements RE2's syntax: one pattern means the same in both places.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from .. import schema
from ..beacons import encodable

OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
LOGIC = ("and", "or", "not")
NEGATION_OF = {"is_not": "is", "contains_not": "contains", "matches_not": "matches"}
DIMENSIONS = schema.DIMENSION_KEYS  # dimension -> the raw key that holds it
MAX_VALUES = 20
MAX_VALUE_LENGTH = 256
MAX_LEAVES = 20
MAX_DEPTH = 6


class FilterError(ValueError):
    """A filter the API refuses; the message says why."""


@dataclass(frozen=True)
class Filter:
    """One leaf: `op` on `dimension` with `values`."""

    op: str
    dimension: str
    values: tuple[str, ...]
    case_sensitive: bool = True

    @property
    def tag(self) -> str:
        return DIMENSIONS[self.dimension]

    @property
    def positive(self) -> str:
        """`is`, `contains` or `matches`: the test, before any negation."""
        return NEGATION_OF.get(self.op, self.op)

    @property
    def negated(self) -> bool:
        return self.op in NEGATION_OF


@dataclass(frozen=True)
class Logic:
    """`and` or `or` of its children, or `not` of its one child."""

    op: str
    children: tuple[Node, ...]


Node = Filter | Logic


def leaves(nodes: Iterable[Node]) -> Iterator[Filter]:
    for node in nodes:
        if isinstance(node, Filter):
            yield node
        else:
            yield from leaves(node.children)


def parse(value: Any) -> tuple[Node, ...]:
    """The body's `filters` (absent: none)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FilterError("filters must be a list of filters such as [\"is\", \"visit:source\", "
                          "[\"Google\"]]")
    nodes = tuple(_node(item, 1) for item in value)
    if sum(1 for _ in leaves(nodes)) > MAX_LEAVES:
        raise FilterError(f"at most {MAX_LEAVES} filters in all")
    return nodes


def _node(item: Any, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise FilterError(f"filters nest at most {MAX_DEPTH} deep")
    if not (isinstance(item, list) and item and isinstance(item[0], str)):
        raise FilterError("each filter must be [operator, dimension, [values]], [\"and\" or \"or\", "
                          "[filters]] or [\"not\", filter]")
    op = item[0]
    if op in ("and", "or"):
        if len(item) != 2 or not isinstance(item[1], list) or not item[1]:
            raise FilterError(f'"{op}" takes a non-empty list of filters: ["{op}", [filters]]')
        return Logic(op, tuple(_node(child, depth + 1) for child in item[1]))
    if op == "not":
        if len(item) != 2:
            raise FilterError('"not" takes one filter: ["not", filter]')
        return Logic(op, (_node(item[1], depth + 1),))
    if op not in OPERATORS:
        raise FilterError(f"unknown filter operator {quote(op)}; one of "
                          f"{', '.join((*OPERATORS, *LOGIC))}")
    return _leaf(item)


def _leaf(item: list[Any]) -> Filter:
    op = item[0]
    if len(item) not in (3, 4) or not isinstance(item[1], str):
        raise FilterError(f"each filter must be [operator, dimension, [values]]: {quote(str(item)[:60])}")
    dimension, values = item[1], item[2]
    if dimension not in DIMENSIONS:
        raise FilterError(f"cannot filter by {quote(dimension)}; one of {', '.join(DIMENSIONS)}")
    if not (isinstance(values, list) and 0 < len(values) <= MAX_VALUES
            and all(isinstance(v, str) and 0 < len(v) <= MAX_VALUE_LENGTH and encodable(v)
                    for v in values)):
        raise FilterError(f"filter values for {dimension} must be 1 to {MAX_VALUES} non-empty "
                          f"strings of at most {MAX_VALUE_LENGTH} characters")
    case_sensitive = _modifiers(item[3] if len(item) == 4 else None)
    if dimension == "visit:country" and op in ("is", "is_not") and not all(len(v) == 2 for v in values):
        raise FilterError("visit:country filters take 2-letter country codes such as \"DE\"")
    leaf = Filter(op, dimension, tuple(values), case_sensitive)
    if leaf.positive == "matches":
        for pattern in values:
            try:
                compiled(pattern_of(leaf, pattern))
            except re2.error:
                raise FilterError(f"not a regular expression (RE2 syntax): {quote(pattern)}") from None
    return leaf


def _modifiers(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, dict) or set(value) - {"case_sensitive"} or not all(
            isinstance(v, bool) for v in value.values()):
        raise FilterError('a filter\'s fourth item must be {"case_sensitive": true or false}')
    return bool(value.get("case_sensitive", True))


def quote(value: str) -> str:
    """A caller's string in an error message: bounded and printable (never echoed raw)."""
    text = value[:40].encode("ascii", "backslashreplace").decode()
    return repr(text + ("…" if len(value) > 40 else ""))


def as_json(node: Node) -> list[Any]:
    """The filter as it can be posted again."""
    if isinstance(node, Logic):
        if node.op == "not":
            return ["not", as_json(node.children[0])]
        return [node.op, [as_json(child) for child in node.children]]
    out: list[Any] = [node.op, node.dimension, list(node.values)]
    return out if node.case_sensitive else [*out, {"case_sensitive": False}]


def pattern_of(leaf: Filter, value: str) -> str:
    """A value of `matches` as the regular expression both RE2 here and Go's `regexp` in
    InfluxDB evaluate: case-blind through RE2's own `(?i)` flag, the same text in both."""
    return value if leaf.case_sensitive else "(?i)" + value


@lru_cache(maxsize=256)
def compiled(pattern: str) -> Any:
    options = re2.Options()
    options.max_mem = 8 << 20  # a pattern's automaton stays small, whatever the caller sends
    options.log_errors = False  # a caller's invalid pattern is refused with 400, not written to stderr
    return re2.compile(pattern, options)


def matches(nodes: Iterable[Node], rec: dict[str, Any]) -> bool:
    """The filters on one record (a pageview or event attributed to its visit): stats/flux.py's
    `filter_expr` has InfluxDB apply the same tests."""
    return all(_true(node, rec) for node in nodes)


def _true(node: Node, rec: dict[str, Any]) -> bool:
    if isinstance(node, Logic):
        if node.op == "and":
            return all(_true(child, rec) for child in node.children)
        if node.op == "or":
            return any(_true(child, rec) for child in node.children)
        return not _true(node.children[0], rec)
    value = rec.get(node.tag)
    found = value is not None and _positive(node, str(value))
    return not found if node.negated else found


def _positive(leaf: Filter, text: str) -> bool:
    if leaf.positive == "matches":
        return any(compiled(pattern_of(leaf, v)).search(text) is not None for v in leaf.values)
    subject = text if leaf.case_sensitive else text.lower()
    wanted = leaf.values if leaf.case_sensitive else tuple(v.lower() for v in leaf.values)
    if leaf.positive == "is":
        return subject in wanted
    return any(v in subject for v in wanted)
