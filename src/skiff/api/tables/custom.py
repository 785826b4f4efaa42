"""Tables for custom resources, driven by their CRD's additionalPrinterColumns.

NAME always comes first. A CRD version that declares no columns gets upstream's
stand-in, a single AGE column read from metadata.creationTimestamp; one that
declares columns shows exactly those (authors add their own AGE when they want
one), which is what upstream serves.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from skiff.api.tables.age import since
from skiff.api.tables.columns import AGE_DESCRIPTION, Printer, column, meta, name_column, text
from skiff.api.tables.jsonpath import JSONPath, JSONPathError, parse

DEFAULT_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": AGE_DESCRIPTION,
    }
]


def _go_text(value: Any) -> str:
    """A value as Go's JSONPath printer writes it into a string column."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def cell_for(type_: str, value: Any, now: datetime) -> Any:
    """Convert one selected value to a cell of the column's declared type; None when it
    does not fit, which kubectl prints as "<none>"."""
    if value is None:
        return None
    if type_ == "string":
        return _go_text(value)
    if type_ == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        return None
    if type_ == "number":
        if isinstance(value, bool):
            return None
        return float(value) if isinstance(value, (int, float)) else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "date":
        if not isinstance(value, str):
            return None
        rendered = since(value, now)
        return "<invalid>" if rendered == "<unknown>" and value else rendered
    return None


class CustomPrinter:
    """The columns and cells of one custom resource version."""

    def __init__(self, crd_columns: list[dict[str, Any]] | None) -> None:
        declared = [c for c in (crd_columns or []) if isinstance(c, dict)] or DEFAULT_COLUMNS
        self.columns: list[dict[str, Any]] = [name_column()]
        self.paths: list[JSONPath | None] = []
        self.types: list[str] = []
        for col in declared:
            path_text = text(col.get("jsonPath"))
            try:
                path: JSONPath | None = parse(path_text)
            except JSONPathError:
                path = None  # validation should have refused it; print <none> instead
            description = text(col.get("description")) or (
                f"Custom resource column (JSONPath): {path_text}"
            )
            priority = col.get("priority")
            self.columns.append(
                column(
                    text(col.get("name")),
                    text(col.get("type")) or "string",
                    description,
                    priority=priority if isinstance(priority, int) else 0,
                    format_=text(col.get("format")),
                )
            )
            self.paths.append(path)
            self.types.append(text(col.get("type")) or "string")

    def cells(self, obj: dict[str, Any], now: datetime) -> list[Any]:
        """One custom object's row: its name, then each declared column."""
        row: list[Any] = [text(meta(obj).get("name"))]
        for path, type_ in zip(self.paths, self.types, strict=True):
            found = path.find(obj) if path is not None else []
            row.append(cell_for(type_, found[0], now) if found else None)
        return row

    def printer(self) -> Printer:
        """This printer in the common shape `to_table` consumes."""
        return Printer(self.columns, self.cells)
