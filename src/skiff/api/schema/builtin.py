"""OpenAPI v3 component schemas for the built-in kinds.

Built from the official client's generated models (see `client_models`), named as
upstream names them (see `names`) and annotated with the merge metadata of
`merge_keys`. The result feeds the OpenAPI documents kubectl reads, strategic merge
patch, server-side apply and strict field validation, so it is built once per
process, on first use, from only the types the served kinds can reach.
"""

from __future__ import annotations

import ast
import threading
from collections import deque
from typing import Any

from skiff.api.builtin_kinds import BUILTIN
from skiff.api.schema.client_models import Model, ModelField, load_model, model_files
from skiff.api.schema.crd import crd_component
from skiff.api.schema.field_docs import field_descriptions
from skiff.api.schema.merge_keys import ATOMIC_TYPES, FIELD_EXTENSIONS, QUANTITY_FIELDS
from skiff.api.schema.names import (
    META_PACKAGE,
    class_for,
    component_name,
    package_for_group,
)
from skiff.api.schema.node import Schema, SchemaNode

REF_PREFIX = "#/components/schemas/"
TIME = f"{META_PACKAGE}.v1.Time"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

# Kinds that are not served as resources but travel as subresource or operation
# bodies, so documents and validation need their schemas too.
EXTRA_KINDS: tuple[tuple[str, str, str], ...] = (
    ("autoscaling", "v1", "Scale"),
    ("policy", "v1", "Eviction"),
    ("authentication.k8s.io", "v1", "TokenRequest"),
    ("meta", "v1", "DeleteOptions"),
    ("meta", "v1", "Status"),
    ("meta", "v1", "WatchEvent"),
)

_SCALARS: dict[str, Schema] = {
    "StrictStr": {"type": "string"},
    "str": {"type": "string"},
    "StrictInt": {"type": "integer", "format": "int64"},
    "int": {"type": "integer", "format": "int64"},
    "StrictBool": {"type": "boolean"},
    "bool": {"type": "boolean"},
    "StrictFloat": {"type": "number", "format": "double"},
    "float": {"type": "number", "format": "double"},
    "bytes": {"type": "string", "format": "byte"},
    "bytearray": {"type": "string", "format": "byte"},
}

_ANY: Schema = {"x-kubernetes-preserve-unknown-fields": True}
_FREE_OBJECT: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def ref(name: str) -> Schema:
    """A `$ref` to component `name`."""
    return {"$ref": REF_PREFIX + name}


def _with_description(schema: Schema, description: str) -> Schema:
    if not description:
        return schema
    if "$ref" in schema:
        # A sibling of `$ref` is ignored by OpenAPI 3.0 readers; allOf keeps it.
        return {"allOf": [schema], "description": description}
    return {**schema, "description": description}


def _fixed_components() -> dict[str, Schema]:
    return {
        TIME: {
            "description": "A point in time, serialized as an RFC 3339 string in UTC.",
            "type": "string",
            "format": "date-time",
        },
        INT_OR_STRING: {
            "description": "A value that is either a whole number or a string (such as a "
            "port number or a named port, an absolute count or a percentage).",
            "format": "int-or-string",
            "x-kubernetes-int-or-string": True,
        },
        QUANTITY: {
            "description": "A fixed-point amount with an optional suffix such as `100m`, "
            "`1.5`, `2Gi` or `1e3`. Written as a string; plain JSON numbers are accepted.",
            "oneOf": [{"type": "string"}, {"type": "number"}],
        },
    }


class _LazyComponents(dict[str, Schema]):
    """Component schemas parsed from the client's models on first lookup.

    A request for one kind touches a handful of models, while all of them take a
    tenth of a second to parse: startup's own writes should not pay for the rest.
    Iterating or sizing the dict sees only what was built; `builtin_components()`
    builds everything first.
    """

    def __init__(self, builder: _Builder) -> None:
        super().__init__(_fixed_components())
        self._builder = builder

    def __missing__(self, name: str) -> Schema:
        with _lock:
            if dict.__contains__(self, name):
                return dict.__getitem__(self, name)
            return self._builder.build(name)

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        """The component `name`, built on demand, or `default`."""
        try:
            return self[name]
        except KeyError:
            return default


class _Builder:
    """Turns generated models into components, following references breadth-first."""

    def __init__(self) -> None:
        self.components = _LazyComponents(self)
        self.class_names: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self.pending: deque[tuple[str, str]] = deque()
        # Root kinds' components carry their group/version/kind.
        self.kinds: dict[str, list[dict[str, str]]] = {}

    def name_for(self, cls: str, parent_package: str) -> str:
        name = self.class_names.get(cls)
        if name is None:
            name = component_name(cls, parent_package)
            self.class_names[cls] = name
            self.classes.setdefault(name, cls)
            self.pending.append((cls, name))
        return name

    def build(self, name: str) -> Schema:
        """The component `name`, parsed now; KeyError for a name no model has."""
        schema = self.model_schema(load_model(self.classes[name]), name)
        if name in self.kinds:
            schema["x-kubernetes-group-version-kind"] = self.kinds[name]
        dict.__setitem__(self.components, name, schema)
        return schema

    def run(self) -> None:
        while self.pending:
            _, name = self.pending.popleft()
            if not dict.__contains__(self.components, name):
                self.build(name)

    def model_schema(self, model: Model, name: str) -> Schema:
        package = name.rsplit(".", 2)[0]
        extensions = FIELD_EXTENSIONS.get(name, {})
        props: dict[str, Schema] = {}
        required: list[str] = []
        for f in model.fields:
            schema = self.field_schema(f, name, package)
            extra = extensions.get(f.json_name)
            if extra:
                schema = {**schema, **extra}
            props[f.json_name] = schema
            if f.required:
                required.append(f.json_name)
        out: Schema = {"description": model.description, "type": "object", "properties": props}
        if required:
            out["required"] = required
        if name in ATOMIC_TYPES:
            out["x-kubernetes-map-type"] = "atomic"
        return out

    def field_schema(self, f: ModelField, owner: str, package: str) -> Schema:
        ann = _strip_optional(f.annotation)
        if (owner, f.json_name) in QUANTITY_FIELDS:
            if _head(ann) == "Dict":
                schema: Schema = {"type": "object", "additionalProperties": ref(QUANTITY)}
            else:
                schema = ref(QUANTITY)
        else:
            schema = self.type_schema(ann, package)
        schema = _with_description(schema, f.description)
        if INT_OR_STRING in str(schema.get("$ref", "")) + str(schema.get("allOf", "")):
            # Also on the field itself, so readers that do not follow `$ref` see it.
            schema["x-kubernetes-int-or-string"] = True
        return schema

    def type_schema(self, ann: ast.expr, package: str) -> Schema:
        ann = _strip_optional(ann)
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            ann = ast.parse(ann.value, mode="eval").body
        if isinstance(ann, ast.Name):
            return self.named(ann.id, package)
        if isinstance(ann, ast.Subscript):
            head = _head(ann)
            args = _args(ann)
            if head == "List" and args:
                return {"type": "array", "items": self.type_schema(args[0], package)}
            if head == "Dict" and len(args) == 2:
                value = _strip_optional(args[1])
                if isinstance(value, ast.Name) and value.id == "Any":
                    return dict(_FREE_OBJECT)
                return {"type": "object", "additionalProperties": self.type_schema(value, package)}
            if head == "Annotated" and args:
                return self.type_schema(args[0], package)
            if head == "Union":
                return self.union(args, package)
        if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
            return self.union(_flatten_or(ann), package)
        return dict(_ANY)

    def named(self, name: str, package: str) -> Schema:
        if name in _SCALARS:
            return dict(_SCALARS[name])
        if name in ("datetime", "date"):
            return ref(TIME)
        if name in ("Any", "object"):
            return dict(_ANY)
        if name in model_files():
            return ref(self.name_for(name, package))
        return dict(_ANY)

    def union(self, options: list[ast.expr], package: str) -> Schema:
        schemas = [self.type_schema(o, package) for o in options]
        types = {s.get("type") for s in schemas}
        if types == {"integer", "string"}:
            return ref(INT_OR_STRING)
        if types == {"integer", "number"}:
            return {"type": "number", "format": "double"}
        if len(schemas) > 1 and all(s == schemas[0] for s in schemas):
            return schemas[0]
        if types == {"string"}:
            return {"type": "string", "format": "byte"}
        return dict(_ANY)


def _head(ann: ast.expr) -> str:
    if isinstance(ann, ast.Subscript):
        v = ann.value
        if isinstance(v, ast.Name):
            return v.id
        if isinstance(v, ast.Attribute):
            return v.attr
    return ""


def _args(ann: ast.Subscript) -> list[ast.expr]:
    s = ann.slice
    return list(s.elts) if isinstance(s, ast.Tuple) else [s]


def _flatten_or(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _flatten_or(node.left) + _flatten_or(node.right)
    return [node]


def _strip_optional(ann: ast.expr) -> ast.expr:
    while _head(ann) == "Optional":
        assert isinstance(ann, ast.Subscript)
        ann = _args(ann)[0]
    return ann


def _roots() -> list[tuple[str, str, str]]:
    roots = [(rt.group, rt.version, rt.kind) for rt in BUILTIN]
    roots += [(g, v, f"{k}List") for g, v, k in roots]
    return roots + list(EXTRA_KINDS)


_lock = threading.RLock()
_cache: tuple[_Builder, dict[tuple[str, str, str], str]] | None = None
_complete = False


def _index() -> tuple[_Builder, dict[tuple[str, str, str], str]]:
    """Name every root kind's component without parsing any model yet."""
    b = _Builder()
    known = model_files()
    index: dict[tuple[str, str, str], str] = {}
    for group, version, kind in _roots():
        cls = class_for(group, version, kind, known)
        if cls not in known:
            continue
        name = b.name_for(cls, f"{package_for_group(group)}")
        group_out = "" if group == "meta" else group
        index[(group_out, version, kind)] = name
        b.kinds.setdefault(name, []).append({"group": group_out, "version": version,
                                             "kind": kind})
    return b, index


def _built() -> tuple[_Builder, dict[tuple[str, str, str], str]]:
    global _cache
    if _cache is None:
        with _lock:
            if _cache is None:
                _cache = _index()
    return _cache


def builtin_components() -> dict[str, Schema]:
    """Every built-in component schema by upstream name. Shared: do not mutate."""
    global _complete
    builder = _built()[0]
    if not _complete:
        with _lock:
            builder.run()
            for name, schema in list(builder.components.items()):
                _describe_fields(name, schema)
            _complete = True
    return builder.components


def _describe_fields(name: str, schema: Schema) -> None:
    """Give properties that refer to other types the descriptions the models lack."""
    props = schema.get("properties")
    if not props:
        return
    missing = [k for k, p in props.items() if "description" not in p]
    if not missing:
        return
    docs = field_descriptions(name)
    for k in missing:
        text = docs.get(k)
        if not text:
            continue
        prop = props[k]
        if "$ref" in prop:
            rest = {f: v for f, v in prop.items() if f != "$ref"}
            props[k] = {"allOf": [{"$ref": prop["$ref"]}], **rest, "description": text}
        else:
            props[k] = {**prop, "description": text}


def lazy_components() -> dict[str, Schema]:
    """The component schemas, each built when first looked up (for `SchemaNode`s)."""
    return _built()[0].components


def schema_name_for(group: str, version: str, kind: str) -> str | None:
    """The component name of a built-in kind (or its list), if it has one."""
    return _built()[1].get((group, version, kind))


def node_for(group: str, version: str, kind: str) -> SchemaNode | None:
    """A navigable schema for a built-in kind, or None for kinds without one (CRDs)."""
    name = schema_name_for(group, version, kind)
    if name is None:
        return None
    return SchemaNode(ref(name), lazy_components())


def all_builtin_kinds() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) → component name for every kind with a schema."""
    return dict(_built()[1])


__all__ = [
    "builtin_components",
    "lazy_components",
    "schema_name_for",
    "node_for",
    "all_builtin_kinds",
    "crd_component",
    "ref",
]
