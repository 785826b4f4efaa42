"""The zygote: a warm helper process that forks container shims on request.

A fresh `python shim.py` costs tens of milliseconds of interpreter start-up and
imports before it does any work; for a node starting many pods that is most of a
container's start time. The runtime therefore keeps one zygote per agent: a
standard-library-only process that has imported `shim` already and forks a shim
for each container, the way Android's zygote forks apps.

Run as `python -S -E zygote.py [OWNER]` with fd 0 a SOCK_SEQPACKET unix socket to
the agent (OWNER, the runtime's state folder, only labels the process for `ps`).
Each request is one message: the container folder's path as payload and, as
SCM_RIGHTS, the write end of a pipe on which the shim reports (the same one JSON
line a shim started directly writes on its stdout). The zygote forks, and the
child becomes the shim; the zygote reaps shims that end while it runs. When the
agent goes away the socket reads end-of-file and the zygote exits: the shims it
started keep running (init adopts them), as shims started directly do.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import traceback

import shim  # the zygote runs as a script beside shim.py (its folder is sys.path[0])

MAX_REQUEST = 8192


def _reap(*_: object) -> None:
    """Collect every shim that has ended (SIGCHLD)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _child(cdir: str, report: int) -> None:
    """In the zygote's child: become the container's shim (never returns)."""
    code = 0
    try:
        # The zygote's signal dispositions are not the shim's: it reaps its own child.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            cfg = shim.load_config(cdir)
        except (OSError, ValueError) as exc:
            shim.report_error(report, f"reading the container's config failed: {exc}")
            os._exit(0)
        shim.supervise(cdir, cfg, report)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the shim's own failure, logged in shim.log
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(sock: socket.socket) -> None:
    """Fork a shim per request until the agent closes its end of `sock`."""
    # What was imported stays shared with every forked shim: keep the collector from
    # touching (and so copying) those pages in the children.
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, MAX_REQUEST, 4)
        except OSError:
            return
        if not data and not fds:
            return
        for fd in fds:
            os.set_inheritable(fd, False)
        if not fds:
            continue
        report = fds[0]
        for extra in fds[1:]:
            os.close(extra)
        cdir = data.decode(errors="replace")
        try:
            pid = os.fork()
        except OSError as exc:
            shim.report_error(report, f"the shim could not be forked: {exc}")
            os.close(report)
            continue
        if pid == 0:
            sock.close()
            _child(cdir, report)
        os.close(report)


def main() -> None:
    """Entry point: serve the socket on fd 0."""
    # Terminal signals are for the agent; the zygote ends when the agent does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=0)
    try:
        serve(sock)
    finally:
        sock.close()


if __name__ == "__main__":
    main()
