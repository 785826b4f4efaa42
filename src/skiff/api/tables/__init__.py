"""Server-side table printing: the columns `kubectl get` shows for each kind."""

from skiff.api.tables.age import human_duration
from skiff.api.tables.table import printer_for, to_table

__all__ = ["human_duration", "printer_for", "to_table"]
