"""`skiff up`: the whole cluster in one foreground process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from skiff.cli.components import component_args
from skiff.cli.components import wanted as components_wanted

log = logging.getLogger("skiff")

# A Unix socket's path must fit in sun_path (108 bytes with its terminating zero).
_MAX_SOCKET_PATH = 100


async def _serve(args: argparse.Namespace, data_dir: Path, started: float) -> int:
    from skiff.apiserver.kubeconfig import (
        admin_kubeconfig,
        components_kubeconfig,
        write_kubeconfig,
    )
    from skiff.apiserver.pki import ensure_pki
    from skiff.apiserver.server import APIServer
    from skiff.store.sqlite import SQLiteStore

    data_dir.mkdir(parents=True, exist_ok=True)
    pki = ensure_pki(data_dir / "pki")
    store = SQLiteStore(str(data_dir / "store.db"))
    await store.open()
    server = APIServer(store, pki, host=args.host, port=args.port)
    server.admission.default_toleration_seconds = getattr(args, "default_toleration_seconds",
                                                          300)
    socket_path = data_dir / "apiserver.sock"
    if len(str(socket_path.resolve())) <= _MAX_SOCKET_PATH:
        server.local_socket = socket_path.resolve()
    try:
        await server.start()
    except OSError as exc:
        await store.close()
        if exc.errno == errno.EADDRINUSE:
            print(f"skiff: port {args.port} on {args.host} is in use; pick another with --port",
                  file=sys.stderr)
            return 1
        raise
    host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    url = f"https://{host}:{server.port}"
    kubeconfig = data_dir / "kubeconfig"
    write_kubeconfig(kubeconfig, admin_kubeconfig(pki, url))
    # What startup built (schemas, modules, caches) lives as long as the process:
    # keep it out of every later full collection.
    gc.freeze()
    elapsed = time.monotonic() - started
    print(f"skiff is up at {url} (ready in {elapsed * 1000:.0f} ms)", flush=True)
    print(f"  export KUBECONFIG={kubeconfig}", flush=True)
    print("  kubectl get namespaces", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    components = None
    if components_wanted(args):
        # The components reach the API server over its local socket when it has one.
        own = kubeconfig
        if server.local_socket is not None:
            own = data_dir / "components.kubeconfig"
            write_kubeconfig(own, components_kubeconfig(pki, server.local_socket))
        components = _start_components(args, own)
    agents = _start_agents(args, data_dir, url, pki) if args.nodes > 0 else []
    await stop.wait()
    print("skiff: shutting down", flush=True)
    await _stop_agents([*agents, *([components] if components is not None else [])])
    await server.stop()
    await store.close()
    return 0


def _start_agents(args: argparse.Namespace, data_dir: Path, url: str,
                  pki: object) -> list[subprocess.Popen[bytes]]:
    """Start `--nodes` node agents as child processes (each uses a core of its own)."""
    from skiff.runtime import select

    try:
        runtime, why = select.pick(args.runtime)
    except ValueError as exc:
        print(f"skiff: no node agents: {exc}", file=sys.stderr, flush=True)
        return []
    procs = []
    names = []
    for i in range(1, args.nodes + 1):
        name = f"node-{i}"
        state = data_dir / "agents" / name
        state.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "skiff.cli.main", "agent", "--server", url,
               "--token-file", str(data_dir / "pki" / "admin.token"), "--name", name,
               "--data-dir", str(state), "--ca-cert", str(data_dir / "pki" / "ca.crt"),
               "--runtime", runtime, "--stop-containers-on-exit",
               # A quarter of the grace period, as the kubelet's 10 s is of 40 s, so a
               # shortened grace period does not see healthy nodes go stale.
               "--lease-interval", str(min(10.0, args.node_monitor_grace_period / 4))]
        if args.verbose:
            cmd.append("-v")
        procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                      preexec_fn=_die_with_parent))
        names.append(name)
    print(f"  nodes: {', '.join(names)} (runtime {runtime}, {why})", flush=True)
    return procs


def _die_with_parent() -> None:
    """In a child: get SIGTERM if `skiff up` dies, so no agent outlives it."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


async def _stop_agents(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop child processes (agents stop their containers first) and wait for them."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        while p.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if p.poll() is None:
            p.kill()
            p.wait()


def _start_components(args: argparse.Namespace,
                      kubeconfig: Path) -> subprocess.Popen[bytes]:
    """Start `skiff components` (controllers, scheduler, sim agent) as one child process.

    Apart from the API server they would share its core through the GIL; as a child
    they get one of their own. It writes to the same output and dies with `skiff up`.
    """
    cmd = [sys.executable, "-m", "skiff.cli.main", *component_args(args, kubeconfig)]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def run_up(args: argparse.Namespace, data_dir: Path) -> int:
    """Run the cluster until SIGINT or SIGTERM."""
    started = time.monotonic()
    # Requests allocate many short-lived dicts; with the default threshold the
    # collector runs every few requests and a 10k-object list pays triple for it.
    gc.set_threshold(20_000, 50, 100)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    from skiff.cli.event_loop import run

    return run(_serve(args, data_dir, started))
