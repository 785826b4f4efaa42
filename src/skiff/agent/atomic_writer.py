"""Atomic updates of a volume's files, as upstream's AtomicWriter does them.

The payload goes into a fresh hidden folder `..<timestamp>`; the symlink `..data`
is then swapped to it in one rename, and each user-visible path is a symlink through
`..data`. A reader therefore sees either the whole old set of files or the whole new
one, never a mix, which is what lets ConfigMap and Secret updates reach running
containers safely.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

DATA_DIR = "..data"


def _same(target: Path, payload: dict[str, tuple[bytes, int]]) -> bool:
    if not target.is_dir():
        return False
    found = {}
    for p in target.rglob("*"):
        if p.is_file():
            found[str(p.relative_to(target))] = p
    if set(found) != set(payload):
        return False
    for rel, (data, mode) in payload.items():
        p = found[rel]
        if p.read_bytes() != data or (p.stat().st_mode & 0o7777) != mode:
            return False
    return True


def write_atomic(folder: Path, payload: dict[str, tuple[bytes, int]]) -> bool:
    """Make `folder` show exactly `payload` (path → (bytes, mode)); True if it changed."""
    folder.mkdir(parents=True, exist_ok=True)
    data_link = folder / DATA_DIR
    current = folder / os.readlink(data_link) if data_link.is_symlink() else None
    if current is not None and _same(current, payload):
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{time.time_ns() % 10**9}"
    new = folder / stamp
    new.mkdir(mode=0o755)
    for rel, (data, mode) in payload.items():
        path = new / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
    tmp_link = folder / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(stamp, tmp_link)
    os.replace(tmp_link, data_link)
    # User-visible entries: top-level names pointing through ..data.
    tops = {rel.split("/", 1)[0] for rel in payload}
    for top in tops:
        link = folder / top
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            os.symlink(f"{DATA_DIR}/{top}", link)
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith(".."):
            continue
        if name not in tops and entry.is_symlink():
            entry.unlink()
    if current is not None and current.name != stamp:
        shutil.rmtree(current, ignore_errors=True)
    return True
