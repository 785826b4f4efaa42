"""Label selectors: the `-l` / `labelSelector=` syntax and the `LabelSelector` object form.

Both forms compile to one `LabelSelector`, an AND of requirements, so lists, watches,
controllers and the scale subresource all match labels the same way. Parse errors
are 400 BadRequest with the wording a real API server uses (`unable to parse
requirement: ...`, `found 'x', expected: ...`), because scripts and people grep for it.

The parser mirrors upstream's grammar rather than a regular expression, since its
corner cases are observable: `in` and `notin` are keywords only where an operator
may stand (`in in (in)` is valid), `x in ()` selects the empty value, `x=` means
`x=""`, and whitespace (space, tab, CR, LF) separates tokens anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from skiff.api.errors import bad_request
from skiff.api.validation.names import label_value, qualified_name

# Operators, spelled as upstream's selection.Operator values.
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_EXACT = (EQUALS, DOUBLE_EQUALS, NOT_EQUALS)
_INT64 = re.compile(r"[+-]?[0-9]+")

# matchExpressions operator → internal operator.
_DICT_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


class SelectorSyntaxError(ValueError):
    """A selector that cannot be parsed or holds an invalid key or value.

    Kept separate from `StatusError` so non-HTTP callers (controllers reading a
    stored selector) can catch it without importing the API error machinery.
    """


def _render(value: Any) -> str:
    # Field-error rendering: strings quoted (Go %q), lists as JSON, nil slices as null.
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _field_error(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {_render(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    # Upstream's aggregate error: one message alone, several deduplicated in brackets.
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _key_error(key: str, path: str) -> str | None:
    errs = qualified_name(key)
    return _field_error(path, key, "; ".join(errs)) if errs else None


@dataclass(frozen=True)
class Requirement:
    """One condition on one label key; a selector is the AND of its requirements."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfies this condition (a missing key fails `in`, passes `notin`)."""
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            return self._compare(labels.get(self.key))
        return False

    def _compare(self, actual: str | None) -> bool:
        if actual is None or len(self.values) != 1:
            return False
        if not _INT64.fullmatch(actual) or not _INT64.fullmatch(self.values[0]):
            return False
        have, want = int(actual), int(self.values[0])
        return have > want if self.operator == GREATER_THAN else have < want

    def to_string(self) -> str:
        """Canonical text: `k=v`, `k in (a,b)` with sorted values, `!k`, `k`."""
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        joined = ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({joined})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{joined}"


def new_requirement(
    key: str, operator: str, values: Iterable[str] | None, *, path: str = ""
) -> Requirement:
    """A checked requirement; raises `SelectorSyntaxError` with upstream's aggregate text.

    `values=None` stands for an absent list (rendered `null` in errors), which is
    what a `matchExpressions` entry without `values` turns into upstream.
    """
    vals = None if values is None else list(values)
    count = len(vals or [])
    child = (lambda name: f"{path}.{name}") if path else (lambda name: name)
    values_path = child("values")
    errs: list[str] = []
    if (e := _key_error(key, child("key"))) is not None:
        errs.append(e)
    if operator in (IN, NOT_IN):
        if count == 0:
            errs.append(_field_error(values_path, vals, "for 'in', 'notin' operators, "
                                                       "values set can't be empty"))
    elif operator in _EXACT:
        if count != 1:
            errs.append(_field_error(values_path, vals,
                                     "exact-match compatibility requires one single value"))
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if count != 0:
            errs.append(_field_error(values_path, vals,
                                     "values set must be empty for exists and does not exist"))
    elif operator in (GREATER_THAN, LESS_THAN):
        if count != 1:
            errs.append(_field_error(values_path, vals, "for 'Gt', 'Lt' operators, "
                                                       "exactly one value is required"))
        for i, v in enumerate(vals or []):
            if not _INT64.fullmatch(v) or not -(2**63) <= int(v) < 2**63:
                errs.append(_field_error(f"{values_path}[{i}]", v, "for 'Gt', 'Lt' operators, "
                                                                   "the value must be an integer"))
    else:
        supported = ", ".join(json.dumps(o) for o in (*_BINARY, EXISTS, DOES_NOT_EXIST))
        errs.append(f"{child('operator')}: Unsupported value: {json.dumps(operator)}: "
                    f"supported values: {supported}")
    for i, v in enumerate(vals or []):
        problems = label_value(v)
        if problems:
            errs.append(_field_error(f"{values_path}[{i}][{key}]", v, "; ".join(problems)))
    if errs:
        raise SelectorSyntaxError(_aggregate(errs))
    return Requirement(key, operator, tuple(vals or ()))


class LabelSelector:
    """A compiled label selector: the AND of its requirements.

    Everything (no requirements) matches all objects and is `empty`; Nothing
    (from a nil `LabelSelector`) matches none and is *not* empty, which is how
    upstream tells "no selector given" apart from "selector that selects nothing".
    """

    __slots__ = ("requirements", "_nothing", "_exact", "_hash")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        # Sorted by key so the canonical string and error order are deterministic.
        self.requirements: tuple[Requirement, ...] = tuple(
            sorted(requirements, key=lambda r: r.key)
        )
        self._nothing = nothing
        self._exact = self._exact_map()
        # Computed on first use: selectors serve as dict keys in hot paths (the
        # scheduler's count indexes), where rehashing every requirement adds up.
        self._hash: int | None = None

    def _exact_map(self) -> dict[str, str] | None:
        # Selectors made only of `k=v` (the matchLabels shape, by far the most common)
        # match with plain dict lookups instead of walking requirement objects.
        exact: dict[str, str] = {}
        for r in self.requirements:
            if r.operator not in (EQUALS, DOUBLE_EQUALS, IN) or len(r.values) != 1:
                return None
            if exact.get(r.key, r.values[0]) != r.values[0]:
                return None
            exact[r.key] = r.values[0]
        return exact

    @property
    def empty(self) -> bool:
        """True for a selector that does not restrict anything (matches every object)."""
        return not self._nothing and not self.requirements

    @property
    def nothing(self) -> bool:
        """True for the selector that matches no object at all."""
        return self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with `labels` (None for none) is selected."""
        if self._nothing:
            return False
        labels = labels or {}
        if self._exact is not None:
            return all(labels.get(k) == v for k, v in self._exact.items())
        return all(r.matches(labels) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have, if the selector pins it (for index lookups)."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def to_string(self) -> str:
        """Canonical text form, e.g. `app=web,tier in (a,b)`; "" for Everything and Nothing."""
        return ",".join(r.to_string() for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        if self._nothing:
            return "LabelSelector(<nothing>)"
        return f"LabelSelector({self.to_string()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return self._nothing == other._nothing and self.requirements == other.requirements

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((self._nothing, self.requirements))
        return self._hash


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """An equality-only selector (the `matchLabels` fast path); None or {} selects everything.

    Unvalidated on purpose: callers pass labels that were validated when stored.
    """
    if not labels:
        return EVERYTHING
    return LabelSelector(Requirement(k, EQUALS, (v,)) for k, v in labels.items())


def from_label_selector_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """Compile a `metav1.LabelSelector` (matchLabels + matchExpressions).

    Convention, as upstream's `LabelSelectorAsSelector`: `None` selects *nothing*
    (a missing selector must not adopt every pod), `{}` selects *everything*.
    Raises a 400 `StatusError` for an unknown operator or an invalid key or value;
    objects that passed validation never do.
    """
    if sel is None:
        return NOTHING
    match_labels = sel.get("matchLabels") or {}
    expressions = sel.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    reqs: list[Requirement] = []
    try:
        for k, v in match_labels.items():
            reqs.append(new_requirement(k, EQUALS, [v]))
        for expr in expressions:
            op = expr.get("operator")
            if op not in _DICT_OPERATORS:
                raise SelectorSyntaxError(
                    f"{json.dumps(op if op is not None else '')} "
                    "is not a valid label selector operator"
                )
            raw = expr.get("values")
            reqs.append(new_requirement(expr.get("key") or "", _DICT_OPERATORS[op],
                                        list(raw) if raw else None))
    except SelectorSyntaxError as e:
        raise bad_request(str(e)) from e
    return LabelSelector(reqs)


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `labelSelector=` text; "" or None selects everything.

    Raises a 400 BadRequest `StatusError` with the API server's message on bad input.
    """
    try:
        return parse_label_selector_or_raise(text or "")
    except SelectorSyntaxError as e:
        raise bad_request(str(e)) from e


def parse_label_selector_or_raise(text: str) -> LabelSelector:
    """Like `parse_label_selector` but raises `SelectorSyntaxError` (for non-HTTP callers)."""
    if not text.strip(" \t\r\n"):
        return EVERYTHING
    return LabelSelector(_Parser(text).parse())


# --- lexer -----------------------------------------------------------------------------

_ERROR, _END, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)

_TOKENS = {
    ")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN,
    "<": _LT, "!=": _NEQ, "notin": _NOTIN, "(": _OPEN,
}
_SPECIAL = frozenset("=!(),><")
_SPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[int, str]]:
    """Split selector text into (token, literal) pairs, ending with an end-of-string token."""
    out: list[tuple[int, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            out.append((_END, ""))
            return out
        if text[i] in _SPECIAL:
            # Longest run of symbols that still forms a known operator ("!=" not "!").
            j, best = i, None
            while j < n and text[j] in _SPECIAL:
                j += 1
                if text[i:j] in _TOKENS:
                    best = j
                elif best is not None:
                    break
            if best is None:
                out.append((_ERROR, f"error expected: keyword found '{text[i:j]}'"))
                i = j
            else:
                out.append((_TOKENS[text[i:best]], text[i:best]))
                i = best
            continue
        j = i
        while j < n and text[j] not in _SPECIAL and text[j] not in _SPACE:
            j += 1
        word = text[i:j]
        out.append((_TOKENS.get(word, _ID), word))
        i = j


# --- parser ----------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the token list, with upstream's error texts."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def _peek(self, as_values: bool = True) -> tuple[int, str]:
        return self._relabel(self.items[min(self.pos, len(self.items) - 1)], as_values)

    def _take(self, as_values: bool = True) -> tuple[int, str]:
        item = self._peek(as_values)
        self.pos += 1
        return item

    @staticmethod
    def _relabel(item: tuple[int, str], as_values: bool) -> tuple[int, str]:
        # Where a value or key may stand, "in"/"notin" are just words.
        if as_values and item[0] in (_IN, _NOTIN):
            return (_ID, item[1])
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self._peek()
            if tok == _END:
                return reqs
            if tok not in (_ID, _NOT):
                raise SelectorSyntaxError(
                    f"found '{lit}', expected: !, identifier, or 'end of string'"
                )
            try:
                reqs.append(self._requirement())
            except SelectorSyntaxError as e:
                raise SelectorSyntaxError(f"unable to parse requirement: {e}") from e
            tok, lit = self._take()
            if tok == _END:
                return reqs
            if tok != _COMMA:
                raise SelectorSyntaxError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self._peek()
            if tok not in (_ID, _NOT):
                raise SelectorSyntaxError(f"found '{lit}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        negated = False
        tok, key = self._take()
        if tok == _NOT:
            negated = True
            tok, key = self._take()
        if tok != _ID:
            raise SelectorSyntaxError(f"found '{key}', expected: identifier")
        if (e := _key_error(key, "<nil>")) is not None:
            raise SelectorSyntaxError(e)
        if negated:
            return new_requirement(key, DOES_NOT_EXIST, [])
        if self._peek()[0] in (_END, _COMMA):
            return new_requirement(key, EXISTS, [])
        op = self._operator()
        values = self._set_values() if op in (IN, NOT_IN) else self._exact_value()
        return new_requirement(key, op, sorted(values))

    def _operator(self) -> str:
        tok, lit = self._take(as_values=False)
        ops = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
               _NOTIN: NOT_IN, _NEQ: NOT_EQUALS}
        if tok not in ops:
            raise SelectorSyntaxError(f"found '{lit}', expected: {', '.join(_BINARY)}")
        return ops[tok]

    def _set_values(self) -> set[str]:
        tok, lit = self._take()
        if tok != _OPEN:
            raise SelectorSyntaxError(f"found '{lit}' expected: '('")
        tok, lit = self._peek()
        if tok == _CLOSE:
            self._take()
            return {""}
        if tok not in (_ID, _COMMA):
            raise SelectorSyntaxError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self._value_list()
        if self._take()[0] != _CLOSE:
            raise SelectorSyntaxError(f"found '{lit}', expected: ')'")
        return values

    def _value_list(self) -> set[str]:
        # Empty entries are real values: "(a,)" and "(,a)" both include "".
        values: set[str] = set()
        while True:
            tok, lit = self._take()
            if tok == _ID:
                values.add(lit)
                nxt, nlit = self._peek()
                if nxt == _CLOSE:
                    return values
                if nxt != _COMMA:
                    raise SelectorSyntaxError(f"found '{nlit}', expected: ',' or ')'")
            elif tok == _COMMA:
                if not values:
                    values.add("")
                nxt, _ = self._peek()
                if nxt == _CLOSE:
                    values.add("")
                    return values
                if nxt == _COMMA:
                    values.add("")
            else:
                raise SelectorSyntaxError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        tok, _ = self._peek()
        if tok in (_END, _COMMA):
            return {""}
        tok, lit = self._take()
        if tok == _ID:
            return {lit}
        raise SelectorSyntaxError(f"found '{lit}', expected: identifier")
