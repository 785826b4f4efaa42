"""`skiff agent`: run one node agent that joins a cluster over its API."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp
import yaml

log = logging.getLogger("skiff.agent")


async def _discover_ca(server: str, token: str) -> bytes:
    """The cluster CA from kube-public/cluster-info (read before the CA is trusted)."""
    url = f"{server.rstrip('/')}/api/v1/namespaces/kube-public/configmaps/cluster-info"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s, \
            s.get(url, ssl=False) as resp:
        if resp.status != 200:
            raise RuntimeError(f"cannot read cluster-info ({resp.status}); pass --ca-cert")
        cm = await resp.json()
    config = yaml.safe_load((cm.get("data") or {}).get("kubeconfig") or "") or {}
    for cluster in config.get("clusters") or []:
        data = (cluster.get("cluster") or {}).get("certificate-authority-data")
        if data:
            return base64.b64decode(data)
    raise RuntimeError("cluster-info names no certificate authority; pass --ca-cert")


async def _run(args: argparse.Namespace, data_dir: Path) -> int:
    from skiff.agent.agent import AgentConfig, NodeAgent
    from skiff.client.http_client import Client
    from skiff.runtime import select

    try:
        runtime_name, why = select.pick(args.runtime)
    except ValueError as exc:
        print(f"skiff agent: {exc}", file=sys.stderr)
        return 1
    token = args.token
    if not token and args.token_file:
        token = Path(args.token_file).read_text().strip()
    if not token:
        print("skiff agent: --token (or --token-file) is required", file=sys.stderr)
        return 1
    if args.ca_cert:
        ca = Path(args.ca_cert).read_bytes()
    else:
        print("skiff agent: no --ca-cert: taking the cluster CA from kube-public/cluster-info",
              file=sys.stderr)
        ca = await _discover_ca(args.server, token)
    state = data_dir
    state.mkdir(parents=True, exist_ok=True)
    ca_path = state / "cluster-ca.crt"
    ca_path.write_bytes(ca)
    client = Client(args.server, ca_data=ca, token=token, component="kubelet",
                    field_manager="kubelet")
    runtime = select.make(runtime_name, state / "runtime", args.host_ip)
    config = AgentConfig(node_name=args.name, state_dir=state, host_ip=args.host_ip,
                         server_host=args.listen, server_port=args.port, client_ca=ca_path,
                         zone=args.zone, cpu=args.cpu, memory=args.memory,
                         max_pods=args.max_pods, lease_interval=args.lease_interval)
    agent = NodeAgent(client, runtime, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    (state / "agent.pid").write_text(str(os.getpid()))
    await agent.start()
    # What startup imported and built lives as long as the agent: keep it out of every
    # later full collection (each one stalled pod starts for tens of milliseconds).
    gc.freeze()
    print(f"skiff agent: node {args.name} joined {args.server} (runtime {runtime_name}, {why}; "
          f"serving on https://{args.listen}:{agent.server.port})", flush=True)
    try:
        await stop.wait()
    finally:
        if args.stop_containers_on_exit:
            await agent.stop_all_pods()
        await agent.close()
        await client.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The `skiff agent` sub-command's flags."""
    p = sub.add_parser("agent", help="run a node agent that joins a cluster")
    p.add_argument("--server", required=True, help="the API server's URL")
    p.add_argument("--token", default="", help="bearer token (e.g. the admin token in "
                                               "<data-dir>/pki/admin.token)")
    p.add_argument("--token-file", default="", help="read the token from this file")
    p.add_argument("--name", default="", help="node name (default: this host's name)")
    p.add_argument("--runtime", default="", help="container runtime (default: the best "
                                                 "available)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="the agent's state folder (default: <skiff data>/agents/<name>)")
    p.add_argument("--ca-cert", default="", help="the cluster CA (default: read from "
                                                 "kube-public/cluster-info)")
    p.add_argument("--host-ip", default="127.0.0.1", help="the node's InternalIP")
    p.add_argument("--listen", default="127.0.0.1", help="address of the agent's HTTPS server")
    p.add_argument("--port", type=int, default=0, help="port of the agent's HTTPS server "
                                                      "(default: any free one)")
    p.add_argument("--zone", default="local", help="topology.kubernetes.io/zone label")
    p.add_argument("--cpu", default="", help="CPU capacity to report (default: the machine's)")
    p.add_argument("--memory", default="", help="memory capacity to report")
    p.add_argument("--max-pods", type=int, default=110, help="pods this node accepts")
    p.add_argument("--lease-interval", type=float, default=10.0,
                   help="seconds between Lease renewals (the kubelet's 10 s; keep it well "
                        "under the cluster's node monitor grace period)")
    p.add_argument("--stop-containers-on-exit", action="store_true",
                   help="kill this node's containers when the agent stops (as `skiff up` "
                        "does for its own agents); by default they keep running and the "
                        "next agent re-attaches")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")


def run_agent(args: argparse.Namespace, data_dir: Path) -> int:
    """Run the agent until SIGINT or SIGTERM."""
    if not args.name:
        import socket

        args.name = socket.gethostname().lower()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format=f"%(asctime)s %(levelname)s {args.name} %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    state = args.data_dir or (data_dir / "agents" / args.name)
    return asyncio.run(_run(args, Path(state).expanduser().absolute()))

