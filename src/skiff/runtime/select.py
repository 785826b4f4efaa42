"""Choosing a container runtime by name, or the best one this machine supports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from skiff.runtime.protocol import Runtime

# Best first. Runtimes added later (real OCI containers) go before `process`.
KNOWN = ("process",)


def unavailable_reason(name: str) -> str:
    """Why runtime `name` cannot run here ("" if it can)."""
    if name == "process":
        if os.geteuid() != 0:
            return "the process runtime needs root (mount and PID namespaces, cgroups)"
        if shutil.which("nsenter") is None:
            return "the process runtime needs nsenter (util-linux) for exec"
        return ""
    return f"unknown runtime {name!r} (known: {', '.join(KNOWN)})"


def pick(name: str = "") -> tuple[str, str]:
    """(runtime name, why it was picked); raises ValueError if it cannot run here."""
    if name:
        reason = unavailable_reason(name)
        if reason:
            raise ValueError(reason)
        return name, "asked for"
    reasons = []
    for candidate in KNOWN:
        reason = unavailable_reason(candidate)
        if not reason:
            return candidate, "the best available here"
        reasons.append(f"{candidate}: {reason}")
    raise ValueError("no container runtime can run here: " + "; ".join(reasons))


def make(name: str, root: Path, host_ip: str = "127.0.0.1") -> Runtime:
    """An instance of runtime `name` keeping its state under `root`."""
    if name == "process":
        from skiff.runtime.process import ProcessRuntime

        return ProcessRuntime(root, host_ip=host_ip)
    raise ValueError(f"unknown runtime {name!r}")
