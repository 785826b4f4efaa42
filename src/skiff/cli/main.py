"""The `skiff` command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def default_data_dir() -> Path:
    """The per-user data folder (XDG_DATA_HOME/skiff, else ~/.local/share/skiff)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "share")
    return Path(base) / "skiff"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skiff", description="A lightweight Kubernetes.")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run a cluster in the foreground until interrupted")
    up.add_argument("--data-dir", type=Path, default=None,
                    help="where the store, certificates and kubeconfig live")
    up.add_argument("--port", type=int, default=6443, help="HTTPS port of the API server")
    up.add_argument("--host", default="127.0.0.1", help="address the API server binds to")
    up.add_argument("--nodes", type=int, default=1, help="node agents to run on this machine")
    up.add_argument("--sim-nodes", type=int, default=0, help="simulated nodes to add")
    up.add_argument("--runtime", default="",
                    help="container runtime of the local node agents (default: the best "
                         "available)")
    up.add_argument("--no-controllers", action="store_true",
                    help="serve the API only (no controllers)")
    up.add_argument("--no-scheduler", action="store_true",
                    help="do not run the scheduler (pods stay Pending unless bound by hand)")
    up.add_argument("--components-metrics-port", type=int, default=0,
                    help="serve the controllers', scheduler's and sim agent's metrics on "
                         "127.0.0.1:PORT/metrics (default: not served)")
    up.add_argument("-v", "--verbose", action="store_true", help="log debug messages")

    up.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                    help="seconds without a lease renewal before a node is unreachable")
    up.add_argument("--default-toleration-seconds", type=int, default=300,
                    help="how long pods tolerate a not-ready or unreachable node by default")
    up.add_argument("--hpa-sync-period", type=float, default=15.0,
                    help="seconds between two passes of the horizontal pod autoscaler over "
                         "each HPA")

    from skiff.cli.agent import add_parser as add_agent_parser

    add_agent_parser(sub)

    kc = sub.add_parser("kubeconfig", help="print the path of the admin kubeconfig")
    kc.add_argument("--data-dir", type=Path, default=None)

    from skiff.cli.sim_nodes import add_parser as add_sim_nodes

    add_sim_nodes(sub)
    from skiff.cli.explain import add_parser as add_explain

    add_explain(sub)
    from skiff.cli.scheduler import add_parser as add_scheduler

    add_scheduler(sub)
    from skiff.cli.components import add_parser as add_components

    add_components(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    data_dir: Path = (getattr(args, "data_dir", None)
                      or default_data_dir()).expanduser().absolute()
    if args.command == "kubeconfig":
        path = data_dir / "kubeconfig"
        if not path.exists():
            print(f"no kubeconfig at {path}: run `skiff up` first", file=sys.stderr)
            return 1
        print(path)
        return 0
    if args.command == "components":
        from skiff.cli.components import run_components

        return run_components(args)
    if args.command == "scheduler":
        from skiff.cli.scheduler import run_scheduler

        return run_scheduler(args, data_dir)
    if args.command == "explain":
        from skiff.cli.explain import run_explain

        return run_explain(args, data_dir)
    if args.command == "sim-nodes":
        from skiff.cli.sim_nodes import run_sim_nodes

        return run_sim_nodes(args, data_dir)
    if args.command == "agent":
        from skiff.cli.agent import run_agent

        return run_agent(args, data_dir)
    if args.command == "up":
        from skiff.cli.up import run_up

        return run_up(args, data_dir)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
