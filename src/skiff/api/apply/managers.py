"""`metadata.managedFields` decoded into per-manager field sets, and back.

An entry is identified by manager name, operation and subresource, plus the
apiVersion for updaters: an applier keeps one entry however its apiVersion changes,
so that what it applied last time can be pruned; updaters at different versions are
recorded separately, as upstream does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skiff.api.apply.fieldset import FieldSet, Path, make_path

APPLY = "Apply"
UPDATE = "Update"

# Fields the server sets or that identify the object: nobody owns them.
UNTRACKED = FieldSet(
    make_path(*p.split("."))
    for p in (
        "apiVersion",
        "kind",
        "metadata",
        "metadata.name",
        "metadata.namespace",
        "metadata.creationTimestamp",
        "metadata.selfLink",
        "metadata.uid",
        "metadata.clusterName",
        "metadata.generation",
        "metadata.managedFields",
        "metadata.resourceVersion",
    )
)

# Upstream keeps at most this many updaters' entries; older ones are folded together.
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"

Identity = tuple[str, str, str, str]


@dataclass
class ManagerEntry:
    """The fields one manager owns, and when it last changed the object."""

    manager: str
    operation: str
    api_version: str
    fields: FieldSet
    time: str | None = None
    subresource: str = ""

    @property
    def identity(self) -> Identity:
        """The key under which entries merge."""
        version = "" if self.operation == APPLY else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def describe(self) -> str:
        """The manager as conflict messages name it: `"kubectl" using apps/v1`."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


Managed = dict[Identity, ManagerEntry]


def decode(entries: Any) -> Managed:
    """Parse a managedFields list; raises ValueError for an entry upstream would reject."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    out: Managed = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ValueError(f"managed fields entry {i} must be an object")
        op = e.get("operation")
        if op not in (APPLY, UPDATE):
            raise ValueError("operation must be `Apply` or `Update`")
        if not e.get("apiVersion"):
            raise ValueError("apiVersion must not be empty")
        ftype = e.get("fieldsType", "")
        if ftype != "FieldsV1":
            if not ftype:
                raise ValueError(f"missing fieldsType in managed fields entry {i}")
            raise ValueError(f'invalid fieldsType "{ftype}" in managed fields entry {i}')
        entry = ManagerEntry(
            manager=str(e.get("manager", "")),
            operation=op,
            api_version=str(e["apiVersion"]),
            fields=FieldSet.from_fields_v1(e.get("fieldsV1") or {}),
            time=e.get("time"),
            subresource=str(e.get("subresource", "")),
        )
        out[entry.identity] = entry
    return out


def is_reset(entries: Any) -> bool:
    """Whether a client asks to clear ownership: `[]`, or a single empty entry."""
    if not isinstance(entries, list):
        return False
    return not entries or (len(entries) == 1 and entries[0] in ({}, None))


def encode(managed: Managed) -> list[dict[str, Any]]:
    """The managedFields list, sorted as upstream sorts it (appliers first, then by age)."""

    out: list[dict[str, Any]] = []
    for e in sorted(managed.values(),
                    key=lambda e: _order(e.operation, e.time, e.manager, e.api_version,
                                         e.subresource)):
        if not e.fields:
            continue
        d: dict[str, Any] = {"manager": e.manager, "operation": e.operation}
        d["apiVersion"] = e.api_version
        if e.time:
            d["time"] = e.time
        d["fieldsType"] = "FieldsV1"
        d["fieldsV1"] = e.fields.to_fields_v1()
        if e.subresource:
            d["subresource"] = e.subresource
        out.append(d)
    return out


def _order(operation: str, time: str | None, manager: str, api_version: str,
           subresource: str) -> tuple[str, str, str, str, str]:
    # Upstream's order: appliers before updaters, then oldest first.
    return (operation, time or "", manager, api_version, subresource)


def raw_identity(entry: dict[str, Any]) -> Identity:
    """The identity of an entry still in its wire form (see `ManagerEntry.identity`)."""
    op = entry.get("operation", "")
    version = "" if op == APPLY else str(entry.get("apiVersion", ""))
    return (str(entry.get("manager", "")), op, version, str(entry.get("subresource", "")))


def owns_none(fields_v1: Any, paths: FieldSet) -> bool:
    """Whether an encoded `fieldsV1` trie, as this server writes it, has none of `paths`.

    A member is a trie node that is a leaf or carries the `.` marker.
    """
    if not isinstance(fields_v1, dict):
        return False
    for path in paths.paths:
        trie: Any = fields_v1
        for pe in path:
            trie = trie.get(f"{pe.kind}:{pe.text}")
            if trie is None:
                break
        else:
            if not trie or "." in trie:
                return False
    return True


def merge_encoded(kept: list[dict[str, Any]],
                  encoded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored entries carried over unchanged and freshly encoded ones, in upstream's order."""
    both = [*kept, *encoded]
    both.sort(key=lambda d: _order(str(d.get("operation", "")), d.get("time"),
                                   str(d.get("manager", "")), str(d.get("apiVersion", "")),
                                   str(d.get("subresource", ""))))
    return both


def drop_empty(managed: Managed) -> None:
    """Forget managers that no longer own anything."""
    for ident in [i for i, e in managed.items() if not e.fields]:
        del managed[ident]


def cap_updaters(managed: Managed, limit: int = MAX_UPDATE_MANAGERS) -> None:
    """Fold the oldest updaters into one `ancient-changes` entry beyond `limit`.

    Objects touched by many controllers would otherwise grow without bound.
    """
    updaters = [e for e in managed.values() if e.operation == UPDATE]
    if len(updaters) <= limit:
        return
    updaters.sort(key=lambda e: (e.time or "", e.manager))
    for e in updaters[: len(updaters) - limit + 1]:
        if e.manager == ANCIENT_CHANGES:
            continue
        del managed[e.identity]
        folded = ManagerEntry(ANCIENT_CHANGES, UPDATE, e.api_version, FieldSet(), e.time)
        ancient = managed.setdefault(folded.identity, folded)
        ancient.fields = ancient.fields | e.fields
        if e.time and (ancient.time or "") < e.time:
            ancient.time = e.time


def strip_untracked(entry: ManagerEntry, ignored: tuple[Path, ...]) -> None:
    """Remove fields nobody may own from one manager's set."""
    entry.fields = (entry.fields - UNTRACKED).without_subtrees(ignored)


def reset_fields(subresources: tuple[str, ...], subresource: str) -> tuple[Path, ...]:
    """Fields a request cannot own because the server resets them.

    With a status subresource the main resource ignores `status` and the status
    subresource ignores `spec`, so status writers and spec writers never conflict.
    """
    if "status" not in subresources:
        return ()
    if subresource == "status":
        return (make_path("spec"),)
    if subresource == "":
        return (make_path("status"),)
    return ()
