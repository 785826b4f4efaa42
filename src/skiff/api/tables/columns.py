"""Column definitions and the shape of one kind's printer.

Every printer is a list of column definitions plus a function from one object to
its row's cells. The server always fills every column, `-o wide` ones included;
kubectl hides the columns with priority above 0 unless asked for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Cells = Callable[[dict[str, Any], datetime], list[Any]]
RowConditions = Callable[[dict[str, Any]], list[dict[str, Any]]]

NAME_DESCRIPTION = (
    "Unique name of the object within its namespace (or the cluster, for cluster-scoped "
    "kinds); clients use it to address the object."
)
AGE_DESCRIPTION = "Time since the server created the object (metadata.creationTimestamp)."
CONTAINERS_DESCRIPTION = "The name of every container in the pod template."
IMAGES_DESCRIPTION = "The image of every container in the pod template."


def column(
    name: str,
    type_: str = "string",
    description: str = "",
    *,
    priority: int = 0,
    format_: str = "",
) -> dict[str, Any]:
    """One `TableColumnDefinition`; every field is present, as upstream serialises it."""
    return {
        "name": name,
        "type": type_,
        "format": format_,
        "description": description,
        "priority": priority,
    }


def pod_template_wide_columns(selector_description: str | None) -> list[dict[str, Any]]:
    """The `-o wide` columns of workloads: containers, images and (if described) selector."""
    cols = [
        column("Containers", "string", CONTAINERS_DESCRIPTION, priority=1),
        column("Images", "string", IMAGES_DESCRIPTION, priority=1),
    ]
    if selector_description is not None:
        cols.append(column("Selector", "string", selector_description, priority=1))
    return cols


def name_column(priority: int = 0) -> dict[str, Any]:
    """The NAME column, marked with format "name" so clients know which cell names the row."""
    return column("Name", "string", NAME_DESCRIPTION, priority=priority, format_="name")


def age_column() -> dict[str, Any]:
    """The AGE column most kinds end with."""
    return column("Age", "string", AGE_DESCRIPTION)


@dataclass(frozen=True)
class Printer:
    """How one resource prints: its columns and the cells of one object's row."""

    columns: list[dict[str, Any]]
    cells: Cells
    # Extra row conditions (upstream marks finished pods "Completed" this way).
    conditions: RowConditions | None = None


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata, or an empty dict when it has none."""
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def sub(obj: Any, *keys: str) -> dict[str, Any]:
    """A nested dict by keys; empty when any step is missing or not a dict."""
    cur: Any = obj
    for k in keys:
        cur = cur.get(k) if isinstance(cur, dict) else None
    return cur if isinstance(cur, dict) else {}


def items(value: Any) -> list[Any]:
    """`value` when it is a list, else an empty list (users send odd shapes)."""
    return value if isinstance(value, list) else []


def count(value: Any) -> int:
    """How many entries a list or map field holds; 0 for anything else."""
    return len(value) if isinstance(value, (list, dict)) else 0


def integer(value: Any, default: int = 0) -> int:
    """An integer field, or `default` when it is missing or not a number."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return default


def text(value: Any) -> str:
    """A string field, or "" when it is missing or not a string."""
    return value if isinstance(value, str) else ""


def container_cells(pod_spec: dict[str, Any]) -> list[str]:
    """The CONTAINERS and IMAGES cells: names and images joined by commas."""
    containers = [c for c in items(pod_spec.get("containers")) if isinstance(c, dict)]
    names = ",".join(text(c.get("name")) for c in containers)
    images = ",".join(text(c.get("image")) for c in containers)
    return [names, images]
