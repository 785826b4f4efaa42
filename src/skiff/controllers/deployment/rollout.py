"""One reconcile of one Deployment: the steps of upstream's deployment controller.

A `Rollout` holds the Deployment and the ReplicaSets it owns for the length of one
reconcile and makes API writes through the client, keeping its local copies current
so later steps see earlier ones' effects:

- `sync`: proportional scaling, cleanup of old revisions, status (paused Deployments
  and scaling events take this path);
- `rolling`: scale the new ReplicaSet up within maxSurge, old ones down within
  maxUnavailable (unhealthy pods first), then status and progress;
- `recreate`: scale every old ReplicaSet to zero, wait until their pods are gone,
  then scale the new one up.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.event_recorder import EventRecorder
from skiff.client.http_client import Client
from skiff.controllers import pod_state
from skiff.controllers.controller_ref import owner_reference
from skiff.controllers.deployment import util as u
from skiff.controllers.status_patch import status_diff

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RS = ("apps", "v1", "replicasets")
DEPLOYMENTS = ("apps", "v1", "deployments")


class Rollout:
    """The work of one reconcile of Deployment `d` over its ReplicaSets `rss`."""

    def __init__(self, client: Client, recorder: EventRecorder, d: Obj, rss: list[Obj],
                 pods_by_rs: dict[str, list[Obj]] | None = None) -> None:
        self.client = client
        self.recorder = recorder
        # The Deployment is changed in place (status, revision) as steps go; the
        # ReplicaSets are only replaced, never changed (writes copy them first).
        self.d = m.deep_copy(d)
        self.rss = list(rss)
        self.pods_by_rs = pods_by_rs or {}
        # What the API has, so writes send only differences (read, never changed).
        self.stored_status: Obj = d.get("status") or {}
        self.stored_revision = ((d.get("metadata") or {}).get("annotations") or {}).get(
            u.REVISION)
        # When the next reconcile is due for a stuck rollout (None: on events only).
        self.requeue_after: float | None = None
        # The new ReplicaSet's uid once `new_and_old` has found (and synced) it: steps
        # after the first ask again, and the answer cannot change within a reconcile.
        self._new_uid: str | None = None

    # -- finding the new and old ReplicaSets --------------------------------------------

    def find_new(self) -> Obj | None:
        """The oldest ReplicaSet whose template is the Deployment's."""
        template = (self.d.get("spec") or {}).get("template") or {}
        for rs in u.by_creation(self.rss):
            if u.equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
                return rs
        return None

    def old_of(self, new: Obj | None) -> list[Obj]:
        """Every owned ReplicaSet but the new one."""
        new_uid = m.uid_of(new) if new is not None else None
        return [r for r in self.rss if m.uid_of(r) != new_uid]

    async def new_and_old(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        """The new ReplicaSet (created if asked and missing) and the old ones, with the
        revision annotations brought up to date on both it and the Deployment."""
        if self._new_uid is not None:
            known = next((r for r in self.rss if m.uid_of(r) == self._new_uid), None)
            if known is not None:
                return known, self.old_of(known)
        new = self.find_new()
        old = self.old_of(new)
        new_revision = str(u.max_revision(old) + 1)
        if new is not None:
            synced = await self._sync_existing_new(new, new_revision)
            self._new_uid = m.uid_of(synced)
            return synced, old
        if not create:
            return None, old
        created = await self._create_new(old, new_revision)
        if created is not None:
            self._new_uid = m.uid_of(created)
        return created, old

    async def _sync_existing_new(self, new: Obj, new_revision: str) -> Obj:
        rs = m.deep_copy(new)
        changed = u.set_new_rs_annotations(self.d, rs, new_revision, exists=True)
        min_ready = (self.d.get("spec") or {}).get("minReadySeconds") or 0
        if changed or ((rs.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
            rs = await self._update_rs(rs)
        needs_status = self._set_revision(
            ((rs.get("metadata") or {}).get("annotations") or {}).get(u.REVISION, ""))
        status = self.d.setdefault("status", {})
        if u.has_progress_deadline(self.d) and u.get_condition(status, "Progressing") is None:
            u.set_condition(status, u.new_condition(
                "Progressing", "True", u.FOUND_NEW_RS,
                f'Found new replica set "{m.name_of(rs)}"'))
            needs_status = True
        if needs_status:
            await self.write_status(self.d.get("status") or {})
        return rs

    def _set_revision(self, revision: str) -> bool:
        ann = m.metadata(self.d).setdefault("annotations", {})
        if not revision or ann.get(u.REVISION) == revision:
            return False
        ann[u.REVISION] = revision
        return True

    async def _create_new(self, old: list[Obj], new_revision: str) -> Obj | None:
        spec = self.d.get("spec") or {}
        template = m.deep_copy(spec.get("template") or {})
        collisions = (self.d.get("status") or {}).get("collisionCount")
        hash_ = u.template_hash(template, collisions)
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels[u.HASH_LABEL] = hash_
        template.setdefault("metadata", {})["labels"] = labels
        selector = m.deep_copy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[u.HASH_LABEL] = hash_
        name = f"{m.name_of(self.d)}-{hash_}"
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": m.namespace_of(self.d),
                         "labels": dict(labels), "ownerReferences": [owner_reference(self.d)]},
            "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds") or 0,
                     "selector": selector, "template": template},
        }
        rs["spec"]["replicas"] = u.new_rs_replicas(self.d, [*old, rs], rs)
        u.set_new_rs_annotations(self.d, rs, new_revision, exists=False)
        try:
            created = await self.client.create(*RS, rs, m.namespace_of(self.d))
        except StatusError as err:
            if err.code == 409:
                return await self._on_name_taken(rs)
            msg = f'Failed to create new replica set "{name}": {err.message}'
            if u.has_progress_deadline(self.d):
                u.set_condition(self.d.setdefault("status", {}), u.new_condition(
                    "Progressing", "False", u.FAILED_RS_CREATE, msg))
                await self.write_status(self.d["status"])
            self.recorder.event(self.d, "Warning", u.FAILED_RS_CREATE, msg)
            raise
        replicas = u.spec_replicas(created)
        if replicas > 0:
            self.recorder.event(self.d, "Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {name} from 0 to {replicas}")
        self.rss.append(created)
        self._set_revision(new_revision)
        if u.has_progress_deadline(self.d):
            u.set_condition(self.d.setdefault("status", {}), u.new_condition(
                "Progressing", "True", u.NEW_RS_CREATED,
                f'Created new replica set "{name}"'))
        await self.write_status(self.d.get("status") or {})
        return created

    async def _on_name_taken(self, wanted: Obj) -> Obj | None:
        """A ReplicaSet with the new name exists: ours with our template, or a hash
        collision, which bumps collisionCount so the next attempt gets another name."""
        try:
            existing = await self.client.get(*RS, m.name_of(wanted), m.namespace_of(self.d))
        except StatusError:
            existing = None
        template = (self.d.get("spec") or {}).get("template") or {}
        if existing is not None and (m.controller_of(existing) or {}).get(
                "uid") == m.uid_of(self.d) and u.equal_ignore_hash(
                (existing.get("spec") or {}).get("template") or {}, template):
            self.rss.append(existing)
            return existing
        status = self.d.setdefault("status", {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self.write_status(status)
        raise StatusError(409, "AlreadyExists", f"replica set {m.name_of(wanted)} exists: "
                          "hash collision, collisionCount is now "
                          f"{status['collisionCount']}")

    # -- writes -----------------------------------------------------------------------------

    async def _update_rs(self, rs: Obj) -> Obj:
        updated = await self.client.update(*RS, rs, m.namespace_of(rs))
        self.rss = [updated if m.uid_of(r) == m.uid_of(updated) else r for r in self.rss]
        return updated

    async def scale_rs(self, rs: Obj, new_scale: int, operation: str | None = None
                       ) -> tuple[bool, Obj]:
        """Resize one ReplicaSet (and stamp the Deployment's size on it); an event
        says so when the size changed."""
        d = self.d
        old_scale = u.spec_replicas(rs)
        size_changed = old_scale != new_scale
        maximum = u.spec_replicas(d) + u.max_surge(d)
        if not size_changed and not u.replicas_annotations_need_update(
                rs, u.spec_replicas(d), maximum):
            return False, rs
        updated = m.deep_copy(rs)
        updated["spec"]["replicas"] = new_scale
        u.set_replicas_annotations(updated, u.spec_replicas(d), maximum)
        updated = await self._update_rs(updated)
        if size_changed:
            op = operation or ("up" if new_scale > old_scale else "down")
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {op} replica set {m.name_of(rs)} from {old_scale} "
                                f"to {new_scale}")
        return size_changed, updated

    async def write_status(self, status: Obj) -> None:
        """Patch the Deployment's status (and its revision annotation) if they changed."""
        d = self.d
        revision = ((d.get("metadata") or {}).get("annotations") or {}).get(u.REVISION)
        patch: Obj = {}
        diff = status_diff(self.stored_status, status)
        if diff:
            patch["status"] = diff
        if revision and revision != self.stored_revision:
            patch["metadata"] = {"annotations": {u.REVISION: revision}}
        if not patch:
            d["status"] = m.deep_copy(status)
            return
        try:
            stored = await self.client.patch(*DEPLOYMENTS, m.name_of(d), patch,
                                             m.namespace_of(d), patch_type="merge",
                                             subresource="status")
        except StatusError as err:
            if err.code == 404:
                return
            raise
        self.stored_status = stored.get("status") or {}
        self.stored_revision = ((stored.get("metadata") or {}).get("annotations") or {}).get(
            u.REVISION)
        d["status"] = m.deep_copy(self.stored_status)

    # -- scaling (sync path) ---------------------------------------------------------------

    async def scale(self, new: Obj | None, old: list[Obj]) -> None:
        """Bring the ReplicaSets' total to the Deployment's size, proportionally while a
        rollout is under way (upstream's scale)."""
        d = self.d
        desired = u.spec_replicas(d)
        latest = self._active_or_latest(new, old)
        if latest is not None:
            if u.spec_replicas(latest) != desired:
                await self.scale_rs(latest, desired)
            return
        if new is not None and self._saturated(new):
            for rs in u.active(old):
                await self.scale_rs(rs, 0)
            return
        if not u.is_rolling(d):
            return
        all_active = u.active([*old, new])
        allowed = desired + u.max_surge(d) if desired > 0 else 0
        to_add = allowed - u.total_spec(all_active)
        if to_add > 0:
            all_active = u.by_size_newer(all_active)
            operation = "up"
        elif to_add < 0:
            all_active = u.by_size_older(all_active)
            operation = "down"
        else:
            operation = ""
        sizes: dict[str, int] = {}
        added = 0
        for rs in all_active:
            if to_add != 0:
                share = u.proportion(rs, d, to_add, added)
                sizes[m.name_of(rs)] = u.spec_replicas(rs) + share
                added += share
            else:
                sizes[m.name_of(rs)] = u.spec_replicas(rs)
        if to_add != 0 and all_active:
            first = m.name_of(all_active[0])
            sizes[first] = max(0, sizes[first] + to_add - added)
        for rs in all_active:
            await self.scale_rs(rs, sizes[m.name_of(rs)], operation or None)

    @staticmethod
    def _active_or_latest(new: Obj | None, old: list[Obj]) -> Obj | None:
        if new is None and not old:
            return None
        old_sorted = list(reversed(u.by_creation(old)))
        candidates = u.active([*old_sorted, new])
        if not candidates:
            return new if new is not None else old_sorted[0]
        return candidates[0] if len(candidates) == 1 else None

    def _saturated(self, new: Obj) -> bool:
        desired = u.spec_replicas(self.d)
        return (u.spec_replicas(new) == desired
                and u.annotation_int(new, u.DESIRED_REPLICAS) == desired
                and u.status_int(new, "availableReplicas") == desired)

    async def cleanup(self, old: list[Obj]) -> None:
        """Delete the oldest idle ReplicaSets beyond revisionHistoryLimit."""
        limit = (self.d.get("spec") or {}).get("revisionHistoryLimit")
        if not isinstance(limit, int):
            return
        alive = [r for r in old if not (r.get("metadata") or {}).get("deletionTimestamp")]
        excess = len(alive) - limit
        if excess <= 0:
            return
        for rs in sorted(alive, key=lambda r: (u.revision_of(r), m.name_of(r)))[:excess]:
            md = rs.get("metadata") or {}
            if (u.status_int(rs, "replicas") != 0 or u.spec_replicas(rs) != 0
                    or (md.get("generation") or 0) > u.status_int(rs, "observedGeneration")):
                continue
            try:
                await self.client.delete(*RS, m.name_of(rs), m.namespace_of(rs),
                                         preconditions={"uid": m.uid_of(rs)})
            except StatusError as err:
                if err.code not in (404, 409):
                    raise

    # -- status ----------------------------------------------------------------------------

    def calculate_status(self, all_rss: list[Obj | None], new: Obj | None) -> Obj:
        """The Deployment's status from its ReplicaSets' (upstream's calculateStatus)."""
        d = self.d
        available = u.total_status(all_rss, "availableReplicas")
        total = u.total_spec(all_rss)
        old_status = d.get("status") or {}
        status: Obj = {}
        generation = (d.get("metadata") or {}).get("generation")
        if generation:
            status["observedGeneration"] = generation
        for key, value in (("replicas", u.total_status(all_rss, "replicas")),
                           ("updatedReplicas", u.total_status([new], "replicas")),
                           ("readyReplicas", u.total_status(all_rss, "readyReplicas")),
                           ("availableReplicas", available),
                           ("unavailableReplicas", max(0, total - available))):
            if value:
                status[key] = value
        if old_status.get("collisionCount") is not None:
            status["collisionCount"] = old_status["collisionCount"]
        conds = [dict(c) for c in old_status.get("conditions") or []]
        if conds:
            status["conditions"] = conds
        if available >= u.spec_replicas(d) - u.max_unavailable(d):
            u.set_condition(status, u.new_condition("Available", "True", u.MIN_AVAILABLE,
                                                    "Deployment has minimum availability."))
        else:
            u.set_condition(status, u.new_condition(
                "Available", "False", u.MIN_UNAVAILABLE,
                "Deployment does not have minimum availability."))
        return status

    async def sync_status(self, all_rss: list[Obj | None], new: Obj | None) -> None:
        """Write the status of a scaling or paused Deployment."""
        await self.write_status(self.calculate_status(all_rss, new))

    async def sync_rollout_status(self, all_rss: list[Obj | None], new: Obj | None) -> None:
        """Write status with the Progressing condition (upstream's syncRolloutStatus)."""
        d = self.d
        status = self.calculate_status(all_rss, new)
        if not u.has_progress_deadline(d):
            u.remove_condition(status, "Progressing")
        current = u.get_condition(d.get("status") or {}, "Progressing")
        complete_before = (status.get("replicas", 0) == status.get("updatedReplicas", 0)
                           and current is not None
                           and current.get("reason") == u.NEW_RS_AVAILABLE)
        what = (f'ReplicaSet "{m.name_of(new)}"' if new is not None
                else f'Deployment "{m.name_of(d)}"')
        if u.has_progress_deadline(d) and not complete_before:
            if u.deployment_complete(d, status):
                u.set_condition(status, u.new_condition(
                    "Progressing", "True", u.NEW_RS_AVAILABLE,
                    f"{what} has successfully progressed."))
            elif u.deployment_progressing(d, status):
                cond = u.new_condition("Progressing", "True", u.RS_UPDATED,
                                       f"{what} is progressing.")
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    u.remove_condition(status, "Progressing")
                u.set_condition(status, cond)
            elif u.deployment_timed_out(d, status):
                u.set_condition(status, u.new_condition(
                    "Progressing", "False", u.TIMED_OUT, f"{what} has timed out progressing."))
        failure = self._replica_failure(all_rss, new)
        if failure is not None:
            u.set_condition(status, failure)
        else:
            u.remove_condition(status, "ReplicaFailure")
        await self.write_status(status)
        self._requeue_if_stuck(status)

    @staticmethod
    def _replica_failure(all_rss: list[Obj | None], new: Obj | None) -> Obj | None:
        ordered = [new] if new is not None else []
        ordered += [r for r in all_rss if r is not None and r is not new]
        for rs in ordered:
            cond = u.get_condition(rs.get("status") or {}, "ReplicaFailure")
            if cond is not None and cond.get("status") == "True":
                return {"type": "ReplicaFailure", "status": "True",
                        "lastUpdateTime": cond.get("lastTransitionTime") or m.rfc3339(),
                        "lastTransitionTime": cond.get("lastTransitionTime") or m.rfc3339(),
                        "reason": cond.get("reason", ""), "message": cond.get("message", "")}
        return None

    def _requeue_if_stuck(self, status: Obj) -> None:
        """Check again when the progress deadline would pass with no news."""
        d = self.d
        cond = u.get_condition(status, "Progressing")
        if not u.has_progress_deadline(d) or cond is None:
            return
        if u.deployment_complete(d, status) or cond.get("reason") == u.TIMED_OUT:
            return
        since = m.parse_time(cond.get("lastUpdateTime") or "")
        if since is None:
            return
        deadline = int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)
        after = (since + dt.timedelta(seconds=deadline) - m.now()).total_seconds()
        # A second's margin against clock skew, as upstream; a deadline under a second
        # away is checked just after it passes, not in a tight loop until it does.
        self.requeue_after = after + 1 if after >= 1 else max(after, 0.0) + 0.1

    # -- strategies --------------------------------------------------------------------------

    async def sync(self) -> None:
        """Scale, clean up (when paused) and report status, without rolling anything."""
        new, old = await self.new_and_old(create=False)
        await self.scale(new, old)
        new = self._current(new)
        old = [self._current(r) for r in old]
        if (self.d.get("spec") or {}).get("paused"):
            await self.cleanup(old)
        await self.sync_status([*old, new], new)

    def _current(self, rs: Obj | None) -> Any:
        if rs is None:
            return None
        for r in self.rss:
            if m.uid_of(r) == m.uid_of(rs):
                return r
        return rs

    async def is_scaling_event(self) -> bool:
        """Whether spec.replicas changed since the active ReplicaSets were sized."""
        new, old = await self.new_and_old(create=False)
        desired = u.spec_replicas(self.d)
        for rs in u.active([*old, self._current(new)]):
            annotated = u.annotation_int(rs, u.DESIRED_REPLICAS)
            if annotated is not None and annotated != desired:
                return True
        return False

    async def rolling(self) -> None:
        """One step of a rolling update."""
        new, old = await self.new_and_old(create=True)
        assert new is not None
        all_rss: list[Obj] = [*old, new]
        if await self._reconcile_new(all_rss, new):
            await self.sync_rollout_status(self._all(), self._current(new))
            return
        new = self._current(new)
        old = [self._current(r) for r in old]
        if await self._reconcile_old([*old, new], u.active(old), new):
            await self.sync_rollout_status(self._all(), self._current(new))
            return
        if u.deployment_complete(self.d, self.d.get("status") or {}):
            await self.cleanup([self._current(r) for r in old])
        await self.sync_rollout_status(self._all(), self._current(new))

    def _all(self) -> list[Obj | None]:
        return list(self.rss)

    async def _reconcile_new(self, all_rss: list[Obj], new: Obj) -> bool:
        desired = u.spec_replicas(self.d)
        current = u.spec_replicas(new)
        if current == desired:
            return False
        if current > desired:
            scaled, _ = await self.scale_rs(new, desired, "down")
            return scaled
        scaled, _ = await self.scale_rs(new, u.new_rs_replicas(self.d, all_rss, new), "up")
        return scaled

    async def _reconcile_old(self, all_rss: list[Obj], old: list[Obj], new: Obj) -> bool:
        old_count = u.total_spec(old)
        if old_count == 0:
            return False
        d = self.d
        min_available = u.spec_replicas(d) - u.max_unavailable(d)
        new_unavailable = u.spec_replicas(new) - u.status_int(new, "availableReplicas")
        max_scaled_down = u.total_spec(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        old, cleaned = await self._cleanup_unhealthy(old, max_scaled_down)
        scaled = await self._scale_down_old([*old, new], old)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, old: list[Obj], limit: int) -> tuple[list[Obj], int]:
        """Scale old ReplicaSets down by their unavailable pods first: those pods serve
        nobody and would otherwise hold the rollout back."""
        total = 0
        out: list[Obj] = []
        for rs in u.by_creation(old):
            # Status lags a scale-down: more pods can still be available than the spec
            # now asks for, and that gap must never turn into a scale-up.
            unhealthy = u.spec_replicas(rs) - u.status_int(rs, "availableReplicas")
            if total >= limit or u.spec_replicas(rs) == 0 or unhealthy <= 0:
                out.append(rs)
                continue
            count = min(limit - total, unhealthy)
            _, rs = await self.scale_rs(rs, u.spec_replicas(rs) - count)
            total += count
            out.append(rs)
        return out, total

    async def _scale_down_old(self, all_rss: list[Obj], old: list[Obj]) -> int:
        d = self.d
        min_available = u.spec_replicas(d) - u.max_unavailable(d)
        available = u.total_status(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        goal = available - min_available
        total = 0
        for rs in u.by_creation(old):
            if total >= goal:
                break
            if u.spec_replicas(rs) == 0:
                continue
            count = min(u.spec_replicas(rs), goal - total)
            await self.scale_rs(rs, u.spec_replicas(rs) - count)
            total += count
        return total

    async def recreate(self) -> None:
        """One step of a Recreate rollout."""
        new, old = await self.new_and_old(create=False)
        scaled = False
        for rs in u.active(old):
            changed, _ = await self.scale_rs(rs, 0)
            scaled = scaled or changed
        if scaled or self._old_pods_running(new, [self._current(r) for r in old]):
            await self.sync_rollout_status(self._all(), self._current(new))
            return
        if new is None:
            new, old = await self.new_and_old(create=True)
            assert new is not None
        new = self._current(new)
        if u.spec_replicas(new) != u.spec_replicas(self.d):
            await self.scale_rs(new, u.spec_replicas(self.d))
        if u.deployment_complete(self.d, self.d.get("status") or {}):
            await self.cleanup([self._current(r) for r in old])
        await self.sync_rollout_status(self._all(), self._current(new))

    def _old_pods_running(self, new: Obj | None, old: list[Obj]) -> bool:
        if u.total_status(old, "replicas") > 0:
            return True
        new_uid = m.uid_of(new) if new is not None else None
        for uid, pods in self.pods_by_rs.items():
            if uid == new_uid:
                continue
            if any(not pod_state.is_terminal(p) for p in pods):
                return True
        return False
