"""Build `meta.k8s.io/v1` Tables: the server-side printing `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints
whatever columns the server returns, so the columns here are what users see.
The server always fills every column, the `-o wide` ones (priority 1) included;
kubectl drops those unless `-o wide` was given.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from skiff.api.tables import apps, autoscaling, batch, core, events, misc, pods
from skiff.api.tables.columns import Printer, meta
from skiff.api.tables.custom import CustomPrinter

INCLUDE_OBJECT = ("None", "Metadata", "Object")

PRINTERS: dict[str, Printer] = {
    **core.PRINTERS,
    **pods.PRINTERS,
    **events.PRINTERS,
    **apps.PRINTERS,
    **autoscaling.PRINTERS,
    **batch.PRINTERS,
    **misc.PRINTERS,
}


def printer_for(kind_key: str, crd_columns: list[dict[str, Any]] | None = None) -> Printer:
    """The printer for a resource key; custom resources pass their CRD version's columns.

    `crd_columns` being given (even empty) marks a custom resource, which gets
    NAME plus the CRD's columns (or AGE when it declares none).
    """
    if crd_columns is not None:
        return CustomPrinter(crd_columns).printer()
    return PRINTERS.get(kind_key, misc.DEFAULT)


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The object reduced to a PartialObjectMetadata, enough for kubectl to label rows."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": copy.deepcopy(meta(obj)),
    }


def _row(printer: Printer, obj: dict[str, Any], now: datetime, include: str) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": printer.cells(obj, now)}
    if printer.conditions is not None:
        conditions = printer.conditions(obj)
        if conditions:
            row["conditions"] = conditions
    if include == "Metadata":
        row["object"] = partial_metadata(obj)
    elif include == "Object":
        row["object"] = obj
    return row


def to_table(
    kind_key: str,
    objects: list[dict[str, Any]],
    *,
    now: datetime,
    include_object: str = "Metadata",
    crd_columns: list[dict[str, Any]] | None = None,
    list_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Render objects of one resource as a Table.

    `kind_key` is `ResourceType.key` ("core/pods", "apps/deployments");
    `include_object` is the request's `includeObject` ("None", "Metadata" or
    "Object"; anything else is treated as upstream's default, "Metadata");
    `list_meta` becomes the Table's metadata (resourceVersion, continue, ...).
    Passing `now` keeps ages reproducible and every row of one answer consistent.
    """
    include = include_object if include_object in INCLUDE_OBJECT else "Metadata"
    printer = printer_for(kind_key, crd_columns)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta or {}),
        "columnDefinitions": [dict(c) for c in printer.columns],
        "rows": [_row(printer, obj, now, include) for obj in objects if isinstance(obj, dict)],
    }
