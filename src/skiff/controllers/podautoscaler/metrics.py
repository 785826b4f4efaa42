"""Where the HPA reads pod resource usage: the resource metrics API, behind a protocol.

The controller depends only on `MetricsSource`; `ResourceMetricsAPI` reads
`metrics.k8s.io/v1beta1` PodMetrics through the API server, and tests pass an
object that returns chosen numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.quantity import milli_value
from skiff.client.http_client import Client


@dataclass(frozen=True)
class PodMetric:
    """One pod's usage of one resource: milli-units (millicores, or milli-bytes for
    memory, as upstream's MilliValue) summed over its containers."""

    value: int
    timestamp: dt.datetime
    window: dt.timedelta


class MetricsUnavailable(Exception):
    """The metrics could not be read (API missing, no samples yet, …)."""


class MetricsSource(Protocol):
    """Reads the usage of `resource` by the pods a selector picks."""

    async def resource_metrics(self, resource: str, namespace: str, selector: str,
                               container: str = "") -> dict[str, PodMetric]:
        """Pod name → usage; raises MetricsUnavailable when there is nothing to read."""
        ...


def _duration(text: Any) -> dt.timedelta:
    if isinstance(text, str) and text.endswith("s"):
        try:
            return dt.timedelta(seconds=float(text[:-1]))
        except ValueError:
            pass
    return dt.timedelta(seconds=30)


class ResourceMetricsAPI:
    """`MetricsSource` over `metrics.k8s.io/v1beta1` PodMetrics."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def resource_metrics(self, resource: str, namespace: str, selector: str,
                               container: str = "") -> dict[str, PodMetric]:
        """Pod name → summed container usage of `resource` (one container if named)."""
        try:
            listing = await self.client.list("metrics.k8s.io", "v1beta1", "pods", namespace,
                                             label_selector=selector)
        except StatusError as err:
            raise MetricsUnavailable(
                f"unable to fetch metrics from resource metrics API: {err.message}") from err
        items = listing.get("items") or []
        if not items:
            raise MetricsUnavailable("no metrics returned from resource metrics API")
        out: dict[str, PodMetric] = {}
        for item in items:
            total = 0
            # As upstream: a pod missing the resource in any container has no metric
            # (it counts as missing, not as using less).
            containers = [c for c in item.get("containers") or []
                          if not container or c.get("name") == container]
            missing = not containers
            for c in containers:
                usage = (c.get("usage") or {}).get(resource)
                if usage is None:
                    missing = True
                    break
                total += milli_value(usage)
            if missing:
                continue
            stamp = m.parse_time(item.get("timestamp") or "") or m.now()
            out[m.name_of(item)] = PodMetric(total, stamp, _duration(item.get("window")))
        return out
