"""Server-side apply taking over from client-side apply (the last-applied annotation)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skiff.api.apply import apply, update_managed_fields
from skiff.api.apply.last_applied import LAST_APPLIED
from skiff.api.errors import StatusError
from tests.test_apply_server_side import DEPLOY, T0, T1, T2, config, managers


def client_side_applied(cfg: dict[str, Any]) -> dict[str, Any]:
    """`cfg` as `kubectl apply` (client-side) creates it: annotation plus Update entry."""
    obj = json.loads(json.dumps(cfg))
    obj["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(cfg)}
    update_managed_fields(None, obj, "kubectl-client-side-apply", "Update", DEPLOY, T0)
    return obj


def test_kubectl_takes_over_fields_client_side_apply_set() -> None:
    live = client_side_applied(config(replicas=2))
    out = apply(live, config(replicas=5), "kubectl", False, DEPLOY, "apps/v1", T1)
    assert out["spec"]["replicas"] == 5
    assert "kubectl" in managers(out)
    # The annotation now holds what was applied server-side.
    assert json.loads(out["metadata"]["annotations"][LAST_APPLIED])["spec"]["replicas"] == 5


def test_other_appliers_still_conflict() -> None:
    live = client_side_applied(config(replicas=2))
    with pytest.raises(StatusError) as err:
        apply(live, config(replicas=5), "deployer", False, DEPLOY, "apps/v1", T1)
    assert err.value.code == 409
    assert '"kubectl-client-side-apply"' in err.value.message


def test_fields_changed_since_the_annotation_still_conflict() -> None:
    live = client_side_applied(config(replicas=2))
    changed = json.loads(json.dumps(live))
    changed["spec"]["replicas"] = 9
    update_managed_fields(live, changed, "kubectl-scale", "Update", DEPLOY, T1)
    with pytest.raises(StatusError) as err:
        apply(changed, config(replicas=5), "kubectl", False, DEPLOY, "apps/v1", T2)
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: '
        ".spec.replicas")


def test_no_annotation_no_takeover() -> None:
    live = client_side_applied(config(replicas=2))
    del live["metadata"]["annotations"]
    with pytest.raises(StatusError):
        apply(live, config(replicas=5), "kubectl", False, DEPLOY, "apps/v1", T1)


def test_annotation_left_alone_without_one() -> None:
    out = apply(None, config(), "kubectl", False, DEPLOY, "apps/v1", T0)
    assert LAST_APPLIED not in (out["metadata"].get("annotations") or {})
