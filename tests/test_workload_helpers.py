"""Unit tests of the pure helpers behind the Job, StatefulSet and DaemonSet controllers."""

from __future__ import annotations

from typing import Any

from skiff.controllers import daemonset_nodes as dn
from skiff.controllers import job_failure_policy as pfp
from skiff.controllers import job_status as js
from skiff.controllers import revisions as rev
from skiff.controllers import statefulset_pods as sp
from skiff.controllers.daemonset import scaled
from skiff.controllers.job_backoff import BackoffRecord, next_record
from skiff.controllers.job_indexes import format_indexes, parse_indexes
from skiff.scheduler.terms import (
    first_untolerated,
    node_selector_matches,
    pod_matches_node,
    tolerates,
)

Obj = dict[str, Any]


def test_indexes_round_trip() -> None:
    assert format_indexes({1, 3, 4, 5, 7}) == "1,3-5,7"
    assert format_indexes([]) == ""
    assert parse_indexes("1,3-5,7", 6) == {1, 3, 4, 5}
    assert parse_indexes("x,2", 5) == {2}


def failed_pod(code: int, container: str = "main", conditions: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "conditions": conditions or [],
                       "containerStatuses": [{"name": container, "state": {
                           "terminated": {"exitCode": code}}}]}}


def test_pod_failure_policy_rules_in_order() -> None:
    policy = {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                  "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
    ]}
    disrupted = failed_pod(42, conditions=[{"type": "DisruptionTarget", "status": "True"}])
    assert pfp.evaluate(policy, disrupted) == pfp.Verdict(False, "Ignore")
    verdict = pfp.evaluate(policy, failed_pod(42))
    assert verdict.action == "FailJob"
    assert verdict.message == ("Container main for pod ns/p failed with exit code 42 matching "
                               "FailJob rule at index 1")
    assert pfp.evaluate(policy, failed_pod(7)).action == "Count"
    assert pfp.evaluate(policy, failed_pod(1)) == pfp.Verdict()
    assert pfp.evaluate(None, failed_pod(42)) == pfp.Verdict()


def test_job_conditions_and_failure_accounting() -> None:
    job: Obj = {"spec": {}, "status": {}}
    assert not js.ensure_condition(job, "Suspended", "False", "JobResumed", "Job resumed")
    assert js.ensure_condition(job, "Suspended", "True", "JobSuspended", "Job suspended")
    assert not js.ensure_condition(job, "Suspended", "True", "JobSuspended", "Job suspended")
    assert js.ensure_condition(job, "Suspended", "False", "JobResumed", "Job resumed")
    assert job["status"]["conditions"][0]["status"] == "False"
    deleting = {"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
                "status": {"phase": "Running"}}
    assert js.is_pod_failed(deleting, job)
    job["spec"]["podReplacementPolicy"] = "Failed"
    assert not js.is_pod_failed(deleting, job)


def test_backoff_doubles_and_resets() -> None:
    def pod(phase: str, at: str) -> Obj:
        return {"metadata": {"creationTimestamp": at}, "status": {"phase": phase}}
    rec = next_record(BackoffRecord(), [], [pod("Failed", "2024-01-01T00:00:00Z")])
    rec = next_record(rec, [], [pod("Failed", "2024-01-01T00:00:10Z")])
    assert rec.failures == 2
    assert rec.remaining(rec.last_failure) == 20.0  # type: ignore[arg-type]
    later = next_record(rec, [pod("Succeeded", "2024-01-01T00:01:00Z")], [])
    assert later == BackoffRecord()


def test_revision_hash_and_data() -> None:
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    h = rev.template_hash(template)
    assert h == rev.template_hash({"spec": template["spec"], "metadata": template["metadata"]})
    assert h != rev.template_hash(template, 1)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    owner = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1",
                          "annotations": {"a": "b"}},
             "apiVersion": "apps/v1", "kind": "StatefulSet"}
    r = rev.new_revision(owner, template, 3, None)
    assert r["metadata"]["name"] == f"web-{h}"
    assert r["metadata"]["labels"] == {"app": "web", rev.HASH_LABEL: h}
    assert r["metadata"]["annotations"] == {"a": "b"}
    assert r["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev.revision_template(r) == template
    assert r["revision"] == 3


def test_statefulset_identity() -> None:
    sts = {"metadata": {"name": "db", "namespace": "ns", "uid": "u"},
           "apiVersion": "apps/v1", "kind": "StatefulSet",
           "spec": {"serviceName": "dbs", "volumeClaimTemplates": [{"metadata": {"name": "d"}}]}}
    template = {"metadata": {"labels": {"app": "db"}},
                "spec": {"volumes": [{"name": "d", "emptyDir": {}}], "containers": []}}
    pod = sp.new_pod(sts, template, 4, "db-abc")
    assert pod["metadata"]["name"] == "db-4"
    assert sp.parent_and_ordinal(pod) == ("db", 4)
    assert sp.identity_matches(sts, pod)
    assert pod["spec"]["hostname"] == "db-4" and pod["spec"]["subdomain"] == "dbs"
    assert pod["spec"]["volumes"] == [{"name": "d", "persistentVolumeClaim": {
        "claimName": "d-db-4"}}]
    assert sp.revision_of(pod) == "db-abc"
    pod["metadata"]["labels"].pop(sp.POD_NAME_LABEL)
    assert not sp.identity_matches(sts, pod)


def node(name: str, labels: dict[str, str] | None = None,
         taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or []}}


def test_node_selector_terms() -> None:
    n = node("n1", {"zone": "a", "cpus": "8"})
    sel = {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
        {"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["4"]}],
         "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
    ]}
    labels = n["metadata"]["labels"]
    assert node_selector_matches(sel, labels, "n1")
    assert not node_selector_matches({"nodeSelectorTerms": [{}]}, labels, "n1")
    assert pod_matches_node({"nodeSelector": {"zone": "a"}}, labels, "n1")
    assert not pod_matches_node({"nodeSelector": {"zone": "b"}}, labels, "n1")


def test_tolerations() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates({"key": "k", "operator": "Equal", "value": "v"}, taint)
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert first_untolerated([{"key": "p", "effect": "PreferNoSchedule"}, taint], [],
                             ("NoSchedule",)) == taint


def test_daemonset_eligibility() -> None:
    ds = {"spec": {"template": {"spec": {"nodeSelector": {"role": "edge"}}}}}
    spec = dn.daemon_pod_spec(ds)
    assert {t["key"] for t in spec["tolerations"]} >= {"node.kubernetes.io/unschedulable"}
    assert dn.should_run(spec, node("a", {"role": "edge"})) == (True, True)
    assert dn.should_run(spec, node("b")) == (False, False)
    cordoned = node("c", {"role": "edge"}, [{"key": "node.kubernetes.io/unschedulable",
                                             "effect": "NoSchedule"}])
    assert dn.should_run(spec, cordoned) == (True, True)
    no_new = node("d", {"role": "edge"}, [{"key": "x", "effect": "NoSchedule"}])
    assert dn.should_run(spec, no_new) == (False, True)
    evict = node("e", {"role": "edge"}, [{"key": "x", "effect": "NoExecute"}])
    assert dn.should_run(spec, evict) == (False, False)
    pod_spec: Obj = {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "role", "operator": "Exists"}]}]}}}}
    dn.pin_to_node(pod_spec, "a")
    assert dn.target_node({"spec": pod_spec}) == "a"
    assert scaled("25%", 10) == 3 and scaled(2, 10) == 2 and scaled("0%", 10) == 0
