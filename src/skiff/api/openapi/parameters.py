"""Query parameters of the generated operations, grouped by what an action accepts.

kubectl reads these: an operation whose parameters include `fieldValidation` tells
it the server validates fields itself, so it sends `fieldValidation=Strict`
instead of validating client-side.
"""

from __future__ import annotations

from typing import Any

Param = dict[str, Any]


def _query(name: str, kind: str, description: str) -> Param:
    return {"name": name, "in": "query", "description": description,
            "schema": {"type": kind}}


def _path(name: str, description: str) -> Param:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": {"type": "string"}}


NAME = _path("name", "The name of the object.")
NAMESPACE = _path("namespace", "The namespace the objects live in.")
PRETTY = _query("pretty", "string", "Indent the JSON answer for people to read.")

DRY_RUN = _query("dryRun", "string",
                 "`All` runs every stage of the request except persisting it.")
FIELD_MANAGER = _query("fieldManager", "string",
                       "The name of the actor making the change, for managed fields.")
FIELD_VALIDATION = _query(
    "fieldValidation", "string",
    "What to do with unknown or duplicate fields: `Ignore` drops them, `Warn` drops "
    "them and answers with a warning, `Strict` rejects the request.",
)
FORCE = _query("force", "boolean",
               "For apply patches: take ownership of fields other managers own.")

LIST = [
    _query("allowWatchBookmarks", "boolean", "Ask for BOOKMARK events in a watch."),
    _query("continue", "string", "The token from a previous page of results."),
    _query("fieldSelector", "string", "Only objects whose fields match this selector."),
    _query("labelSelector", "string", "Only objects whose labels match this selector."),
    _query("limit", "integer", "The most objects to return in one page."),
    _query("resourceVersion", "string", "The revision to list or watch from."),
    _query("resourceVersionMatch", "string",
           "How `resourceVersion` applies: `Exact` or `NotOlderThan`."),
    _query("sendInitialEvents", "boolean", "Start a watch with the current objects."),
    _query("timeoutSeconds", "integer", "End the list or watch after this many seconds."),
    _query("watch", "boolean", "Stream changes instead of returning a list."),
]

WRITE = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION]
PATCH = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE]

DELETE = [
    DRY_RUN,
    _query("gracePeriodSeconds", "integer", "Seconds to wait before deleting; 0 is now."),
    _query("orphanDependents", "boolean", "Deprecated: use propagationPolicy."),
    _query("propagationPolicy", "string",
           "How dependents are collected: `Orphan`, `Background` or `Foreground`."),
]
