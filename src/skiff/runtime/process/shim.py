"""The per-container supervisor (shim) of the process runtime.

Run as `python -S -E shim.py CONTAINER_DIR`, or forked from the zygote (`zygote.py`),
which has this module imported already: it uses only the standard library, so it
does not depend on skiff being importable.
The shim outlives the node agent, which is what lets containers survive an agent
restart: the agent finds the shim again through the container folder and the shim's
abstract unix socket.

What it does, in order:
1. detaches (double fork: its parent is init, not the agent) and reports back on
   stdout once the container runs or failed to start, then closes stdout;
2. enters a private mount namespace (and a UTS namespace with the pod's hostname),
   builds the container's root: an overlay over the host's `/` whose writes go to the
   container folder, with the host's other mounts and the pod's volumes bound in;
3. forks the container's process as PID 1 of a new PID namespace, in its cgroups,
   chrooted into that root, as its user, with its environment;
4. writes the process's stdout and stderr to the CRI-format log file
   (`<RFC3339Nano> <stream> <F|P> <text>`), serves attach clients, signals and
   status requests on its socket, and writes `exit.json` when the process ends.

Control socket: one JSON line per request, one JSON line per answer. Requests:
`{"op": "status"}`, `{"op": "wait"}` (answered when the process has exited),
`{"op": "kill", "signal": N}`, and `{"op": "attach", "stdin": b, "stdout": b,
"stderr": b}` which turns the connection into frames of
`[channel u8][length u32 big-endian][payload]`: 0 stdin (client to shim),
1 stdout, 2 stderr, 3 exit status (JSON, last frame), 4 resize (JSON {"Width","Height"}),
255 close stdin.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

MAX_LOG_LINE = 16 * 1024
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """unshare(2) (os.unshare needs Python 3.12)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    """mount(2)."""
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {target}")


def sethostname(name: str) -> None:
    """sethostname(2)."""
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def now_rfc3339nano() -> str:
    """The current time as CRI log lines stamp it."""
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def write_json(path: str, data: dict, sync: bool = True) -> None:
    """Write a JSON file atomically (readers never see half of it); `sync` also makes
    it durable before it replaces the old one."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


# -- the container's root and mounts -------------------------------------------------------


def _mountinfo() -> list[tuple[int, int, str]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            mp = parts[4].encode().decode("unicode_escape")
            out.append((int(parts[0]), int(parts[1]), mp))
    return out


def _ensure_target(path: str, source: str) -> None:
    if os.path.isdir(source):
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            open(path, "a").close()


def join_in_root(root: str, path: str) -> str:
    """`path` as seen inside `root`: symlinks on the way resolve within the root.

    A container path such as /var/run/secrets must land under the container's own
    /run when /var/run links to /run, not under the host's (what runc's securejoin
    does); an absolute link restarts from the root, and `..` never climbs above it.
    """
    if root == "/":
        return path
    pending = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        current = os.path.join(root, *done, part)
        if os.path.islink(current) and hops < 40:
            hops += 1
            link = os.readlink(current)
            if link.startswith("/"):
                done = []
            pending = [p for p in link.split("/") if p] + pending
            continue
        done.append(part)
    return os.path.join(root, *done)


DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def build_dev(root: str) -> None:
    """A /dev of the container's own (as runc makes): writes there stay in the container."""
    dev = os.path.join(root, "dev")
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name in DEVICES:
        target = os.path.join(dev, name)
        open(target, "a").close()
        try:
            mount(f"/dev/{name}", target, None, MS_BIND)
        except OSError:
            os.unlink(target)
    os.makedirs(os.path.join(dev, "shm"), exist_ok=True)
    try:
        mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "size=65536k")
    except OSError:
        pass
    # The host's devpts, not a new instance: terminals the runtime opens for
    # `exec -t` and tty containers live there and must resolve inside too.
    os.makedirs(os.path.join(dev, "pts"), exist_ok=True)
    try:
        mount("/dev/pts", os.path.join(dev, "pts"), None, MS_BIND | MS_REC)
        open(os.path.join(dev, "ptmx"), "a").close()
        mount("/dev/ptmx", os.path.join(dev, "ptmx"), None, MS_BIND)
    except OSError:
        pass
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, link))


def build_root(cfg: dict, cdir: str) -> str:
    """Mount the container's root filesystem and volumes; returns the root path."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = "/"
    if cfg.get("overlay", True):
        root = os.path.join(cdir, "rootfs")
        upper = os.path.join(cdir, "upper")
        work = os.path.join(cdir, "work")
        for d in (root, upper, work):
            os.makedirs(d, exist_ok=True)
        try:
            mount("overlay", root, "overlay", 0, f"lowerdir=/,upperdir={upper},workdir={work}")
        except OSError:
            # Some kernels refuse an upper layer inside the lower one: keep the
            # container's writes in memory instead.
            scratch = os.path.join(cdir, "scratch")
            os.makedirs(scratch, exist_ok=True)
            mount("tmpfs", scratch, "tmpfs", 0, "mode=755")
            os.makedirs(os.path.join(scratch, "upper"))
            os.makedirs(os.path.join(scratch, "work"))
            mount("overlay", root, "overlay", 0,
                  f"lowerdir=/,upperdir={scratch}/upper,workdir={scratch}/work")
        infos = _mountinfo()
        root_ids = {mid for mid, _parent, mp in infos if mp == "/"}
        skip = tuple(cfg.get("skip_mounts_under") or ())
        for _mid, parent, mp in infos:
            if mp in ("/", "/dev") or parent not in root_ids or mp.startswith(root):
                continue
            if skip and any(mp == s or mp.startswith(s.rstrip("/") + "/") for s in skip):
                continue
            target = root + mp
            try:
                _ensure_target(target, mp)
                mount(mp, target, None, MS_BIND | MS_REC)
            except OSError:
                continue
        build_dev(root)
    for m in cfg.get("mounts") or ():
        src, dst = m["host_path"], m["container_path"]
        target = join_in_root(root, dst) if root != "/" else dst
        if root == "/" and not os.path.exists(target):
            raise OSError(errno.ENOENT, f"mount point {dst} does not exist on the host and "
                                        f"the process runtime has no overlay to create it")
        _ensure_target(target, src)
        mount(src, target, None, MS_BIND | MS_REC)
        if m.get("read_only"):
            mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    return root


# -- the container process ----------------------------------------------------------------


def _find_executable(name: str, env: dict[str, str]) -> str:
    if "/" in name:
        return name
    for d in env.get("PATH", DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise OSError(errno.ENOENT, f'exec: "{name}": executable file not found in $PATH')


def child_main(cfg: dict, root: str, use_pidns: bool, stdio: tuple[int, int, int],
               tty: bool, errpipe: int) -> None:
    """In the forked child: become the container process (never returns)."""
    try:
        os.setsid()
        stdin_fd, stdout_fd, stderr_fd = stdio
        os.dup2(stdin_fd, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        if tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        # Opened now (the host's paths), written just before exec: a BestEffort
        # container's CPU weight is tiny, and on a busy machine every step taken
        # after joining its cpu cgroup would wait behind everything else.
        cgroup_procs = [os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
                        for procs in cfg.get("cgroup_procs") or ()]
        env = dict(cfg.get("env") or [])
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("HOSTNAME", cfg.get("hostname") or "")
        if root != "/":
            os.chroot(root)
            os.chdir("/")
        if use_pidns:
            try:
                mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            except OSError:
                pass
        cwd = cfg.get("working_dir") or "/"
        try:
            os.chdir(cwd)
        except OSError as exc:
            raise OSError(exc.errno, f'chdir to cwd ("{cwd}") set in config.json failed: '
                                     f"{os.strerror(exc.errno or 0).lower()}") from None
        for fd in cgroup_procs:
            os.write(fd, b"0")
            os.close(fd)
        gid = cfg.get("gid")
        uid = cfg.get("uid")
        if gid is not None or uid is not None:
            os.setgroups([int(g) for g in cfg.get("groups") or []])
        if gid is not None:
            os.setgid(int(gid))
        if uid is not None:
            os.setuid(int(uid))
        argv = cfg["command"]
        path = _find_executable(argv[0], env)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.execve(path, argv, env)
    except BaseException as exc:  # noqa: BLE001 - anything here is a start failure
        msg = getattr(exc, "strerror", None) or str(exc)
        try:
            os.write(errpipe, msg.encode()[:4000])
        finally:
            os._exit(127)


# -- the supervisor -----------------------------------------------------------------------


class Shim:
    """Supervises one running container process."""

    def __init__(self, cfg: dict, cdir: str) -> None:
        self.cfg = cfg
        self.cdir = cdir
        self.sel = selectors.DefaultSelector()
        self.pid = 0
        self.exit: dict | None = None
        self.log_fd = -1
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self.waiters: list[socket.socket] = []
        self.attached: list[tuple[socket.socket, dict]] = []
        self.buffers: dict[socket.socket, bytes] = {}
        self.stdin_w = -1
        self.tty_master = -1

    # logs

    def log(self, stream: str, data: bytes, final: bool = False) -> None:
        """Append `data` to the CRI log, one line per record."""
        buf = self.partial[stream] + data
        out = []
        ts = now_rfc3339nano().encode()
        tag = stream.encode()
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl > MAX_LOG_LINE:
                if len(buf) >= MAX_LOG_LINE:
                    out.append(b"%s %s P %s\n" % (ts, tag, buf[:MAX_LOG_LINE]))
                    buf = buf[MAX_LOG_LINE:]
                    continue
                break
            out.append(b"%s %s F %s\n" % (ts, tag, buf[:nl]))
            buf = buf[nl + 1:]
        if final and buf:
            out.append(b"%s %s F %s\n" % (ts, tag, buf))
            buf = b""
        self.partial[stream] = buf
        if out and self.log_fd >= 0:
            try:
                os.write(self.log_fd, b"".join(out))
            except OSError:
                pass

    def output(self, fd: int, stream: str) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(fd)
            os.close(fd)
            self.log(stream, b"", final=True)
            return
        self.log(stream, data)
        channel = 1 if stream == "stdout" else 2
        for sock, opts in list(self.attached):
            if opts.get(stream, True):
                self.send_frame(sock, channel, data)

    # sockets

    def send_frame(self, sock: socket.socket, channel: int, data: bytes) -> None:
        try:
            sock.sendall(struct.pack(">BI", channel, len(data)) + data)
        except OSError:
            self.drop(sock)

    def drop(self, sock: socket.socket) -> None:
        self.attached = [(s, o) for s, o in self.attached if s is not sock]
        if sock in self.waiters:
            self.waiters.remove(sock)
        self.buffers.pop(sock, None)
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def accept(self, server: socket.socket) -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        conn.setblocking(True)
        self.buffers[conn] = b""
        self.sel.register(conn, selectors.EVENT_READ, ("client", conn))

    def client(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(sock)
            return
        self.buffers[sock] += data
        if any(s is sock for s, _ in self.attached):
            self.frames(sock)
            return
        while b"\n" in self.buffers.get(sock, b""):
            line, rest = self.buffers[sock].split(b"\n", 1)
            self.buffers[sock] = rest
            self.request(sock, json.loads(line or b"{}"))
            if any(s is sock for s, _ in self.attached):
                self.frames(sock)
                return

    def request(self, sock: socket.socket, req: dict) -> None:
        op = req.get("op")
        if op == "status":
            self.reply(sock, {"pid": self.pid, "running": self.exit is None, "exit": self.exit})
        elif op == "wait":
            if self.exit is not None:
                self.reply(sock, {"exit": self.exit})
            else:
                self.waiters.append(sock)
        elif op == "kill":
            if self.exit is None and self.pid:
                try:
                    os.kill(self.pid, int(req.get("signal") or signal.SIGTERM))
                except OSError:
                    pass
            self.reply(sock, {"ok": True})
        elif op == "attach":
            self.reply(sock, {"ok": True, "tty": bool(self.cfg.get("tty"))})
            if self.exit is not None:
                self.send_frame(sock, 3, json.dumps(self.exit).encode())
                self.drop(sock)
                return
            self.attached.append((sock, req))
        else:
            self.reply(sock, {"error": f"unknown op {op!r}"})

    def reply(self, sock: socket.socket, data: dict) -> None:
        try:
            sock.sendall(json.dumps(data).encode() + b"\n")
        except OSError:
            self.drop(sock)

    def frames(self, sock: socket.socket) -> None:
        buf = self.buffers.get(sock, b"")
        while len(buf) >= 5:
            channel, size = struct.unpack(">BI", buf[:5])
            if len(buf) < 5 + size:
                break
            payload, buf = buf[5:5 + size], buf[5 + size:]
            if channel == 0:
                target = self.tty_master if self.tty_master >= 0 else self.stdin_w
                if target >= 0:
                    try:
                        os.write(target, payload)
                    except OSError:
                        pass
            elif channel == 4 and self.tty_master >= 0:
                try:
                    size_req = json.loads(payload)
                    winsz = struct.pack("HHHH", int(size_req.get("Height", 0)),
                                        int(size_req.get("Width", 0)), 0, 0)
                    fcntl.ioctl(self.tty_master, termios.TIOCSWINSZ, winsz)
                except (OSError, ValueError):
                    pass
            elif channel == 255 and self.stdin_w >= 0 and self.cfg.get("stdin_once"):
                os.close(self.stdin_w)
                self.stdin_w = -1
        self.buffers[sock] = buf

    # the process

    def reap(self) -> bool:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False
        if os.WIFSIGNALED(status):
            code = 128 + os.WTERMSIG(status)
        else:
            code = os.WEXITSTATUS(status)
        reason = "Completed" if code == 0 else "Error"
        if self.oom_killed():
            reason = "OOMKilled"
        self.exit = {"exitCode": code, "reason": reason, "finishedAt": time.time(),
                     "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0}
        return True

    def oom_killed(self) -> bool:
        for path in self.cfg.get("oom_files") or ():
            try:
                with open(path) as f:
                    for line in f:
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
            except (OSError, ValueError):
                continue
        return False

    def finish(self) -> None:
        # Drain what the process wrote before it ended (its descendants may keep the
        # pipes open; do not wait for them).
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            ready = [k for k, _ in self.sel.select(0.02) if k.data[0] == "out"]
            if not ready:
                break
            for key in ready:
                self.output(key.fd, key.data[1])
        for stream in ("stdout", "stderr"):
            self.log(stream, b"", final=True)
        assert self.exit is not None
        write_json(os.path.join(self.cdir, "exit.json"), self.exit)
        payload = json.dumps({"exit": self.exit}).encode() + b"\n"
        for sock in list(self.waiters):
            try:
                sock.sendall(payload)
            except OSError:
                pass
        for sock, _ in list(self.attached):
            self.send_frame(sock, 3, json.dumps(self.exit).encode())

    def run(self, report: int) -> None:
        """Start the container and supervise it until it exits."""
        cfg, cdir = self.cfg, self.cdir
        tty = bool(cfg.get("tty"))
        self.log_fd = os.open(cfg["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        devnull = os.open(os.devnull, os.O_RDWR)
        if tty:
            master, slave = os.openpty()
            self.tty_master = master
            stdio = (slave, slave, slave)
            outs = [(master, "stdout")]
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            stdin_r = devnull
            if cfg.get("stdin"):
                stdin_r, self.stdin_w = os.pipe()
            stdio = (stdin_r, out_w, err_w)
            outs = [(out_r, "stdout"), (err_r, "stderr")]
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind("\0" + cfg["socket"])
        server.listen(16)

        unshare(CLONE_NEWNS | CLONE_NEWUTS)
        if cfg.get("hostname"):
            sethostname(cfg["hostname"][:63])
        root = build_root(cfg, cdir)
        use_pidns = True
        try:
            unshare(CLONE_NEWPID)
        except OSError:
            use_pidns = False
        errr, errw = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(errr)
            child_main(cfg, root, use_pidns, stdio, tty, errw)
        self.pid = pid
        os.close(errw)
        for fd in set(stdio):
            if fd != devnull:
                os.close(fd)
        os.close(devnull)
        failure = b""
        while True:
            chunk = os.read(errr, 4096)
            if not chunk:
                break
            failure += chunk
        os.close(errr)
        if failure:
            os.waitpid(pid, 0)
            message = failure.decode(errors="replace")
            self.exit = {"exitCode": 128, "reason": "StartError", "finishedAt": time.time(),
                         "message": message, "signal": 0}
            write_json(os.path.join(cdir, "exit.json"), self.exit)
            os.write(report, json.dumps({"error": message}).encode() + b"\n")
            os.close(report)
            return
        started = time.time()
        # Not synced: it is on every start's critical path, and after a crash of the
        # machine the process it names is gone anyway (a missing or torn file reads
        # as "never started", and the agent starts the container again).
        write_json(os.path.join(cdir, "started.json"),
                   {"pid": pid, "startedAt": started, "shimPid": os.getpid()}, sync=False)
        os.write(report, json.dumps({"pid": pid, "startedAt": started}).encode() + b"\n")
        os.close(report)

        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for fd, stream in outs:
            self.sel.register(fd, selectors.EVENT_READ, ("out", stream))
        self.sel.register(server, selectors.EVENT_READ, ("accept", server))
        self.sel.register(wake_r, selectors.EVENT_READ, ("wake", wake_r))
        while True:
            if self.reap():
                break
            for key, _ in self.sel.select(1.0):
                kind = key.data[0]
                if kind == "out":
                    self.output(key.fd, key.data[1])
                elif kind == "accept":
                    self.accept(server)
                elif kind == "client":
                    self.client(key.data[1])
                elif kind == "wake":
                    try:
                        os.read(wake_r, 512)
                    except OSError:
                        pass
        self.finish()


def load_config(cdir: str) -> dict:
    """The container's config.json."""
    with open(os.path.join(cdir, "config.json")) as f:
        return json.load(f)


def report_error(report: int, message: str) -> None:
    """Tell the agent the container did not start."""
    try:
        os.write(report, json.dumps({"error": message}).encode() + b"\n")
    except OSError:
        pass


def supervise(cdir: str, cfg: dict, report: int) -> None:
    """In the shim: detach, start the container and supervise it until it exits.

    This process was forked for the container, by `main` (whose parent exits at once,
    so init adopts the shim) or by the zygote (which exits with its agent).
    """
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    err = os.open(os.path.join(cdir, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(err, 2)
    os.close(err)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    shim = Shim(cfg, cdir)
    try:
        shim.run(report)
    except Exception as exc:  # noqa: BLE001 - reported to the agent as a start failure
        message = f"{type(exc).__name__}: {exc}"
        if shim.pid == 0:
            shim.exit = {"exitCode": 128, "reason": "StartError", "finishedAt": time.time(),
                         "message": message, "signal": 0}
            write_json(os.path.join(cdir, "exit.json"), shim.exit)
            report_error(report, message)
        else:
            print(message, file=sys.stderr)
            raise


def main() -> None:
    """Entry point: detach, then start and supervise the container of CONTAINER_DIR."""
    cdir = sys.argv[1]
    cfg = load_config(cdir)
    report = os.dup(1)
    if os.fork() != 0:
        os._exit(0)
    supervise(cdir, cfg, report)


if __name__ == "__main__":
    main()
