"""Descriptions of fields whose type is another schema.

The official client's models, which the built-in schemas are read from, describe
fields of scalar types but drop the description of a field that refers to another
type (`DeploymentSpec.strategy`), and `kubectl explain` prints those. The
lightkube-models package is generated from the same upstream OpenAPI document, for
the Kubernetes version skiff reports, and keeps every field's description in its
class docstrings; this module reads them from its source text without importing it.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

# `class DeploymentSpec(DictMixin):` followed by its raw docstring.
_CLASS = re.compile(r'^class (\w+)\([^)]*\):\n\s+r?"""(.*?)"""', re.M | re.S)
# `* **strategy** ``Optional[DeploymentStrategy]`` - The deployment strategy ...`
_PARAM = re.compile(r"^\s*\* \*\*(\w+)\*\* ``[^`]*`` - (.*)$")


@functools.cache
def _models_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("lightkube.models")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _parameters(docstring: str) -> dict[str, str]:
    out: dict[str, str] = {}
    current: str | None = None
    for line in docstring.splitlines():
        m = _PARAM.match(line)
        if m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current is not None and line.strip():
            out[current] += " " + line.strip()
        else:
            current = None
    return out


@functools.cache
def _module(name: str) -> dict[str, dict[str, str]]:
    base = _models_dir()
    path = base / f"{name}.py" if base is not None else None
    if path is None or not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    return {m.group(1): _parameters(m.group(2)) for m in _CLASS.finditer(text)}


def field_descriptions(component: str) -> dict[str, str]:
    """Field name → description for an upstream component name such as
    `io.k8s.api.apps.v1.DeploymentSpec`; empty when nothing is known."""
    parts = component.split(".")
    if len(parts) < 3:
        return {}
    group, version, cls = parts[-3], parts[-2], parts[-1]
    return _module(f"{group}_{version}").get(cls, {})
