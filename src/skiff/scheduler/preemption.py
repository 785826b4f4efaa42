"""DefaultPreemption (PostFilter): make room for a pod by evicting lower-priority pods."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skiff.scheduler.algorithm import FitError
from skiff.scheduler.framework import CycleState
from skiff.scheduler.pod_info import PodInfo

if TYPE_CHECKING:
    from skiff.scheduler.scheduler import Scheduler


class Preemptor:
    """Chooses victims and a nominated node for pods that fit nowhere."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def preempt(self, pod: PodInfo, err: FitError, state: CycleState) -> str | None:
        """The node nominated for `pod` (None: nothing changes)."""
        return None
