"""The small JSONPath dialect CRD printer columns use.

`additionalPrinterColumns[].jsonPath` is a path relative to the object, such as
`.spec.replicas`, `.status.conditions[0].type`, `.spec.containers[*].image`,
`.metadata.labels['app.kubernetes.io/name']` or
`.status.conditions[?(@.type=="Ready")].status`. This module parses such a path
once and evaluates it against plain dicts; anything richer (ranges with text,
functions) is out of scope because CRD validation only admits simple paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Step = Callable[[Any], Iterator[Any]]

_MISSING = object()


class JSONPathError(ValueError):
    """The path is not in the supported dialect."""


@dataclass(frozen=True)
class JSONPath:
    """A parsed path; `find` lists every value it selects, in document order."""

    source: str
    steps: tuple[Step, ...]

    def find(self, obj: Any) -> list[Any]:
        """Every value the path selects in `obj`; empty when nothing matches."""
        current = [obj]
        for step in self.steps:
            current = [out for value in current for out in step(value)]
        return current

    def first(self, obj: Any, default: Any = None) -> Any:
        """The first selected value, or `default` when nothing matches."""
        found = self.find(obj)
        return found[0] if found else default


def _field(name: str) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, dict) and name in value:
            yield value[name]

    return step


def _fields(names: list[str]) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, dict):
            for n in names:
                if n in value:
                    yield value[n]

    return step


def _wildcard(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        yield from value.values()
    elif isinstance(value, list):
        yield from value


def _index(i: int) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, list) and -len(value) <= i < len(value):
            yield value[i]

    return step


def _slice(start: int | None, stop: int | None, stride: int | None) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, list):
            yield from value[start:stop:stride]

    return step


def _descend(name: str) -> Step:
    def walk(value: Any) -> Iterator[Any]:
        if isinstance(value, dict):
            if name in value:
                yield value[name]
            for child in value.values():
                yield from walk(child)
        elif isinstance(value, list):
            for child in value:
                yield from walk(child)

    return walk


class _Parser:
    """A recursive-descent parser over the path text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> JSONPathError:
        return JSONPathError(f"invalid JSONPath {self.text!r} at {self.pos}: {what}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def expect(self, s: str) -> None:
        self.skip_space()
        if not self.text.startswith(s, self.pos):
            raise self.error(f"expected {s!r}")
        self.pos += len(s)

    def ident(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ".[]()=!<> ":
            self.pos += 1
        if start == self.pos:
            raise self.error("expected a field name")
        return self.text[start : self.pos]

    def quoted(self) -> str:
        quote = self.peek()
        if not quote or quote not in "'\"":
            raise self.error("expected a quoted string")
        self.pos += 1
        out = []
        while self.pos < len(self.text) and self.text[self.pos] != quote:
            if self.text[self.pos] == "\\" and self.pos + 1 < len(self.text):
                self.pos += 1
            out.append(self.text[self.pos])
            self.pos += 1
        if self.pos >= len(self.text):
            raise self.error("unterminated string")
        self.pos += 1
        return "".join(out)

    def steps(self, stop: str = "") -> list[Step]:
        """Segments until the end of the text or a character in `stop`."""
        out: list[Step] = []
        while self.pos < len(self.text) and self.text[self.pos] not in stop:
            if self.peek(2) == "..":
                self.pos += 2
                out.append(_descend(self.ident()))
            elif self.peek() == ".":
                self.pos += 1
                if self.peek() == "*":
                    self.pos += 1
                    out.append(_wildcard)
                elif self.peek() == "[":
                    continue
                elif self.pos < len(self.text) and self.text[self.pos] not in stop:
                    out.append(_field(self.ident()))
            elif self.peek() == "[":
                self.pos += 1
                out.append(self.bracket())
            elif stop:
                break
            else:
                raise self.error("expected '.' or '['")
        return out

    def bracket(self) -> Step:
        self.skip_space()
        c = self.peek()
        if not c:
            raise self.error("unterminated '['")
        if c == "*":
            self.pos += 1
            self.expect("]")
            return _wildcard
        if c in "'\"":
            names = [self.quoted()]
            self.skip_space()
            while self.peek() == ",":
                self.pos += 1
                self.skip_space()
                names.append(self.quoted())
                self.skip_space()
            self.expect("]")
            return _field(names[0]) if len(names) == 1 else _fields(names)
        if self.peek(2) == "?(":
            self.pos += 2
            pred = self.filter()
            self.expect(")")
            self.expect("]")
            return _filter(pred)
        return self.index_or_slice()

    def number(self) -> int | None:
        self.skip_space()
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        while self.peek().isdigit():
            self.pos += 1
        raw = self.text[start : self.pos]
        if raw in ("", "-"):
            if raw == "-":
                raise self.error("expected a number")
            return None
        return int(raw)

    def index_or_slice(self) -> Step:
        parts = [self.number()]
        while self.peek() == ":":
            self.pos += 1
            parts.append(self.number())
        self.expect("]")
        if len(parts) == 1:
            if parts[0] is None:
                raise self.error("expected an index")
            return _index(parts[0])
        if len(parts) > 3:
            raise self.error("too many ':' in slice")
        start, stop, stride = (parts + [None, None])[:3]
        if stride == 0:
            raise self.error("slice step cannot be zero")
        return _slice(start, stop, stride)

    def operand(self) -> Callable[[Any], list[Any]]:
        self.skip_space()
        c = self.peek()
        if not c:
            raise self.error("expected an operand")
        if c == "@":
            self.pos += 1
            path = JSONPath("@", tuple(self.steps(stop=")=!<> ")))
            return path.find
        if c in "'\"":
            literal: Any = self.quoted()
        elif self.text.startswith("true", self.pos):
            self.pos += 4
            literal = True
        elif self.text.startswith("false", self.pos):
            self.pos += 5
            literal = False
        else:
            start = self.pos
            while self.peek() and (self.peek().isdigit() or self.peek() in "-.eE+"):
                self.pos += 1
            raw = self.text[start : self.pos]
            try:
                literal = float(raw) if any(ch in raw for ch in ".eE") else int(raw)
            except ValueError:
                raise self.error("expected '@', a string or a number") from None
        return lambda _value: [literal]

    def filter(self) -> Callable[[Any], bool]:
        left = self.operand()
        self.skip_space()
        for op in ("==", "!=", "<=", ">=", "<", ">"):
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                right = self.operand()
                self.skip_space()
                return _comparison(left, op, right)
        return lambda value: bool(left(value))


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _compare(a: Any, op: str, b: Any) -> bool:
    na, nb = _number(a), _number(b)
    left: Any
    right: Any
    if na is not None and nb is not None:
        left, right = na, nb
    elif isinstance(a, str) and isinstance(b, str):
        left, right = a, b
    else:
        # Values of different types are only ever unequal.
        return op == "!=" if op in ("==", "!=") else False
    return {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _comparison(
    left: Callable[[Any], list[Any]], op: str, right: Callable[[Any], list[Any]]
) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        lv, rv = left(value), right(value)
        if not lv or not rv:
            return False
        return _compare(lv[0], op, rv[0])

    return test


def _filter(pred: Callable[[Any], bool]) -> Step:
    def step(value: Any) -> Iterator[Any]:
        for element in _wildcard(value):
            if pred(element):
                yield element

    return step


def parse(path: str) -> JSONPath:
    """Parse a CRD column path; a surrounding `{...}` is accepted and ignored."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    parser = _Parser(text)
    steps: list[Step] = []
    if text and text[0] not in ".[":
        # Tolerate a missing leading dot ("spec.replicas"), as kubectl does.
        steps.append(_field(parser.ident()))
    steps.extend(parser.steps())
    if parser.pos != len(text):
        raise parser.error("unexpected text")
    return JSONPath(path, tuple(steps))
