"""Pieces of the agent's stream endpoints (skiff.agent.stream_handlers)."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import uuid

from skiff.agent.stream_handlers import AttachIO, start_problem
from skiff.streaming import remotecommand as rc


def test_commands_that_cannot_start_get_runcs_message() -> None:
    me = os.getpid()  # this process's root stands in for a container's
    assert start_problem(me, "sh") is None
    assert start_problem(me, "/bin/sh") is None
    code, message = start_problem(me, "no-such-command-here") or (0, "")
    assert code == 127
    assert message == ('OCI runtime exec failed: exec failed: unable to start container '
                       'process: exec: "no-such-command-here": executable file not found '
                       'in $PATH: unknown')
    code, message = start_problem(me, "/no/such/file") or (0, "")
    assert code == 127 and 'stat /no/such/file: no such file or directory' in message
    assert (start_problem(me, "/etc/passwd") or (0, ""))[0] == 126
    assert (start_problem(me, "/etc") or (0, ""))[0] == 126
    # No process to look into: the runtime decides.
    assert start_problem(0, "anything") is None


async def test_attach_speaks_the_shim_protocol() -> None:
    name = f"skiff-test-shim/{uuid.uuid4().hex}"
    received: list[tuple[int, bytes]] = []
    got_all = asyncio.Event()

    async def shim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        assert request == {"op": "attach", "stdin": True, "stdout": True, "stderr": True}
        writer.write(b'{"ok": true, "tty": false}\n')
        writer.write(struct.pack(">BI", 1, 3) + b"out")
        writer.write(struct.pack(">BI", 2, 3) + b"err")
        await writer.drain()
        while len(received) < 3:
            channel, size = struct.unpack(">BI", await reader.readexactly(5))
            received.append((channel, await reader.readexactly(size)))
        got_all.set()
        exit_status = json.dumps({"exitCode": 4, "reason": "Error"}).encode()
        writer.write(struct.pack(">BI", 3, len(exit_status)) + exit_status)
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(shim, "\0" + name)
    try:
        io = await AttachIO.connect(name, rc.Options(stdin=True, stdout=True, stderr=True,
                                                     tty=False))
        await io.write_stdin(b"in")
        io.resize(80, 24)
        await io.close_stdin()
        await asyncio.wait_for(got_all.wait(), 5)
        assert received == [(0, b"in"), (4, b'{"Width": 80, "Height": 24}'), (255, b"")]
        assert await asyncio.wait_for(io.wait(), 5) == 4
        assert io.stdout is not None and await io.stdout.read() == b"out"
        assert io.stderr is not None and await io.stderr.read() == b"err"
        io.stop()
    finally:
        server.close()
        await server.wait_closed()
