"""Making pods from a workload's pod template, and creating many without a stampede."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

from skiff.controllers.controller_ref import owner_reference

Obj = dict[str, Any]

# Upstream's SlowStartInitialBatchSize: create 1 pod, then 2, 4, … while all succeed.
SLOW_START_INITIAL_BATCH = 1


def pod_from_template(template: Obj, owner: Obj, *, name: str = "",
                      generate_name: str = "") -> Obj:
    """A new pod built from `template`, controlled by `owner`.

    Labels, annotations and finalizers are copied from the template's metadata;
    the pod is named `name`, or generated from `generate_name` (default
    `<owner>-`).
    """
    tmeta = template.get("metadata") or {}
    owner_md = owner.get("metadata") or {}
    md: Obj = {"namespace": owner_md.get("namespace", "")}
    if name:
        md["name"] = name
    else:
        md["generateName"] = generate_name or f"{owner_md.get('name', '')}-"
    for key in ("labels", "annotations"):
        md[key] = dict(tmeta.get(key) or {})
    if tmeta.get("finalizers"):
        md["finalizers"] = list(tmeta["finalizers"])
    md["ownerReferences"] = [owner_reference(owner)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": copy.deepcopy(template.get("spec") or {})}


async def slow_start(count: int, create: Callable[[int], Awaitable[Any]],
                     initial: int = SLOW_START_INITIAL_BATCH) -> tuple[int, BaseException | None]:
    """Call `create(i)` for i in range(count) in doubling batches; stop at a failing batch.

    Returns how many calls succeeded and the first error. A quota or admission
    error then costs one request, not `count` (upstream's slowStartBatch).
    """
    done = 0
    batch = min(count, initial)
    first_error: BaseException | None = None
    while done < count and batch > 0:
        results = await asyncio.gather(*(create(done + i) for i in range(batch)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        done += batch - len(errors)
        if errors:
            first_error = errors[0]
            if any(isinstance(e, asyncio.CancelledError) for e in errors):
                raise asyncio.CancelledError
            break
        batch = min(2 * batch, count - done)
    return done, first_error
