"""Commands run inside a process-runtime container (kubectl exec, exec probes).

The command enters the container's mount, UTS and PID namespaces and its root with
`nsenter`, joins its cgroups, and runs as its user with its environment. With a tty
it gets a pseudo-terminal whose size `resize` sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import struct
import termios
from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ProcessExec:
    """A running exec'd command: its streams, terminal size and exit code."""

    def __init__(self, proc: asyncio.subprocess.Process, stdin: asyncio.StreamWriter | None,
                 stdout: asyncio.StreamReader, stderr: asyncio.StreamReader | None,
                 master_fd: int = -1) -> None:
        self.proc = proc
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._master = master_fd

    def resize(self, width: int, height: int) -> None:
        """Set the terminal's size (ignored without a tty)."""
        if self._master < 0:
            return
        with contextlib.suppress(OSError):
            fcntl.ioctl(self._master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", max(0, height), max(0, width), 0, 0))

    async def wait(self) -> int:
        """The command's exit code (128+N if a signal N ended it)."""
        code = await self.proc.wait()
        return 128 - code if code < 0 else code

    def kill(self) -> None:
        """End the command and everything it started in its session."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


def _preexec(cgroup_procs: list[str], tty: bool) -> Any:
    def run() -> None:
        os.setsid()
        if tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        for path in cgroup_procs:
            with contextlib.suppress(OSError), open(path, "w") as f:
                f.write("0")
    return run


async def start_exec(pid: int, command: list[str], cfg: dict[str, Any], *, tty: bool,
                     stdin: bool) -> ProcessExec:
    """Start `command` in the namespaces of the container whose main process is `pid`."""
    nsenter = shutil.which("nsenter") or "nsenter"
    args = [nsenter, "--target", str(pid), "--mount", "--uts", "--pid", "--root", "--wd"]
    if cfg.get("gid") is not None:
        args += ["--setgid", str(cfg["gid"])]
    if cfg.get("uid") is not None:
        args += ["--setuid", str(cfg["uid"])]
    env = {k: v for k, v in cfg.get("env") or []}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", cfg.get("hostname") or "")
    if tty:
        env.setdefault("TERM", "xterm")
    argv = [*args, "--", *command]
    preexec = _preexec(list(cfg.get("cgroup_procs") or []), tty)
    loop = asyncio.get_running_loop()
    if tty:
        master, slave = os.openpty()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=preexec)
        finally:
            os.close(slave)
        reader = asyncio.StreamReader()
        read_file = os.fdopen(os.dup(master), "rb", buffering=0)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), read_file)
        writer: asyncio.StreamWriter | None = None
        if stdin:
            write_file = os.fdopen(os.dup(master), "wb", buffering=0)
            transport, protocol = await loop.connect_write_pipe(
                lambda: asyncio.streams.FlowControlMixin(), write_file)
            writer = asyncio.StreamWriter(transport, protocol, None, loop)
        return ProcessExec(proc, writer, reader, None, master)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        preexec_fn=preexec)
    assert proc.stdout is not None
    return ProcessExec(proc, proc.stdin, proc.stdout, proc.stderr)


async def run_to_completion(exec_proc: ProcessExec, timeout: float) -> tuple[int, bytes]:
    """Wait for an exec'd command (killing it after `timeout`); returns (code, output)."""
    async def collect() -> tuple[int, bytes]:
        chunks = []
        streams = [s for s in (exec_proc.stdout, exec_proc.stderr) if s is not None]

        async def drain(s: asyncio.StreamReader) -> None:
            while True:
                try:
                    data = await s.read(65536)
                except OSError:  # a pty reports EIO once its last writer closed
                    return
                if not data:
                    return
                if sum(len(c) for c in chunks) < 1 << 16:
                    chunks.append(data)

        await asyncio.gather(*(drain(s) for s in streams))
        return await exec_proc.wait(), b"".join(chunks)

    try:
        return await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        exec_proc.kill()
        raise
