"""The official `kubernetes` Python client against skiff: CRUD, paging, watches,
every patch type, scale, conflicts, the dynamic client and /version.

Expected values are what a real 1.32 API server answers to the same calls.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from skiff.apiserver.kubeconfig import admin_kubeconfig, write_kubeconfig
from skiff.apiserver.pki import ensure_pki
from skiff.apiserver.server import APIServer
from skiff.store.sqlite import SQLiteStore
from tests.e2e.conftest import Cluster


def _api_client(kubeconfig: Path) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    return client.ApiClient(cfg)


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    c = _api_client(cluster.kubeconfig)
    yield c
    c.close()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def ns(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test, so tests never see each other's objects."""
    name = f"py-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Every namespace gets the root CA ConfigMap (as upstream); wait for it so that
    # the tests' lists and watches start after that write.
    deadline = time.monotonic() + 15
    while ROOT_CA not in [c.metadata.name for c in core.list_namespaced_config_map(name).items]:
        assert time.monotonic() < deadline, f"{ROOT_CA} was not published in {name}"
        time.sleep(0.05)
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


ROOT_CA = "kube-root-ca.crt"


def _cm(name: str, data: dict[str, str] | None = None, **meta: Any) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, **meta), data=data)


def _deployment(name: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[
                    client.V1Container(name="web", image="nginx:1.27"),
                    client.V1Container(name="sidecar", image="busybox:1.36",
                                       command=["sleep", "infinity"]),
                ]),
            ),
        ),
    )


def _eventually(pred: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        time.sleep(0.05)


def _status_body(exc: ApiException) -> dict[str, Any]:
    import json

    return json.loads(exc.body)


def _watch_events(stream_fn: Callable[..., Any], *args: Any, count: int, timeout: int = 15,
                  **kwargs: Any) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The first `count` events of a watch: (type, name, resourceVersion, raw object)."""
    w = watch.Watch()
    out = []
    for ev in w.stream(stream_fn, *args, timeout_seconds=timeout, **kwargs):
        raw = ev["raw_object"]
        out.append((ev["type"], raw["metadata"]["name"], raw["metadata"]["resourceVersion"],
                    raw))
        if len(out) == count:
            w.stop()
            break
    return out


# -- /version ----------------------------------------------------------------------


def test_version_get_code(api: client.ApiClient) -> None:
    # The generated client asks for "/version/" (trailing slash).
    info = client.VersionApi(api).get_code()
    assert (info.major, info.minor) == ("1", "32")
    assert info.git_version.startswith("v1.32.")
    assert info.platform == "linux/amd64"


# -- namespaces --------------------------------------------------------------------


def test_namespace_crud_and_termination(core: client.CoreV1Api) -> None:
    name = f"py-ns-{uuid.uuid4().hex[:8]}"
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.status.phase == "Active"
    assert created.spec.finalizers == ["kubernetes"]
    assert created.metadata.labels == {"kubernetes.io/metadata.name": name}
    assert created.metadata.generation is None  # namespaces have no generation upstream

    got = core.read_namespace(name)
    assert got.metadata.uid == created.metadata.uid
    listed = core.list_namespace(label_selector=f"kubernetes.io/metadata.name={name}")
    assert [n.metadata.name for n in listed.items] == [name]

    patched = core.patch_namespace(name, {"metadata": {"labels": {"team": "a"}}})
    assert patched.metadata.labels == {"kubernetes.io/metadata.name": name, "team": "a"}

    # A finalizer on an object inside keeps the namespace Terminating until released.
    core.create_namespaced_config_map(name, _cm("held", finalizers=["example.com/hold"]))
    # The generated client expects a Status here, but upstream answers with the
    # Namespace itself, so the client hands back the raw dict.
    gone = core.delete_namespace(name)
    assert gone["kind"] == "Namespace"
    assert gone["status"]["phase"] == "Terminating"
    assert gone["metadata"]["deletionTimestamp"]

    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(name, _cm("late"))
    assert err.value.status == 403
    assert _status_body(err.value)["message"] == (
        f'configmaps "late" is forbidden: unable to create new content in namespace {name} '
        "because it is being terminated")
    assert _status_body(err.value)["details"] == {
        "name": "late", "kind": "configmaps", "causes": [{
            "reason": "NamespaceTerminating", "message": f"namespace {name} is being terminated",
            "field": "metadata.namespace"}]}
    with pytest.raises(ApiException) as err:
        core.delete_namespace("default")
    assert err.value.status == 403
    assert _status_body(err.value)["details"] == {"name": "default", "kind": "namespaces"}

    # The namespace controller deletes the content; the finalizer holds the ConfigMap.
    _eventually(lambda: core.read_namespaced_config_map("held", name).metadata.deletion_timestamp
                is not None, what="the held ConfigMap to be marked for deletion")
    assert core.read_namespace(name).status.phase == "Terminating"
    core.patch_namespaced_config_map("held", name, [
        {"op": "remove", "path": "/metadata/finalizers"}])

    def namespace_gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            assert exc.status == 404
            return True
        return False

    _eventually(namespace_gone, what=f"namespace {name} to be removed")


# -- ConfigMaps --------------------------------------------------------------------


def test_configmap_crud(core: client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_config_map(ns, _cm("cfg", {"a": "1"}, labels={"x": "y"}))
    assert created.metadata.namespace == ns
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.generation is None
    assert [(f.manager, f.operation) for f in created.metadata.managed_fields] == [
        ("OpenAPI-Generator", "Update")]

    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, _cm("cfg"))
    assert err.value.status == 409
    body = _status_body(err.value)
    assert (body["reason"], body["message"]) == ("AlreadyExists",
                                                 'configmaps "cfg" already exists')

    got = core.read_namespaced_config_map("cfg", ns)
    assert got.data == {"a": "1"}
    got.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("cfg", ns, got)
    assert replaced.data == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)

    # Replacing with the resourceVersion we read before that update is a conflict.
    got.data["c"] = "3"
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cfg", ns, got)
    assert err.value.status == 409
    body = _status_body(err.value)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "cfg": the object has been modified; '
        "please apply your changes to the latest version and try again")

    listed = core.list_namespaced_config_map(ns, label_selector="x=y")
    assert [c.metadata.name for c in listed.items] == ["cfg"]

    # An immediate delete answers with a Status (this client version hands it back as
    # a dict), not with the object as for pods.
    status = core.delete_namespaced_config_map("cfg", ns)
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": "cfg", "kind": "configmaps",
                                  "uid": created.metadata.uid}}
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("cfg", ns)
    assert err.value.status == 404
    assert _status_body(err.value)["message"] == 'configmaps "cfg" not found'


# -- Pods --------------------------------------------------------------------------


def test_pod_crud_and_delete_options(core: client.CoreV1Api, ns: str) -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]))
    created = core.create_namespaced_pod(ns, pod)
    # No node agent schedules it: it stays Pending, with upstream's defaults.
    assert created.status.phase == "Pending"
    assert created.spec.restart_policy == "Always"
    assert created.spec.dns_policy == "ClusterFirst"
    assert created.spec.termination_grace_period_seconds == 30
    assert created.spec.containers[0].image_pull_policy == "Always"  # :latest implied
    assert created.metadata.generation is None  # pods got a generation only in 1.33
    assert core.read_namespaced_pod_status("p", ns).status.phase == "Pending"

    labelled = core.patch_namespaced_pod("p", ns, {"metadata": {"labels": {"tier": "web"}}})
    assert labelled.metadata.labels == {"tier": "web"}
    assert [p.metadata.name for p in
            core.list_namespaced_pod(ns, label_selector="tier=web").items] == ["p"]

    # Bind it to a node, so that an ordinary delete is graceful.
    core.create_namespaced_pod_binding(
        "p", ns, client.V1Binding(metadata=client.V1ObjectMeta(name="p"),
                                  target=client.V1ObjectReference(kind="Node", name="node-a")),
        _preload_content=False)
    assert core.read_namespaced_pod("p", ns).spec.node_name == "node-a"
    terminating = core.delete_namespaced_pod("p", ns)
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.deletion_grace_period_seconds == 30
    assert core.read_namespaced_pod("p", ns).metadata.deletion_timestamp is not None

    # grace_period_seconds=0 removes it at once.
    last = core.delete_namespaced_pod("p", ns, body=client.V1DeleteOptions(grace_period_seconds=0))
    assert last.metadata.name == "p"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("p", ns)
    assert err.value.status == 404
    assert _status_body(err.value)["message"] == 'pods "p" not found'


def test_job_delete_without_policy_orphans_and_warns(api: client.ApiClient, ns: str) -> None:
    batch = client.BatchV1Api(api)
    job = client.V1Job(metadata=client.V1ObjectMeta(name="j"), spec=client.V1JobSpec(
        suspend=True, template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
            restart_policy="Never", containers=[client.V1Container(name="c", image="busybox")]))))
    batch.create_namespaced_job(ns, job)
    # batch/v1 Jobs orphan by default upstream, and say so in a warning.
    resp = batch.delete_namespaced_job("j", ns, _preload_content=False)
    assert resp.status == 200
    assert "orphan" in json.loads(resp.data)["metadata"]["finalizers"]
    assert resp.headers["Warning"] == (
        '299 - "child pods are preserved by default when jobs are deleted; set '
        "propagationPolicy=Background to remove them or set propagationPolicy=Orphan to "
        'suppress this warning"')


def test_cascading_delete_by_orphan_dependents_false_is_accepted(core: client.CoreV1Api,
                                                                  ns: str) -> None:
    core.create_namespaced_config_map(ns, _cm("held", finalizers=["example.com/hold"]))
    resp = core.delete_namespaced_config_map(
        "held", ns, body=client.V1DeleteOptions(orphan_dependents=False), _preload_content=False)
    # Not gone yet, and cascading asked for the deprecated way: 202, as upstream.
    assert resp.status == 202
    assert json.loads(resp.data)["metadata"]["deletionTimestamp"]
    core.patch_namespaced_config_map("held", ns, [{"op": "remove", "path": "/metadata/finalizers"}])


# -- Deployments, every patch type, scale --------------------------------------------


def test_deployment_crud_and_patch_types(apps: client.AppsV1Api, ns: str) -> None:
    created = apps.create_namespaced_deployment(ns, _deployment("web"))
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.strategy.rolling_update.max_surge == "25%"
    assert created.spec.revision_history_limit == 10
    assert created.spec.progress_deadline_seconds == 600

    # A dict is sent as a strategic merge patch: containers merge by name.
    smp = apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 2, "template": {
        "spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}})
    assert smp.spec.replicas == 2
    assert [(c.name, c.image) for c in smp.spec.template.spec.containers] == [
        ("web", "nginx:1.28"), ("sidecar", "busybox:1.36")]
    assert smp.metadata.generation == 2

    # A list is sent as a JSON patch.
    jp = apps.patch_namespaced_deployment("web", ns, [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels", "value": {"tier": "front"}}])
    assert jp.spec.replicas == 3 and jp.metadata.labels == {"tier": "front"}
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", ns, [
            {"op": "test", "path": "/spec/replicas", "value": 99}])
    assert err.value.status == 422

    # A JSON merge patch replaces lists wholesale.
    mp = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": "nginx:1.29"}]}}}},
        _content_type="application/merge-patch+json")
    assert [(c.name, c.image) for c in mp.spec.template.spec.containers] == [
        ("web", "nginx:1.29")]

    # Server-side apply records the field manager's ownership.
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"owner": "ci"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.29"}]}}},
    }
    applied = apps.patch_namespaced_deployment("web", ns, manifest, field_manager="ci",
                                               _content_type="application/apply-patch+yaml")
    assert applied.metadata.annotations["owner"] == "ci"
    owners = {(f.manager, f.operation) for f in applied.metadata.managed_fields}
    assert ("ci", "Apply") in owners and ("OpenAPI-Generator", "Update") in owners

    # Applying a field another manager set is a conflict, unless forced.
    manifest["spec"]["replicas"] = 7
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", ns, manifest, field_manager="ci",
                                         _content_type="application/apply-patch+yaml")
    assert err.value.status == 409
    assert _status_body(err.value)["message"] == (
        'Apply failed with 1 conflict: conflict with "OpenAPI-Generator" using apps/v1: '
        ".spec.replicas")
    forced = apps.patch_namespaced_deployment("web", ns, manifest, field_manager="ci",
                                              force=True,
                                              _content_type="application/apply-patch+yaml")
    assert forced.spec.replicas == 7

    # The scale subresource.
    scale = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 5
    assert scale.status.selector == "app=web"
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 5
    assert apps.read_namespaced_deployment_scale("web", ns).spec.replicas == 5

    # Replace with a stale resourceVersion.
    stale = created
    stale.spec.replicas = 1
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("web", ns, stale)
    assert err.value.status == 409
    assert _status_body(err.value)["message"] == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been '
        "modified; please apply your changes to the latest version and try again")

    status = apps.delete_namespaced_deployment("web", ns)
    assert status["status"] == "Success"
    assert status["details"] == {"name": "web", "group": "apps", "kind": "deployments",
                                 "uid": created.metadata.uid}


# -- paging ------------------------------------------------------------------------


def test_list_paging_is_a_consistent_snapshot(core: client.CoreV1Api, ns: str) -> None:
    for i in range(7):
        core.create_namespaced_config_map(ns, _cm(f"cm-{i}", {"i": str(i)}))
    pages: list[list[str]] = []
    versions = set()
    token = None
    while True:
        page = core.list_namespaced_config_map(ns, limit=2, _continue=token)
        pages.append([c.metadata.name for c in page.items])
        versions.add(page.metadata.resource_version)
        for c in page.items:
            if c.metadata.name == "cm-6":
                assert c.data == {"i": "6"}  # as of the first page, not the later write
        token = page.metadata._continue
        if not token:
            break
        if len(pages) == 1:
            # Writes after the first page do not show up in the later pages.
            core.create_namespaced_config_map(ns, _cm("cm-late"))
            core.patch_namespaced_config_map("cm-6", ns, {"data": {"i": "changed"}})
    assert pages == [["cm-0", "cm-1"], ["cm-2", "cm-3"], ["cm-4", "cm-5"], ["cm-6", ROOT_CA]]
    assert len(versions) == 1
    fresh = core.list_namespaced_config_map(ns)
    assert len(fresh.items) == 9
    assert int(fresh.metadata.resource_version) > int(versions.pop())


# -- watch -------------------------------------------------------------------------


def test_watch_added_modified_deleted_in_order(core: client.CoreV1Api, ns: str) -> None:
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    a = core.create_namespaced_config_map(ns, _cm("w", {"v": "1"}))
    b = core.patch_namespaced_config_map("w", ns, {"data": {"v": "2"}})
    core.create_namespaced_config_map("default", _cm(f"elsewhere-{ns}"))  # other namespace
    core.delete_namespaced_config_map("w", ns)
    events = _watch_events(core.list_namespaced_config_map, ns, resource_version=rv, count=3)
    assert [(t, n) for t, n, _, _ in events] == [("ADDED", "w"), ("MODIFIED", "w"),
                                                 ("DELETED", "w")]
    assert events[0][2] == a.metadata.resource_version
    assert events[1][2] == b.metadata.resource_version
    assert int(events[2][2]) > int(b.metadata.resource_version)
    assert events[1][3]["data"] == {"v": "2"} and events[2][3]["data"] == {"v": "2"}
    core.delete_namespaced_config_map(f"elsewhere-{ns}", "default")


def test_watch_resumes_from_the_middle_without_gap_or_duplicate(core: client.CoreV1Api,
                                                                ns: str) -> None:
    writes: list[tuple[str, str, str]] = []

    def record(kind: str, obj: Any) -> None:
        writes.append((kind, obj.metadata.name, obj.metadata.resource_version))

    record("ADDED", core.create_namespaced_config_map(ns, _cm("a")))
    record("ADDED", core.create_namespaced_config_map(ns, _cm("b")))
    record("MODIFIED", core.patch_namespaced_config_map("a", ns, {"data": {"x": "1"}}))
    record("MODIFIED", core.patch_namespaced_config_map("b", ns, {"data": {"x": "1"}}))
    core.delete_namespaced_config_map("a", ns)
    # The delete answers with a Status: its revision is somewhere up to the list's, which
    # other components' writes (leases, events) may already have moved on.
    deleted_by = int(core.list_namespaced_config_map(ns).metadata.resource_version)
    writes.append(("DELETED", "a", ""))
    record("ADDED", core.create_namespaced_config_map(ns, _cm("c")))

    middle = writes[2][2]
    later = writes[3:]
    # One more write after the watch starts: it must follow right after, nothing repeated.
    got: list[tuple[str, str, str]] = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=middle,
                       timeout_seconds=15):
        md = ev["raw_object"]["metadata"]
        got.append((ev["type"], md["name"], md["resourceVersion"]))
        if len(got) == len(later):
            record("ADDED", core.create_namespaced_config_map(ns, _cm("after")))
        if len(got) == len(later) + 1:
            w.stop()
            break
    deleted = [int(rv) for kind, _, rv in got if kind == "DELETED"]
    assert len(deleted) == 1 and int(writes[3][2]) < deleted[0] <= deleted_by
    assert [(k, n, "" if k == "DELETED" else rv) for k, n, rv in got] == writes[3:]


# -- compaction (needs an in-process server to compact on demand) ------------------


class _InProcessServer:
    """An APIServer on its own event loop thread, so a test can compact its store."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.store = SQLiteStore(str(data_dir / "store.db"))
        pki = ensure_pki(data_dir / "pki")

        async def start() -> APIServer:
            await self.store.open()
            server = APIServer(self.store, pki, port=0)
            await server.start()
            return server

        self.server = self.run(start())
        self.kubeconfig = data_dir / "kubeconfig"
        write_kubeconfig(self.kubeconfig,
                         admin_kubeconfig(pki, f"https://127.0.0.1:{self.server.port}"))

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.server.stop())
        self.run(self.store.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_InProcessServer]:
    srv = _InProcessServer(tmp_path_factory.mktemp("skiff-inproc"))
    yield srv
    srv.close()


def test_compacted_resource_version_is_gone(in_process: _InProcessServer) -> None:
    api = _api_client(in_process.kubeconfig)
    core = client.CoreV1Api(api)
    try:
        first = core.create_namespaced_config_map("default", _cm("a-old", {"v": "0"}))
        old_rv = first.metadata.resource_version
        core.create_namespaced_config_map("default", _cm("b-next"))
        for i in range(1, 4):
            core.patch_namespaced_config_map("a-old", "default", {"data": {"v": str(i)}})
        page = core.list_namespaced_config_map("default", limit=1)
        assert [c.metadata.name for c in page.items] == ["a-old"]
        assert page.metadata._continue
        # Compact past the page's snapshot: the next write's revision becomes the horizon.
        core.patch_namespaced_config_map("b-next", "default", {"data": {"seen": "late"}})
        in_process.run(in_process.store.compact(in_process.store.revision))

        # A watch from before the horizon: upstream answers 200 and an ERROR event
        # with a 410 Expired Status, which the client turns into ApiException(410).
        with pytest.raises(ApiException) as err:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                          resource_version=old_rv, timeout_seconds=5):
                pass
        assert err.value.status == 410
        assert err.value.reason.startswith(f"Expired: too old resource version: {old_rv} (")

        with pytest.raises(ApiException) as err:
            core.list_namespaced_config_map("default", resource_version=old_rv,
                                            resource_version_match="Exact")
        assert err.value.status == 410
        assert _status_body(err.value)["reason"] == "Expired"
        assert _status_body(err.value)["message"] == (
            "The resourceVersion for the provided list is too old.")

        with pytest.raises(ApiException) as err:
            core.list_namespaced_config_map("default", limit=1, _continue=page.metadata._continue)
        assert err.value.status == 410
        expired = _status_body(err.value)
        assert expired["reason"] == "Expired"
        # The Status carries a token that continues, inconsistently, at the latest revision.
        rest = core.list_namespaced_config_map("default", limit=1,
                                               _continue=expired["metadata"]["continue"])
        assert [c.metadata.name for c in rest.items] == ["b-next"]
        assert rest.items[0].data == {"seen": "late"}  # the latest state, not the snapshot's
        assert int(rest.metadata.resource_version) == in_process.store.revision
        assert expired["message"] == (
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter, or use the continue "
            "token in this response to retrieve the remainder of the results. Continuing with "
            "the provided token results in an inconsistent list - objects that were created, "
            "modified, or deleted between the time the first chunk was returned and now may "
            "show up in the list.")

        # What an informer does next: relist, then watch from the list's version.
        rv = core.list_namespaced_config_map("default").metadata.resource_version
        core.patch_namespaced_config_map("a-old", "default", {"data": {"v": "new"}})
        events = _watch_events(core.list_namespaced_config_map, "default",
                               resource_version=rv, count=1)
        assert [(t, n) for t, n, _, _ in events] == [("MODIFIED", "a-old")]
        assert events[0][3]["data"] == {"v": "new"}
    finally:
        api.close()


# -- the dynamic client ------------------------------------------------------------


def test_dynamic_client_get_create_server_side_apply(api: client.ApiClient, ns: str) -> None:
    dyn = dynamic.DynamicClient(api)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert cms.namespaced and cms.name == "configmaps"
    assert "scale" in deps.subresources

    created = cms.create(namespace=ns, body={"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "dyn"}, "data": {"a": "1"}})
    assert created.metadata.name == "dyn"
    got = cms.get(name="dyn", namespace=ns)
    assert got.data.a == "1" and got.metadata.uid == created.metadata.uid
    assert [i.metadata.name for i in cms.get(namespace=ns).items] == ["dyn", ROOT_CA]

    applied = cms.server_side_apply(
        namespace=ns, field_manager="dyn-apply",
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
              "data": {"k": "v"}})
    assert applied.data.k == "v"
    assert [(f.manager, f.operation) for f in applied.metadata.managedFields] == [
        ("dyn-apply", "Apply")]
    again = cms.server_side_apply(
        namespace=ns, field_manager="dyn-apply",
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
              "data": {"k2": "v2"}})
    assert again.data.to_dict() == {"k2": "v2"}  # the manager no longer applies "k"

    dep = deps.server_side_apply(namespace=ns, field_manager="dyn-apply", body=_dict(
        _deployment("dyn-web", replicas=2), api))
    assert dep.spec.replicas == 2
    assert deps.get(name="dyn-web", namespace=ns).metadata.generation == 1


def _dict(obj: Any, api: client.ApiClient) -> dict[str, Any]:
    body = api.sanitize_for_serialization(obj)
    body.setdefault("apiVersion", "apps/v1")
    body.setdefault("kind", "Deployment")
    return body


# -- workload kinds with the typed APIs -------------------------------------------


def test_watch_with_timeout_gets_a_bookmark_before_it_ends(apps: client.AppsV1Api,
                                                           ns: str) -> None:
    # As upstream's watch cache: a watch that allows bookmarks gets one two seconds
    # before its timeout, so that the client resumes from there and not from an old
    # event. The Python client keeps its resourceVersion.
    rv = apps.list_namespaced_deployment(ns).metadata.resource_version
    w = watch.Watch()
    started = time.monotonic()
    kinds = []
    for ev in w.stream(apps.list_namespaced_deployment, ns, resource_version=rv,
                       allow_watch_bookmarks=True, timeout_seconds=4):
        kinds.append(ev["type"])
        assert isinstance(ev["raw_object"]["metadata"]["resourceVersion"], str)
    assert kinds == ["BOOKMARK"], kinds
    assert int(w.resource_version) >= int(rv)
    assert time.monotonic() - started >= 1.5


def _template(app: str, **spec: Any) -> client.V1PodTemplateSpec:
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": app}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")], **spec))


def test_new_workloads_read_back_with_upstreams_zero_status(api: client.ApiClient,
                                                              ns: str) -> None:
    # Upstream's status is a Go struct: a new object's status reads back as `{}` plus
    # its non-omitempty zero fields, never absent (typed clients require some of them).
    apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
    sel = client.V1LabelSelector(match_labels={"app": "none"})
    # A template no controller can act on quickly: a suspended Job, a CronJob that
    # never fires; the other answers are the create responses themselves.
    dep = apps.create_namespaced_deployment(ns, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="d"),
        spec=client.V1DeploymentSpec(selector=sel, template=_template("none"))))
    assert isinstance(dep.status, client.V1DeploymentStatus)
    rs = apps.create_namespaced_replica_set(ns, client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(name="rs"),
        spec=client.V1ReplicaSetSpec(replicas=0, selector=sel, template=_template("none"))))
    assert rs.status.replicas == 0
    ss = apps.create_namespaced_stateful_set(ns, client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="ss"),
        spec=client.V1StatefulSetSpec(replicas=0, service_name="ss", selector=sel,
                                      template=_template("none"))))
    assert (ss.status.replicas, ss.status.available_replicas) == (0, 0)
    ds = apps.create_namespaced_daemon_set(ns, client.V1DaemonSet(
        metadata=client.V1ObjectMeta(name="ds"),
        spec=client.V1DaemonSetSpec(selector=sel, template=_template("none"))))
    assert (ds.status.current_number_scheduled, ds.status.number_misscheduled,
            ds.status.desired_number_scheduled, ds.status.number_ready) == (0, 0, 0, 0)
    job_tmpl = _template("none", restart_policy="Never")
    job = batch.create_namespaced_job(ns, client.V1Job(
        metadata=client.V1ObjectMeta(name="j"),
        spec=client.V1JobSpec(suspend=True, template=job_tmpl)))
    assert isinstance(job.status, client.V1JobStatus)
    cj = batch.create_namespaced_cron_job(ns, client.V1CronJob(
        metadata=client.V1ObjectMeta(name="cj"),
        spec=client.V1CronJobSpec(schedule="0 0 30 2 *", job_template=client.V1JobTemplateSpec(
            spec=client.V1JobSpec(template=job_tmpl)))))
    assert isinstance(cj.status, client.V1CronJobStatus)
    assert isinstance(batch.read_namespaced_cron_job_status("cj", ns).status,
                      client.V1CronJobStatus)
    raw = json.loads(batch.read_namespaced_cron_job("cj", ns, _preload_content=False).data)
    assert raw["status"] == {}
    pdb = client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
        ns, client.V1PodDisruptionBudget(
            metadata=client.V1ObjectMeta(name="pdb"),
            spec=client.V1PodDisruptionBudgetSpec(min_available=1, selector=sel)))
    assert (pdb.status.disruptions_allowed, pdb.status.current_healthy,
            pdb.status.desired_healthy, pdb.status.expected_pods) == (0, 0, 0, 0)
    hpa = client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(
        ns, client.V2HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name="h2"),
            spec=client.V2HorizontalPodAutoscalerSpec(
                max_replicas=3, scale_target_ref=client.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name="absent"))))
    assert hpa.status.desired_replicas == 0
    hpa1 = client.AutoscalingV1Api(api).create_namespaced_horizontal_pod_autoscaler(
        ns, client.V1HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name="h1"),
            spec=client.V1HorizontalPodAutoscalerSpec(
                max_replicas=3, scale_target_ref=client.V1CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name="absent"))))
    assert (hpa1.status.current_replicas, hpa1.status.desired_replicas) == (0, 0)
    # A status write that leaves a field out reads back with its zero, as upstream's
    # (unconditional: the ReplicaSet controller writes this status too).
    rs = apps.replace_namespaced_replica_set_status("rs", ns, client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(name="rs"), spec=rs.spec))
    assert rs.status.replicas == 0


def test_hpa_watch_serves_each_version_in_its_own_shape(api: client.ApiClient,
                                                         ns: str) -> None:
    # autoscaling/v1 and v2 share one storage. A v2 watcher (as the HPA controller
    # is) sees each change first; a v1 watcher must still get v1 objects, which the
    # Python client's V1HorizontalPodAutoscalerStatus requires (currentReplicas).
    v1, v2 = client.AutoscalingV1Api(api), client.AutoscalingV2Api(api)
    rv = v2.list_namespaced_horizontal_pod_autoscaler(ns).metadata.resource_version
    v2.create_namespaced_horizontal_pod_autoscaler(ns, client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="h"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            max_replicas=3, scale_target_ref=client.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="absent"))))
    seen_v2 = _watch_events(v2.list_namespaced_horizontal_pod_autoscaler, ns, count=1,
                            resource_version=rv)
    assert seen_v2[0][3]["apiVersion"] == "autoscaling/v2"
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_horizontal_pod_autoscaler, ns, resource_version=rv,
                       timeout_seconds=10):
        w.stop()
        assert ev["raw_object"]["apiVersion"] == "autoscaling/v1"
        assert "metrics" not in ev["raw_object"]["spec"]
        hpa = ev["object"]
        assert isinstance(hpa, client.V1HorizontalPodAutoscaler)
        assert hpa.spec.target_cpu_utilization_percentage == 80
        assert hpa.status.current_replicas == 0


def test_eviction_against_a_disruption_budget(core: client.CoreV1Api, ns: str) -> None:
    policy = client.PolicyV1Api(core.api_client)
    core.create_namespaced_pod(ns, client.V1Pod(
        metadata=client.V1ObjectMeta(name="p", labels={"app": "e"}),
        spec=client.V1PodSpec(node_name="node-a",
                              containers=[client.V1Container(name="c", image="nginx")])))
    # No kubelet here: report the pod running and ready, as one would.
    now = "2026-01-01T00:00:00Z"
    core.patch_namespaced_pod_status("p", ns, {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}})
    policy.create_namespaced_pod_disruption_budget(ns, client.V1PodDisruptionBudget(
        metadata=client.V1ObjectMeta(name="pdb"),
        spec=client.V1PodDisruptionBudgetSpec(
            min_available=1, selector=client.V1LabelSelector(match_labels={"app": "e"}))))

    def status() -> client.V1PodDisruptionBudgetStatus:
        return policy.read_namespaced_pod_disruption_budget_status("pdb", ns).status

    _eventually(lambda: status().expected_pods == 1 and status().current_healthy == 1,
                what="the disruption controller to count the pod")
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="p", namespace=ns))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_eviction("p", ns, eviction)
    assert (err.value.status, err.value.reason) == (429, "Too Many Requests")
    body = _status_body(err.value)
    assert body["reason"] == "TooManyRequests"
    # Upstream's retryAfterSeconds is omitempty: a budget that forbids it now has none.
    assert body["details"] == {"causes": [{
        "reason": "DisruptionBudget",
        "message": "The disruption budget pdb needs 1 healthy pods and has 1 currently"}]}

    policy.patch_namespaced_pod_disruption_budget("pdb", ns, {"spec": {"minAvailable": 0}})
    _eventually(lambda: status().disruptions_allowed == 1, what="a disruption allowed")
    core.create_namespaced_pod_eviction("p", ns, eviction)
    # A bound pod is deleted gracefully: its kubelet (none here) would finish it.
    assert core.read_namespaced_pod("p", ns).metadata.deletion_timestamp is not None


def test_scale_subresources_of_workloads(apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_stateful_set(ns, client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="ss"),
        spec=client.V1StatefulSetSpec(replicas=0, service_name="ss",
                                      selector=client.V1LabelSelector(match_labels={"app": "s"}),
                                      template=_template("s"))))
    # Upstream's ScaleSpec.replicas is omitempty: zero replicas read back as None.
    scale = apps.read_namespaced_stateful_set_scale("ss", ns)
    assert scale.spec.replicas is None
    assert (scale.status.replicas, scale.status.selector) == (0, "app=s")
    raw = json.loads(apps.read_namespaced_stateful_set_scale("ss", ns,
                                                            _preload_content=False).data)
    assert raw["spec"] == {}
    scale = apps.patch_namespaced_stateful_set_scale("ss", ns, {"spec": {"replicas": 2}})
    assert scale.spec.replicas == 2
    assert apps.read_namespaced_stateful_set("ss", ns).spec.replicas == 2
    scale.spec.replicas = 0
    scale.metadata.resource_version = None
    assert apps.replace_namespaced_stateful_set_scale("ss", ns, scale).spec.replicas is None
    scale.metadata.resource_version = "1"
    scale.spec.replicas = 1
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_stateful_set_scale("ss", ns, scale)
    assert (err.value.status, _status_body(err.value)["reason"]) == (409, "Conflict")


def test_hpa_status_of_a_target_scaled_to_zero(api: client.ApiClient, ns: str) -> None:
    apps = client.AppsV1Api(api)
    v1, v2 = client.AutoscalingV1Api(api), client.AutoscalingV2Api(api)
    dep = _deployment("web", replicas=0)
    apps.create_namespaced_deployment(ns, dep)
    v2.create_namespaced_horizontal_pod_autoscaler(ns, client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="h"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            max_replicas=3, scale_target_ref=client.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="web"))))

    def conditions() -> list[client.V2HorizontalPodAutoscalerCondition]:
        return v2.read_namespaced_horizontal_pod_autoscaler_status("h", ns).status.conditions

    _eventually(lambda: bool(conditions()), what="the HPA controller to report")
    active = next(c for c in conditions() if c.type == "ScalingActive")
    assert (active.status, active.reason) == ("False", "ScalingDisabled")
    # v2's currentReplicas is omitempty upstream; v1's is not.
    status = v2.read_namespaced_horizontal_pod_autoscaler("h", ns).status
    assert (status.current_replicas, status.desired_replicas) == (None, 0)
    status1 = v1.read_namespaced_horizontal_pod_autoscaler("h", ns).status
    assert (status1.current_replicas, status1.desired_replicas) == (0, 0)
