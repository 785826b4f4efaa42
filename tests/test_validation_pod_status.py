"""Pod status writes are checked by upstream's status rules, not the spec rules."""

from __future__ import annotations

from typing import Any

from skiff.api.builtin_kinds import register_builtins
from skiff.api.resources import Registry
from skiff.api.validation import validate


def _pods() -> Any:
    reg = Registry()
    register_builtins(reg)
    rt = reg.get("", "v1", "pods")
    assert rt is not None
    return rt


def _pod(status: dict[str, Any], policy: str = "Always") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1",
                         "resourceVersion": "5"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "i"}]},
            "status": status}


def _fields(causes: list[dict[str, str]]) -> list[str]:
    return [c["field"] for c in causes]


def test_a_running_status_is_valid() -> None:
    old = _pod({"phase": "Pending"})
    new = _pod({"phase": "Running", "podIP": "10.1.0.2", "podIPs": [{"ip": "10.1.0.2"}],
                "hostIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                "conditions": [{"type": "Ready", "status": "True"},
                               {"type": "example.com/gate", "status": "True"}]})
    assert validate(_pods(), new, old, "status") == []


def test_bad_addresses_and_condition_types_are_refused() -> None:
    old = _pod({})
    new = _pod({"podIPs": [{"ip": "10.1.0.2"}, {"ip": "10.1.0.3"}, {"ip": "nope"}],
                "conditions": [{"type": "bad type!", "status": "True"}]})
    fields = _fields(validate(_pods(), new, old, "status"))
    assert "status.podIPs[2].ip" in fields
    assert "status.podIPs" in fields
    assert "status.conditions[0].type" in fields


def test_terminated_containers_of_a_never_restarting_pod_stay_terminated() -> None:
    done = {"containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 1}}}]}
    again = {"containerStatuses": [{"name": "c", "state": {"running": {}}}]}
    causes = validate(_pods(), _pod(again, "Never"), _pod(done, "Never"), "status")
    assert _fields(causes) == ["status.containerStatuses[0].state"]
    # OnFailure restarts a failed container; Always restarts any.
    assert validate(_pods(), _pod(again, "OnFailure"), _pod(done, "OnFailure"), "status") == []
    assert validate(_pods(), _pod(again), _pod(done), "status") == []


def test_a_status_write_does_not_validate_the_spec_again() -> None:
    # A spec the server already stored is not the status writer's concern.
    old = _pod({})
    old["spec"]["containers"][0]["image"] = ""
    new = {**old, "status": {"phase": "Running"}}
    assert validate(_pods(), new, old, "status") == []
    assert "spec.containers[0].image" in _fields(validate(_pods(), new, old))
