"""Name checks and object metadata validation, with kubectl-visible messages."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.validation.metadata import (
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from skiff.api.validation.names import (
    dns1123_label,
    dns1123_subdomain,
    label_value,
    qualified_name,
    rfc1035_label,
    validate_generate_name,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
RFC1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_REGEX_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("check", "value", "errors"),
    [
        (dns1123_subdomain, "example.com", []),
        (dns1123_subdomain, "a", []),
        (dns1123_subdomain, "Bad_Name", [SUBDOMAIN_MSG]),
        (dns1123_subdomain, "-a", [SUBDOMAIN_MSG]),
        (dns1123_subdomain, "a.", [SUBDOMAIN_MSG]),
        (dns1123_subdomain, "", [SUBDOMAIN_MSG]),
        (dns1123_subdomain, "a" * 253, []),
        (dns1123_subdomain, "a" * 254, ["must be no more than 253 characters"]),
        (dns1123_label, "my-name", []),
        (dns1123_label, "123-abc", []),
        (dns1123_label, "a.b", ["must not contain dots"]),
        (dns1123_label, "A", [LABEL_MSG]),
        (dns1123_label, "a" * 63, []),
        (dns1123_label, "a" * 64, ["must be no more than 63 characters"]),
        (dns1123_label, "-" * 64, ["must be no more than 63 characters", LABEL_MSG]),
        (rfc1035_label, "web", []),
        (rfc1035_label, "1web", [RFC1035_MSG]),
        (rfc1035_label, "a" * 64, ["must be no more than 63 characters"]),
        (qualified_name, "app", []),
        (qualified_name, "My.Name_1", []),
        (qualified_name, "example.com/role", []),
        (qualified_name, "-app", ["name part " + QNAME_REGEX_MSG]),
        (qualified_name, "/app", ["prefix part must be non-empty"]),
        (qualified_name, "Example.com/app", ["prefix part " + SUBDOMAIN_MSG]),
        (qualified_name, "example.com/", ["name part must be non-empty",
                                          "name part " + QNAME_REGEX_MSG]),
        (qualified_name, "a" * 64, ["name part must be no more than 63 characters"]),
        (qualified_name, "a/b/c", ["a qualified name " + QNAME_REGEX_MSG + " with an optional "
                                   "DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]),
        (label_value, "", []),
        (label_value, "My_value.1", []),
        (label_value, "-x", [VALUE_MSG]),
        (label_value, "a b", [VALUE_MSG]),
        (label_value, "v" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_name_checks(check: Any, value: str, errors: list[str]) -> None:
    assert check(value) == errors


@pytest.mark.parametrize(
    ("prefix", "valid"),
    [("web-", True), ("web", True), ("Web-", False), ("-", False), ("a--", True), ("w-_", False)],
)
def test_generate_name(prefix: str, valid: bool) -> None:
    assert (validate_generate_name(prefix) == []) is valid


def _fields(causes: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(c["reason"], c["field"]) for c in causes]


def test_valid_meta() -> None:
    meta = {
        "name": "web", "namespace": "default", "generateName": "web-",
        "labels": {"app": "web", "example.com/tier": ""},
        "annotations": {"Example.COM/Note": "x" * 1000},
        "finalizers": ["example.com/cleanup"],
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                             "uid": "u1", "controller": True}],
    }
    assert validate_object_meta(meta, True) == []


def test_bad_name_message() -> None:
    causes = validate_object_meta({"name": "Bad_Name", "namespace": "default"}, True)
    assert causes == [{
        "reason": "FieldValueInvalid",
        "field": "metadata.name",
        "message": 'Invalid value: "Bad_Name": ' + SUBDOMAIN_MSG,
    }]


def test_name_required() -> None:
    causes = validate_object_meta({"namespace": "default"}, True)
    assert causes == [{"reason": "FieldValueRequired", "field": "metadata.name",
                       "message": "Required value: name or generateName is required"}]


def test_custom_name_rule_and_path() -> None:
    causes = validate_object_meta({"name": "1svc", "generateName": "1svc-"}, False,
                                  name_validator=rfc1035_label, path="spec.template.metadata")
    assert _fields(causes) == [("FieldValueInvalid", "spec.template.metadata.generateName"),
                               ("FieldValueInvalid", "spec.template.metadata.name")]


def test_namespace_rules() -> None:
    assert validate_object_meta({"name": "a"}, True) == [
        {"reason": "FieldValueRequired", "field": "metadata.namespace",
         "message": "Required value"}]
    assert validate_object_meta({"name": "a", "namespace": "x"}, False) == [
        {"reason": "FieldValueForbidden", "field": "metadata.namespace",
         "message": "Forbidden: not allowed on this type"}]
    bad = validate_object_meta({"name": "a", "namespace": "a.b"}, True)
    assert bad[0]["message"] == 'Invalid value: "a.b": must not contain dots'


def test_labels_annotations_and_generation() -> None:
    meta = {"name": "a", "namespace": "n", "generation": -1,
            "labels": {"-k": "-v"}, "annotations": {"a/b/c": "x", "big": "x" * (256 * 1024)}}
    causes = validate_object_meta(meta, True)
    assert _fields(causes) == [
        ("FieldValueInvalid", "metadata.generation"),
        ("FieldValueInvalid", "metadata.labels"),
        ("FieldValueInvalid", "metadata.labels"),
        ("FieldValueInvalid", "metadata.annotations"),
        ("FieldValueTooLong", "metadata.annotations"),
    ]
    assert causes[0]["message"] == "Invalid value: -1: must be greater than or equal to 0"
    assert causes[1]["message"] == 'Invalid value: "-k": name part ' + QNAME_REGEX_MSG
    assert causes[2]["message"] == 'Invalid value: "-v": ' + VALUE_MSG
    assert causes[4]["message"] == "Too long: may not be more than 262144 bytes"


def test_annotation_size_limit_is_inclusive() -> None:
    exactly = {"k": "x" * (256 * 1024 - 1)}
    assert validate_object_meta({"name": "a", "annotations": exactly}, False) == []


def test_owner_references() -> None:
    refs = [
        {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "1", "controller": True},
        {"apiVersion": "a/b/c", "kind": "", "name": "", "uid": ""},
        {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "2"},
        {"kind": "RS", "name": "r", "uid": "3", "controller": True},
    ]
    causes = validate_object_meta({"name": "a", "ownerReferences": refs}, False)
    assert _fields(causes) == [
        ("FieldValueInvalid", "metadata.ownerReferences[1].apiVersion"),
        ("FieldValueRequired", "metadata.ownerReferences[1].kind"),
        ("FieldValueRequired", "metadata.ownerReferences[1].name"),
        ("FieldValueRequired", "metadata.ownerReferences[1].uid"),
        ("FieldValueInvalid", "metadata.ownerReferences[2]"),
        ("FieldValueRequired", "metadata.ownerReferences[3].apiVersion"),
        ("FieldValueInvalid", "metadata.ownerReferences"),
    ]
    assert causes[0]["message"] == ('Invalid value: "a/b/c": '
                                    "must be <group>/<version> or <version>")
    assert causes[1]["message"] == "Required value: must not be empty"
    assert causes[4]["message"].endswith(": /v1, Kind=Event is disallowed from being an owner")
    assert causes[6]["message"].endswith(
        'Only one reference can have Controller set to true. '
        'Found "true" in references for Pod/p and RS/r')


def test_finalizers() -> None:
    causes = validate_object_meta(
        {"name": "a", "finalizers": ["orphan", "foregroundDeletion", "bad/fin/alizer"]}, False)
    assert _fields(causes) == [("FieldValueInvalid", "metadata.finalizers"),
                               ("FieldValueInvalid", "metadata.finalizers")]
    assert causes[1]["message"] == (
        'Invalid value: ["orphan","foregroundDeletion","bad/fin/alizer"]: '
        "finalizer orphan and foregroundDeletion cannot be both set")


OLD = {"name": "a", "namespace": "n", "uid": "u1", "resourceVersion": "5", "generation": 2,
       "creationTimestamp": "2024-01-01T00:00:00Z"}


def test_update_ok() -> None:
    new = {**OLD, "labels": {"x": "y"}, "resourceVersion": "5", "generation": 3}
    assert validate_object_meta_update(new, OLD) == []


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "b"}, "metadata.name", 'Invalid value: "b": field is immutable'),
        ({"namespace": "m"}, "metadata.namespace", 'Invalid value: "m": field is immutable'),
        ({"uid": "u2"}, "metadata.uid", 'Invalid value: "u2": field is immutable'),
        ({"creationTimestamp": "2025-01-01T00:00:00Z"}, "metadata.creationTimestamp",
         'Invalid value: "2025-01-01T00:00:00Z": field is immutable'),
        ({"deletionGracePeriodSeconds": 30}, "metadata.deletionGracePeriodSeconds",
         "Invalid value: 30: field is immutable"),
        ({"resourceVersion": ""}, "metadata.resourceVersion",
         'Invalid value: "": must be specified for an update'),
        ({"generation": 1}, "metadata.generation", "Invalid value: 1: must not be decremented"),
        ({"labels": {"k": "-"}}, "metadata.labels", 'Invalid value: "-": ' + VALUE_MSG),
    ],
)
def test_update_errors(change: dict[str, Any], field: str, message: str) -> None:
    causes = validate_object_meta_update({**OLD, **change}, OLD)
    assert [(c["field"], c["message"]) for c in causes] == [(field, message)]


def test_update_can_skip_resource_version() -> None:
    new = {k: v for k, v in OLD.items() if k != "resourceVersion"}
    assert validate_object_meta_update(new, OLD, require_resource_version=False) == []


def test_no_new_finalizers_while_deleting() -> None:
    old = {**OLD, "deletionTimestamp": "2024-02-02T00:00:00Z", "finalizers": ["a"]}
    new = {**old, "finalizers": ["a", "c", "b"]}
    causes = validate_object_meta_update(new, old)
    assert causes == [{
        "reason": "FieldValueForbidden", "field": "metadata.finalizers",
        "message": "Forbidden: no new finalizers can be added if the object is being deleted, "
                   'found new finalizers []string{"b", "c"}',
    }]
    assert validate_object_meta_update({**old, "finalizers": []}, old) == []


def test_validate_labels_direct() -> None:
    assert validate_labels({"a": "b"}, "spec.selector.matchLabels") == []
    causes = validate_labels({"a": "b c"}, "spec.selector.matchLabels")
    assert _fields(causes) == [("FieldValueInvalid", "spec.selector.matchLabels")]


def test_label_selector_validation() -> None:
    assert validate_label_selector(None, "spec.selector") == []
    assert validate_label_selector({"matchLabels": {"app": "web"}}, "spec.selector") == []
    sel = {
        "matchLabels": {"app": "-"},
        "matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c", "operator": "Has", "values": ["x"]},
            {"key": "-d", "operator": "NotIn", "values": ["ok", "-bad"]},
        ],
    }
    causes = validate_label_selector(sel, "spec.selector")
    assert [(c["reason"], c["field"], c["message"].split(":")[0]) for c in causes] == [
        ("FieldValueInvalid", "spec.selector.matchLabels", "Invalid value"),
        ("FieldValueRequired", "spec.selector.matchExpressions[0].values", "Required value"),
        ("FieldValueForbidden", "spec.selector.matchExpressions[1].values", "Forbidden"),
        ("FieldValueInvalid", "spec.selector.matchExpressions[2].operator", "Invalid value"),
        ("FieldValueInvalid", "spec.selector.matchExpressions[3].key", "Invalid value"),
        ("FieldValueInvalid", "spec.selector.matchExpressions[3].values[1]", "Invalid value"),
    ]
    assert causes[1]["message"] == (
        "Required value: must be specified when `operator` is 'In' or 'NotIn'")
    assert causes[2]["message"] == (
        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
    assert causes[3]["message"] == 'Invalid value: "Has": not a valid selector operator'
