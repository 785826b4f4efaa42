"""Tables for the apps/v1 workload kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from skiff.api.tables.age import age
from skiff.api.tables.columns import (
    Printer,
    age_column,
    column,
    container_cells,
    integer,
    items,
    meta,
    name_column,
    pod_template_wide_columns,
    sub,
    text,
)
from skiff.api.tables.selectors import format_label_selector, format_labels, selector_string

SELECTOR_DESCRIPTION = "The label selector of the pods the controller owns."


def _name(obj: dict[str, Any]) -> str:
    return text(meta(obj).get("name"))


def _desired(obj: dict[str, Any]) -> int:
    # spec.replicas defaults to 1; printing the default keeps un-defaulted input honest.
    return integer(sub(obj, "spec").get("replicas"), 1)


def _template_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return sub(obj, "spec", "template", "spec")


def _wide(with_selector: bool = True) -> list[dict[str, Any]]:
    return pod_template_wide_columns(SELECTOR_DESCRIPTION if with_selector else None)


def _deployment(obj: dict[str, Any], now: datetime) -> list[Any]:
    status = sub(obj, "status")
    return [
        _name(obj),
        f"{integer(status.get('readyReplicas'))}/{_desired(obj)}",
        integer(status.get("updatedReplicas")),
        integer(status.get("availableReplicas")),
        age(obj, now),
        *container_cells(_template_spec(obj)),
        selector_string(sub(obj, "spec").get("selector")),
    ]


def _replica_rows(obj: dict[str, Any], now: datetime, selector: str) -> list[Any]:
    status = sub(obj, "status")
    return [
        _name(obj),
        _desired(obj),
        integer(status.get("replicas")),
        integer(status.get("readyReplicas")),
        age(obj, now),
        *container_cells(_template_spec(obj)),
        selector,
    ]


def _replicaset(obj: dict[str, Any], now: datetime) -> list[Any]:
    return _replica_rows(obj, now, format_label_selector(sub(obj, "spec").get("selector")))


def _replication_controller(obj: dict[str, Any], now: datetime) -> list[Any]:
    # A ReplicationController's selector is a plain label map.
    return _replica_rows(obj, now, format_labels(sub(obj, "spec").get("selector")))


def _statefulset(obj: dict[str, Any], now: datetime) -> list[Any]:
    status = sub(obj, "status")
    return [
        _name(obj),
        f"{integer(status.get('readyReplicas'))}/{_desired(obj)}",
        age(obj, now),
        *container_cells(_template_spec(obj)),
    ]


def _daemonset(obj: dict[str, Any], now: datetime) -> list[Any]:
    status = sub(obj, "status")
    return [
        _name(obj),
        integer(status.get("desiredNumberScheduled")),
        integer(status.get("currentNumberScheduled")),
        integer(status.get("numberReady")),
        integer(status.get("updatedNumberScheduled")),
        integer(status.get("numberAvailable")),
        format_labels(_template_spec(obj).get("nodeSelector")),
        age(obj, now),
        *container_cells(_template_spec(obj)),
        format_label_selector(sub(obj, "spec").get("selector")),
    ]


def controller_name(obj: dict[str, Any]) -> str:
    """The owning controller as `kind.group/name` in lower case, or "<none>"."""
    for ref in items(meta(obj).get("ownerReferences")):
        if isinstance(ref, dict) and ref.get("controller") is True:
            group = text(ref.get("apiVersion")).rpartition("/")[0]
            kind = text(ref.get("kind"))
            qualified = f"{kind}.{group}" if group else kind
            name = text(ref.get("name"))
            return f"{qualified.lower()}/{name}" if qualified else name
    return "<none>"


def _controllerrevision(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), controller_name(obj), integer(obj.get("revision")), age(obj, now)]


PRINTERS = {
    "apps/deployments": Printer(
        [
            name_column(),
            column("Ready", "string", "Ready pods out of the desired number."),
            column("Up-to-date", "string", "Pods that run the current pod template."),
            column("Available", "string", "Pods that have been ready long enough to serve."),
            age_column(),
            *_wide(),
        ],
        _deployment,
    ),
    "apps/replicasets": Printer(
        [
            name_column(),
            column("Desired", "integer", "How many pods the replica set should run."),
            column("Current", "integer", "How many pods the replica set runs now."),
            column("Ready", "integer", "How many of its pods are ready."),
            age_column(),
            *_wide(),
        ],
        _replicaset,
    ),
    "core/replicationcontrollers": Printer(
        [
            name_column(),
            column("Desired", "integer", "How many pods the controller should run."),
            column("Current", "integer", "How many pods the controller runs now."),
            column("Ready", "integer", "How many of its pods are ready."),
            age_column(),
            *_wide(),
        ],
        _replication_controller,
    ),
    "apps/statefulsets": Printer(
        [
            name_column(),
            column("Ready", "string", "Ready pods out of the desired number."),
            age_column(),
            *_wide(with_selector=False),
        ],
        _statefulset,
    ),
    "apps/daemonsets": Printer(
        [
            name_column(),
            column("Desired", "integer", "Nodes that should run the daemon pod."),
            column("Current", "integer", "Nodes that run at least one daemon pod."),
            column("Ready", "integer", "Nodes whose daemon pod is ready."),
            column("Up-to-date", "integer", "Nodes that run the current pod template."),
            column("Available", "integer", "Nodes whose daemon pod has been ready long enough."),
            column("Node Selector", "string", "Labels a node needs to run the daemon pod."),
            age_column(),
            *_wide(),
        ],
        _daemonset,
    ),
    "apps/controllerrevisions": Printer(
        [
            name_column(),
            column("Controller", "string", "The object that owns the revision."),
            column("Revision", "string", "The revision number."),
            age_column(),
        ],
        _controllerrevision,
    ),
}
