"""Writing a controller's computed status as a merge patch of the status subresource.

Upstream's status structs drop zero fields (`omitempty`); a merge patch that sets a
vanished field to null does the same here, so `kubectl get -o yaml` shows what a
real cluster shows. A patch needs no resourceVersion, so a status write never
conflicts with a concurrent spec change (the next reconcile sees that anyway).
"""

from __future__ import annotations

from typing import Any

from skiff.api.errors import StatusError
from skiff.client.http_client import Client

Obj = dict[str, Any]


def status_diff(old: Obj, new: Obj) -> Obj:
    """The merge patch turning status `old` into `new` (empty when they are equal)."""
    patch: Obj = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        # A merge patch merges maps: nested keys that vanished must be nulled too.
        if isinstance(value, dict) and not value:
            patch[key] = None
        elif isinstance(before, dict) and isinstance(value, dict):
            patch[key] = status_diff(before, value)
        else:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


async def write_status(client: Client, gvr: tuple[str, str, str], obj: Obj, status: Obj,
                       *, precondition: bool = False, decode: bool = True) -> Obj | None:
    """Patch `obj`'s status to `status` if it differs; the stored object, or None if
    nothing was written (unchanged, or the object is gone) or `decode` is False.

    With `precondition`, the patch names the resourceVersion it was computed from, so
    it fails with a 409 if anything else wrote the object since (a status others also
    write, like a disruption budget's, must not be overwritten from a stale cache).
    """
    patch = status_diff(obj.get("status") or {}, status)
    if not patch:
        return None
    md = obj.get("metadata") or {}
    body: Obj = {"status": patch}
    if precondition:
        body["metadata"] = {"resourceVersion": md.get("resourceVersion", "")}
    try:
        return await client.patch(*gvr, md.get("name", ""), body,
                                  md.get("namespace", ""), patch_type="merge",
                                  subresource="status", decode=decode)
    except StatusError as err:
        if err.code == 404:
            return None
        raise
