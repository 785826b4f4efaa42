"""metrics.k8s.io/v1beta1: NodeMetrics and PodMetrics, as metrics-server serves them.

The API server asks each node's agent for its `/stats/summary` (the way
metrics-server scrapes kubelets) when a request comes in, and answers with the
usage it reports: CPU in nanocores, memory working set in KiB. `kubectl top nodes`
and `kubectl top pods` read these; the HPA reads PodMetrics.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp

from skiff.api import meta as m
from skiff.api.errors import StatusError, not_found
from skiff.api.resources import ResourceType
from skiff.api.selectors.labels import parse_label_selector_or_raise
from skiff.apiserver.list_options import ListOptions

if TYPE_CHECKING:
    from skiff.apiserver.server import APIServer

Obj = dict[str, Any]
GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
PREFIX = f"/apis/{GROUP}/{VERSION}/"
WINDOW = "10s"
SCRAPE_TIMEOUT = 3.0

RESOURCE_TYPES = (
    ResourceType(GROUP, VERSION, "NodeMetrics", "nodes", namespaced=False,
                 verbs=("get", "list"), has_status=False),
    ResourceType(GROUP, VERSION, "PodMetrics", "pods", verbs=("get", "list"),
                 has_status=False),
)


def _cpu(nanocores: int) -> str:
    return f"{max(0, int(nanocores))}n"


def _memory(nbytes: int) -> str:
    return f"{max(0, int(nbytes)) // 1024}Ki"


class MetricsAPI:
    """Serves the metrics group from the agents' usage reports."""

    def __init__(self, server: APIServer) -> None:
        self.server = server

    async def _summaries(self) -> list[Obj]:
        nodes_rt = self.server.registry.get("", "v1", "nodes")
        assert nodes_rt is not None
        nodes = (await self.server.objects.list(nodes_rt, "", ListOptions()))["items"]

        async def scrape(node: Obj) -> Obj | None:
            name = node["metadata"]["name"]
            try:
                base = await self.server.nodes.node_url(name)
                async with self.server.nodes.session().get(
                        f"{base}/stats/summary",
                        timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)) as resp:
                    if resp.status != 200:
                        return None
                    return await resp.json()
            except (StatusError, aiohttp.ClientError, OSError, TimeoutError, ValueError):
                return None

        results = await asyncio.gather(*(scrape(n) for n in nodes))
        return [r for r in results if r]

    async def handle(self, path: str, query: Any) -> Obj:
        """Answer a GET under /apis/metrics.k8s.io/v1beta1/."""
        parts = [p for p in path[len(PREFIX):].split("/") if p]
        namespace = ""
        if len(parts) >= 2 and parts[0] == "namespaces":
            namespace, parts = parts[1], parts[2:]
        if not parts or parts[0] not in ("nodes", "pods") or len(parts) > 2 or \
                (parts[0] == "nodes" and namespace):
            raise StatusError(404, "NotFound", "the server could not find the requested "
                                               "resource")
        selector = parse_label_selector_or_raise(query.get("labelSelector", ""))
        name = parts[1] if len(parts) == 2 else ""
        summaries = await self._summaries()
        now = m.rfc3339()
        if parts[0] == "nodes":
            items = await self._node_items(summaries, now, selector)
            kind = "NodeMetrics"
        else:
            items = await self._pod_items(summaries, now, namespace, selector)
            kind = "PodMetrics"
        if name:
            for item in items:
                if item["metadata"]["name"] == name:
                    return {"kind": kind, "apiVersion": f"{GROUP}/{VERSION}", **item}
            # As metrics-server: the resource is named by its kind, a pod by namespace/name
            # (kubectl top pod prints `podmetrics.metrics.k8s.io "default/web" not found`).
            missing = f"{namespace}/{name}" if namespace else name
            raise not_found(GROUP, kind.lower(), missing)
        return {"kind": f"{kind}List", "apiVersion": f"{GROUP}/{VERSION}",
                "metadata": {}, "items": items}

    async def _node_items(self, summaries: list[Obj], now: str, selector: Any) -> list[Obj]:
        nodes_rt = self.server.registry.get("", "v1", "nodes")
        assert nodes_rt is not None
        labels = {n["metadata"]["name"]: n["metadata"].get("labels") or {}
                  for n in (await self.server.objects.list(nodes_rt, "", ListOptions()))["items"]}
        out = []
        for s in summaries:
            node = s.get("node") or {}
            name = node.get("nodeName", "")
            if name not in labels or not selector.matches(labels[name]):
                continue
            out.append({"metadata": {"name": name, "creationTimestamp": now,
                                     "labels": labels[name]},
                        "timestamp": now, "window": WINDOW,
                        "usage": {"cpu": _cpu((node.get("cpu") or {}).get("usageNanoCores", 0)),
                                  "memory": _memory((node.get("memory") or {}).get(
                                      "workingSetBytes", 0))}})
        return sorted(out, key=lambda i: i["metadata"]["name"])

    async def _pod_items(self, summaries: list[Obj], now: str, namespace: str,
                         selector: Any) -> list[Obj]:
        pods_rt = self.server.registry.get("", "v1", "pods")
        assert pods_rt is not None
        pods = (await self.server.objects.list(pods_rt, namespace, ListOptions()))["items"]
        labels = {(p["metadata"].get("namespace"), p["metadata"]["name"]):
                  p["metadata"].get("labels") or {} for p in pods}
        out = []
        for s in summaries:
            for pod in s.get("pods") or []:
                ref = pod.get("podRef") or {}
                key = (ref.get("namespace"), ref.get("name"))
                if key not in labels or not selector.matches(labels[key]):
                    continue
                if not pod.get("containers"):
                    continue
                out.append({
                    "metadata": {"name": ref.get("name"), "namespace": ref.get("namespace"),
                                 "creationTimestamp": now, "labels": labels[key]},
                    "timestamp": now, "window": WINDOW,
                    "containers": [{"name": c.get("name", ""), "usage": {
                        "cpu": _cpu((c.get("cpu") or {}).get("usageNanoCores", 0)),
                        "memory": _memory((c.get("memory") or {}).get("workingSetBytes", 0))}}
                        for c in pod.get("containers") or []]})
        return sorted(out, key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"]))
