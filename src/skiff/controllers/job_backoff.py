"""The Job controller's back-off between pod failures.

After a pod of a Job fails, its replacement waits 10 s, then 20 s, 40 s, … (capped
at ten minutes) counted from the last failure; a success resets the count. The
record lives in the controller's memory, as upstream's does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from skiff.controllers.pod_state import finish_time

Obj = dict[str, Any]

DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 600.0


@dataclass(frozen=True)
class BackoffRecord:
    """Failures since the last success, and when the last of them happened."""

    failures: int = 0
    last_failure: dt.datetime | None = None

    def remaining(self, now: dt.datetime, base: float = DEFAULT_BACKOFF,
                  cap: float = MAX_BACKOFF) -> float:
        """Seconds to wait before creating pods again (0 if none)."""
        if self.failures <= 0 or self.last_failure is None:
            return 0.0
        delay = min(base * (2 ** (self.failures - 1)), cap)
        elapsed = (now - self.last_failure).total_seconds()
        return max(0.0, delay - elapsed)


def next_record(old: BackoffRecord, new_succeeded: list[Obj],
                new_failed: list[Obj]) -> BackoffRecord:
    """The record after newly finished pods are taken into account."""
    if not new_succeeded and not new_failed:
        return old
    if new_succeeded:
        last_success = max(finish_time(p) for p in new_succeeded)
        after = [finish_time(p) for p in new_failed if finish_time(p) > last_success]
        if not after:
            return BackoffRecord()
        return BackoffRecord(len(after), max(after))
    last = max(finish_time(p) for p in new_failed)
    if old.last_failure is not None and old.last_failure > last:
        last = old.last_failure
    return BackoffRecord(old.failures + len(new_failed), last)
