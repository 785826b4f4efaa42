"""Namespace deletion, garbage collection and default service accounts end to end.

The controllers run inside `skiff up`, as clients of its API, exactly as in use.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from skiff.api.errors import StatusError
from skiff.client import Client


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     timeout: float = 8.0) -> None:
    """Poll until `check()` holds; controllers converge asynchronously."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


async def exists(client: Client, plural: str, name: str, namespace: str = "") -> bool:
    try:
        await client.get("", "v1", plural, name, namespace)
    except StatusError as err:
        if err.code == 404:
            return False
        raise
    return True


def cm(name: str, owner: dict[str, Any] | None = None, block: bool = False,
       finalizers: list[str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if owner is not None:
        md["ownerReferences"] = [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block,
        }]
    if finalizers:
        md["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}


async def test_new_namespace_gets_default_service_account_and_it_comes_back(
    client: Client, ns: str
) -> None:
    async def has_sa() -> bool:
        return await exists(client, "serviceaccounts", "default", ns)

    await eventually(has_sa, "the default service account exists")
    await client.delete("", "v1", "serviceaccounts", "default", ns)
    await eventually(has_sa, "the default service account is recreated")


async def test_namespace_deletion_removes_content_and_explains_what_remains(
    client: Client, ns: str
) -> None:
    await client.create("", "v1", "configmaps", cm("a"), ns)
    await client.create("", "v1", "configmaps", cm("held", finalizers=["example.com/hold"]), ns)
    await client.create("", "v1", "secrets",
                        {"metadata": {"name": "s"}, "stringData": {"k": "v"}}, ns)
    await client.delete("", "v1", "namespaces", ns)

    async def only_held_left() -> bool:
        items = (await client.list("", "v1", "configmaps", ns))["items"]
        secrets = (await client.list("", "v1", "secrets", ns))["items"]
        return [i["metadata"]["name"] for i in items] == ["held"] and not secrets

    await eventually(only_held_left, "unfinalized content is deleted")
    # The object with a finalizer holds the namespace in Terminating, and says so.
    live = await client.get("", "v1", "namespaces", ns)
    assert live["status"]["phase"] == "Terminating"

    async def explained() -> bool:
        conds = (await client.get("", "v1", "namespaces", ns))["status"].get("conditions", [])
        return any(c["type"] == "NamespaceFinalizersRemaining" and c["status"] == "True"
                   and "example.com/hold" in c["message"] for c in conds)

    await eventually(explained, "the namespace explains what it waits for")


async def test_namespace_is_deleted_once_empty(client: Client, ns: str) -> None:
    await client.create("", "v1", "configmaps", cm("held", finalizers=["example.com/hold"]), ns)
    await client.delete("", "v1", "namespaces", ns)
    await asyncio.sleep(0.3)
    assert await exists(client, "namespaces", ns), "must wait for the finalizer"
    await client.patch("", "v1", "configmaps", "held", {"metadata": {"finalizers": None}}, ns)

    async def ns_gone() -> bool:
        return not await exists(client, "namespaces", ns)

    await eventually(ns_gone, "the namespace is deleted", timeout=5)


async def test_background_deletion_collects_dependents(client: Client, ns: str) -> None:
    owner = await client.create("", "v1", "configmaps", cm("owner"), ns)
    await client.create("", "v1", "configmaps", cm("dep", owner), ns)
    await client.create("", "v1", "configmaps", cm("bystander"), ns)
    await client.delete("", "v1", "configmaps", "owner", ns, propagation_policy="Background")

    async def dep_gone() -> bool:
        return not await exists(client, "configmaps", "dep", ns)

    await eventually(dep_gone, "the dependent is collected")
    assert await exists(client, "configmaps", "bystander", ns)


async def test_dependent_of_never_existing_owner_is_collected(client: Client, ns: str) -> None:
    ghost = {"metadata": {"name": "ghost", "uid": str(uuid.uuid4())}}
    await client.create("", "v1", "configmaps", cm("stray", ghost), ns)

    async def gone() -> bool:
        return not await exists(client, "configmaps", "stray", ns)

    await eventually(gone, "a dependent of a missing owner is collected")


async def test_foreground_keeps_owner_until_blocking_dependents_are_gone(
    client: Client, ns: str
) -> None:
    owner = await client.create("", "v1", "configmaps", cm("owner"), ns)
    await client.create("", "v1", "configmaps",
                        cm("blocker", owner, block=True, finalizers=["example.com/hold"]), ns)
    await client.create("", "v1", "configmaps", cm("free", owner), ns)
    await client.delete("", "v1", "configmaps", "owner", ns, propagation_policy="Foreground")

    async def blocker_terminating() -> bool:
        obj = await client.get("", "v1", "configmaps", "blocker", ns)
        return bool(obj["metadata"].get("deletionTimestamp"))

    async def free_gone() -> bool:
        return not await exists(client, "configmaps", "free", ns)

    await eventually(blocker_terminating, "the blocking dependent is being deleted")
    await eventually(free_gone, "the non-blocking dependent is deleted")
    await asyncio.sleep(0.3)
    live = await client.get("", "v1", "configmaps", "owner", ns)
    assert live["metadata"].get("deletionTimestamp")
    assert "foregroundDeletion" in live["metadata"]["finalizers"]

    await client.patch("", "v1", "configmaps", "blocker",
                       [{"op": "remove", "path": "/metadata/finalizers"}], ns, patch_type="json")

    async def owner_gone() -> bool:
        return not await exists(client, "configmaps", "owner", ns)

    await eventually(owner_gone, "the owner is deleted once its dependents are")


async def test_orphan_deletion_keeps_dependents_without_the_reference(
    client: Client, ns: str
) -> None:
    owner = await client.create("", "v1", "configmaps", cm("owner"), ns)
    other = await client.create("", "v1", "configmaps", cm("other-owner"), ns)
    dep = cm("dep", owner)
    dep["metadata"]["ownerReferences"].append({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "other-owner",
        "uid": other["metadata"]["uid"]})
    await client.create("", "v1", "configmaps", dep, ns)
    await client.create("", "v1", "configmaps", cm("only-child", owner), ns)
    await client.delete("", "v1", "configmaps", "owner", ns, propagation_policy="Orphan")

    async def owner_gone() -> bool:
        return not await exists(client, "configmaps", "owner", ns)

    await eventually(owner_gone, "the orphaning owner is deleted")
    child = await client.get("", "v1", "configmaps", "only-child", ns)
    assert not child["metadata"].get("ownerReferences")
    dep_live = await client.get("", "v1", "configmaps", "dep", ns)
    assert [r["name"] for r in dep_live["metadata"]["ownerReferences"]] == ["other-owner"]
    # Orphans are not collected later either.
    await asyncio.sleep(0.5)
    assert await exists(client, "configmaps", "only-child", ns)


async def test_explicit_background_overrides_an_orphan_finalizer(client: Client, ns: str) -> None:
    owner = await client.create("", "v1", "configmaps", cm("owner", finalizers=["orphan"]), ns)
    await client.create("", "v1", "configmaps", cm("dep", owner), ns)
    out = await client.delete("", "v1", "configmaps", "owner", ns, propagation_policy="Background")
    # The policy replaced the object's own orphan finalizer: nothing held it.
    assert out["kind"] == "Status", out
    assert not await exists(client, "configmaps", "owner", ns)

    async def dep_gone() -> bool:
        return not await exists(client, "configmaps", "dep", ns)

    await eventually(dep_gone, "the dependent is collected, not orphaned")


async def test_orphan_dependents_is_a_policy_and_excludes_propagation_policy(
    client: Client, ns: str
) -> None:
    await client.create("", "v1", "configmaps", cm("a", finalizers=["orphan", "x.io/keep"]), ns)
    path = client.path("", "v1", "configmaps", "a", ns)
    with_both = {"orphanDependents": True, "propagationPolicy": "Orphan"}
    try:
        await client.request("DELETE", path, body=with_both)
        raise AssertionError("both options must be refused")
    except StatusError as err:
        assert err.code == 422
        assert "orphanDependents and deletionPropagation cannot be both set" in err.message
    out = await client.request("DELETE", path, body={"orphanDependents": False})
    assert out["metadata"]["finalizers"] == ["x.io/keep"]


async def test_job_deleted_without_a_policy_orphans_its_dependents(
    client: Client, ns: str
) -> None:
    job = await client.create("batch", "v1", "jobs", {"metadata": {"name": "j"}, "spec": {
        "suspend": True, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}, ns)
    dep = cm("dep")
    dep["metadata"]["ownerReferences"] = [{
        "apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": job["metadata"]["uid"]}]
    await client.create("", "v1", "configmaps", dep, ns)
    out = await client.delete("batch", "v1", "jobs", "j", ns)
    assert "orphan" in out["metadata"]["finalizers"]

    async def job_gone() -> bool:
        try:
            await client.get("batch", "v1", "jobs", "j", ns)
        except StatusError as err:
            return err.code == 404
        return False

    await eventually(job_gone, "the job is deleted once its dependents are orphaned")
    left = await client.get("", "v1", "configmaps", "dep", ns)
    assert not left["metadata"].get("ownerReferences")


async def test_pending_graceful_deletion_only_gets_shorter(client: Client, ns: str) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    await client.create("", "v1", "pods", pod, ns)
    await client.request("POST", client.path("", "v1", "pods", "p", ns, subresource="binding"),
                         body={"metadata": {"name": "p"},
                               "target": {"kind": "Node", "name": "node-a"}})
    first = await client.delete("", "v1", "pods", "p", ns)
    began = datetime.fromisoformat(first["metadata"]["deletionTimestamp"]) - timedelta(
        seconds=30)
    # While it is pending, a policy changes nothing (upstream keeps finalizers as they are).
    again = await client.delete("", "v1", "pods", "p", ns, propagation_policy="Orphan")
    assert not again["metadata"].get("finalizers")
    assert again["metadata"]["deletionTimestamp"] == first["metadata"]["deletionTimestamp"]
    # A shorter period counts from when the deletion began.
    shorter = await client.delete("", "v1", "pods", "p", ns, grace_period_seconds=10)
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 10
    assert datetime.fromisoformat(shorter["metadata"]["deletionTimestamp"]) == began + timedelta(
        seconds=10)


async def test_root_ca_configmap_is_restored_whole(client: Client, ns: str) -> None:
    async def published() -> bool:
        return await exists(client, "configmaps", "kube-root-ca.crt", ns)

    await eventually(published, "the root CA ConfigMap is published")
    await client.patch("", "v1", "configmaps", "kube-root-ca.crt",
                       {"data": {"extra": "x", "ca.crt": "tampered"}}, ns)

    async def restored() -> bool:
        data = (await client.get("", "v1", "configmaps", "kube-root-ca.crt", ns))["data"]
        return list(data) == ["ca.crt"] and data["ca.crt"] != "tampered"

    await eventually(restored, "the ConfigMap holds exactly the CA again")


async def test_namespace_finalizers_change_only_through_finalize(client: Client) -> None:
    name = f"fin-{uuid.uuid4().hex[:8]}"
    await client.create("", "v1", "namespaces", {"metadata": {"name": name}})
    patched = await client.patch("", "v1", "namespaces", name, {"spec": {"finalizers": []}})
    assert patched["spec"]["finalizers"] == ["kubernetes"]
    live = await client.get("", "v1", "namespaces", name)
    live["spec"]["finalizers"] = []
    await client.request("PUT", client.path("", "v1", "namespaces", name, subresource="finalize"),
                         body=live)
    # Without the finalizer nothing empties it; the first delete only marks it …
    marked = await client.delete("", "v1", "namespaces", name)
    assert marked["status"]["phase"] == "Terminating"
    assert await exists(client, "namespaces", name)
    # … and a second one, with nothing left in spec.finalizers, removes it.
    await client.delete("", "v1", "namespaces", name)
    assert not await exists(client, "namespaces", name)


async def test_delete_preconditions_and_negative_grace_as_upstream(client: Client, ns: str) -> None:
    made = await client.create("", "v1", "configmaps", cm("c"), ns)
    for pre, why in (
        ({"uid": "other"}, f"the UID in the precondition (other) does not match the UID in "
                           f"record ({made['metadata']['uid']}). The object might have been "
                           "deleted and then recreated"),
        ({"resourceVersion": "1"}, "the ResourceVersion in the precondition (1) does not match "
                                   f"the ResourceVersion in record "
                                   f"({made['metadata']['resourceVersion']}). The object might "
                                   "have been modified"),
    ):
        try:
            await client.delete("", "v1", "configmaps", "c", ns, preconditions=pre)
            raise AssertionError("the precondition must fail")
        except StatusError as err:
            assert err.code == 409
            assert err.message == f'Operation cannot be fulfilled on ConfigMap "c": {why}'
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    await client.create("", "v1", "pods", pod, ns)
    await client.request("POST", client.path("", "v1", "pods", "p", ns, subresource="binding"),
                         body={"metadata": {"name": "p"},
                               "target": {"kind": "Node", "name": "node-a"}})
    out = await client.delete("", "v1", "pods", "p", ns, grace_period_seconds=-1)
    assert out["metadata"]["deletionGracePeriodSeconds"] == 1


async def test_recreating_an_object_being_deleted_says_so(client: Client, ns: str) -> None:
    await client.create("", "v1", "configmaps", cm("held", finalizers=["example.com/hold"]), ns)
    await client.delete("", "v1", "configmaps", "held", ns)
    for dry_run in (False, True):
        try:
            await client.request("POST", client.path("", "v1", "configmaps", namespace=ns),
                                 params={"dryRun": "All"} if dry_run else None,
                                 body=cm("held"))
            raise AssertionError("the name is still taken")
        except StatusError as err:
            assert err.code == 409
            assert err.message == 'object is being deleted: configmaps "held" already exists'
    await client.patch("", "v1", "configmaps", "held", {"metadata": {"finalizers": None}}, ns)
