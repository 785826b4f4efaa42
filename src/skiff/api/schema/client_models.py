"""Reading the official Python client's generated models without importing them.

The `kubernetes` package ships one pydantic model per API type, generated from
upstream's OpenAPI document: field JSON names, types, required-ness and the
upstream documentation are all there. Importing the package costs seconds, so the
model files are parsed with `ast` instead, one class body at a time and only for
the types a served kind can reach.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class ModelField:
    """One field of a generated model, as it appears on the wire."""

    json_name: str
    annotation: ast.expr
    description: str
    required: bool


@dataclass(frozen=True)
class Model:
    """One generated model class: its documentation and its fields in wire order."""

    name: str
    description: str
    fields: tuple[ModelField, ...]


@cache
def models_dir() -> Path:
    """The directory of the installed client's generated models."""
    spec = importlib.util.find_spec("kubernetes")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes client package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "client" / "models"


_IMPORT = re.compile(r"^\s*from kubernetes\.client\.models\.(\w+) import (\w+)$", re.M)


@cache
def model_files() -> dict[str, Path]:
    """Class name → the file defining it, from the models package's import list."""
    base = models_dir()
    text = (base / "__init__.py").read_text()
    return {cls: base / f"{mod}.py" for mod, cls in _IMPORT.findall(text)}


def _clean_doc(doc: str) -> str:
    # The generator appends an "Attributes:" block about its own helper maps.
    doc = doc.split("Attributes:", 1)[0]
    return " ".join(doc.split())


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _str_value(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _field(stmt: ast.AnnAssign) -> ModelField | None:
    if not isinstance(stmt.target, ast.Name):
        return None
    ann = stmt.annotation
    if isinstance(ann, ast.Subscript) and getattr(ann.value, "id", "") == "ClassVar":
        return None
    name = stmt.target.id
    description = ""
    required = stmt.value is None
    json_name = name
    value = stmt.value
    if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "Field":
        # Fields whose JSON name is a Python keyword or shadows a pydantic
        # attribute (`schema` -> `var_schema`) carry it in a plain `alias`.
        alias = _str_value(_keyword(value, "serialization_alias")) or _str_value(
            _keyword(value, "alias"))
        if alias:
            json_name = alias
        description = _str_value(_keyword(value, "description")) or ""
        has_default = _keyword(value, "default") is not None or _keyword(
            value, "default_factory"
        ) is not None
        required = not has_default
    return ModelField(json_name, ann, description, required)


def _class_source(text: str, name: str) -> str:
    start = text.find(f"\nclass {name}(")
    if start < 0:
        raise KeyError(name)
    # Only the declarations matter; the generated helper methods follow the
    # `openapi_types` table and are most of the file.
    end = text.find("    openapi_types: ClassVar", start)
    body = text[start + 1 : end if end > 0 else len(text)]
    return body.rstrip() + "\n"


@cache
def load_model(name: str) -> Model:
    """Parse the generated model `name` (e.g. `V1PodSpec`)."""
    path = model_files().get(name)
    if path is None:
        raise KeyError(name)
    tree = ast.parse(_class_source(path.read_text(), name))
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef)
    description = ""
    fields: list[ModelField] = []
    for stmt in cls.body:
        if isinstance(stmt, ast.Expr) and _str_value(stmt.value) is not None and not fields:
            description = _clean_doc(_str_value(stmt.value) or "")
        elif isinstance(stmt, ast.AnnAssign):
            f = _field(stmt)
            if f is not None:
                fields.append(f)
    return Model(name, description, tuple(fields))
