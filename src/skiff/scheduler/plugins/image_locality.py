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
        if not any(i in cache.image_slots for i in pod.images):
            return Status(SKIP)
        return None

    def score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
              slots: np.ndarray) -> np.ndarray:
        """Scaled image sizes, clamped and mapped onto 0–100."""
        images = tuple(pod.images)
        return cache.image_memo((NAME, images), lambda: per_slot_scores(cache, images))[slots]


def per_slot_scores(cache: ClusterCache, images: tuple[str, ...]) -> np.ndarray:
    """Every slot's score for a pod with these images (the same for all pods with them,
    until node images or nodes change)."""
    total_nodes = max(cache.node_count(), 1)
    sums = np.zeros(cache.capacity, dtype=np.int64)
    for image in images:
        where = cache.image_slots.get(image)
        if not where:
            continue
        # As upstream: the size scaled by the share of nodes that have the image.
        spread = len(where) / total_nodes
        at = np.fromiter(where.keys(), dtype=np.int64, count=len(where))
        sizes = np.fromiter(where.values(), dtype=np.float64, count=len(where))
        sums[at] += (sizes * spread).astype(np.int64)
    top = MAX_CONTAINER_THRESHOLD * max(len(images), 1)
    clamped = np.clip(sums, MIN_THRESHOLD, top)
    return MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) // (top - MIN_THRESHOLD)
