"""Navigation over OpenAPI v3 schemas.

Built-in kinds and CRDs both describe their objects as OpenAPI v3 schema dicts
(built-ins with `$ref`s into `components.schemas`). `SchemaNode` walks one of those
trees and answers what patching, server-side apply, pruning and validation need to
know about a position in an object: its type, its children, and how lists merge.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# Cache slots of `SchemaNode._children` that no field name can collide with.
_ANY_KEY = "\x00any"
_ITEMS = "\x00items"


class SchemaNode:
    """One position in an object's schema, with `$ref`s resolved lazily."""

    __slots__ = ("_schema", "_components", "_children", "memo")

    def __init__(self, schema: Schema, components: dict[str, Schema] | None = None) -> None:
        self._components = components or {}
        self._schema = self._resolve(schema)
        # Children already resolved: every request walks the same few paths, and
        # resolving a `$ref` copies dicts. Map values share one entry (key
        # _ANY_KEY) so that keys from objects cannot grow the cache.
        self._children: dict[str, SchemaNode | None] = {}
        # Facts derived from this position by hot paths (field checks), computed once.
        self.memo: dict[str, Any] = {}

    def _resolve(self, schema: Schema) -> Schema:
        # allOf with a single $ref is how generated OpenAPI attaches a description
        # to a referenced type.
        seen = 0
        while True:
            ref = schema.get("$ref")
            if ref is None and len(schema.get("allOf") or ()) == 1:
                extra = {k: v for k, v in schema.items() if k != "allOf"}
                schema = {**schema["allOf"][0], **extra}
                continue
            if ref is None or seen > 32:
                return schema
            target = self._components.get(ref.rsplit("/", 1)[-1], {})
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra}
            seen += 1

    def _child(self, schema: Schema | None) -> SchemaNode | None:
        if schema is None:
            return None
        return SchemaNode(schema, self._components)

    @property
    def components(self) -> dict[str, Schema]:
        """The named schemas `$ref`s resolve against (to start a node at another type)."""
        return self._components

    @property
    def raw(self) -> Schema:
        """The resolved schema dict at this position."""
        return self._schema

    @property
    def type(self) -> str | None:
        """The OpenAPI type, or None when any value is allowed."""
        t = self._schema.get("type")
        if t is None and "properties" in self._schema:
            return "object"
        return t

    @property
    def description(self) -> str:
        """The field's documentation."""
        return self._schema.get("description", "")

    @property
    def properties(self) -> dict[str, Schema]:
        """Declared fields of an object schema."""
        return self._schema.get("properties") or {}

    @property
    def preserves_unknown_fields(self) -> bool:
        """Whether fields not in the schema are kept (free-form objects)."""
        s = self._schema
        if s.get("x-kubernetes-preserve-unknown-fields"):
            return True
        if s.get("x-kubernetes-int-or-string") or s.get("x-kubernetes-embedded-resource"):
            return s.get("x-kubernetes-embedded-resource", False) and not self.properties
        ap = s.get("additionalProperties")
        if ap is True:
            return True
        return self.type is None and not self.properties

    def field(self, name: str) -> SchemaNode | None:
        """The schema of field `name`; for maps, the value schema for any key."""
        props = self.properties
        declared = name in props
        slot = name if declared else _ANY_KEY
        try:
            return self._children[slot]
        except KeyError:
            pass
        if declared:
            child = self._child(props[name])
        else:
            ap = self._schema.get("additionalProperties")
            child = self._child(ap) if isinstance(ap, dict) else None
        self._children[slot] = child
        return child

    @property
    def is_map(self) -> bool:
        """A string-keyed map (`additionalProperties` with a schema)."""
        return isinstance(self._schema.get("additionalProperties"), dict) and not self.properties

    def items(self) -> SchemaNode | None:
        """The element schema of a list."""
        try:
            return self._children[_ITEMS]
        except KeyError:
            child = self._children[_ITEMS] = self._child(self._schema.get("items"))
            return child

    @property
    def list_type(self) -> str:
        """`atomic`, `set` or `map`, from x-kubernetes-list-type or the patch strategy."""
        lt = self._schema.get("x-kubernetes-list-type")
        if lt:
            return lt
        strategy = self.patch_strategy or ""
        if "merge" in strategy.split(","):
            return "map" if self.patch_merge_key else "set"
        return "atomic"

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        """The keys identifying list elements of a `map` list."""
        keys = self._schema.get("x-kubernetes-list-map-keys")
        if keys:
            return tuple(keys)
        mk = self.patch_merge_key
        return (mk,) if mk else ()

    @property
    def map_type(self) -> str:
        """`granular` (default) or `atomic` for objects and maps."""
        return self._schema.get("x-kubernetes-map-type", "granular")

    @property
    def patch_strategy(self) -> str | None:
        """The strategic-merge-patch strategy: merge, retainKeys, replace, or a combination."""
        return self._schema.get("x-kubernetes-patch-strategy")

    @property
    def patch_merge_key(self) -> str | None:
        """The field identifying list elements for strategic merge patch."""
        return self._schema.get("x-kubernetes-patch-merge-key")

    @property
    def int_or_string(self) -> bool:
        """Whether the field takes either an integer or a string."""
        return bool(self._schema.get("x-kubernetes-int-or-string"))
