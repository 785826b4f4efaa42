"""Defaults of a PodSpec (for Pods and pod templates) and of a new Pod's status."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from skiff.api.defaults.util import items_at, obj_at, setdefault
from skiff.api.quantity import parse_quantity

DEFAULT_FILE_MODE = 0o644
_SOURCES_WITH_MODE = ("secret", "configMap", "downwardAPI", "projected")
# Every volume source; a volume naming none of them becomes an emptyDir.
_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)


def image_pull_policy(image: str) -> str:
    """`Always` for `:latest` or untagged images, else `IfNotPresent` (digests never change)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_handler(handler: dict[str, Any] | None) -> None:
    http = obj_at(handler, "httpGet")
    setdefault(http, "path", "/")
    setdefault(http, "scheme", "HTTP")
    grpc = obj_at(handler, "grpc")
    if grpc is not None and "service" not in grpc:
        grpc["service"] = ""


def _default_probe(probe: dict[str, Any] | None) -> None:
    if probe is None:
        return
    setdefault(probe, "timeoutSeconds", 1)
    setdefault(probe, "periodSeconds", 10)
    setdefault(probe, "successThreshold", 1)
    setdefault(probe, "failureThreshold", 3)
    _default_handler(probe)


def _default_container(c: dict[str, Any], host_network: bool) -> None:
    image = c.get("image")
    if isinstance(image, str) and image:
        setdefault(c, "imagePullPolicy", image_pull_policy(image))
    setdefault(c, "terminationMessagePath", "/dev/termination-log")
    setdefault(c, "terminationMessagePolicy", "File")
    for port in items_at(c, "ports"):
        setdefault(port, "protocol", "TCP")
        if host_network and not port.get("hostPort"):
            port["hostPort"] = port.get("containerPort")
    for var in items_at(c, "env"):
        setdefault(obj_at(obj_at(var, "valueFrom"), "fieldRef"), "apiVersion", "v1")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(obj_at(c, name))
    lifecycle = obj_at(c, "lifecycle")
    for hook in ("postStart", "preStop"):
        _default_handler(obj_at(lifecycle, hook))


def _default_volume(vol: dict[str, Any]) -> None:
    if not any(vol.get(s) is not None for s in _VOLUME_SOURCES):
        vol["emptyDir"] = {}
    for src in _SOURCES_WITH_MODE:
        setdefault(obj_at(vol, src), "defaultMode", DEFAULT_FILE_MODE)
    host_path = obj_at(vol, "hostPath")
    if host_path is not None and "type" not in host_path:
        host_path["type"] = ""
    for item in items_at(obj_at(vol, "downwardAPI"), "items"):
        setdefault(obj_at(item, "fieldRef"), "apiVersion", "v1")
    for source in items_at(obj_at(vol, "projected"), "sources"):
        for item in items_at(obj_at(source, "downwardAPI"), "items"):
            setdefault(obj_at(item, "fieldRef"), "apiVersion", "v1")


def default_pod_spec(spec: dict[str, Any] | None) -> None:
    """Fill a PodSpec's defaults in place (templates and pods alike)."""
    if spec is None:
        return
    setdefault(spec, "restartPolicy", "Always")
    setdefault(spec, "dnsPolicy", "ClusterFirst")
    setdefault(spec, "schedulerName", "default-scheduler")
    setdefault(spec, "terminationGracePeriodSeconds", 30)
    setdefault(spec, "securityContext", {})
    setdefault(spec, "enableServiceLinks", True)
    host_network = spec.get("hostNetwork") is True
    for list_name in ("initContainers", "containers"):
        for c in items_at(spec, list_name):
            _default_container(c, host_network)
    for vol in items_at(spec, "volumes"):
        _default_volume(vol)


def default_pod_template(template: dict[str, Any] | None) -> None:
    """Defaults inside a workload's pod template."""
    default_pod_spec(obj_at(template, "spec"))


def _requests_from_limits(c: dict[str, Any]) -> None:
    # A container that states only limits is asking for exactly that much.
    resources = obj_at(c, "resources")
    limits = obj_at(resources, "limits")
    if not limits or resources is None:
        return
    requests = obj_at(resources, "requests", create=True)
    if requests is None:
        return
    for name, value in limits.items():
        requests.setdefault(name, value)


def _amount(rl: dict[str, Any] | None, name: str) -> Decimal | None:
    if not rl or rl.get(name) is None:
        return None
    try:
        return parse_quantity(rl[name])
    except ValueError:
        return None


def qos_class(spec: dict[str, Any]) -> str:
    """The pod's QoS class from its containers' CPU and memory requests and limits."""
    containers = items_at(spec, "containers") + items_at(spec, "initContainers")
    any_set = False
    guaranteed = True
    for c in containers:
        res = obj_at(c, "resources") or {}
        req, lim = obj_at(res, "requests"), obj_at(res, "limits")
        for name in ("cpu", "memory"):
            r, limit = _amount(req, name), _amount(lim, name)
            if (r is not None and r != 0) or (limit is not None and limit != 0):
                any_set = True
            if limit is None or (r is not None and r != limit):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def default_pod(obj: dict[str, Any]) -> None:
    """Pod defaults, plus the status a just-created pod starts with."""
    spec = obj_at(obj, "spec")
    if spec is None:
        return
    for list_name in ("initContainers", "containers"):
        for c in items_at(spec, list_name):
            _requests_from_limits(c)
    default_pod_spec(spec)
    status = obj_at(obj, "status", create=True)
    if status is not None and not status.get("phase"):
        status["phase"] = "Pending"
        status["qosClass"] = qos_class(spec)
    elif status is not None:
        status.setdefault("qosClass", qos_class(spec))
