"""The process runtime's view of its containers: kept in memory, true to the files.

Real shims and processes (root needed, as in production).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from skiff.runtime.process import ProcessRuntime
from skiff.runtime.protocol import CREATED, EXITED, RUNNING, ContainerConfig, SandboxConfig

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the process runtime needs root")


def _config(tmp: Path, name: str, command: list[str]) -> ContainerConfig:
    return ContainerConfig(name=name, attempt=0, image="busybox", command=command,
                           env=[], log_path=str(tmp / "logs" / f"{name}.log"))


async def _sandbox(rt: ProcessRuntime, tmp: Path, uid: str = "uid-1") -> str:
    return await rt.run_pod_sandbox(SandboxConfig(
        pod_uid=uid, namespace="ns", name=f"pod-{uid}", hostname="pod",
        log_directory=str(tmp / "logs"), labels={}))


async def _next_exit(rt: ProcessRuntime, container_id: str) -> None:
    async for event in rt.events():
        if event.kind == "exited" and event.container_id == container_id:
            return


async def test_exits_are_seen_and_remembered(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt")
    await rt.start()
    sid = await _sandbox(rt, tmp_path)
    try:
        # The same sandbox for the same pod; one per pod.
        assert await _sandbox(rt, tmp_path) == sid
        other = await _sandbox(rt, tmp_path, "uid-2")
        assert other != sid
        assert {s.pod_uid for s in await rt.list_pod_sandboxes()} == {"uid-1", "uid-2"}

        cid = await rt.create_container(sid, _config(tmp_path, "c", ["sh", "-c", "exit 3"]))
        assert (await rt.container_status(cid)).state == CREATED  # type: ignore[union-attr]
        waiting = asyncio.ensure_future(_next_exit(rt, cid))
        await rt.start_container(cid)
        await asyncio.wait_for(waiting, 10)
        st = await rt.container_status(cid)
        assert st is not None and st.state == EXITED and st.exit_code == 3
        assert st.reason == "Error" and st.finished_at >= st.started_at > 0
        assert [c.id for c in await rt.list_containers(sid)] == [cid]
        assert await rt.list_containers(other) == []

        await rt.remove_pod_sandbox(other)
        assert {s.pod_uid for s in await rt.list_pod_sandboxes()} == {"uid-1"}
        await rt.remove_container(cid)
        assert await rt.container_status(cid) is None
        assert not (tmp_path / "rt" / "containers" / cid).exists()
    finally:
        await rt.remove_pod_sandbox(sid)
        await rt.close()


async def test_the_container_process_joins_its_cgroups(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt")
    if rt.cgroups.mode == "none":
        pytest.skip("no cgroups on this machine")
    await rt.start()
    sid = await _sandbox(rt, tmp_path)
    try:
        cid = await rt.create_container(sid, _config(tmp_path, "c",
                                                     ["sh", "-c", "sleep 60 & wait"]))
        await rt.start_container(cid)
        st = await rt.container_status(cid)
        assert st is not None and st.state == RUNNING
        cfg = rt._config(cid) or {}
        assert cfg["cgroup_procs"]
        for join in cfg["cgroup_procs"]:
            # The whole process, and what it starts, is in every one of its cgroups.
            procs = (Path(join).parent / "cgroup.procs").read_text().split()
            assert str(st.pid) in procs
            for _ in range(50):
                if len((Path(join).parent / "cgroup.procs").read_text().split()) >= 2:
                    break
                await asyncio.sleep(0.02)
            assert len((Path(join).parent / "cgroup.procs").read_text().split()) >= 2
    finally:
        await rt.remove_pod_sandbox(sid)
        await rt.close()


async def test_a_new_runtime_finds_what_happened_while_none_ran(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt")
    await rt.start()
    sid = await _sandbox(rt, tmp_path)
    cids: list[str] = []
    try:
        for name in ("stays", "ends"):
            cid = await rt.create_container(sid, _config(tmp_path, name, ["sleep", "60"]))
            await rt.start_container(cid)
            cids.append(cid)
        stays, ends = cids
        never = await rt.create_container(sid, _config(tmp_path, "never", ["sleep", "60"]))
        pid = (await rt.container_status(ends)).pid  # type: ignore[union-attr]
        # The agent goes away; meanwhile one container is killed.
        await rt.close()
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if (tmp_path / "rt" / "containers" / ends / "exit.json").exists():
                break
            await asyncio.sleep(0.05)

        rt = ProcessRuntime(tmp_path / "rt")
        await rt.start()
        assert {s.id for s in await rt.list_pod_sandboxes()} == {sid}
        states = {c.name: c for c in await rt.list_containers(sid)}
        assert states["stays"].state == RUNNING
        assert states["ends"].state == EXITED and states["ends"].exit_code == 137
        assert states["never"].state == CREATED
        # The re-attached runtime follows the running one to its end (sleep, PID 1 of
        # its PID namespace, ignores SIGTERM: SIGKILL after the grace period).
        await rt.stop_container(stays, 0.3)
        st = await rt.container_status(stays)
        assert st is not None and st.state == EXITED and st.exit_code == 137
        assert never
    finally:
        await rt.remove_pod_sandbox(sid)
        await rt.close()
