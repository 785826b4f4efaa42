"""A StatefulSet pod's stable identity: name, ordinal, labels, hostname and claims."""

from __future__ import annotations

import re
from typing import Any

from skiff.api import meta as m
from skiff.controllers.pod_template import pod_from_template
from skiff.controllers.revisions import POD_REVISION_LABEL

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"

_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def parent_and_ordinal(pod: Obj) -> tuple[str, int] | None:
    """`web-2` → (`web`, 2); None for a name without an ordinal."""
    match = _ORDINAL.match(m.name_of(pod))
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def pod_name(sts: Obj, ordinal: int) -> str:
    """`<set>-<ordinal>`."""
    return f"{m.name_of(sts)}-{ordinal}"


def claim_name(template_name: str, pod: str) -> str:
    """The PVC a pod uses for one volumeClaimTemplate: `<template>-<pod>`."""
    return f"{template_name}-{pod}"


def claim_templates(sts: Obj) -> list[Obj]:
    """spec.volumeClaimTemplates."""
    return list((sts.get("spec") or {}).get("volumeClaimTemplates") or [])


def identity_labels(sts: Obj, ordinal: int) -> dict[str, str]:
    """The labels that make a pod member `ordinal` of the set."""
    return {POD_NAME_LABEL: pod_name(sts, ordinal), POD_INDEX_LABEL: str(ordinal)}


def identity_matches(sts: Obj, pod: Obj) -> bool:
    """Whether the pod carries its member labels (upstream's identityMatches)."""
    po = parent_and_ordinal(pod)
    if po is None or po[0] != m.name_of(sts) or m.namespace_of(pod) != m.namespace_of(sts):
        return False
    labels = m.labels_of(pod)
    return all(labels.get(k) == v for k, v in identity_labels(sts, po[1]).items())


def revision_of(pod: Obj) -> str:
    """The controller-revision-hash label (the name of the pod's revision)."""
    return m.labels_of(pod).get(POD_REVISION_LABEL, "")


def new_pod(sts: Obj, template: Obj, ordinal: int, revision: str) -> Obj:
    """Pod `ordinal` of the set, from `template` (the template of `revision`)."""
    name = pod_name(sts, ordinal)
    pod = pod_from_template(template, sts, name=name)
    pod["metadata"]["labels"].update(identity_labels(sts, ordinal))
    pod["metadata"]["labels"][POD_REVISION_LABEL] = revision
    spec = pod["spec"]
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    claims = claim_templates(sts)
    if claims:
        names = {(c.get("metadata") or {}).get("name", "") for c in claims}
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        for c in claims:
            cname = (c.get("metadata") or {}).get("name", "")
            volumes.append({"name": cname, "persistentVolumeClaim": {
                "claimName": claim_name(cname, name)}})
        spec["volumes"] = volumes
    return pod


def new_claim(sts: Obj, template: Obj, pod: str) -> Obj:
    """The PVC for one claim template of pod `pod`, labelled with the set's selector."""
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels.update(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    md: Obj = {"name": claim_name(tmeta.get("name", ""), pod),
               "namespace": m.namespace_of(sts), "labels": labels}
    if tmeta.get("annotations"):
        md["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md,
            "spec": dict(template.get("spec") or {})}
