"""Exec/attach sessions (skiff.streaming.remotecommand) with a real local process."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from multidict import MultiDict

from skiff.streaming import remotecommand as rc


class Source:
    """An InStream fed by the test."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def read(self) -> bytes:
        return await self.queue.get()


class Sink:
    """An OutStream that records what it got."""

    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data


class FakeStreams:
    """The client's side of a session, recorded."""

    def __init__(self, stdin: bool = False, tty: bool = False) -> None:
        self.stdin: Source | None = Source() if stdin else None
        self.stdout = Sink()
        self.stderr: Sink | None = None if tty else Sink()
        self.resize: Source | None = Source() if tty else None
        self.client_gone = asyncio.Event()
        self.status: dict[str, Any] | None = None
        self.aborted = False

    async def finish(self, status: dict[str, Any]) -> None:
        self.status = status

    async def abort(self) -> None:
        self.aborted = True


class LocalIO:
    """A CommandIO around a host subprocess."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.sizes: list[tuple[int, int]] = []
        self.stopped = False

    @classmethod
    async def start(cls, script: str) -> LocalIO:
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", script, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def write_stdin(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    async def wait(self) -> int:
        return await self.proc.wait()

    def stop(self) -> None:
        self.stopped = True
        self.proc.send_signal(signal.SIGKILL)


def final(command: list[str]) -> Any:
    return lambda code: rc.success() if code == 0 else rc.exit_code_status(command, code)


async def test_output_and_success() -> None:
    streams = FakeStreams()
    io = await LocalIO.start("echo out; echo err >&2")
    await rc.run_session(streams, io, final(["sh"]))
    assert streams.stdout.data == b"out\n"
    assert streams.stderr is not None and streams.stderr.data == b"err\n"
    assert streams.status == {"metadata": {}, "status": "Success"}


async def test_exit_code_is_reported_as_upstream() -> None:
    streams = FakeStreams()
    io = await LocalIO.start("exit 3")
    await rc.run_session(streams, io, final(["sh", "-c", "exit 3"]))
    assert streams.status == {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": "command terminated with non-zero exit code: error executing command "
                   "[sh -c exit 3], exit code 3",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}


async def test_stdin_is_copied_until_the_client_ends_it() -> None:
    streams = FakeStreams(stdin=True)
    io = await LocalIO.start("cat; echo end")
    assert streams.stdin is not None
    await streams.stdin.queue.put(b"line 1\n")
    await streams.stdin.queue.put(b"line 2\n")
    await streams.stdin.queue.put(b"")
    await asyncio.wait_for(rc.run_session(streams, io, final(["cat"])), 5)
    assert streams.stdout.data == b"line 1\nline 2\nend\n"
    assert streams.status is not None and streams.status["status"] == "Success"


async def test_client_leaving_stops_the_command() -> None:
    streams = FakeStreams(stdin=True)
    io = await LocalIO.start("exec sleep 30")
    task = asyncio.create_task(rc.run_session(streams, io, final(["sleep"])))
    await asyncio.sleep(0.1)
    streams.client_gone.set()
    await asyncio.wait_for(task, 5)
    assert io.stopped and streams.aborted and streams.status is None
    assert await io.proc.wait() == -signal.SIGKILL


async def test_resize_messages_may_be_split_or_joined() -> None:
    streams = FakeStreams(tty=True)
    io = await LocalIO.start("sleep 0.5")
    assert streams.resize is not None
    await streams.resize.queue.put(b'{"Width":80,"Hei')
    await streams.resize.queue.put(b'ght":24}{"Width":100,"Height":40}\n')
    await rc.run_session(streams, io, final(["sleep"]))
    assert io.sizes == [(80, 24), (100, 40)]


def test_options_from_kubelet_and_api_names() -> None:
    opts = rc.Options.parse(MultiDict(input="1", output="1", error="1"))
    assert opts == rc.Options(stdin=True, stdout=True, stderr=True, tty=False)
    opts = rc.Options.parse(MultiDict(stdin="true", stdout="true", stderr="true", tty="true"))
    assert opts == rc.Options(stdin=True, stdout=True, stderr=False, tty=True)
    assert rc.Options.parse(MultiDict()).problem() == \
        "you must specify at least 1 of stdin, stdout, stderr"


def test_internal_error_status() -> None:
    status = rc.internal_error("error executing command in container: boom")
    assert status["code"] == 500 and status["reason"] == "InternalError"
    assert status["message"] == ("Internal error occurred: error executing command in "
                                 "container: boom")
