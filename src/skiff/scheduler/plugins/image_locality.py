"""ImageLocality: prefer nodes that already have the pod's images.

Each image present on a node adds its size scaled by the share of nodes that have
it (so an image on every node does not dominate); the sum is clamped between 23 MB
and 1000 MB per container and mapped onto 0–100, as upstream does.
"""

from __future__ import annotations

import numpy as np

from skiff.scheduler.cache import ClusterCache
from skiff.scheduler.framework import MAX_NODE_SCORE, SKIP, CycleState, Status
from skiff.scheduler.pod_info import PodInfo

NAME = "ImageLocality"
MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


class ImageLocality:
    """Score by the size of the pod's images already on each node."""

    name = NAME

    def pre_score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                  slots: np.ndarray) -> Status | None:
        """Skip when no node has any of the pod's images (every score would be 0)."""
        if not any(cache.image_nodes.get(i, 0) > 0 for i in pod.images):
            return Status(SKIP)
        return None

    def score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
              slots: np.ndarray) -> np.ndarray:
        """Scaled image sizes, clamped and mapped onto 0–100."""
        total_nodes = max(cache.node_count(), 1)
        sums = np.zeros(slots.size, dtype=np.int64)
        for i, slot in enumerate(slots):
            info = cache.info_at(int(slot))
            s = 0
            for image in pod.images:
                size = info.images.get(image)
                if size is not None:
                    s += int(size * cache.image_nodes.get(image, 0) / total_nodes)
            sums[i] = s
        top = MAX_CONTAINER_THRESHOLD * max(len(pod.images), 1)
        clamped = np.clip(sums, MIN_THRESHOLD, top)
        return MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) // (top - MIN_THRESHOLD)
