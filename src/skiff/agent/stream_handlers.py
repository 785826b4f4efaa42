"""The agent's exec, attach and port-forward endpoints (the kubelet's streaming server).

Routes, with the kubelet's paths and query names (the API server translates the
pod subresources' `stdin=true`… into `input=1`…):

    GET|POST /exec/{namespace}/{pod}/{container}?command=…&input=1&output=1&error=1&tty=1
    GET|POST /attach/{namespace}/{pod}/{container}?input=1&output=1&error=1&tty=1
    GET|POST /portForward/{namespace}/{pod}[?port=N…]

Each answers a WebSocket upgrade (channel protocols v5 down to v1; for port-forward
also SPDY tunnelled in a WebSocket) or an `Upgrade: SPDY/3.1` request negotiated by
`X-Stream-Protocol-Version`. Problems found before the upgrade (no such pod or
container, container not running, bad options) are answered as a Status; after it,
on the protocol's error channel. Containers are found through `StreamTargets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from skiff.agent.streams import ContainerTarget, StreamError, StreamTargets
from skiff.runtime.protocol import ExecProcess
from skiff.streaming import channels as ch
from skiff.streaming import portforward as pf
from skiff.streaming import remotecommand as rc
from skiff.streaming.spdy_session import SpdySession
from skiff.streaming.upgrade import WebSocketPipe, accept_upgrade

if TYPE_CHECKING:
    from skiff.agent.server import AgentServer

log = logging.getLogger(__name__)

# Tasks that outlive the request that started them (reaping stopped commands).
_background: set[asyncio.Future[int]] = set()

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROTOCOL_HEADER = "X-Stream-Protocol-Version"
ACCEPTED_HEADER = "X-Accepted-Stream-Protocol-Versions"


def add_stream_routes(server: AgentServer) -> None:
    """Serve exec, attach and port-forward on the agent's server."""
    handlers = StreamHandlers(server.agent.streams)
    for method in ("GET", "POST"):
        server.add_route(method, "/exec/{namespace}/{pod}/{container}", handlers.exec)
        server.add_route(method, "/attach/{namespace}/{pod}/{container}", handlers.attach)
        server.add_route(method, "/portForward/{namespace}/{pod}", handlers.port_forward)


# -- the container's side ------------------------------------------------------------------


class ExecIO:
    """A command started with `exec` as a session's `CommandIO`."""

    def __init__(self, proc: ExecProcess) -> None:
        self.proc = proc
        self.stdout: asyncio.StreamReader | None = proc.stdout
        self.stderr: asyncio.StreamReader | None = proc.stderr

    async def write_stdin(self, data: bytes) -> None:
        """Pass input on."""
        if self.proc.stdin is not None:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        """End of input: the command reads EOF."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        """Resize the command's terminal."""
        self.proc.resize(width, height)

    async def wait(self) -> int:
        """The exit code."""
        return await self.proc.wait()

    def stop(self) -> None:
        """The client left: end the command, leaving nothing behind."""
        self.proc.kill()
        # Reap it in the background: waiting also gives back its terminal.
        reaper = asyncio.ensure_future(self.proc.wait())
        _background.add(reaper)
        reaper.add_done_callback(_background.discard)


class AttachIO:
    """The stdio of a container's main process, through its shim's socket.

    The shim speaks frames of [channel u8][length u32 BE][payload]: 0 stdin,
    1 stdout, 2 stderr, 3 the exit status (JSON, last), 4 resize, 255 close stdin.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = asyncio.StreamReader()
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, socket_name: str, opts: rc.Options) -> AttachIO:
        """Attach to the shim listening on the abstract socket `socket_name`."""
        try:
            reader, writer = await asyncio.open_unix_connection("\0" + socket_name)
            request = {"op": "attach", "stdin": opts.stdin, "stdout": opts.stdout,
                       "stderr": opts.stderr}
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            reply = json.loads(await reader.readline() or b"{}")
        except (OSError, ValueError) as exc:
            raise StreamError(500, f"unable to attach to the container: {exc}",
                              "InternalError") from None
        if not reply.get("ok"):
            writer.close()
            raise StreamError(500, f"unable to attach to the container: "
                                   f"{reply.get('error', 'refused')}", "InternalError")
        return cls(reader, writer)

    async def _read(self) -> None:
        code = 0
        try:
            while True:
                head = await self.reader.readexactly(5)
                channel, size = struct.unpack(">BI", head)
                payload = await self.reader.readexactly(size)
                if channel == 1 and self.stdout is not None:
                    self.stdout.feed_data(payload)
                elif channel == 2 and self.stderr is not None:
                    self.stderr.feed_data(payload)
                elif channel == 3:
                    with contextlib.suppress(ValueError, TypeError):
                        code = int(json.loads(payload).get("exitCode", 0))
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            for stream in (self.stdout, self.stderr):
                if stream is not None:
                    stream.feed_eof()
            if not self._exit.done():
                self._exit.set_result(code)

    async def _send(self, channel: int, payload: bytes) -> None:
        self.writer.write(struct.pack(">BI", channel, len(payload)) + payload)
        await self.writer.drain()

    async def write_stdin(self, data: bytes) -> None:
        """Pass input to the container's stdin."""
        await self._send(0, data)

    async def close_stdin(self) -> None:
        """The client's input ended (closes the container's stdin if stdinOnce)."""
        with contextlib.suppress(ConnectionError, OSError):
            await self._send(255, b"")

    def resize(self, width: int, height: int) -> None:
        """Resize the container's terminal."""
        payload = json.dumps({"Width": width, "Height": height}).encode()
        self.writer.write(struct.pack(">BI", 4, len(payload)) + payload)

    async def wait(self) -> int:
        """Until the container exits (its code)."""
        return await self._exit

    def stop(self) -> None:
        """Detach; the container keeps running."""
        self._task.cancel()
        self.writer.close()


# -- commands that cannot start -------------------------------------------------------------


def _container_path(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return DEFAULT_PATH
    for item in raw.split(b"\0"):
        if item.startswith(b"PATH="):
            return item[5:].decode("utf-8", "replace")
    return DEFAULT_PATH


def _executable(path: Path) -> int:
    """0 if `path` can be run; else the errno-like code (127 missing, 126 not runnable).

    A symbolic link counts as runnable: seen from the host through /proc/PID/root,
    an absolute link would resolve against the host's root, not the container's,
    so the runtime itself decides.
    """
    try:
        st = path.lstat()
    except OSError:
        return 127
    if stat.S_ISLNK(st.st_mode):
        return 0
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        return 126
    return 0


def start_problem(pid: int, argv0: str) -> tuple[int, str] | None:
    """Why `argv0` cannot start in the container whose main process is `pid`.

    Returns the exit code and the message runc gives (126: found but not runnable,
    127: not found), or None if it can start or the container cannot be inspected.
    """
    if pid <= 0:
        return None
    root = Path(f"/proc/{pid}/root")
    try:
        if not root.is_dir():
            return None
    except OSError:
        return None
    prefix = "OCI runtime exec failed: exec failed: unable to start container process: "
    if "/" in argv0:
        code = _executable(root / argv0.lstrip("/"))
        if code == 127:
            return 127, f"{prefix}exec: \"{argv0}\": stat {argv0}: no such file or " \
                        f"directory: unknown"
        if code == 126:
            return 126, f"{prefix}exec: \"{argv0}\": permission denied: unknown"
        return None
    for folder in _container_path(pid).split(":"):
        if folder and _executable(root / folder.lstrip("/") / argv0) == 0:
            return None
    return 127, f"{prefix}exec: \"{argv0}\": executable file not found in $PATH: unknown"


# -- the handlers ---------------------------------------------------------------------------


def _status(code: int, message: str, reason: str, headers: dict[str, str] | None = None
            ) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.Response(body=orjson.dumps(body), status=code, content_type="application/json",
                        headers=headers)


def _spdy_offers(request: web.Request) -> list[str]:
    offers: list[str] = []
    for value in request.headers.getall(PROTOCOL_HEADER, []):
        offers += [v.strip() for v in value.split(",") if v.strip()]
    return offers


def _transport(request: web.Request) -> str:
    """'websocket', 'spdy', or '' (not an upgrade request)."""
    upgrade = request.headers.get("Upgrade", "").lower()
    connection = request.headers.get("Connection", "").lower()
    if "upgrade" not in connection:
        return ""
    if upgrade == "websocket":
        return "websocket"
    if upgrade.startswith("spdy/3.1"):
        return "spdy"
    return ""


class StreamHandlers:
    """The three endpoints (see the module docstring)."""

    def __init__(self, targets: StreamTargets) -> None:
        self.targets = targets

    async def _negotiate_spdy(self, request: web.Request,
                              supported: tuple[str, ...]) -> str | web.Response:
        offers = _spdy_offers(request)
        if not offers:
            return _status(400, f"unable to upgrade: {PROTOCOL_HEADER} is required",
                           "BadRequest")
        chosen = next((o for o in offers if o in supported), None)
        if chosen is None:
            return _status(403, f"unable to upgrade: unable to negotiate protocol: client "
                                f"supports [{' '.join(offers)}], server accepts "
                                f"[{' '.join(supported)}]", "Forbidden",
                           {ACCEPTED_HEADER: ", ".join(supported)})
        return chosen

    async def _open_command_streams(self, request: web.Request, opts: rc.Options
                                    ) -> tuple[rc.CommandStreams | None, web.StreamResponse]:
        """Upgrade the connection; (None, response) if it was refused or not completed."""
        kind = _transport(request)
        if kind == "websocket":
            offered = request.headers.get("Sec-WebSocket-Protocol", "")
            proto = ch.negotiate(offered, ch.REMOTE_COMMAND_PROTOCOLS)
            if proto is None:
                return None, _status(400, f"requested protocol(s) are not supported: "
                                          f"[{offered}]; supports "
                                          f"{list(ch.REMOTE_COMMAND_PROTOCOLS)}", "BadRequest")
            ws_streams = await rc.WebSocketCommandStreams.open(request, proto, opts)
            return ws_streams, ws_streams.ws
        if kind == "spdy":
            chosen = await self._negotiate_spdy(request, rc.SPDY_PROTOCOLS)
            if isinstance(chosen, web.Response):
                return None, chosen
            conn = await accept_upgrade(request, [
                ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                (PROTOCOL_HEADER, chosen)])
            spdy_streams = await rc.SpdyCommandStreams.open(SpdySession(conn), chosen, opts)
            return spdy_streams, conn.response
        return None, _status(400, "unable to upgrade: missing upgrade headers in request",
                             "BadRequest")

    async def _target(self, request: web.Request, opts: rc.Options) -> ContainerTarget:
        problem = opts.problem()
        if problem is not None:
            raise StreamError(400, problem)
        info = request.match_info
        target = await self.targets.container(info["namespace"], info["pod"],
                                              info["container"])
        if not target.running:
            raise StreamError(400, f'container "{target.container.name}" in pod '
                                   f'"{info["pod"]}" is not running')
        return target

    async def exec(self, request: web.Request) -> web.StreamResponse:
        """Run a command in a container with the client's streams."""
        opts = rc.Options.parse(request.query)
        command = request.query.getall("command", [])
        if not command:
            raise StreamError(400, "you must specify at least one command for the container")
        target = await self._target(request, opts)
        streams, response = await self._open_command_streams(request, opts)
        if streams is None:
            return response
        problem = start_problem(target.container.pid, command[0])
        if problem is not None:
            code, message = problem
            await rc.report_failure(streams, rc.exit_code_status(command, code), message + "\n")
            return response
        try:
            proc = await self.targets.exec(target, command, tty=opts.tty, stdin=opts.stdin)
        except StreamError as err:
            await streams.finish(rc.internal_error(
                f"error executing command in container: {err.message}"))
            return response
        except OSError as exc:
            await streams.finish(rc.internal_error(
                f"error executing command in container: {exc}"))
            return response

        def final(code: int) -> dict[str, Any]:
            return rc.success() if code == 0 else rc.exit_code_status(command, code)

        await rc.run_session(streams, ExecIO(proc), final)
        return response

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """Connect the client to a running container's stdio."""
        opts = rc.Options.parse(request.query)
        target = await self._target(request, opts)
        io = await AttachIO.connect(await self.targets.attach_socket(target), opts)
        try:
            streams, response = await self._open_command_streams(request, opts)
        except BaseException:
            io.stop()
            raise
        if streams is None:
            io.stop()
            return response
        await rc.run_session(streams, io, lambda _code: rc.success())
        return response

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """Forward the client's connections to ports in the pod."""
        namespace, name = request.match_info["namespace"], request.match_info["pod"]
        self.targets.pod(namespace, name)  # 404 before any upgrade

        async def dial(port: int) -> pf.Connection:
            try:
                return await self.targets.port_forward(namespace, name, port)
            except StreamError as err:
                uid = ((self.targets.pod(namespace, name).get("metadata") or {})
                       .get("uid", ""))
                raise pf.PortForwardError(f"error forwarding port {port} to pod {uid}, "
                                          f"uid : {err.message}") from None

        kind = _transport(request)
        if kind == "websocket":
            offered = request.headers.get("Sec-WebSocket-Protocol", "")
            proto = ch.negotiate(offered, ch.PORT_FORWARD_PROTOCOLS)
            if proto is None:
                return _status(400, f"requested protocol(s) are not supported: [{offered}]; "
                                    f"supports {list(ch.PORT_FORWARD_PROTOCOLS)}",
                               "BadRequest")
            if proto == ch.SPDY_TUNNEL:
                ws = web.WebSocketResponse(protocols=(proto,), max_msg_size=16 << 20,
                                           compress=False)
                await ws.prepare(request)
                await pf.serve_spdy(SpdySession(WebSocketPipe(ws), pf.validate_stream), dial)
                return ws
            ports: list[int] = []
            try:
                for raw in request.query.getall("port", []):
                    ports += [pf.parse_port(p) for p in raw.split(",")]
            except ValueError as exc:
                return _status(400, str(exc), "BadRequest")
            if not ports:
                return _status(400, 'query parameter "port" is required', "BadRequest")
            ws = web.WebSocketResponse(protocols=(proto,) if proto else (),
                                       max_msg_size=16 << 20, compress=False)
            await ws.prepare(request)
            await pf.serve_channels(ws, ch.ChannelCodec(proto), ports, dial)
            return ws
        if kind == "spdy":
            chosen = await self._negotiate_spdy(request, (pf.SPDY_PROTOCOL,))
            if isinstance(chosen, web.Response):
                return chosen
            conn = await accept_upgrade(request, [
                ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                (PROTOCOL_HEADER, chosen)])
            await pf.serve_spdy(SpdySession(conn, pf.validate_stream), dial)
            return conn.response
        return _status(400, "unable to upgrade: missing upgrade headers in request",
                       "BadRequest")
