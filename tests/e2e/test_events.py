"""Events written through either API are read through both."""

from __future__ import annotations

import json

from tests.e2e.conftest import Kubectl

NEW_STYLE = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"name": "ev-new", "namespace": "default"},
    "eventTime": "2026-01-01T00:00:00.000000Z",
    "regarding": {"kind": "ConfigMap", "name": "cfg", "namespace": "default"},
    "reason": "Tested",
    "note": "written as events.k8s.io",
    "type": "Normal",
    "action": "Test",
    "reportingController": "skiff.test/e2e",
    "reportingInstance": "e2e-1",
}


def test_events_k8s_io_event_is_a_core_event(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", input=json.dumps(NEW_STYLE))
    core = json.loads(kubectl("get", "events.v1.", "ev-new", "-o", "json"))
    assert core["apiVersion"] == "v1"
    assert core["message"] == "written as events.k8s.io"
    assert core["involvedObject"]["name"] == "cfg"
    assert core["reportingComponent"] == "skiff.test/e2e"
    again = json.loads(kubectl("get", "events.v1.events.k8s.io", "ev-new", "-o", "json"))
    assert again["note"] == "written as events.k8s.io"
    assert again["regarding"]["kind"] == "ConfigMap"
    out = kubectl("get", "events", "--field-selector", "involvedObject.name=cfg")
    assert "Tested" in out
    kubectl("delete", "events.v1.events.k8s.io", "ev-new")
    assert kubectl.run("get", "events.v1.", "ev-new", check=False).returncode != 0
