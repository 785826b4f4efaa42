"""The pods/eviction subresource: a delete that honours PodDisruptionBudgets.

As upstream:

- pods that are not running yet, finished, or already being deleted are deleted
  without consulting any budget (still with the DisruptionTarget condition);
- a pod covered by more than one budget cannot be evicted (500);
- a pod that is not ready may go without spending the budget when the budget is
  healthy anyway (or its unhealthyPodEvictionPolicy is AlwaysAllow);
- otherwise the budget's status must have observed its latest spec and allow a
  disruption: the eviction spends one (`disruptionsAllowed` − 1) and records the
  pod in `disruptedPods`, so the disruption controller does not count it as healthy
  before it is gone; if none is left, the answer is 429 TooManyRequests;
- the pod gets a `DisruptionTarget` condition, then is deleted gracefully.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skiff.api import meta as m
from skiff.api.errors import StatusError, bad_request, conflict
from skiff.api.selectors.labels import from_label_selector_dict
from skiff.apiserver.list_options import ListOptions
from skiff.apiserver.resource_store import DeleteOptions, WriteContext

if TYPE_CHECKING:
    from skiff.apiserver.server import APIServer

Obj = dict[str, Any]

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE = ("This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support.")
# More evictions in flight than the disruption controller has confirmed: refuse more.
MAX_DISRUPTED_PODS = 2000
RETRIES = 5


def _too_many_requests(message: str, retry_after: int) -> StatusError:
    details: dict[str, Any] = {"causes": [{"reason": "DisruptionBudget", "message": message}]}
    # Upstream's retryAfterSeconds is omitempty: "retry now" is no field at all.
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return StatusError(429, "TooManyRequests", VIOLATION, details)


def _forbidden(pdb_name: str, why: str) -> StatusError:
    # Upstream names the resource in the singular here.
    return StatusError(403, "Forbidden", f'poddisruptionbudget.policy "{pdb_name}" is '
                       f"forbidden: {why}", {"name": pdb_name, "group": "policy",
                                             "kind": "poddisruptionbudget"})


def _is_ready(pod: Obj) -> bool:
    cond = m.condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def _matches(pdb: Obj, pod: Obj) -> bool:
    sel = (pdb.get("spec") or {}).get("selector")
    if sel is None:
        return False
    try:
        return from_label_selector_dict(sel).matches(m.labels_of(pod))
    except Exception:  # noqa: BLE001 - a malformed stored selector matches nothing
        return False


def _delete_options(body: Obj) -> DeleteOptions:
    opts = DeleteOptions()
    d = body.get("deleteOptions") if isinstance(body.get("deleteOptions"), dict) else {}
    grace = d.get("gracePeriodSeconds")
    if isinstance(grace, int) and not isinstance(grace, bool):
        opts.grace_period_seconds = grace
    pre = d.get("preconditions") if isinstance(d.get("preconditions"), dict) else {}
    if pre.get("uid"):
        opts.precondition_uid = str(pre["uid"])
    if pre.get("resourceVersion"):
        opts.precondition_rv = str(pre["resourceVersion"])
    if d.get("dryRun"):
        opts.dry_run = True
    return opts


async def evict(server: APIServer, namespace: str, name: str, body: Any,
                ctx: WriteContext) -> Obj:
    """Evict pod `namespace/name` as the Eviction `body` asks."""
    if not isinstance(body, dict):
        raise bad_request("the body must be an Eviction")
    body_name = (body.get("metadata") or {}).get("name") if isinstance(
        body.get("metadata"), dict) else None
    if body_name and body_name != name:
        raise bad_request("name in URL does not match name in Eviction object")
    pods_rt = server.registry.get("", "v1", "pods")
    pdb_rt = server.registry.get("policy", "v1", "poddisruptionbudgets")
    assert pods_rt is not None and pdb_rt is not None
    opts = _delete_options(body)
    dry_run = ctx.dry_run or opts.dry_run
    pod = await server.objects.get(pods_rt, namespace, name)
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    deleting = bool(m.metadata(pod).get("deletionTimestamp"))
    if phase in ("Succeeded", "Failed", "Pending") or deleting:
        if phase == "Pending" and not deleting:
            # A pending pod may turn ready meanwhile: delete exactly the pod judged.
            opts.precondition_rv = opts.precondition_rv or m.resource_version_of(pod)
        # Budgets are not consulted, but the pod is still marked as a disruption target.
        return await _delete(server, pod, opts, ctx, condition=not dry_run)
    listing = await server.objects.list(pdb_rt, namespace, ListOptions())
    pdbs = [p for p in listing.get("items") or [] if _matches(p, pod)]
    if len(pdbs) > 1:
        # Upstream answers with a bare failure Status: a 500 without a reason.
        raise StatusError(500, "", MULTIPLE)
    if pdbs:
        pdb = pdbs[0]
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        unhealthy_free = not _is_ready(pod) and (
            spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
            or (int(status.get("currentHealthy") or 0) >= int(status.get("desiredHealthy") or 0)
                and int(status.get("desiredHealthy") or 0) > 0))
        if unhealthy_free:
            # The pod counts for nothing in the budget: delete exactly the pod judged.
            if not opts.precondition_rv:
                opts.precondition_rv = m.resource_version_of(pod)
                try:
                    return await _delete(server, pod, opts, ctx, condition=not dry_run)
                except StatusError as err:
                    if err.code != 409:
                        raise
                    # The pod changed (it may be ready now): the client should retry.
                    raise _too_many_requests(
                        f"The disruption budget {m.name_of(pdb)} is still being processed "
                        "by the server.", 10) from err
        else:
            await _spend_budget(server, pdb_rt, pdb, name, dry_run)
    return await _delete(server, pod, opts, ctx, condition=not dry_run)


async def _spend_budget(server: APIServer, pdb_rt: Any, pdb: Obj, pod_name: str,
                        dry_run: bool) -> None:
    """Take one disruption from the budget (429 when none is left), retrying races."""
    namespace, pdb_name = m.namespace_of(pdb), m.name_of(pdb)
    for attempt in range(RETRIES):
        if attempt:
            pdb = await server.objects.get(pdb_rt, namespace, pdb_name)
        status = pdb.get("status") or {}
        generation = (pdb.get("metadata") or {}).get("generation") or 0
        if int(status.get("observedGeneration") or 0) < generation:
            raise _too_many_requests(
                f"The disruption budget {pdb_name} is still being processed by the server.", 10)
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise _forbidden(pdb_name, "pdb disruptions allowed is negative")
        if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
            raise _forbidden(pdb_name, "DisruptedPods map too big - too many evictions not "
                                       "confirmed by PDB controller")
        if allowed == 0:
            raise _too_many_requests(
                f"The disruption budget {pdb_name} needs {status.get('desiredHealthy', 0)} "
                f"healthy pods and has {status.get('currentHealthy', 0)} currently", 0)
        if dry_run:
            return
        expected_rv = m.resource_version_of(pdb)
        stamp = m.rfc3339()

        def spend(current: Obj, expected_rv: str = expected_rv, stamp: str = stamp) -> Obj:
            if m.resource_version_of(current) != expected_rv:
                raise conflict("policy", "poddisruptionbudgets", pdb_name, "changed")
            st = current.setdefault("status", {})
            st["disruptionsAllowed"] = int(st.get("disruptionsAllowed") or 0) - 1
            if st["disruptionsAllowed"] == 0:
                conds = [c for c in st.get("conditions") or []
                         if c.get("type") != "DisruptionAllowed"]
                conds.append({"type": "DisruptionAllowed", "status": "False",
                              "reason": "InsufficientPods", "message": "",
                              "observedGeneration": st.get("observedGeneration", 0),
                              "lastTransitionTime": stamp})
                st["conditions"] = conds
            disrupted = dict(st.get("disruptedPods") or {})
            disrupted[pod_name] = stamp
            st["disruptedPods"] = disrupted
            return current

        write_ctx = WriteContext(user="system:apiserver", field_manager="kube-apiserver")
        try:
            await server.objects.guaranteed_update(pdb_rt, namespace, pdb_name, spend,
                                                   write_ctx, subresource="status",
                                                   precondition=True)
            return
        except StatusError as err:
            if err.code != 409:
                raise
    raise _too_many_requests(f"The disruption budget {pdb_name} is being updated by others.",
                             1)


async def _delete(server: APIServer, pod: Obj, opts: DeleteOptions, ctx: WriteContext,
                  *, condition: bool) -> Obj:
    pods_rt = server.registry.get("", "v1", "pods")
    assert pods_rt is not None
    namespace, name = m.namespace_of(pod), m.name_of(pod)
    if condition:
        def mark(current: Obj) -> Obj:
            # The preconditions hold for the pod as it is now, before the condition
            # write moves its version on (as upstream).
            opts.check_preconditions(pods_rt, current)
            m.set_condition(current, "DisruptionTarget", "True", "EvictionByEvictionAPI",
                            "Eviction API: evicting")
            return current

        status_ctx = WriteContext(user=ctx.user, groups=ctx.groups,
                                  field_manager=ctx.field_manager)
        try:
            marked = await server.objects.guaranteed_update(pods_rt, namespace, name, mark,
                                                            status_ctx, subresource="status")
        except StatusError as err:
            if err.code != 404:
                raise
        else:
            if opts.precondition_rv:
                # Our own write moved the version on: the delete expects that one.
                opts.precondition_rv = m.resource_version_of(marked)
    await server.objects.delete(pods_rt, namespace, name, opts, ctx)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}
