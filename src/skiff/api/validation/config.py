"""Validation of ConfigMaps and Secrets: keys, sizes, secret types, immutability."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from skiff.api.validation import field
from skiff.api.validation.checks import get_bool, get_dict, get_str
from skiff.api.validation.field import Cause

MAX_SIZE = 1024 * 1024
_KEY = re.compile(r"[-._a-zA-Z0-9]+")
KEY_ERROR = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
IMMUTABLE = "field is immutable when `immutable` is set"
# Which keys each well-known secret type must carry.
_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
}
_SECRET_JSON_KEYS = {
    "kubernetes.io/dockercfg": ".dockercfg",
    "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
}


def config_key(key: str) -> list[str]:
    """Errors for a ConfigMap/Secret data key (it becomes a file name in volumes)."""
    out = []
    if len(key) > 253:
        out.append("must be no more than 253 characters")
    if not _KEY.fullmatch(key):
        out.append(KEY_ERROR)
    if key == ".":
        out.append("must not be '.'")
    elif key == "..":
        out.append("must not be '..'")
    elif key.startswith(".."):
        out.append("must not start with '..'")
    return out


def _validate_map(obj: dict[str, Any], name: str, errs: list[Cause],
                  *, base64_values: bool) -> tuple[set[str], int]:
    """Keys and values of one data map; returns its keys and decoded byte size."""
    data = get_dict(obj, name, "", errs)
    size = 0
    for k, v in data.items():
        p = field.key(name, k)
        errs += [field.invalid(p, k, m) for m in config_key(k)]
        if not isinstance(v, str):
            errs.append(field.type_invalid(p, v, "string"))
            continue
        if base64_values:
            try:
                size += len(base64.b64decode(v, validate=True))
            except (binascii.Error, ValueError):
                errs.append(field.invalid(p, "<value omitted>", "must be base64-encoded data"))
        else:
            size += len(v.encode())
    return set(data), size


def _validate_immutable(obj: dict[str, Any], old: dict[str, Any] | None,
                        maps: tuple[str, ...], errs: list[Cause]) -> None:
    get_bool(obj, "immutable", "", errs)
    if old is None or old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        errs.append(field.forbidden("immutable", IMMUTABLE))
    for name in maps:
        if (obj.get(name) or {}) != (old.get(name) or {}):
            errs.append(field.forbidden(name, IMMUTABLE))


def validate_configmap(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """ConfigMap keys, no key in both maps, total size, immutability."""
    errs: list[Cause] = []
    data_keys, size = _validate_map(obj, "data", errs, base64_values=False)
    bin_keys, bin_size = _validate_map(obj, "binaryData", errs, base64_values=True)
    for k in sorted(data_keys & bin_keys):
        errs.append(field.invalid(field.key("data", k), k, "duplicate of key present in "
                                  "binaryData"))
    if size + bin_size > MAX_SIZE:
        errs.append(field.too_long("", MAX_SIZE))
    _validate_immutable(obj, old, ("data", "binaryData"), errs)
    return errs


def validate_secret(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Secret keys, size, the keys its type requires, type and data immutability."""
    errs: list[Cause] = []
    keys, size = _validate_map(obj, "data", errs, base64_values=True)
    if size > MAX_SIZE:
        errs.append(field.too_long("data", MAX_SIZE))
    secret_type = get_str(obj, "type", "", errs)
    for k in _SECRET_REQUIRED_KEYS.get(secret_type, ()):
        if k not in keys:
            errs.append(field.required(field.key("data", k)))
    json_key = _SECRET_JSON_KEYS.get(secret_type)
    data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
    if json_key and isinstance(data.get(json_key), str):
        try:
            json.loads(base64.b64decode(data[json_key]))
        except (ValueError, binascii.Error) as e:
            errs.append(field.invalid(field.key("data", json_key), "<secret contents redacted>",
                                      str(e)))
    if secret_type == "kubernetes.io/basic-auth" and not keys & {"username", "password"}:
        errs.append(field.required(field.key("data", "username")))
        errs.append(field.required(field.key("data", "password")))
    if secret_type == "kubernetes.io/service-account-token":
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        ann = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
        if not ann.get("kubernetes.io/service-account.name"):
            errs.append(field.required(
                "metadata.annotations[kubernetes.io/service-account.name]"))
    if old is not None and secret_type != (old.get("type") or "Opaque") and secret_type:
        errs.append(field.invalid("type", secret_type, "field is immutable"))
    _validate_immutable(obj, old, ("data",), errs)
    return errs
