"""Counters of what a client process does, in the Prometheus text format.

Upstream's controller manager and scheduler serve client-go's and the work queues'
metrics on /metrics (`rest_client_requests_total`, `workqueue_adds_total`, …); these
are the same figures for skiff's components, kept per process. The benchmark reads
them to report reconciles per second and API requests per reconcile.
"""

from __future__ import annotations

import collections
import weakref
from typing import Protocol


class _Queue(Protocol):
    name: str

    def __len__(self) -> int: ...


class ClientMetrics:
    """Process-wide counters: API requests per client and work per queue."""

    def __init__(self) -> None:
        self.requests: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.request_seconds: collections.Counter[tuple[str, str]] = collections.Counter()
        self.request_count: collections.Counter[tuple[str, str]] = collections.Counter()
        self.queue_adds: collections.Counter[str] = collections.Counter()
        self.queue_retries: collections.Counter[str] = collections.Counter()
        self.work_count: collections.Counter[str] = collections.Counter()
        self.work_seconds: collections.Counter[str] = collections.Counter()
        self._queues: weakref.WeakSet[_Queue] = weakref.WeakSet()

    def request(self, component: str, method: str, code: int | str,
                seconds: float | None = None) -> None:
        """Count one request a client sent (`code` is the HTTP status or `<error>`) and
        how long it took from being sent until its whole response was read."""
        self.requests[(component, method, str(code))] += 1
        if seconds is not None:
            self.request_seconds[(component, method)] += seconds
            self.request_count[(component, method)] += 1

    def track_queue(self, queue: _Queue) -> None:
        """Report this queue's depth while it exists."""
        self._queues.add(queue)

    def work_done(self, queue: str, seconds: float) -> None:
        """Count one processed key (one reconcile) of `queue`."""
        self.work_count[queue] += 1
        self.work_seconds[queue] += seconds

    def render(self) -> str:
        """Every counter in the Prometheus text exposition format."""
        out: list[str] = []

        def family(name: str, kind: str, help_: str) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")

        family("rest_client_requests_total", "counter",
               "API requests sent, by component, method (WATCH for watches) and code")
        for (component, method, code), n in sorted(self.requests.items()):
            out.append(f'rest_client_requests_total{{component="{component}",'
                       f'method="{method}",code="{code}"}} {n}')
        family("rest_client_request_duration_seconds", "summary",
               "API request latency (watches excluded), by component and method")
        for (component, method), n in sorted(self.request_count.items()):
            labels = f'component="{component}",method="{method}"'
            out.append(f"rest_client_request_duration_seconds_sum{{{labels}}} "
                       f"{self.request_seconds[(component, method)]:.6f}")
            out.append(f"rest_client_request_duration_seconds_count{{{labels}}} {n}")
        family("workqueue_adds_total", "counter", "keys added to a work queue")
        for name, n in sorted(self.queue_adds.items()):
            out.append(f'workqueue_adds_total{{name="{name}"}} {n}')
        family("workqueue_retries_total", "counter", "keys re-added after a failure")
        for name, n in sorted(self.queue_retries.items()):
            out.append(f'workqueue_retries_total{{name="{name}"}} {n}')
        depth: collections.Counter[str] = collections.Counter()
        for q in list(self._queues):
            depth[q.name] += len(q)
        family("workqueue_depth", "gauge", "keys waiting in a work queue")
        for name, n in sorted(depth.items()):
            out.append(f'workqueue_depth{{name="{name}"}} {n}')
        family("workqueue_work_duration_seconds", "summary",
               "time spent processing a key (one reconcile)")
        for name, n in sorted(self.work_count.items()):
            out.append(f'workqueue_work_duration_seconds_sum{{name="{name}"}} '
                       f"{self.work_seconds[name]:.6f}")
            out.append(f'workqueue_work_duration_seconds_count{{name="{name}"}} {n}')
        return "\n".join(out) + "\n"


METRICS = ClientMetrics()


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Prometheus text → {metric: {sorted label pairs: value}} (for readers of /metrics)."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels: list[tuple[str, str]] = []
        for part in rest.rstrip("}").split(","):
            if "=" in part:
                k, _, v = part.partition("=")
                labels.append((k, v.strip('"')))
        out.setdefault(name, {})[tuple(sorted(labels))] = float(value)
    return out
