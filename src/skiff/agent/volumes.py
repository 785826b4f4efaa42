"""The pod's volumes on the host: set up before containers start, torn down after.

Every volume is a folder under `<state>/pods/<uid>/volumes/<plugin>/<name>` that the
runtime binds into containers at their mountPath (hostPath volumes are the host
path itself). emptyDir with medium Memory is a tmpfs mounted there; configMap,
secret, downwardAPI and projected volumes are written with the atomic writer and
rewritten when their sources change (`refresh`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from skiff.agent.atomic_writer import write_atomic
from skiff.agent.env import field_value, resource_value
from skiff.api.quantity import int_value

Obj = dict[str, Any]
Fetch = Callable[[str, str, str], Awaitable[Obj | None]]
TokenFetch = Callable[[str, str, Obj], Awaitable[str]]

DEFAULT_MODE = 0o644

PLUGINS = {
    "emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret", "projected": "kubernetes.io~projected",
    "downwardAPI": "kubernetes.io~downward-api",
}
# Volume sources the agent cannot serve (the storage work adds what is needed).
SOURCE_KEYS = ("emptyDir", "hostPath", "configMap", "secret", "projected", "downwardAPI",
               "persistentVolumeClaim", "ephemeral", "nfs", "iscsi", "csi", "image",
               "gcePersistentDisk", "awsElasticBlockStore", "azureDisk", "azureFile",
               "cephfs", "cinder", "fc", "flexVolume", "flocker", "gitRepo", "glusterfs",
               "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO",
               "storageos", "vsphereVolume")


class MountError(Exception):
    """A volume could not be set up (FailedMount)."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(message)
        self.volume = volume
        self.message = message


def source_of(volume: Obj) -> str:
    """The volume's source kind (emptyDir, hostPath, …)."""
    for key in SOURCE_KEYS:
        if key in volume:
            return key
    return ""


def _mode(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


def _is_mount(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.path.ismount(path)
    return False


class VolumeManager:
    """Sets up, refreshes and removes the volumes of this node's pods."""

    def __init__(self, state_dir: Path, fetch: Fetch, token: TokenFetch,
                 allocatable: Callable[[], dict[str, str]]) -> None:
        self.pods_dir = state_dir / "pods"
        self.fetch = fetch
        self.token = token
        self.allocatable = allocatable

    def pod_dir(self, uid: str) -> Path:
        """The pod's folder on the host."""
        return self.pods_dir / uid

    def volume_path(self, pod: Obj, volume: Obj) -> Path:
        """Where the volume's content lives on the host."""
        uid = pod["metadata"]["uid"]
        kind = source_of(volume)
        if kind == "hostPath":
            return Path((volume.get("hostPath") or {}).get("path") or "/")
        return self.pod_dir(uid) / "volumes" / PLUGINS.get(kind, kind) / volume["name"]

    async def setup(self, pod: Obj) -> None:
        """Make every volume of the pod ready (idempotent); raises MountError."""
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            await self._setup_one(pod, volume, refresh=False)

    async def refresh(self, pod: Obj) -> list[str]:
        """Rewrite configMap/secret/projected/downwardAPI volumes whose data changed."""
        changed = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if source_of(volume) in ("configMap", "secret", "projected", "downwardAPI"):
                with contextlib.suppress(MountError):
                    if await self._setup_one(pod, volume, refresh=True):
                        changed.append(volume["name"])
        return changed

    async def _setup_one(self, pod: Obj, volume: Obj, refresh: bool) -> bool:
        name = volume.get("name", "")
        kind = source_of(volume)
        path = self.volume_path(pod, volume)
        if kind == "emptyDir":
            if not refresh:
                await asyncio.to_thread(self._empty_dir, path, volume["emptyDir"] or {})
            return False
        if kind == "hostPath":
            if not refresh:
                await asyncio.to_thread(self._host_path, name, volume["hostPath"] or {})
            return False
        if kind in ("configMap", "secret"):
            payload = await self._object_payload(pod, name, kind, volume[kind] or {})
        elif kind == "downwardAPI":
            src = volume["downwardAPI"] or {}
            payload = self._downward_payload(pod, src.get("items") or [],
                                             _mode(src.get("defaultMode"), DEFAULT_MODE))
        elif kind == "projected":
            payload = await self._projected_payload(pod, name, volume["projected"] or {})
        elif kind:
            raise MountError(name, f"the node agent has no volume plugin for {kind} volumes")
        else:
            raise MountError(name, "the volume has no source the node agent knows")
        if payload is None:
            return False
        return await asyncio.to_thread(write_atomic, path, payload)

    # -- emptyDir and hostPath ------------------------------------------------------------

    def _empty_dir(self, path: Path, src: Obj) -> None:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777)
        if src.get("medium") == "Memory" and not _is_mount(path):
            limit = src.get("sizeLimit")
            size = int_value(limit) if limit else int_value(
                self.allocatable().get("memory") or "64Mi")
            result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777",
                                     "tmpfs", str(path)], capture_output=True, text=True)
            if result.returncode != 0:
                raise MountError(path.name, f"mount tmpfs failed: {result.stderr.strip()}")

    @staticmethod
    def _host_path(name: str, src: Obj) -> None:
        path = src.get("path") or ""
        kind = src.get("type") or ""
        p = Path(path)
        if kind == "DirectoryOrCreate":
            if not p.exists():
                p.mkdir(mode=0o755, parents=True)
                return
            kind = "Directory"
        if kind == "FileOrCreate":
            if not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch(mode=0o644)
                return
            kind = "File"
        if not kind:
            return
        try:
            st = os.stat(path)
        except OSError:
            raise MountError(name, f"hostPath type check failed: {path} is not a "
                                   f"{_kind_word(kind)}") from None
        checks = {"Directory": stat.S_ISDIR, "File": stat.S_ISREG, "Socket": stat.S_ISSOCK,
                  "CharDevice": stat.S_ISCHR, "BlockDevice": stat.S_ISBLK}
        check = checks.get(kind)
        if check is not None and not check(st.st_mode):
            raise MountError(name, f"hostPath type check failed: {path} is not a "
                                   f"{_kind_word(kind)}")

    # -- objects and the downward API -----------------------------------------------------

    async def _object_payload(self, pod: Obj, volume: str, kind: str,
                              src: Obj) -> dict[str, tuple[bytes, int]] | None:
        ns = pod["metadata"].get("namespace", "")
        obj_name = src.get("name") if kind == "configMap" else src.get("secretName")
        obj_name = obj_name or ""
        label = "ConfigMap" if kind == "configMap" else "Secret"
        obj = await self.fetch(label, ns, obj_name)
        optional = bool(src.get("optional"))
        default_mode = _mode(src.get("defaultMode"), DEFAULT_MODE)
        if obj is None:
            if optional:
                return {}
            raise MountError(volume, f'{kind.lower()} "{obj_name}" not found')
        data = _object_data(label, obj)
        return _select_items(volume, kind, data, src.get("items"), default_mode, optional)

    def _downward_payload(self, pod: Obj, items: list[Obj],
                          default_mode: int) -> dict[str, tuple[bytes, int]]:
        out = {}
        for item in items:
            if item.get("fieldRef"):
                value = field_value(pod, item["fieldRef"].get("fieldPath", ""))
            elif item.get("resourceFieldRef"):
                ref = item["resourceFieldRef"]
                value = resource_value(pod, ref.get("containerName", ""), ref, self.allocatable())
            else:
                continue
            out[item.get("path", "")] = (value.encode(), _mode(item.get("mode"), default_mode))
        return out

    async def _projected_payload(self, pod: Obj, volume: str,
                                 src: Obj) -> dict[str, tuple[bytes, int]]:
        default_mode = _mode(src.get("defaultMode"), DEFAULT_MODE)
        out: dict[str, tuple[bytes, int]] = {}
        ns = pod["metadata"].get("namespace", "")
        for source in src.get("sources") or []:
            if source.get("configMap") is not None or source.get("secret") is not None:
                kind = "configMap" if source.get("configMap") is not None else "secret"
                s = dict(source[kind])
                if kind == "secret":
                    s["secretName"] = s.get("name")
                s["defaultMode"] = default_mode
                part = await self._object_payload(pod, volume, kind, s)
                out.update(part or {})
            elif source.get("downwardAPI") is not None:
                out.update(self._downward_payload(pod, source["downwardAPI"].get("items") or [],
                                                  default_mode))
            elif source.get("serviceAccountToken") is not None:
                sat = source["serviceAccountToken"]
                sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
                try:
                    token = await self.token(ns, sa, {
                        "audiences": [sat["audience"]] if sat.get("audience") else [],
                        "expirationSeconds": int(sat.get("expirationSeconds") or 3600),
                        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                           "name": pod["metadata"]["name"],
                                           "uid": pod["metadata"]["uid"]}})
                except Exception as exc:  # noqa: BLE001 - reported as the mount failure
                    raise MountError(volume, f"failed to fetch token: {exc}") from None
                out[sat.get("path") or "token"] = (token.encode(), _mode(None, default_mode))
            elif source.get("clusterTrustBundle") is not None:
                raise MountError(volume, "clusterTrustBundle projections are not supported")
        return out

    # -- teardown -------------------------------------------------------------------------

    async def teardown(self, uid: str) -> None:
        """Unmount and remove everything the pod had on the host."""
        await asyncio.to_thread(self._teardown, self.pod_dir(uid))

    @staticmethod
    def _teardown(pod_dir: Path) -> None:
        if not pod_dir.exists():
            return
        vols = pod_dir / "volumes"
        if vols.exists():
            for plugin in vols.iterdir():
                for vol in plugin.iterdir():
                    if _is_mount(vol):
                        subprocess.run(["umount", "-l", str(vol)], capture_output=True)
        shutil.rmtree(pod_dir, ignore_errors=True)

    def known_pods(self) -> list[str]:
        """Uids of pods that have a folder here (for cleanup after a restart)."""
        if not self.pods_dir.exists():
            return []
        return [p.name for p in self.pods_dir.iterdir() if p.is_dir()]


def _kind_word(kind: str) -> str:
    return {"Directory": "directory", "File": "file", "Socket": "socket",
            "CharDevice": "character device", "BlockDevice": "block device"}.get(kind, kind)


def _object_data(label: str, obj: Obj) -> dict[str, bytes]:
    if label == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    for k, v in (obj.get("binaryData") or {}).items():
        data[k] = base64.b64decode(v)
    return data


def _select_items(volume: str, kind: str, data: dict[str, bytes], items: Any, default_mode: int,
                  optional: bool) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            what = "config" if kind == "configMap" else "secret"
            raise MountError(volume, f"{kind.lower()} references non-existent {what} key: "
                                     f"{key}")
        out[item.get("path") or key] = (data[key], _mode(item.get("mode"), default_mode))
    return out
