"""The direct create trie matches what the general field bookkeeping records."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.apply import reset_fields, update_managed_fields
from skiff.api.schema import builtin

T0 = "2026-01-01T00:00:00Z"

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"generateName": "web-", "namespace": "d", "name": "web-x", "uid": "u",
                 "labels": {"app": "web", "tier": "a"}, "annotations": {"a": "b"},
                 "finalizers": ["x/y", "a/b"],
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": "web", "uid": "r-1", "controller": True}]},
    "spec": {"containers": [
        {"name": "b", "image": "busybox", "command": ["sh", "-c", "sleep 1"],
         "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
         "env": [{"name": "X", "value": "1"}, {"name": "A", "valueFrom": {
             "fieldRef": {"fieldPath": "metadata.name"}}}],
         "resources": {"limits": {"cpu": "1"}}},
        {"name": "a", "image": "nginx", "securityContext": {}}],
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "nodeSelector": {"zone": "z"}, "volumes": []},
    "status": {"phase": "Pending"},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "d"},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
}
SERVICE = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "d"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080},
                                                   {"port": 53, "protocol": "UDP"}]},
}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
             "data": {"b": "1", "a": "2"}}


def _record(obj: dict[str, Any], general: bool) -> list[dict[str, Any]]:
    o = copy.deepcopy(obj)
    if general:
        o["metadata"]["managedFields"] = []  # a reset: the general path, from nothing
    group, _, version = o["apiVersion"].rpartition("/")
    node = builtin.node_for(group, version, o["kind"])
    subresources = ("status",) if "status" in o or o["kind"] in ("Deployment",) else ()
    update_managed_fields(None, o, "m", "Update", node, T0,
                          ignored=reset_fields(subresources, ""))
    return o["metadata"].get("managedFields") or []


@pytest.mark.parametrize("obj", [POD, DEPLOYMENT, SERVICE, CONFIGMAP],
                         ids=["pod", "deployment", "service", "configmap"])
def test_create_trie_matches_the_general_path(obj: dict[str, Any]) -> None:
    fast, general = _record(obj, False), _record(obj, True)
    assert fast == general
    assert list(fast[0]["fieldsV1"]) == list(general[0]["fieldsV1"])  # same order too
    assert repr(fast) == repr(general)


def test_a_create_of_untracked_fields_only_records_nothing() -> None:
    assert _record({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "c", "namespace": "d"}}, False) == []
