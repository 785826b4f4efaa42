"""Label and field selectors, as list, watch, controllers and the scale subresource use them."""

from skiff.api.selectors.fields import (
    FieldRequirement,
    FieldSelector,
    exact_name,
    parse_field_selector,
    parse_for_resource,
)
from skiff.api.selectors.labels import (
    EVERYTHING,
    NOTHING,
    LabelSelector,
    Requirement,
    SelectorSyntaxError,
    from_label_selector_dict,
    parse_label_selector,
    selector_from_set,
)

__all__ = [
    "EVERYTHING",
    "NOTHING",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorSyntaxError",
    "exact_name",
    "from_label_selector_dict",
    "parse_field_selector",
    "parse_for_resource",
    "parse_label_selector",
    "selector_from_set",
]
