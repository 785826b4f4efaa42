"""The garbage collector's picture of the cluster: who owns whom, by uid.

Only metadata that ownership decisions need is kept. Owners that have not been seen
(yet, or ever) still get a dependents entry, so a late-arriving owner immediately
knows its dependents and a vanished one can hand them over for collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skiff.client.discovery import APIResource

Obj = dict[str, Any]


@dataclass
class Node:
    """One observed object."""

    uid: str
    api_version: str
    kind: str
    namespace: str
    name: str
    resource: APIResource
    owners: list[Obj] = field(default_factory=list)
    deleting: bool = False
    finalizers: tuple[str, ...] = ()

    def owner_ref(self, owner_uid: str) -> Obj | None:
        """This object's reference to `owner_uid`, if it has one."""
        for ref in self.owners:
            if ref.get("uid") == owner_uid:
                return ref
        return None

    def owner_uids(self) -> set[str]:
        """Uids of every owner this object names."""
        return {ref["uid"] for ref in self.owners if ref.get("uid")}

    def same_decision_inputs(self, other: Node) -> bool:
        """Whether the fields the collector decides on are unchanged."""
        return (self.owners == other.owners and self.deleting == other.deleting
                and self.finalizers == other.finalizers)


def node_from(obj: Obj, resource: APIResource) -> Node | None:
    """A graph node for `obj`, or None if it has no uid (nothing can own it by reference)."""
    md = obj.get("metadata") or {}
    uid = md.get("uid")
    if not uid:
        return None
    return Node(
        uid=uid,
        api_version=obj.get("apiVersion") or resource.api_version,
        kind=obj.get("kind") or resource.kind,
        namespace=md.get("namespace") or "",
        name=md.get("name", ""),
        resource=resource,
        owners=[r for r in md.get("ownerReferences") or [] if isinstance(r, dict)],
        deleting=bool(md.get("deletionTimestamp")),
        finalizers=tuple(md.get("finalizers") or ()),
    )


class Graph:
    """Nodes by uid plus the reverse edges owner uid → dependent uids."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._dependents: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, uid: str) -> Node | None:
        """The node for `uid` if the object has been observed and not deleted."""
        return self.nodes.get(uid)

    def upsert(self, node: Node) -> Node | None:
        """Add or replace a node, re-linking its owner edges; returns the previous node."""
        old = self.nodes.get(node.uid)
        if old is not None:
            self._unlink(old)
        self.nodes[node.uid] = node
        for owner in node.owner_uids():
            self._dependents.setdefault(owner, set()).add(node.uid)
        return old

    def remove(self, uid: str) -> Node | None:
        """Forget a deleted object; its dependents keep their (now dangling) edges."""
        old = self.nodes.pop(uid, None)
        if old is not None:
            self._unlink(old)
        return old

    def _unlink(self, node: Node) -> None:
        for owner in node.owner_uids():
            deps = self._dependents.get(owner)
            if deps is not None:
                deps.discard(node.uid)
                if not deps:
                    del self._dependents[owner]

    def dependents(self, owner_uid: str) -> list[Node]:
        """Observed objects naming `owner_uid` among their owners."""
        return [self.nodes[u] for u in sorted(self._dependents.get(owner_uid, ()))
                if u in self.nodes]

    def dependent_uids(self, owner_uid: str) -> set[str]:
        """Uids of the dependents of `owner_uid`."""
        return set(self._dependents.get(owner_uid, ()))
