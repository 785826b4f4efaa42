"""The registry of served resource types.

A `ResourceType` says everything the API server needs to serve one kind at one
group-version: its names for discovery, its scope, its subresources and the
extra field selectors it supports. Built-in kinds register in `builtin_kinds`;
CustomResourceDefinitions register theirs while the server runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

FieldGetter = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class ScalePaths:
    """Where the scale subresource reads and writes its numbers (dotted paths)."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    label_selector: str | None = "status.selector"


@dataclass(frozen=True)
class ResourceType:
    """One kind served at one group-version."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    # Fields beyond metadata.name/metadata.namespace that field selectors accept.
    field_selectors: dict[str, FieldGetter] = field(default_factory=dict, compare=False, hash=False)
    scale: ScalePaths | None = None
    # Custom resources carry their CRD's name; built-ins leave it empty.
    crd: str = ""
    # Whether writes set and bump metadata.generation on spec changes. Upstream only
    # the strategies of workloads, CRDs and custom resources do; Namespaces, Nodes,
    # Services and (before 1.33) Pods have no generation, like ConfigMaps.
    has_status: bool = True
    # Another resource whose storage this one shares (`group/plural`), read and
    # written through the conversions in `skiff.api.conversion`.
    stored_as: str = ""

    @property
    def singular(self) -> str:
        """The singular resource name (lower-case kind), as discovery shows it."""
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        """`group/version`, or just `version` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        """The kind of a list of these objects."""
        return f"{self.kind}List"

    @property
    def key(self) -> str:
        """Group and plural: names the resource independent of version."""
        return f"{self.group or 'core'}/{self.plural}"

    @property
    def storage_key(self) -> str:
        """Where its objects are stored (another resource's place if it shares one)."""
        return self.stored_as or self.key

    @property
    def qualified(self) -> str:
        """`plural.group` as upstream error messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


class Registry:
    """Lookup of resource types by group-version and plural, kind or short name."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._by_gvk: dict[tuple[str, str, str], ResourceType] = {}
        self._listeners: list[Callable[[], None]] = []

    def register(self, rt: ResourceType) -> None:
        """Serve `rt`; replaces a previous registration of the same group-version-plural."""
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt
        self._by_gvk[(rt.group, rt.version, rt.kind)] = rt
        self._changed()

    def unregister(self, group: str, version: str, plural: str) -> None:
        """Stop serving a resource (a CRD was deleted or changed its versions)."""
        rt = self._by_gvr.pop((group, version, plural), None)
        if rt is not None:
            self._by_gvk.pop((rt.group, rt.version, rt.kind), None)
            self._changed()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` after every registration change (discovery caches listen)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for cb in self._listeners:
            cb()

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The resource served at `/…/group/version/plural`, if any."""
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        """The resource for an object's apiVersion and kind, if served."""
        return self._by_gvk.get((group, version, kind))

    def by_api_version(self, api_version: str, kind: str) -> ResourceType | None:
        """The resource for `apiVersion` + `kind` as written in an object."""
        group, _, version = api_version.rpartition("/")
        return self.by_kind(group, version, kind)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_gvr.values()))

    def groups(self) -> dict[str, list[str]]:
        """Group name → its served versions, preferred (first registered) first."""
        out: dict[str, list[str]] = {}
        for rt in self._by_gvr.values():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        """Every resource served at one group-version."""
        return [rt for rt in self._by_gvr.values() if rt.group == group and rt.version == version]
