"""A container's environment and command line, as the kubelet computes them.

Order and precedence follow upstream: `envFrom` sources first (later sources win),
then `env` entries in order, each able to refer to the ones before it with
`$(NAME)`; `$$` escapes a dollar. `command` and `args` are expanded against the
final environment. References that cannot be resolved are left as written.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from decimal import ROUND_UP, Decimal
from typing import Any

from skiff.api.quantity import parse_quantity

Obj = dict[str, Any]
# Reads a ConfigMap or Secret by (kind, namespace, name); None when it does not exist.
Fetch = Callable[[str, str, str], Awaitable[Obj | None]]

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ConfigError(Exception):
    """The container's configuration cannot be resolved (CreateContainerConfigError)."""


def expand(text: str, env: dict[str, str]) -> str:
    """Upstream's $(VAR) expansion: `$(X)` → value if defined, `$$` → `$`."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end >= 0:
                    name = text[i + 2:end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(text[i:end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def field_value(pod: Obj, path: str) -> str:
    """A downward-API fieldRef's value for the pod."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = md.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    simple = {
        "metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
        "metadata.uid": md.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"), "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(i.get("ip", "") for i in status.get("hostIPs") or []),
        "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or []),
    }
    if path not in simple:
        raise ConfigError(f"unsupported fieldRef path {path!r}")
    return str(simple[path] or "")


def resource_value(pod: Obj, container_name: str, ref: Obj,
                   allocatable: dict[str, str]) -> str:
    """A resourceFieldRef's value: the container's limit (node allocatable if unset)."""
    resource = ref.get("resource", "")
    name = ref.get("containerName") or container_name
    container = next((c for c in (pod.get("spec") or {}).get("containers") or []
                      if c.get("name") == name), None)
    if container is None:
        container = next((c for c in (pod.get("spec") or {}).get("initContainers") or []
                          if c.get("name") == name), {})
    kind, _, res = resource.partition(".")
    values = (container.get("resources") or {}).get(kind) or {}
    raw = values.get(res)
    if raw is None and kind == "limits":
        raw = allocatable.get(res)
    if raw is None and kind == "requests":
        raw = "0"
    value = parse_quantity(str(raw or "0"))
    divisor = parse_quantity(str(ref.get("divisor") or "1"))
    if divisor == 0:
        divisor = Decimal(1)
    out = (value / divisor).to_integral_value(rounding=ROUND_UP)
    return str(int(out))


def _decode(kind: str, obj: Obj) -> dict[str, str]:
    if kind == "Secret":
        return {k: base64.b64decode(v).decode("utf-8", "replace")
                for k, v in (obj.get("data") or {}).items()}
    data = dict(obj.get("data") or {})
    for k, v in (obj.get("binaryData") or {}).items():
        data.setdefault(k, base64.b64decode(v).decode("utf-8", "replace"))
    return data


async def container_env(pod: Obj, container: Obj, fetch: Fetch,
                        allocatable: dict[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The container's environment in order, and warnings (skipped invalid names)."""
    ns = (pod.get("metadata") or {}).get("namespace", "")
    env: dict[str, str] = {}
    warnings: list[str] = []
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = src.get(key)
            if not ref:
                continue
            obj = await fetch(kind, ns, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
            invalid = []
            for k, v in _decode(kind, obj).items():
                name = prefix + k
                if not _ENV_NAME.match(name):
                    invalid.append(k)
                    continue
                env[name] = v
            if invalid:
                warnings.append(f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom "
                                f"{kind.lower()} {ns}/{ref.get('name', '')} were skipped since "
                                f"they are considered invalid environment variable names.")
    for var in container.get("env") or []:
        name = var.get("name", "")
        if "value" in var or not var.get("valueFrom"):
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        vf = var["valueFrom"]
        if vf.get("fieldRef"):
            env[name] = field_value(pod, vf["fieldRef"].get("fieldPath", ""))
        elif vf.get("resourceFieldRef"):
            env[name] = resource_value(pod, container.get("name", ""), vf["resourceFieldRef"],
                                       allocatable)
        else:
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = vf.get(key)
                if not ref:
                    continue
                obj_name = ref.get("name", "")
                obj = await fetch(kind, ns, obj_name)
                if obj is None:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f'{kind.lower()} "{obj_name}" not found')
                data = _decode(kind, obj)
                k = ref.get("key", "")
                if k not in data:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f"couldn't find key {k} in {kind} {ns}/{obj_name}")
                env[name] = data[k]
                break
    return list(env.items()), warnings


def command_line(container: Obj, env: list[tuple[str, str]]) -> list[str]:
    """command + args with $(VAR) expanded (the image's entrypoint has no say here)."""
    lookup = dict(env)
    return [expand(str(a), lookup) for a in (container.get("command") or [])] + \
        [expand(str(a), lookup) for a in (container.get("args") or [])]
