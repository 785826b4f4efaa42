"""The process runtime's shim zygote (skiff.runtime.process.launcher and zygote).

Real processes, namespaces and cgroups: the runtime needs root, as in production.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from skiff.runtime.process import ProcessRuntime
from skiff.runtime.protocol import RUNNING, ContainerConfig, SandboxConfig

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the process runtime needs root")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


async def _sandbox(rt: ProcessRuntime, tmp: Path) -> str:
    return await rt.run_pod_sandbox(SandboxConfig(
        pod_uid="uid-1", namespace="ns", name="pod", hostname="pod",
        log_directory=str(tmp / "logs"), labels={}))


async def _run(rt: ProcessRuntime, sid: str, tmp: Path, name: str,
               command: list[str]) -> str:
    cid = await rt.create_container(sid, ContainerConfig(
        name=name, attempt=0, image="busybox", command=command, env=[("GREETING", "hi")],
        log_path=str(tmp / "logs" / f"{name}.log")))
    await rt.start_container(cid)
    return cid


async def test_containers_start_through_the_zygote_and_outlive_it(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt")
    await rt.start()
    zygote = rt.launcher.zygote_pid
    assert zygote and _alive(zygote)
    # Its command line names whose it is (`ps`, and leak checks by folder, see it).
    assert str(tmp_path / "rt") in Path(f"/proc/{zygote}/cmdline").read_bytes().decode()
    sid = await _sandbox(rt, tmp_path)
    try:
        cid = await _run(rt, sid, tmp_path, "c", ["sh", "-c", "echo $GREETING; sleep 60"])
        st = await rt.container_status(cid)
        assert st is not None and st.state == RUNNING
        # The zygote forked the shim (it still runs; nothing was respawned).
        assert rt.launcher.zygote_pid == zygote
        shim_pid = _ppid(st.pid)
        assert _ppid(shim_pid) == zygote
        # It keeps nothing of the zygote's: stdin and stdout are /dev/null.
        assert os.readlink(f"/proc/{shim_pid}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{shim_pid}/fd/1") == "/dev/null"
        assert "F hi" in await _read_log(tmp_path / "logs" / "c.log")
        # Closing the runtime (the agent stopping) ends the zygote, not the shim nor
        # the container.
        await rt.close()
        assert _wait_gone(zygote)
        assert _alive(st.pid) and _alive(shim_pid)
        # A new runtime re-attaches and can still stop it.
        rt = ProcessRuntime(tmp_path / "rt")
        await rt.start()
        await rt.stop_container(cid, 1)
        st = await rt.container_status(cid)
        assert st is not None and st.state != RUNNING
    finally:
        await rt.remove_pod_sandbox(sid)
        await rt.close()


async def test_a_dead_zygote_costs_speed_not_containers(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt")
    await rt.start()
    sid = await _sandbox(rt, tmp_path)
    try:
        first = rt.launcher.zygote_pid
        os.kill(first, signal.SIGKILL)
        assert _wait_gone(first)
        cid = await _run(rt, sid, tmp_path, "a", ["sleep", "60"])
        st = await rt.container_status(cid)
        assert st is not None and st.state == RUNNING
        # A fresh zygote serves the next start.
        second = rt.launcher.zygote_pid
        assert second and second != first
        cid2 = await _run(rt, sid, tmp_path, "b", ["sleep", "60"])
        assert (await rt.container_status(cid2)).state == RUNNING  # type: ignore[union-attr]
        assert rt.launcher.zygote_pid == second
        # A command that does not exist is reported as before.
        with pytest.raises(Exception, match="executable file not found"):
            await _run(rt, sid, tmp_path, "bad", ["no-such-command-anywhere"])
    finally:
        await rt.remove_pod_sandbox(sid)
        await rt.close()


async def test_without_the_zygote_shims_start_directly(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt", zygote=False)
    await rt.start()
    assert rt.launcher.zygote_pid == 0
    sid = await _sandbox(rt, tmp_path)
    try:
        cid = await _run(rt, sid, tmp_path, "c", ["sleep", "60"])
        assert (await rt.container_status(cid)).state == RUNNING  # type: ignore[union-attr]
    finally:
        await rt.remove_pod_sandbox(sid)
        await rt.close()


def test_the_zygote_ends_when_its_agent_is_killed(tmp_path: Path) -> None:
    """An agent killed with SIGKILL cannot stop its zygote: end-of-file on the socket
    does."""
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from skiff.runtime.process import ProcessRuntime

        async def main():
            rt = ProcessRuntime(Path({str(tmp_path / "rt")!r}))
            await rt.start()
            print(rt.launcher.zygote_pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """)
    src = str(Path(__file__).resolve().parents[1] / "src")
    agent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": src})
    try:
        assert agent.stdout is not None
        zygote = int(agent.stdout.readline())
        assert _alive(zygote)
        agent.kill()
        agent.wait(5)
        assert _wait_gone(zygote)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


async def _read_log(path: Path) -> str:
    for _ in range(100):
        if path.exists() and path.read_text():
            return path.read_text()
        await asyncio.sleep(0.02)
    return ""
