"""`skiff explain pod NAME [-n NS]`: why a pod is where it is, or why it is Pending.

It prints the decision the scheduler recorded on the pod (its explanation
annotation), then re-evaluates the pod against the cluster as it is now: per node,
the filter that rejects it and why, or each score plugin's share of its total.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

Obj = dict[str, Any]

SHOWN_ROWS = 20


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `explain`."""
    p = sub.add_parser("explain", help="explain a scheduling decision")
    p.add_argument("kind", choices=["pod", "pods", "po"], help="what to explain (pod)")
    p.add_argument("name")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--all-nodes", action="store_true",
                   help=f"list every node (default: the first {SHOWN_ROWS})")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--kubeconfig", type=Path, default=None)


async def _list(client: Any, group: str, version: str, plural: str) -> list[Obj]:
    items: list[Obj] = []
    cont = ""
    while True:
        page = await client.list(group, version, plural, limit=500, continue_=cont)
        items.extend(page.get("items") or [])
        cont = (page.get("metadata") or {}).get("continue") or ""
        if not cont:
            return items


def _recorded(pod: Obj) -> list[str]:
    from skiff.scheduler.explain import ANNOTATION

    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not raw:
        return ["  (no decision recorded: the scheduler has not tried this pod)"]
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return [f"  {raw}"]
    lines = []
    if data.get("result") == "Scheduled":
        lines.append(f"  Scheduled on {data.get('node')}: {data.get('why', '')}")
        lines.append(f"  {data.get('feasible')} feasible of {data.get('evaluated')} evaluated "
                     f"({data.get('nodes')} nodes)")
        for plugin, count in (data.get("rejectedBy") or {}).items():
            lines.append(f"  {plugin} rejected {count} node(s)")
        for row in data.get("top") or []:
            parts = ", ".join(f"{k} {v}" for k, v in row.get("plugins", {}).items())
            lines.append(f"    {row['node']}: {row['total']} ({parts})")
    else:
        lines.append(f"  Unschedulable: {data.get('message', '')}")
        for reason, info in (data.get("reasons") or {}).items():
            nodes = ", ".join(info.get("nodes") or [])
            more = " …" if info.get("count", 0) > len(info.get("nodes") or []) else ""
            lines.append(f"    {info.get('count')} × {reason} ({nodes}{more})")
    return lines


async def _main(args: argparse.Namespace, kubeconfig: Path) -> int:
    from skiff.client import Client
    from skiff.scheduler.explain import evaluate

    client = Client.from_kubeconfig(str(kubeconfig), component="explain")
    try:
        pod = await client.get("", "v1", "pods", args.name, args.namespace)
        nodes = await _list(client, "", "v1", "nodes")
        pods = await _list(client, "", "v1", "pods")
        namespaces = await _list(client, "", "v1", "namespaces")
    finally:
        await client.close()
    spec = pod.get("spec") or {}
    print(f"Pod {args.namespace}/{args.name}: node {spec.get('nodeName') or '<none>'}, "
          f"priority {spec.get('priority', 0)}, phase "
          f"{(pod.get('status') or {}).get('phase', '')}")
    print("Recorded decision:")
    for line in _recorded(pod):
        print(line)
    result = evaluate(pod, nodes, pods, namespaces)
    print(f"Now ({len(nodes)} nodes, this pod not counted on any):")
    if result.best:
        print(f"  the scheduler would pick {result.best}")
    if result.message:
        print(f"  {result.message}")
    rows = result.rows if args.all_nodes else result.rows[:SHOWN_ROWS]
    width = max([len(r.node) for r in rows] + [4])
    print(f"  {'NODE':<{width}}  VERDICT")
    for r in rows:
        if r.feasible:
            parts = ", ".join(f"{k} {v}" for k, v in r.scores.items())
            print(f"  {r.node:<{width}}  feasible, score {r.total} ({parts})")
        else:
            print(f"  {r.node:<{width}}  rejected by {r.plugin}: {', '.join(r.reasons)}")
    if len(rows) < len(result.rows):
        print(f"  … {len(result.rows) - len(rows)} more (--all-nodes lists them)")
    return 0


def run_explain(args: argparse.Namespace, data_dir: Path) -> int:
    """Run `skiff explain`."""
    kubeconfig = (args.kubeconfig or data_dir / "kubeconfig").expanduser()
    if not kubeconfig.exists():
        print(f"no kubeconfig at {kubeconfig}: run `skiff up` first", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_main(args, kubeconfig))
    except Exception as exc:  # noqa: BLE001 - a StatusError or connection error, said plainly
        message = getattr(exc, "message", "") or str(exc)
        print(f"skiff explain: {message}", file=sys.stderr)
        return 1
