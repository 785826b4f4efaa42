"""Per-container cgroups: memory and CPU limits, OOM-kill detection and usage.

cgroup v2 is used when the machine offers the memory and cpu controllers to this
process's cgroup; otherwise the v1 memory, cpu and cpuacct hierarchies if they are
mounted and writable; otherwise nothing is enforced (and `mode` says "none"), so the
runtime still works on machines that give it no cgroups. Containers' cgroups are
created below this process's own cgroup, so whatever limits the machine puts on the
agent also bound the containers it starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CPU_PERIOD_US = 100_000
# On cgroup v1 a process joins through `tasks`, not `cgroup.procs`: writing "0" there
# moves only the calling thread, which the kernel does without its global
# thread-group lock and so without waiting for an RCU grace period (10-20 ms per
# start on a busy machine). A process that has just forked has one thread, so the
# whole process moves, exactly as through `cgroup.procs`.
JOIN_FILE_V1 = "tasks"
MIN_QUOTA_US = 1_000
MIN_SHARES = 2


@dataclass
class ContainerCgroup:
    """The cgroup folders of one container and the files the shim needs."""

    dirs: list[str] = field(default_factory=list)
    # Where a freshly forked process writes "0" to join the container's cgroups (see
    # JOIN_FILE_V1).
    procs_files: list[str] = field(default_factory=list)
    oom_files: list[str] = field(default_factory=list)


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fs type, super options) of every mount of this process."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                parts = left.split()
                rparts = right.split()
                if len(parts) >= 5 and len(rparts) >= 3:
                    out.append((parts[4], rparts[0], rparts[2]))
    except OSError:
        pass
    return out


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller ("" key: the v2 path)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(",") if controllers else [""]:
                    out[c] = path
    except OSError:
        pass
    return out


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _stat_value(text: str, key: str) -> int:
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            with contextlib.suppress(ValueError):
                return int(v)
    return 0


def cpu_shares(request_millis: int | None) -> int:
    """cpu.shares for a CPU request, as the kubelet computes them."""
    if not request_millis:
        return MIN_SHARES
    return max(MIN_SHARES, request_millis * 1024 // 1000)


class Cgroups:
    """Creates, limits, measures and removes containers' cgroups."""

    def __init__(self, parent: str = "skiff") -> None:
        self.parent = parent
        self.mode = "none"
        self._v2_base = ""
        self._v1_bases: dict[str, str] = {}
        self._detect()

    def _detect(self) -> None:
        mounts = _mounts()
        own = _own_paths()
        v2 = next((mp for mp, fstype, _ in mounts if fstype == "cgroup2"), "")
        if v2 and "" in own:
            mine = os.path.join(v2, own[""].lstrip("/"))
            try:
                available = _read(os.path.join(mine, "cgroup.controllers")).split()
            except OSError:
                available = []
            if {"memory", "cpu"} <= set(available):
                base = os.path.join(mine, self.parent)
                try:
                    _write(os.path.join(mine, "cgroup.subtree_control"), "+memory +cpu")
                    os.makedirs(base, exist_ok=True)
                    _write(os.path.join(base, "cgroup.subtree_control"), "+memory +cpu")
                    self._v2_base = base
                    self.mode = "v2"
                    return
                except OSError as exc:
                    log.info("cgroup v2 controllers cannot be delegated here (%s)", exc)
        bases: dict[str, str] = {}
        for controller in ("memory", "cpu", "cpuacct"):
            mp = next((mp for mp, fstype, opts in mounts
                       if fstype == "cgroup" and controller in opts.split(",")), "")
            if not mp:
                continue
            base = os.path.join(mp, own.get(controller, "/").lstrip("/"), self.parent)
            try:
                os.makedirs(base, exist_ok=True)
            except OSError:
                continue
            bases[controller] = base
        if "memory" in bases and "cpu" in bases:
            self._v1_bases = bases
            self.mode = "v1"

    def create(self, container_id: str, memory_limit: int | None, cpu_limit_millis: int | None,
               cpu_request_millis: int | None) -> ContainerCgroup:
        """A new cgroup for one container with its limits set."""
        cg = ContainerCgroup()
        try:
            if self.mode == "v2":
                d = os.path.join(self._v2_base, container_id)
                os.makedirs(d, exist_ok=True)
                cg.dirs.append(d)
                if memory_limit:
                    _write(os.path.join(d, "memory.max"), str(memory_limit))
                    with contextlib.suppress(OSError):
                        _write(os.path.join(d, "memory.swap.max"), "0")
                if cpu_limit_millis:
                    quota = max(MIN_QUOTA_US, cpu_limit_millis * CPU_PERIOD_US // 1000)
                    _write(os.path.join(d, "cpu.max"), f"{quota} {CPU_PERIOD_US}")
                shares = cpu_shares(cpu_request_millis)
                weight = 1 + ((shares - 2) * 9999) // 262142
                with contextlib.suppress(OSError):
                    _write(os.path.join(d, "cpu.weight"), str(weight))
                cg.procs_files.append(os.path.join(d, "cgroup.procs"))
                cg.oom_files.append(os.path.join(d, "memory.events"))
            elif self.mode == "v1":
                # The cpu hierarchy last: the process joins its cgroups in this order,
                # and once in a low-weight cpu cgroup its remaining steps run slowly.
                for _, base in sorted(self._v1_bases.items(), key=lambda kv: kv[0] == "cpu"):
                    d = os.path.join(base, container_id)
                    os.makedirs(d, exist_ok=True)
                    if d not in cg.dirs:
                        cg.dirs.append(d)
                        cg.procs_files.append(os.path.join(d, JOIN_FILE_V1))
                mem = os.path.join(self._v1_bases["memory"], container_id)
                if memory_limit:
                    _write(os.path.join(mem, "memory.limit_in_bytes"), str(memory_limit))
                    with contextlib.suppress(OSError):
                        _write(os.path.join(mem, "memory.memsw.limit_in_bytes"),
                               str(memory_limit))
                cg.oom_files.append(os.path.join(mem, "memory.oom_control"))
                cpu = os.path.join(self._v1_bases["cpu"], container_id)
                if cpu_limit_millis:
                    quota = max(MIN_QUOTA_US, cpu_limit_millis * CPU_PERIOD_US // 1000)
                    _write(os.path.join(cpu, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
                    _write(os.path.join(cpu, "cpu.cfs_quota_us"), str(quota))
                _write(os.path.join(cpu, "cpu.shares"), str(cpu_shares(cpu_request_millis)))
        except OSError as exc:
            log.warning("cgroup for %s not fully set up: %s", container_id, exc)
        return cg

    def remove(self, container_id: str) -> None:
        """Remove the container's cgroups (their processes must have exited)."""
        dirs = []
        if self.mode == "v2":
            dirs.append(os.path.join(self._v2_base, container_id))
        for base in self._v1_bases.values():
            dirs.append(os.path.join(base, container_id))
        for d in dirs:
            # Leftover processes (an exec'd command, a container still dying) keep the
            # folder busy: kill them and retry until they are gone (2 s at most).
            for attempt in range(40):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    self._kill_all(d)
                    if attempt < 39:
                        time.sleep(0.05)
                    else:
                        log.warning("cgroup %s could not be removed", d)

    @staticmethod
    def _kill_all(d: str) -> None:
        with contextlib.suppress(OSError):
            for pid in _read(os.path.join(d, "cgroup.procs")).split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), 9)

    def usage(self, container_id: str) -> tuple[int, int] | None:
        """(CPU time in ns, memory working set in bytes), if the container has cgroups."""
        try:
            if self.mode == "v2":
                d = os.path.join(self._v2_base, container_id)
                cpu = _stat_value(_read(os.path.join(d, "cpu.stat")), "usage_usec") * 1000
                current = int(_read(os.path.join(d, "memory.current")))
                inactive = _stat_value(_read(os.path.join(d, "memory.stat")), "inactive_file")
                return cpu, max(0, current - inactive)
            if self.mode == "v1":
                acct = self._v1_bases.get("cpuacct") or self._v1_bases["cpu"]
                cpu = int(_read(os.path.join(acct, container_id, "cpuacct.usage")))
                mem = os.path.join(self._v1_bases["memory"], container_id)
                current = int(_read(os.path.join(mem, "memory.usage_in_bytes")))
                inactive = _stat_value(_read(os.path.join(mem, "memory.stat")),
                                       "total_inactive_file")
                return cpu, max(0, current - inactive)
        except (OSError, ValueError):
            return None
        return None

    def leftovers(self) -> list[str]:
        """Container ids that still have a cgroup folder (for cleanup after a crash)."""
        base = self._v2_base or self._v1_bases.get("memory", "")
        if not base:
            return []
        with contextlib.suppress(OSError):
            return [p.name for p in Path(base).iterdir() if p.is_dir()]
        return []
