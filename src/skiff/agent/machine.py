"""Facts about this machine the node reports: capacity, pressure, identity."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from pathlib import Path

# Upstream's default eviction thresholds decide the pressure conditions.
MEMORY_AVAILABLE_MIN = 100 * 1024 * 1024
DISK_AVAILABLE_FRACTION = 0.10
PID_AVAILABLE_FRACTION = 0.05
DEFAULT_MAX_PODS = 110


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                value = int(parts[0])
                out[key] = value * 1024 if len(parts) > 1 and parts[1] == "kB" else value
    return out


def memory_total() -> int:
    """Physical memory in bytes."""
    return meminfo().get("MemTotal", 0)


def memory_available() -> int:
    """Memory available to new work, in bytes."""
    info = meminfo()
    return info.get("MemAvailable", info.get("MemFree", 0))


def cpu_count() -> int:
    """CPUs this process may run on."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def disk(path: Path) -> tuple[int, int]:
    """(total, available) bytes of the file system holding `path`."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def pids() -> tuple[int, int]:
    """(maximum, in use) process ids."""
    maximum = 32768
    with contextlib.suppress(OSError, ValueError):
        maximum = int(Path("/proc/sys/kernel/pid_max").read_text())
    used = sum(1 for p in os.listdir("/proc") if p.isdigit())
    return maximum, used


def boot_id() -> str:
    """The kernel's boot id."""
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def machine_id() -> str:
    """/etc/machine-id, if the machine has one."""
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            return Path(p).read_text().strip()
    return ""


def os_image() -> str:
    """PRETTY_NAME from /etc/os-release."""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def kernel_version() -> str:
    """The running kernel's release."""
    return platform.release()


def arch() -> str:
    """The machine's architecture in Go's naming."""
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(m, m)


def hostname() -> str:
    """This machine's host name."""
    return socket.gethostname()
