"""The StatefulSet controller inside a real `skiff up`, pods driven by the fake kubelet."""

from __future__ import annotations

import asyncio
from typing import Any

from skiff.client import Client
from tests.controller_helpers import container, events_for, eventually, pods_in
from tests.fake_kubelet import FakeKubelet, finish_pod, set_running

Obj = dict[str, Any]


def sts(name: str, replicas: int, **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container("web", "nginx:1")]}},
                     **spec}}


async def names(client: Client, ns: str, app: str) -> list[str]:
    return [p["metadata"]["name"] for p in await pods_in(client, ns, f"app={app}")
            if not p["metadata"].get("deletionTimestamp")]


async def get_sts(client: Client, ns: str, name: str) -> Obj:
    return await client.get("apps", "v1", "statefulsets", name, ns)


async def test_ordered_scale_up_and_down(client: Client, ns: str) -> None:
    # This kubelet binds pods but leaves running them to the test.
    async with FakeKubelet(client, ns, run=False):
        await client.create("apps", "v1", "statefulsets", sts("web", 3, volumeClaimTemplates=[
            {"metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}]), ns)
        for n in range(3):
            async def exactly(n: int = n) -> list[str]:
                got = await names(client, ns, "web")
                return got if got == [f"web-{i}" for i in range(n + 1)] else []
            await eventually(exactly, f"web-0..web-{n} exist and no more")
            pod = await client.get("", "v1", "pods", f"web-{n}", ns)
            await set_running(client, pod)
        pod = await client.get("", "v1", "pods", "web-1", ns)
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
        assert labels["apps.kubernetes.io/pod-index"] == "1"
        assert labels["controller-revision-hash"].startswith("web-")
        assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "web"
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}} in (
            pod["spec"]["volumes"])

        async def ready() -> Obj | None:
            s = await get_sts(client, ns, "web")
            st = s.get("status") or {}
            return s if st.get("readyReplicas") == 3 and st.get("availableReplicas") == 3 else None
        s = await eventually(ready, "three ready replicas")
        st = s["status"]
        assert st["replicas"] == 3 and st["currentReplicas"] == 3 and st["updatedReplicas"] == 3
        assert st["currentRevision"] == st["updateRevision"] == labels["controller-revision-hash"]
        assert st["observedGeneration"] == s["metadata"]["generation"]
        assert st["collisionCount"] == 0

        deleting: list[str] = []

        async def follow() -> None:
            async for _kind, pod in client.watch("", "v1", "pods", ns,
                                                 resource_version=s["metadata"]["resourceVersion"]):
                name = pod["metadata"]["name"]
                if pod["metadata"].get("deletionTimestamp") and name not in deleting:
                    deleting.append(name)
        watcher = asyncio.create_task(follow())
        await client.patch("apps", "v1", "statefulsets", "web", {"spec": {"replicas": 1}}, ns)
        await eventually(lambda: _equals(names(client, ns, "web"), ["web-0"]),
                         "scaled down to web-0")
        await asyncio.sleep(0.2)
        watcher.cancel()
        assert deleting == ["web-2", "web-1"]
        events = await events_for(client, ns, "web")
        messages = [e["message"] for e in events if e["reason"] == "SuccessfulDelete"]
        assert "delete Pod web-2 in StatefulSet web successful" in messages
        assert any(e["message"] == "create Pod web-0 in StatefulSet web successful"
                   for e in events)


async def _equals(got: Any, want: Any) -> bool:
    return await got == want


async def test_parallel_creates_all_at_once(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns, run=False):
        await client.create("apps", "v1", "statefulsets",
                            sts("par", 3, podManagementPolicy="Parallel"), ns)
        await eventually(lambda: _equals(names(client, ns, "par"), ["par-0", "par-1", "par-2"]),
                         "all pods exist though none runs")


async def test_rolling_update_with_partition(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "statefulsets", sts("db", 3), ns)

        async def ready(n: int = 3) -> Obj | None:
            s = await get_sts(client, ns, "db")
            st = s.get("status") or {}
            return s if st.get("readyReplicas") == n else None
        before = (await eventually(ready, "three ready"))["status"]["updateRevision"]
        patch = {"spec": {"updateStrategy": {"type": "RollingUpdate",
                                             "rollingUpdate": {"partition": 2}},
                          "template": {"spec": {"containers": [container("web", "nginx:2")]}}}}
        await client.patch("apps", "v1", "statefulsets", "db", patch, ns,
                           patch_type="strategic")

        async def partitioned() -> Obj | None:
            s = await get_sts(client, ns, "db")
            st = s.get("status") or {}
            return s if (st.get("updatedReplicas") == 1 and st.get("readyReplicas") == 3
                         and st.get("updateRevision") != before) else None
        s = await eventually(partitioned, "only db-2 is updated")
        assert s["status"]["currentRevision"] == before
        images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
                  for p in await pods_in(client, ns, "app=db")}
        assert images == {"db-0": "nginx:1", "db-1": "nginx:1", "db-2": "nginx:2"}

        await client.patch("apps", "v1", "statefulsets", "db",
                           {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}, ns,
                           patch_type="strategic")

        async def rolled() -> Obj | None:
            s = await get_sts(client, ns, "db")
            st = s.get("status") or {}
            return s if (st.get("updatedReplicas") == 3 and st.get("readyReplicas") == 3
                         and st.get("currentRevision") == st.get("updateRevision")) else None
        s = await eventually(rolled, "the rollout completes")
        images = {p["spec"]["containers"][0]["image"] for p in await pods_in(client, ns, "app=db")}
        assert images == {"nginx:2"}
        revs = await client.list("apps", "v1", "controllerrevisions", ns)
        numbers = sorted((r["revision"], r["metadata"]["name"]) for r in revs["items"])
        assert [n for n, _ in numbers] == [1, 2]
        assert numbers[1][1] == s["status"]["updateRevision"]
        data = [r for r in revs["items"] if r["revision"] == 2][0]["data"]
        assert data["spec"]["template"]["$patch"] == "replace"
        assert data["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"


async def test_on_delete_and_failed_pods(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "statefulsets",
                            sts("od", 2, updateStrategy={"type": "OnDelete"}), ns)

        async def ready() -> Obj | None:
            s = await get_sts(client, ns, "od")
            return s if (s.get("status") or {}).get("readyReplicas") == 2 else None
        await eventually(ready, "two ready")
        await client.patch("apps", "v1", "statefulsets", "od", {"spec": {"template": {"spec": {
            "containers": [container("web", "nginx:2")]}}}}, ns, patch_type="strategic")

        async def new_revision() -> Obj | None:
            s = await get_sts(client, ns, "od")
            st = s.get("status") or {}
            return s if st.get("updateRevision") != st.get("currentRevision") else None
        await eventually(new_revision, "a new update revision")
        pods = await pods_in(client, ns, "app=od")
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1"}
        await client.delete("", "v1", "pods", "od-0", ns)

        async def replaced() -> Obj | None:
            p = next((p for p in await pods_in(client, ns, "app=od")
                      if p["metadata"]["name"] == "od-0"), None)
            return p if p and p["spec"]["containers"][0]["image"] == "nginx:2" else None
        await eventually(replaced, "the deleted pod comes back at the new revision")

        # A pod that fails is deleted and made again under the same name.
        od1 = await client.get("", "v1", "pods", "od-1", ns)
        await finish_pod(client, od1, exit_code=1)

        async def recreated() -> Obj | None:
            p = next((p for p in await pods_in(client, ns, "app=od")
                      if p["metadata"]["name"] == "od-1"), None)
            return p if p and p["metadata"]["uid"] != od1["metadata"]["uid"] else None
        await eventually(recreated, "the failed pod is recreated")
        events = await events_for(client, ns, "od")
        reasons = {e["reason"] for e in events}
        # As upstream since 1.30: a plain delete and create, no RecreatingFailedPod.
        assert "RecreatingFailedPod" not in reasons
        assert any(e["reason"] == "SuccessfulDelete"
                   and e["message"] == "delete Pod od-1 in StatefulSet od successful"
                   for e in events)


async def test_parallel_goes_on_beside_a_finished_pod(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "statefulsets",
                            sts("pf", 1, podManagementPolicy="Parallel"), ns)

        async def ready(n: int) -> Obj | None:
            s = await get_sts(client, ns, "pf")
            return s if (s.get("status") or {}).get("readyReplicas") == n else None
        await eventually(lambda: ready(1), "pf-0 ready")
        # A finalizer holds pf-0 while it is deleted, so it stays failed and terminating.
        await client.patch("", "v1", "pods", "pf-0",
                           {"metadata": {"finalizers": ["test.skiff.dev/hold"]}}, ns)
        pf0 = await client.get("", "v1", "pods", "pf-0", ns)
        await finish_pod(client, pf0, exit_code=1)

        async def held() -> bool:
            pod = await client.get("", "v1", "pods", "pf-0", ns)
            return bool(pod["metadata"].get("deletionTimestamp"))
        await eventually(held, "the failed pf-0 is being deleted")
        try:
            await client.patch("apps", "v1", "statefulsets", "pf", {"spec": {"replicas": 3}}, ns)
            # Parallel: the other members are made though pf-0 is not yet replaced.
            await eventually(lambda: ready(2), "pf-1 and pf-2 ready beside pf-0")
            events = await events_for(client, ns, "pf")
            deletes = [e for e in events if e["reason"] == "SuccessfulDelete"]
            assert sum(int(e.get("count") or 1) for e in deletes) == 1, deletes
        finally:
            await client.patch("", "v1", "pods", "pf-0", {"metadata": {"finalizers": None}}, ns)
        await eventually(lambda: ready(3), "pf-0 is recreated once it is gone")


async def test_rolling_update_counts_the_pod_it_deletes(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "statefulsets", sts("cr", 2), ns)

        async def ready() -> Obj | None:
            s = await get_sts(client, ns, "cr")
            st = s.get("status") or {}
            return s if st.get("readyReplicas") == 2 and st.get("currentReplicas") == 2 else None
        s = await eventually(ready, "two ready")
        seen: list[Obj] = []

        async def follow() -> None:
            async for _kind, obj in client.watch(
                    "apps", "v1", "statefulsets", ns,
                    resource_version=s["metadata"]["resourceVersion"]):
                seen.append(obj.get("status") or {})
        watcher = asyncio.create_task(follow())
        try:
            await client.patch("apps", "v1", "statefulsets", "cr", {"spec": {"template": {
                "spec": {"containers": [container("web", "nginx:2")]}}}}, ns,
                patch_type="strategic")

            async def rolling() -> bool:
                return any(st.get("updateRevision") != st.get("currentRevision") for st in seen)
            await eventually(rolling, "the rollout starts")
        finally:
            watcher.cancel()
        # The status written with the new revision already counts cr-1, deleted for the
        # update in that same sync, out of the current replicas (as upstream).
        first = next(st for st in seen if st.get("updateRevision") != st.get("currentRevision"))
        assert first.get("currentReplicas") == 1, seen


async def test_recreated_after_orphaning_takes_back_its_history(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "statefulsets", sts("oh", 2), ns)

        async def ready() -> Obj | None:
            s = await get_sts(client, ns, "oh")
            st = s.get("status") or {}
            return s if st.get("readyReplicas") == 2 and st.get("currentReplicas") == 2 else None
        before = (await eventually(ready, "two ready"))["status"]["currentRevision"]
        pods = {p["metadata"]["name"]: p["metadata"]["uid"]
                for p in await pods_in(client, ns, "app=oh")}
        await client.delete("apps", "v1", "statefulsets", "oh", ns, propagation_policy="Orphan")

        async def orphaned() -> bool:
            revs = (await client.list("apps", "v1", "controllerrevisions", ns))["items"]
            return bool(revs) and all(not r["metadata"].get("ownerReferences") for r in revs)
        await eventually(orphaned, "the revision is orphaned")
        # As after `kubectl delete sts --cascade=orphan` and applying it again.
        await client.create("apps", "v1", "statefulsets", sts("oh", 2), ns)
        s = await eventually(ready, "two ready again")
        st = s["status"]
        assert st["collisionCount"] == 0
        assert st["currentRevision"] == st["updateRevision"] == before
        revs = (await client.list("apps", "v1", "controllerrevisions", ns))["items"]
        assert [r["metadata"]["name"] for r in revs] == [before]
        assert revs[0]["metadata"]["ownerReferences"][0]["uid"] == s["metadata"]["uid"]
        # The pods were adopted, not replaced.
        again = {p["metadata"]["name"]: p["metadata"]["uid"]
                 for p in await pods_in(client, ns, "app=oh")}
        assert again == pods
