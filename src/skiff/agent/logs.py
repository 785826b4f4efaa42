"""Reading container logs in the CRI format the runtime writes.

Each line of a log file is `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`; `P`
marks a piece of a longer line that continues in the next record. Reading applies
the options of `kubectl logs`: `tailLines`, `sinceSeconds`/`sinceTime`, `timestamps`,
`limitBytes`, and `follow` (keep reading until the container stops).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass


@dataclass
class LogOptions:
    """What part of a log to return, and how."""

    follow: bool = False
    tail_lines: int | None = None
    since: dt.datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


@dataclass
class Record:
    """One parsed log record."""

    time: str
    stream: str
    full: bool
    text: bytes


def parse_line(line: bytes) -> Record | None:
    """Parse one CRI log line (None if it is not one)."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    text = parts[3] if len(parts) == 4 else b""
    return Record(parts[0].decode(errors="replace"), parts[1].decode(errors="replace"),
                  parts[2] != b"P", text)


def _parse_time(value: str) -> dt.datetime | None:
    try:
        base, _, frac = value.rstrip("Z").partition(".")
        t = dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
        return t + dt.timedelta(microseconds=int((frac + "000000")[:6]) if frac else 0)
    except ValueError:
        return None


def render(rec: Record, timestamps: bool, continuing: bool) -> bytes:
    """A record as `kubectl logs` shows it."""
    out = rec.text + (b"\n" if rec.full else b"")
    if timestamps and not continuing:
        out = rec.time.encode() + b" " + out
    return out


def _records(data: bytes) -> list[Record]:
    out = []
    for line in data.splitlines():
        rec = parse_line(line)
        if rec is not None:
            out.append(rec)
    return out


def _select(records: list[Record], opts: LogOptions) -> list[Record]:
    if opts.since is not None:
        records = [r for r in records if (_parse_time(r.time) or opts.since) >= opts.since]
    if opts.tail_lines is not None:
        if opts.tail_lines <= 0:
            return []
        # Count whole lines: a line is the run of records up to one marked full.
        lines: deque[list[Record]] = deque(maxlen=opts.tail_lines)
        current: list[Record] = []
        for r in records:
            current.append(r)
            if r.full:
                lines.append(current)
                current = []
        if current:
            lines.append(current)
        records = [r for line in lines for r in line]
    return records


async def read_log(path: str, opts: LogOptions,
                   running: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
    """The log's selected content in chunks; with `follow`, until the container stops."""
    budget = opts.limit_bytes
    try:
        with open(path, "rb") as f:
            data = f.read()
            pos = f.tell()
    except FileNotFoundError:
        data, pos = b"", 0
    # Only complete lines now; an unfinished last line is read on the next round.
    cut = data.rfind(b"\n") + 1
    pending = data[cut:]
    pos -= len(pending)
    continuing = False
    chunk = bytearray()
    for rec in _select(_records(data[:cut]), opts):
        chunk += render(rec, opts.timestamps, continuing)
        continuing = not rec.full
    if chunk:
        if budget is not None:
            chunk = chunk[:budget]
            budget -= len(chunk)
        yield bytes(chunk)
    if not opts.follow or (budget is not None and budget <= 0):
        return
    idle = 0
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            return
        cut = data.rfind(b"\n") + 1
        if cut:
            pos += cut
            out = bytearray()
            for rec in _records(data[:cut]):
                if opts.since is not None and (_parse_time(rec.time) or opts.since) < opts.since:
                    continue
                out += render(rec, opts.timestamps, continuing)
                continuing = not rec.full
            if out:
                if budget is not None:
                    out = out[:budget]
                    budget -= len(out)
                yield bytes(out)
                if budget is not None and budget <= 0:
                    return
            idle = 0
            continue
        idle += 1
        if idle % 5 == 0 and not await running():
            # One last look for lines written just before the end.
            with open(path, "rb") as f:
                f.seek(pos)
                rest = f.read()
            out = bytearray()
            for rec in _records(rest):
                out += render(rec, opts.timestamps, continuing)
                continuing = not rec.full
            if out:
                yield bytes(out)
            return
        await asyncio.sleep(0.1)


def tail_text(path: str, lines: int, limit: int) -> str:
    """The last `lines` lines of a log as plain text (for FallbackToLogsOnError)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            f.seek(max(0, size - 256 * 1024))
            data = f.read()
    except OSError:
        return ""
    recs = _select(_records(data), LogOptions(tail_lines=lines))
    text = b"".join(render(r, False, False) for r in recs)
    return text[-limit:].decode(errors="replace")
