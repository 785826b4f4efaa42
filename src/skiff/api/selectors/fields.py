"""Field selectors: `fieldSelector=metadata.name=web,status.phase!=Running`.

Much poorer than label selectors on purpose (upstream's design): only `=`, `==`
and `!=`, joined by commas, over a per-resource whitelist of fields. Values may
contain `,`, `=` and `\\` when escaped with a backslash; field names may not.
A missing field compares as the empty string, so `spec.nodeName=` finds
unscheduled pods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from skiff.api.errors import bad_request
from skiff.api.resources import ResourceType

EQUALS = "="
NOT_EQUALS = "!="

# Checked longest first so that "a==b" does not leave "=b" as the value.
_OPERATORS = ("!=", "==", "=")

# Fields every resource can be selected on, before its own `field_selectors`.
COMMON_FIELDS = ("metadata.name", "metadata.namespace")

Getter = Callable[[str], str | None]


@dataclass(frozen=True)
class FieldRequirement:
    """One `field op value` term; `value` is already unescaped."""

    field: str
    operator: str
    value: str

    def matches(self, get: Getter) -> bool:
        """Whether the object behind `get` satisfies this term."""
        actual = get(self.field) or ""
        return (actual == self.value) == (self.operator == EQUALS)

    def to_string(self) -> str:
        """The term as it would be written in a query, escaping the value."""
        return f"{self.field}{self.operator}{escape_value(self.value)}"


class FieldSelector:
    """The AND of field requirements, in upstream's (sorted) term order."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        self.requirements: tuple[FieldRequirement, ...] = tuple(requirements)

    @property
    def empty(self) -> bool:
        """True when the selector restricts nothing."""
        return not self.requirements

    def matches(self, get: Getter) -> bool:
        """Whether the object whose selectable fields `get` returns is selected."""
        return all(r.matches(get) for r in self.requirements)

    def requires_exact_match(self, field: str) -> str | None:
        """The value `field` must equal, if some term pins it (`field=v` or `field==v`)."""
        for r in self.requirements:
            if r.field == field and r.operator == EQUALS:
                return r.value
        return None

    def validate_fields(self, allowed: Iterable[str]) -> None:
        """Reject the first unknown field (in term order) with upstream's 400."""
        allowed = set(allowed)
        for r in self.requirements:
            if r.field not in allowed:
                raise bad_request(f"field label not supported: {r.field}")

    def to_string(self) -> str:
        """Canonical text: terms in sorted order, values escaped."""
        return ",".join(r.to_string() for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"FieldSelector({self.to_string()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash(self.requirements)


def escape_value(value: str) -> str:
    """Escape `\\`, `,` and `=` so `value` survives a round trip through the parser."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_value(raw: str) -> str:
    """Undo `escape_value`; a 400 for unknown escapes or bare `,`/`=` in a value."""
    if not any(c in raw for c in "\\,="):
        return raw
    out: list[str] = []
    pending = False
    for c in raw:
        if pending:
            if c not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            pending = False
        elif c == "\\":
            pending = True
        elif c in ",=":
            # Upstream prints the rune with %v, i.e. its code point number.
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if pending:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    # Commas separate terms unless escaped; the backslash stays for unescape_value.
    terms: list[str] = []
    start, escaped = 0, False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    # The first operator occurrence splits; field names cannot contain escapes.
    for i in range(len(term)):
        for op in _OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse `fieldSelector=` text; "" or None selects everything. Raises a 400 on bad syntax."""
    if not text:
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, raw = split
        reqs.append(FieldRequirement(field, NOT_EQUALS if op == "!=" else EQUALS,
                                     unescape_value(raw)))
    return FieldSelector(reqs)


def allowed_fields(rt: ResourceType) -> tuple[str, ...]:
    """Every field a list of `rt` may be filtered on."""
    return (*COMMON_FIELDS, *rt.field_selectors)


def parse_for_resource(text: str | None, rt: ResourceType) -> FieldSelector:
    """Parse and check against `rt`'s selectable fields, as a list or watch request needs."""
    selector = parse_field_selector(text)
    selector.validate_fields(allowed_fields(rt))
    return selector


def object_fields(rt: ResourceType, obj: dict[str, Any]) -> Getter:
    """The `get` function for `FieldSelector.matches` over one stored object of kind `rt`."""
    meta = obj.get("metadata") or {}

    def get(name: str) -> str | None:
        if name == "metadata.name":
            return meta.get("name")
        if name == "metadata.namespace":
            return meta.get("namespace")
        getter = rt.field_selectors.get(name)
        return getter(obj) if getter is not None else None

    return get


def exact_name(selector: FieldSelector | str | None) -> str | None:
    """The object name a selector pins with `metadata.name=x`, so a list can be a get.

    kubectl's `wait`, `rollout status` and `delete` all watch with exactly this.
    """
    if selector is None:
        return None
    if isinstance(selector, str):
        selector = parse_field_selector(selector)
    return selector.requires_exact_match("metadata.name")
