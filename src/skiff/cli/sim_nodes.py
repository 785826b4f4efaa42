"""`skiff sim-nodes add|remove|list`: simulated nodes on a running cluster.

The command only writes Node objects through the API; the sim agent inside
`skiff up` notices them (by their label) and keeps them alive.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from skiff.runtime.sim.nodes import SimNodeSpec, parse_pairs, parse_taint

DEFAULT_PREFIX = "sim-node-"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `sim-nodes` and its subcommands."""
    p = sub.add_parser("sim-nodes", help="add, remove or list simulated nodes")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="the cluster's data folder (its kubeconfig is used)")
    p.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig to use instead")
    verbs = p.add_subparsers(dest="verb", required=True)

    add = verbs.add_parser("add", help="add simulated nodes")
    add.add_argument("names", nargs="*", help="node names (default: --count numbered names)")
    add.add_argument("--count", type=int, default=0,
                     help="add this many nodes named PREFIX1, PREFIX2, … (next free numbers)")
    add.add_argument("--prefix", default=DEFAULT_PREFIX, help="name prefix for --count")
    add.add_argument("--cpu", default="4", help="CPU capacity (default 4)")
    add.add_argument("--memory", default="16Gi", help="memory capacity (default 16Gi)")
    add.add_argument("--pods", type=int, default=110, help="pod capacity (default 110)")
    add.add_argument("--ephemeral-storage", default="100Gi",
                     help="ephemeral-storage capacity (default 100Gi)")
    add.add_argument("--zone", default="",
                     help="topology.kubernetes.io/zone (default: zone-a/b/c in turn for --count)")
    add.add_argument("--instance-type", default="sim.large",
                     help="node.kubernetes.io/instance-type label")
    add.add_argument("--arch", default="amd64", help="kubernetes.io/arch label")
    add.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                     help="an extra label (repeatable)")
    add.add_argument("--taint", action="append", default=[], metavar="KEY[=VALUE]:EFFECT",
                     help="a taint (repeatable)")
    add.add_argument("--resource", action="append", default=[], metavar="NAME=QUANTITY",
                     help="an extended resource's capacity, e.g. nvidia.com/gpu=2 (repeatable)")

    rm = verbs.add_parser("remove", help="remove simulated nodes (their pods go with them)")
    rm.add_argument("names", nargs="+")

    listing = verbs.add_parser("list", help="list simulated nodes")
    for verb in (add, rm, listing):
        # Also accepted after the verb; SUPPRESS keeps a value given before it.
        verb.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS)
        verb.add_argument("--kubeconfig", type=Path, default=argparse.SUPPRESS)


def _kubeconfig(args: argparse.Namespace, data_dir: Path) -> Path:
    return (args.kubeconfig or data_dir / "kubeconfig").expanduser()


async def _main(args: argparse.Namespace, kubeconfig: Path) -> int:
    from skiff.client import Client
    from skiff.runtime.sim.manage import add_nodes, list_nodes, numbered_specs, remove_nodes

    client = Client.from_kubeconfig(str(kubeconfig), component="sim-nodes")
    try:
        if args.verb == "add":
            template = SimNodeSpec(
                name="", cpu=args.cpu, memory=args.memory, pods=args.pods,
                ephemeral_storage=args.ephemeral_storage, zone=args.zone,
                instance_type=args.instance_type, arch=args.arch,
                labels=parse_pairs(args.label, "label"),
                taints=[parse_taint(t) for t in args.taint],
                resources=parse_pairs(args.resource, "resource"))
            specs = []
            for name in args.names:
                specs.append(SimNodeSpec(**{**template.__dict__, "name": name}))
            if args.count:
                existing = [n["metadata"]["name"] for n in await list_nodes(client)]
                specs += numbered_specs(args.count, args.prefix, existing + args.names, template)
            if not specs:
                print("skiff sim-nodes add: name nodes or give --count", file=sys.stderr)
                return 2
            created = await add_nodes(client, specs)
            for name in created:
                print(f"node/{name} added")
            skipped = sorted({s.name for s in specs} - set(created))
            for name in skipped:
                print(f"node/{name} already exists", file=sys.stderr)
            return 0 if created or not skipped else 1
        if args.verb == "remove":
            for name in await remove_nodes(client, args.names):
                print(f"node/{name} removed")
            return 0
        for node in await list_nodes(client):
            labels = node["metadata"].get("labels") or {}
            cap = (node.get("status") or {}).get("capacity") or {}
            zone = labels.get("topology.kubernetes.io/zone", "")
            print(f"{node['metadata']['name']}\tzone={zone}"
                  f"\tcpu={cap.get('cpu', '')}\tmemory={cap.get('memory', '')}"
                  f"\tpods={cap.get('pods', '')}")
        return 0
    finally:
        await client.close()


def run_sim_nodes(args: argparse.Namespace, data_dir: Path) -> int:
    """Run one `skiff sim-nodes` subcommand."""
    kubeconfig = _kubeconfig(args, data_dir)
    if not kubeconfig.exists():
        print(f"no kubeconfig at {kubeconfig}: run `skiff up` first", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_main(args, kubeconfig))
    except ValueError as exc:
        print(f"skiff sim-nodes: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a StatusError or connection error, said plainly
        message = getattr(exc, "message", "") or str(exc)
        print(f"skiff sim-nodes: {message}", file=sys.stderr)
        return 1
