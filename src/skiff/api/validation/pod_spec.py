"""Validation of a PodSpec, shared by Pods and every kind with a pod template."""

from __future__ import annotations

import re
from typing import Any

from skiff.api.validation import field
from skiff.api.validation.checks import (
    MAX_INT32,
    dicts,
    enum,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    in_range,
    name_check,
    nonnegative,
    positive,
)
from skiff.api.validation.field import Cause
from skiff.api.validation.metadata import validate_labels
from skiff.api.validation.names import dns1123_label, dns1123_subdomain
from skiff.api.validation.ports import iana_svc_name, validate_port_or_name
from skiff.api.validation.quantities import validate_requirements

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)
ENV_VALUE_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
FIELD_REF_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
    "status.podIPs",
)
_FIELD_REF_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['[^']+'\]")
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")

_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
ENV_NAME_ERROR = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', "
    "'-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
    "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)


def env_var_name(value: str) -> list[str]:
    """Errors for an environment variable (or envFrom prefix) name."""
    return [] if _ENV_NAME.fullmatch(value) else [ENV_NAME_ERROR]


def _validate_volumes(volumes: list[Any], path: str, errs: list[Cause]) -> set[str]:
    names: set[str] = set()
    for i, vol in dicts(volumes, path, errs):
        p = field.index(path, i)
        name = get_str(vol, "name", p, errs)
        name_check(name, field.child(p, "name"), errs, dns1123_label)
        if name in names:
            errs.append(field.duplicate(field.child(p, "name"), name))
        elif name:
            names.add(name)
        sources = [s for s in VOLUME_SOURCES if vol.get(s) is not None]
        if not sources:
            errs.append(field.required(p, "must specify a volume type"))
        for extra in sources[1:]:
            errs.append(field.forbidden(field.child(p, extra),
                                        "may not specify more than 1 volume type"))
        for src in sources[:1]:
            _validate_volume_source(src, vol, p, errs)
    return names


def _validate_volume_source(src: str, vol: dict[str, Any], path: str, errs: list[Cause]) -> None:
    body = get_dict(vol, src, path, errs)
    p = field.child(path, src)
    required_key = {
        "hostPath": "path", "secret": None, "persistentVolumeClaim": "claimName",
        "nfs": "path", "csi": "driver",
    }.get(src)
    if required_key and not get_str(body, required_key, p, errs):
        errs.append(field.required(field.child(p, required_key)))
    if src == "secret" and "secretName" in body:
        get_str(body, "secretName", p, errs)
    for mode_key in ("defaultMode",):
        mode = get_int(body, mode_key, p, errs)
        if mode is not None and not 0 <= mode <= 0o777:
            errs.append(field.invalid(
                field.child(p, mode_key), mode,
                "must be a number between 0 and 0777 (octal), both inclusive"))


def _validate_ports(ports: list[Any], path: str, host_network: bool, errs: list[Cause],
                    host_ports: set[str]) -> None:
    names: set[str] = set()
    for i, port in dicts(ports, path, errs):
        p = field.index(path, i)
        name = get_str(port, "name", p, errs)
        if name:
            for msg in iana_svc_name(name):
                errs.append(field.invalid(field.child(p, "name"), name, msg))
            if name in names:
                errs.append(field.duplicate(field.child(p, "name"), name))
            names.add(name)
        # A zero port is the Go zero value, i.e. unset: upstream reports it as required.
        raw_port = port.get("containerPort")
        if raw_port is None or (raw_port == 0 and not isinstance(raw_port, bool)):
            errs.append(field.required(field.child(p, "containerPort")))
            cport = None
        else:
            cport = in_range(port, "containerPort", p, errs, 1, 65535)
        hport = get_int(port, "hostPort", p, errs)
        if hport is not None and hport != 0 and not 1 <= hport <= 65535:
            errs.append(field.invalid(field.child(p, "hostPort"), hport,
                                      "must be between 1 and 65535, inclusive"))
        if host_network and hport and cport is not None and hport != cport:
            errs.append(field.invalid(field.child(p, "hostPort"), hport,
                                      "must match `containerPort` when `hostNetwork` is true"))
        protocol = enum(port, "protocol", p, errs, PROTOCOLS) or "TCP"
        if hport:
            key = f"{hport}/{protocol}"
            if key in host_ports:
                errs.append(field.duplicate(field.child(p, "hostPort"), key))
            host_ports.add(key)


def _validate_env(env: list[Any], path: str, errs: list[Cause]) -> None:
    for i, var in dicts(env, path, errs):
        p = field.index(path, i)
        name = get_str(var, "name", p, errs)
        name_check(name, field.child(p, "name"), errs, env_var_name)
        value_from = get_dict(var, "valueFrom", p, errs)
        if "valueFrom" not in var or not isinstance(var.get("valueFrom"), dict):
            continue
        vp = field.child(p, "valueFrom")
        sources = [s for s in ENV_VALUE_SOURCES if value_from.get(s) is not None]
        if not sources:
            errs.append(field.invalid(vp, "", "must specify one of: `fieldRef`, "
                                      "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
        elif len(sources) > 1:
            errs.append(field.invalid(vp, "", "may not have more than one field specified at "
                                      "a time"))
        if var.get("value"):
            errs.append(field.invalid(vp, "", "may not be specified when `value` is not empty"))
        for src in sources[:1]:
            sp = field.child(vp, src)
            body = get_dict(value_from, src, vp, errs)
            if src in ("configMapKeyRef", "secretKeyRef") and not get_str(body, "key", sp, errs):
                errs.append(field.required(field.child(sp, "key")))
            if src == "fieldRef":
                fp = get_str(body, "fieldPath", sp, errs)
                if not fp:
                    errs.append(field.required(field.child(sp, "fieldPath")))
                elif fp not in FIELD_REF_PATHS and not _FIELD_REF_SUBSCRIPT.fullmatch(fp):
                    errs.append(field.not_supported(field.child(sp, "fieldPath"), fp,
                                                    FIELD_REF_PATHS))
            if src == "resourceFieldRef" and not get_str(body, "resource", sp, errs):
                errs.append(field.required(field.child(sp, "resource")))


def _validate_env_from(env_from: list[Any], path: str, errs: list[Cause]) -> None:
    for i, src in dicts(env_from, path, errs):
        p = field.index(path, i)
        prefix = get_str(src, "prefix", p, errs)
        if prefix:
            name_check(prefix, field.child(p, "prefix"), errs, env_var_name)
        kinds = [k for k in ("configMapRef", "secretRef") if src.get(k) is not None]
        if len(kinds) != 1:
            errs.append(field.invalid(p, "", "must specify one of: `configMapRef` or "
                                      "`secretRef`"))


def _validate_mounts(mounts: list[Any], path: str, volumes: set[str], errs: list[Cause]) -> None:
    paths: set[str] = set()
    for i, m in dicts(mounts, path, errs):
        p = field.index(path, i)
        name = get_str(m, "name", p, errs)
        if not name:
            errs.append(field.required(field.child(p, "name")))
        elif name not in volumes:
            errs.append(field.not_found(field.child(p, "name"), name))
        mount_path = get_str(m, "mountPath", p, errs)
        if not mount_path:
            errs.append(field.required(field.child(p, "mountPath")))
        elif mount_path in paths:
            errs.append(field.invalid(field.child(p, "mountPath"), mount_path, "must be unique"))
        paths.add(mount_path)
        sub = get_str(m, "subPath", p, errs)
        if sub.startswith("/"):
            errs.append(field.invalid(field.child(p, "subPath"), sub,
                                      "must be a relative path"))
        elif ".." in sub.split("/"):
            errs.append(field.invalid(field.child(p, "subPath"), sub, "must not contain '..'"))


def _validate_handler(body: dict[str, Any], path: str, errs: list[Cause], kinds: tuple[str, ...],
                      what: str) -> None:
    present = [k for k in kinds if body.get(k) is not None]
    if not present:
        errs.append(field.required(path, f"must specify a {what} type"))
        return
    for extra in present[1:]:
        errs.append(field.forbidden(field.child(path, extra),
                                    f"may not specify more than 1 {what} type"))
    kind = present[0]
    hp = field.child(path, kind)
    h = get_dict(body, kind, path, errs)
    if kind == "exec":
        get_list(h, "command", hp, errs)
    elif kind in ("httpGet", "tcpSocket"):
        if h.get("port") is None:
            errs.append(field.required(field.child(hp, "port")))
        else:
            errs += validate_port_or_name(h["port"], field.child(hp, "port"))
        if kind == "httpGet":
            enum(h, "scheme", hp, errs, ("HTTP", "HTTPS"))
    elif kind == "grpc":
        in_range(h, "port", hp, errs, 1, 65535)


def _validate_probe(c: dict[str, Any], name: str, path: str, errs: list[Cause]) -> None:
    probe = get_dict(c, name, path, errs)
    if c.get(name) is None or not isinstance(c.get(name), dict):
        return
    p = field.child(path, name)
    _validate_handler(probe, p, errs, PROBE_HANDLERS, "handler")
    for k in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
              "failureThreshold"):
        nonnegative(probe, k, p, errs)
    positive(probe, "terminationGracePeriodSeconds", p, errs)
    success = get_int(probe, "successThreshold", p, [])
    if name in ("livenessProbe", "startupProbe") and success is not None and success != 1:
        errs.append(field.invalid(field.child(p, "successThreshold"), success, "must be 1"))


def _validate_lifecycle(c: dict[str, Any], path: str, errs: list[Cause]) -> None:
    lc = get_dict(c, "lifecycle", path, errs)
    lp = field.child(path, "lifecycle")
    for hook in ("postStart", "preStop"):
        if isinstance(lc.get(hook), dict):
            _validate_handler(lc[hook], field.child(lp, hook), errs,
                              ("exec", "httpGet", "tcpSocket", "sleep"), "handler")


def _validate_container(c: dict[str, Any], p: str, volumes: set[str], host_network: bool,
                        host_ports: set[str], errs: list[Cause], *, init: bool) -> str:
    name = get_str(c, "name", p, errs)
    name_check(name, field.child(p, "name"), errs, dns1123_label)
    image = get_str(c, "image", p, errs)
    if not image:
        errs.append(field.required(field.child(p, "image")))
    elif image != image.strip():
        errs.append(field.invalid(field.child(p, "image"), image,
                                  "must not have leading or trailing whitespace"))
    enum(c, "imagePullPolicy", p, errs, PULL_POLICIES)
    enum(c, "terminationMessagePolicy", p, errs, MESSAGE_POLICIES)
    get_list(c, "command", p, errs)
    get_list(c, "args", p, errs)
    get_str(c, "workingDir", p, errs)
    _validate_ports(get_list(c, "ports", p, errs), field.child(p, "ports"), host_network, errs,
                    host_ports)
    _validate_env(get_list(c, "env", p, errs), field.child(p, "env"), errs)
    _validate_env_from(get_list(c, "envFrom", p, errs), field.child(p, "envFrom"), errs)
    _validate_mounts(get_list(c, "volumeMounts", p, errs), field.child(p, "volumeMounts"),
                     volumes, errs)
    errs += validate_requirements(c.get("resources"), field.child(p, "resources"))
    if init:
        enum(c, "restartPolicy", p, errs, ("Always",))
        sidecar = c.get("restartPolicy") == "Always"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if c.get(probe) is not None and not sidecar:
                errs.append(field.forbidden(field.child(p, probe),
                                            "may not be set for init containers without "
                                            "restartPolicy=Always"))
    elif c.get("restartPolicy") is not None:
        errs.append(field.forbidden(field.child(p, "restartPolicy"),
                                    "may not be set for non-init containers"))
    if not init or c.get("restartPolicy") == "Always":
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            _validate_probe(c, probe, p, errs)
    _validate_lifecycle(c, p, errs)
    get_bool(c, "stdin", p, errs)
    get_bool(c, "tty", p, errs)
    return name


def _validate_tolerations(items: list[Any], path: str, errs: list[Cause]) -> None:
    from skiff.api.validation.names import qualified_name

    for i, t in dicts(items, path, errs):
        p = field.index(path, i)
        key = get_str(t, "key", p, errs)
        if key:
            name_check(key, field.child(p, "key"), errs, qualified_name)
        op = enum(t, "operator", p, errs, TOLERATION_OPERATORS) or "Equal"
        if op == "Exists" and t.get("value"):
            errs.append(field.invalid(field.child(p, "operator"), t.get("value"),
                                      "value must be empty when `operator` is 'Exists'"))
        if not key and op != "Exists":
            errs.append(field.invalid(field.child(p, "operator"), op,
                                      "operator must be Exists when `key` is empty, which "
                                      "means \"match all values and all keys\""))
        enum(t, "effect", p, errs, TAINT_EFFECTS)
        seconds = get_int(t, "tolerationSeconds", p, errs)
        if seconds is not None and t.get("effect") != "NoExecute":
            errs.append(field.invalid(field.child(p, "effect"), t.get("effect") or "",
                                      "effect must be 'NoExecute' when `tolerationSeconds` "
                                      "is set"))


def validate_pod_spec(
    spec: Any, path: str = "spec", *, restart_policies: tuple[str, ...] = RESTART_POLICIES,
) -> list[Cause]:
    """Every check of a PodSpec; `restart_policies` narrows the choice for templates."""
    if not isinstance(spec, dict):
        if spec is None:
            return [field.required(path)]
        return [field.type_invalid(path, spec, "object")]
    errs: list[Cause] = []
    volumes = _validate_volumes(get_list(spec, "volumes", path, errs),
                                field.child(path, "volumes"), errs)
    host_network = bool(get_bool(spec, "hostNetwork", path, errs))
    host_ports: set[str] = set()
    seen: set[str] = set()
    for list_name, init in (("initContainers", True), ("containers", False)):
        lp = field.child(path, list_name)
        items = get_list(spec, list_name, path, errs)
        if not init and not items and isinstance(spec.get(list_name, []), list):
            errs.append(field.required(lp))
        for i, c in dicts(items, lp, errs):
            p = field.index(lp, i)
            name = _validate_container(c, p, volumes, host_network, host_ports, errs, init=init)
            if name and name in seen:
                errs.append(field.duplicate(field.child(p, "name"), name))
            seen.add(name)
    rp = field.child(path, "restartPolicy")
    policy = get_str(spec, "restartPolicy", path, errs)
    if policy and policy not in restart_policies:
        errs.append(field.not_supported(rp, policy, restart_policies))
    elif not policy and "restartPolicy" in spec:
        errs.append(field.required(rp))
    enum(spec, "dnsPolicy", path, errs, DNS_POLICIES)
    if isinstance(spec.get("nodeSelector"), dict):
        errs += validate_labels(spec["nodeSelector"], field.child(path, "nodeSelector"))
    else:
        get_dict(spec, "nodeSelector", path, errs)
    for key in ("serviceAccountName", "nodeName", "priorityClassName"):
        value = get_str(spec, key, path, errs)
        if value:
            name_check(value, field.child(path, key), errs, dns1123_subdomain)
    for key in ("hostname", "subdomain"):
        value = get_str(spec, key, path, errs)
        if value:
            name_check(value, field.child(path, key), errs, dns1123_label)
    in_range(spec, "activeDeadlineSeconds", path, errs, 1, MAX_INT32)
    get_int(spec, "terminationGracePeriodSeconds", path, errs)
    get_str(spec, "schedulerName", path, errs)
    _validate_tolerations(get_list(spec, "tolerations", path, errs),
                          field.child(path, "tolerations"), errs)
    for i, ref in dicts(get_list(spec, "imagePullSecrets", path, errs),
                        field.child(path, "imagePullSecrets"), errs):
        get_str(ref, "name", field.index(field.child(path, "imagePullSecrets"), i), errs)
    if spec.get("dnsPolicy") == "None":
        conf = get_dict(spec, "dnsConfig", path, errs)
        if not conf.get("nameservers"):
            errs.append(field.required(field.child(path, "dnsConfig"),
                                       "must provide `dnsConfig` when `dnsPolicy` is None"))
    return errs


def validate_pod_template(
    template: Any, path: str, *, restart_policies: tuple[str, ...] = ("Always",),
) -> list[Cause]:
    """A PodTemplateSpec inside a workload: its labels and its pod spec."""
    if not isinstance(template, dict):
        if template is None:
            return [field.required(path)]
        return [field.type_invalid(path, template, "object")]
    errs: list[Cause] = []
    mp = field.child(path, "metadata")
    meta = get_dict(template, "metadata", path, errs)
    labels = get_dict(meta, "labels", mp, errs)
    if labels:
        errs += validate_labels(labels, field.child(mp, "labels"))
    get_dict(meta, "annotations", mp, errs)
    errs += validate_pod_spec(template.get("spec"), field.child(path, "spec"),
                              restart_policies=restart_policies)
    return errs
