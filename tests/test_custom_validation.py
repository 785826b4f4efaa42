"""Custom resources are validated and defaulted by their CRD schema."""

from __future__ import annotations

from skiff.api.schema.custom_validation import apply_custom_defaults, validate_custom

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "port": {"x-kubernetes-int-or-string": True},
            },
        }
    },
}


def _fields(causes: list[dict[str, str]]) -> dict[str, str]:
    return {c["field"]: c["message"] for c in causes}


def test_valid_object_has_no_causes() -> None:
    assert validate_custom({"spec": {"size": 3, "color": "blue", "port": "http"}}, SCHEMA) == []


def test_constraints_report_upstream_messages() -> None:
    causes = _fields(validate_custom(
        {"spec": {"size": 11, "color": "pink", "name": "ABCDEFG", "tags": ["a", "b", "c"],
                  "port": 1.5}}, SCHEMA))
    assert causes["spec.size"] == ("Invalid value: 11: spec.size in body should be less than "
                                   "or equal to 10")
    assert causes["spec.color"] == 'Unsupported value: "pink": supported values: "red", "blue"'
    assert causes["spec.tags"] == "Too many: 3: must have at most 2 items"
    assert "spec.name" in causes
    assert "must be of type integer or string" in causes["spec.port"]


def test_required_and_type() -> None:
    causes = _fields(validate_custom({"spec": {"color": "red"}}, SCHEMA))
    assert causes == {"spec.size": "Required value"}
    causes = _fields(validate_custom({"spec": {"size": "big"}}, SCHEMA))
    assert causes["spec.size"] == ('Invalid value: "string": spec.size in body must be of type '
                                   'integer: "string"')


def test_defaults_fill_absent_fields_only() -> None:
    obj = {"spec": {"size": 2}}
    apply_custom_defaults(obj, SCHEMA)
    assert obj["spec"]["color"] == "red"
    obj = {"spec": {"size": 2, "color": "blue"}}
    apply_custom_defaults(obj, SCHEMA)
    assert obj["spec"]["color"] == "blue"
