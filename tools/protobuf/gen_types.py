"""Generate skiff's protobuf type table from upstream Kubernetes sources.

Run by hand when the upstream API changes; the decoder never imports this. It reads
each package's `generated.proto` (field numbers and wire types) and its Go sources
(JSON names, pointer-ness and `,inline`), because the wire format alone
cannot say which zero values are meaningful or which structs JSON flattens.

    python tools/protobuf/gen_types.py API_REPO APIMACHINERY_REPO > \
        src/skiff/api/protobuf/types.py

Both arguments are git repositories (bare or not); files are read from HEAD.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

# alias, which repo (0 = k8s.io/api, 1 = apimachinery), directory, apiVersion or None.
PACKAGES: list[tuple[str, int, str, str | None]] = [
    ("core.v1", 0, "core/v1", "v1"),
    ("apps.v1", 0, "apps/v1", "apps/v1"),
    ("batch.v1", 0, "batch/v1", "batch/v1"),
    ("policy.v1", 0, "policy/v1", "policy/v1"),
    ("autoscaling.v1", 0, "autoscaling/v1", "autoscaling/v1"),
    ("autoscaling.v2", 0, "autoscaling/v2", "autoscaling/v2"),
    ("networking.v1", 0, "networking/v1", "networking.k8s.io/v1"),
    ("rbac.v1", 0, "rbac/v1", "rbac.authorization.k8s.io/v1"),
    ("scheduling.v1", 0, "scheduling/v1", "scheduling.k8s.io/v1"),
    ("authorization.v1", 0, "authorization/v1", "authorization.k8s.io/v1"),
    ("authentication.v1", 0, "authentication/v1", "authentication.k8s.io/v1"),
    # Only for batch/v1 fields that reference it; its own kinds are not served.
    ("scheduling.v1alpha3", 0, "scheduling/v1alpha3", None),
    ("meta.v1", 1, "pkg/apis/meta/v1", None),
    ("runtime", 1, "pkg/runtime", None),
    ("intstr", 1, "pkg/util/intstr", None),
    ("resource", 1, "pkg/api/resource", None),
]

PROTO_PREFIX = {0: "k8s.io.api.", 1: "k8s.io.apimachinery."}

# Decoded by hand in the runtime package: their JSON form is not their message shape.
SPECIAL = {
    "meta.v1.Time",
    "meta.v1.MicroTime",
    "meta.v1.Duration",
    "meta.v1.FieldsV1",
    "runtime.RawExtension",
    "intstr.IntOrString",
    "resource.Quantity",
    "resource.QuantityValue",
}

SCALARS = {
    "string", "bytes", "bool", "int32", "int64", "uint32", "uint64",
    "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64", "double", "float",
}


@dataclass
class ProtoField:
    name: str
    number: int
    type: str  # scalar name, or alias-qualified message name
    repeated: bool
    map_value: str | None


@dataclass
class GoField:
    json: str
    number: int
    pointer: bool
    inline: bool


def git_show(repo: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, "show", f"HEAD:{path}"], check=True, capture_output=True, text=True
    ).stdout


def git_ls(repo: str, directory: str) -> list[str]:
    out = subprocess.run(
        ["git", "-C", repo, "ls-tree", "--name-only", f"HEAD:{directory}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return [n for n in out.split() if n.endswith(".go") and not n.endswith("_test.go")]


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


FIELD_RE = re.compile(
    r"^\s*(?:(optional|repeated)\s+)?(map<\s*(\S+?)\s*,\s*(\S+?)\s*>|\S+)\s+(\w+)\s*=\s*(\d+)\s*;"
)


def resolve(type_name: str, alias: str, prefix_of: dict[str, str]) -> str:
    if type_name in SCALARS:
        return type_name
    if type_name.startswith("."):
        pkg, _, msg = type_name[1:].rpartition(".")
        return f"{prefix_of[pkg]}.{msg}"
    return f"{alias}.{type_name}"


def parse_proto(text: str, alias: str, prefix_of: dict[str, str]) -> dict[str, list[ProtoField]]:
    messages: dict[str, list[ProtoField]] = {}
    current: list[ProtoField] | None = None
    for line in strip_comments(text).splitlines():
        m = re.match(r"^\s*message\s+(\w+)\s*\{", line)
        if m:
            if current is not None:
                raise SystemExit(f"nested message in {alias}: {line}")
            current = messages.setdefault(m.group(1), [])
            continue
        if re.match(r"^\s*}", line):
            current = None
            continue
        if current is None:
            continue
        f = FIELD_RE.match(line)
        if not f:
            if line.strip():
                raise SystemExit(f"unparsed proto line in {alias}: {line!r}")
            continue
        label, typ, key, value, name, number = f.groups()
        if key is not None:
            if key != "string":
                raise SystemExit(f"map key {key} in {alias}")
            current.append(
                ProtoField(name, int(number), "map", False, resolve(value, alias, prefix_of))
            )
        else:
            resolved = resolve(typ, alias, prefix_of)
            current.append(ProtoField(name, int(number), resolved, label == "repeated", None))
    return messages


def parse_go(text: str) -> tuple[dict[str, dict[str, GoField]], set[str]]:
    """Struct fields keyed by protobuf name, plus the names of `type X []Y` slices."""
    structs: dict[str, dict[str, GoField]] = {}
    slices = set(re.findall(r"^type (\w+) \[\]", text, flags=re.M))
    for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, flags=re.M | re.S):
        fields: dict[str, GoField] = {}
        for line in m.group(2).splitlines():
            t = re.match(r"^\s*([^`/]+?)\s*`([^`]*)`", line)
            if not t:
                continue
            pb = re.search(r'protobuf:"([^"]*)"', t.group(2))
            if not pb or pb.group(1) == "-":
                continue
            js = re.search(r'json:"([^"]*)"', t.group(2))
            jparts = (js.group(1) if js else "").split(",")
            tokens = t.group(1).split()
            gotype = tokens[-1]
            pname = re.search(r"name=(\w+)", pb.group(1))
            embedded = len(tokens) == 1
            if pname is not None:
                key = pname.group(1)
            elif embedded:
                # An unnamed tag on an embedded struct: go-to-protobuf lower-cases the type.
                base = gotype.lstrip("*").rpartition(".")[2]
                key = base[0].lower() + base[1:]
            else:
                raise SystemExit(f"no protobuf name: {line}")
            fields[key] = GoField(
                json=jparts[0],
                number=int(pb.group(1).split(",")[1]),
                pointer=gotype.startswith("*"),
                # encoding/json flattens embedded structs that carry no JSON name.
                inline="inline" in jparts[1:] or (embedded and not jparts[0]),
            )
        structs[m.group(1)] = fields
    return structs, slices


def main() -> None:
    repos = sys.argv[1:3]
    prefix_of = {
        PROTO_PREFIX[r] + d.replace("/", "."): a for a, r, d, _ in PACKAGES
    }
    protos: dict[str, list[ProtoField]] = {}
    gofields: dict[str, dict[str, GoField]] = {}
    lists: set[str] = set()
    kinds: dict[str, str] = {}
    for alias, r, d, gv in PACKAGES:
        msgs = parse_proto(git_show(repos[r], f"{d}/generated.proto"), alias, prefix_of)
        gotext = "\n".join(git_show(repos[r], f"{d}/{n}") for n in git_ls(repos[r], d))
        structs, slices = parse_go(gotext)
        for name, fields in msgs.items():
            full = f"{alias}.{name}"
            if name not in structs and name not in slices and full not in SPECIAL:
                print(f"skipping {full}: no Go struct", file=sys.stderr)
                continue
            protos[full] = fields
            gofields[full] = structs.get(name, {})
            if name in slices:
                lists.add(full)
            top = fields and fields[0].name == "metadata" and fields[0].number == 1
            if gv is not None and top and fields[0].type == "meta.v1.ObjectMeta":
                kinds[f"{gv}/{name}"] = full
    reachable: set[str] = set()
    todo = list(kinds.values())
    while todo:
        t = todo.pop()
        if t in reachable or t in SPECIAL:
            continue
        reachable.add(t)
        for f in protos[t]:
            for ref in (f.type, f.map_value):
                if ref and ref not in SCALARS and ref != "map":
                    todo.append(ref)
    out = [
        '"""Protobuf field table for the Kubernetes types skiff decodes.',
        "",
        "Generated by tools/protobuf/gen_types.py from upstream's generated.proto and Go",
        "sources; do not edit by hand. Each message maps field number to",
        "(json name, type, flags): type is a scalar name, `@<message>`, or",
        "`map:<value type>`; flags hold r (repeated), p (Go pointer: presence matters)",
        "and i (JSON inlines the struct).",
        '"""',
        "",
        "# ruff: noqa: E501",
        "",
        "MESSAGES: dict[str, dict[int, tuple[str, str, str]]] = {",
    ]
    for name in sorted(reachable):
        out.append(f"    {name!r}: {{")
        for f in protos[name]:
            g = gofields[name].get(f.name)
            if g is None and name not in lists:
                raise SystemExit(f"no Go field for {name}.{f.name}")
            if g is not None and g.number != f.number:
                raise SystemExit(f"{name}.{f.name}: proto says {f.number}, Go tag {g.number}")
            flags = ""
            if f.repeated:
                flags += "r"
            if g and g.pointer:
                flags += "p"
            if g and g.inline:
                flags += "i"
            jname = g.json if g and g.json else f.name
            if f.type == "map":
                typ = "map:" + (f.map_value if f.map_value in SCALARS else f"@{f.map_value}")
            elif f.type in SCALARS:
                typ = f.type
            else:
                typ = f"@{f.type}"
            out.append(f"        {f.number}: ({jname!r}, {typ!r}, {flags!r}),")
        out.append("    },")
    out.append("}")
    out.append("")
    out.append("# Messages whose Go type is a named slice: JSON shows them as a bare list.")
    out.append("LIST_WRAPPERS: frozenset[str] = frozenset({")
    out.extend(f"    {n!r}," for n in sorted(lists & reachable))
    out.append("})")
    out.append("")
    out.append("# apiVersion/kind -> message, for every object kind with ObjectMeta.")
    out.append("KINDS: dict[str, str] = {")
    out.extend(f"    {k!r}: {v!r}," for k, v in sorted(kinds.items()) if v in reachable)
    out.append("}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
