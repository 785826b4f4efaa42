"""The label and field selectors of one list or watch request, as a predicate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skiff.api.resources import ResourceType
from skiff.api.selectors.fields import FieldSelector, object_fields, parse_for_resource
from skiff.api.selectors.labels import LabelSelector, parse_label_selector
from skiff.apiserver.list_options import ListOptions


@dataclass(frozen=True)
class ObjectFilter:
    """Matches objects of one resource against a request's selectors."""

    rt: ResourceType
    labels: LabelSelector
    fields: FieldSelector

    @classmethod
    def for_request(cls, rt: ResourceType, opts: ListOptions) -> ObjectFilter:
        """Parse the request's selectors; a 400 StatusError if either is malformed."""
        return cls(rt, parse_label_selector(opts.label_selector),
                   parse_for_resource(opts.field_selector, rt))

    @property
    def everything(self) -> bool:
        """Whether every object matches (no selectors)."""
        return self.labels.empty and self.fields.empty

    def matches(self, obj: dict[str, Any]) -> bool:
        """Whether `obj` is selected."""
        if not self.labels.empty and not self.labels.matches(
            (obj.get("metadata") or {}).get("labels") or {}
        ):
            return False
        return self.fields.empty or self.fields.matches(object_fields(self.rt, obj))
