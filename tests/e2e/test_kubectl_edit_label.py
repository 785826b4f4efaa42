"""`kubectl edit` with a scripted editor, and `kubectl label` / `kubectl annotate`."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl

NS = "e2e-edit-label"


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> Iterator[str]:
    """A namespace of this module's own."""
    kubectl("create", "namespace", NS)
    yield NS
    kubectl.run("delete", "namespace", NS, "--wait=false", check=False)


def get_json(kubectl: Kubectl, *args: str) -> dict:
    """`kubectl get ARGS -o json`, decoded."""
    return json.loads(kubectl("get", *args, "-o", "json"))


def editor(tmp_path: Path, *sed: str) -> dict[str, str]:
    """Environment for `kubectl edit` whose editor runs `sed -i` with `sed` on the file.

    Every file the editor is given is also appended to `editor.log` in `tmp_path`.
    """
    script = tmp_path / "editor.sh"
    log = tmp_path / "editor.log"
    exprs = " ".join(f"-e '{e}'" for e in sed)
    script.write_text(f'#!/bin/sh\ncat "$1" >> "{log}"\necho ===== >> "{log}"\n'
                      f'sed -i {exprs} "$1"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    # kubectl keeps a copy of failed edits in TMPDIR; keep it in the test's directory.
    return {"KUBE_EDITOR": str(script), "EDITOR": str(script), "TMPDIR": str(tmp_path)}


# -- edit -------------------------------------------------------------------------


def test_edit_stores_the_change(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    kubectl("create", "configmap", "ed", "-n", ns, "--from-literal=color=blue")
    env = editor(tmp_path, "s/color: blue/color: green/", "s/^  name: ed$/  name: ed\\n"
                 "  labels:\\n    edited: \"yes\"/")
    res = kubectl.run("edit", "configmap", "ed", "-n", ns, env=env)
    assert res.stdout == "configmap/ed edited\n"
    obj = get_json(kubectl, "cm", "ed", "-n", ns, "--show-managed-fields")
    assert obj["data"] == {"color": "green"}
    assert obj["metadata"]["labels"] == {"edited": "yes"}
    managers = {e["manager"] for e in obj["metadata"].get("managedFields", [])}
    assert "kubectl-edit" in managers
    # The editor got the object as YAML, with kubectl's instructions on top.
    shown = (tmp_path / "editor.log").read_text()
    assert shown.startswith("# Please edit the object below.")
    assert "\nkind: ConfigMap\n" in shown


def test_edit_without_changes(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    kubectl("create", "configmap", "same", "-n", ns, "--from-literal=a=1")
    rv = get_json(kubectl, "cm", "same", "-n", ns)["metadata"]["resourceVersion"]
    res = kubectl.run("edit", "configmap", "same", "-n", ns,
                      env=editor(tmp_path, "s/nothing-here/never/"))
    assert res.returncode == 0
    assert res.stderr == "Edit cancelled, no changes made.\n"
    assert get_json(kubectl, "cm", "same", "-n", ns)["metadata"]["resourceVersion"] == rv


def test_edit_to_an_invalid_object_shows_the_error(
        kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    kubectl("create", "deployment", "ed-dep", "-n", ns, "--image=nginx:1.27", "--replicas=2")
    env = editor(tmp_path, "s/^  replicas: 2$/  replicas: -3/")
    res = kubectl.run("edit", "deployment", "ed-dep", "-n", ns, env=env, check=False)
    assert res.returncode == 1
    assert res.stderr.startswith('error: deployments.apps "ed-dep" is invalid\n')
    assert "error: Edit cancelled, no valid changes were saved.\n" in res.stderr
    # kubectl reopened the file with the server's validation errors on top.
    reopened = (tmp_path / "editor.log").read_text().split("=====\n")[1]
    assert ('# deployments.apps "ed-dep" was not valid:\n'
            "# * spec.replicas: Invalid value: -3: must be greater than or equal to 0\n"
            ) in reopened
    assert get_json(kubectl, "deploy", "ed-dep", "-n", ns)["spec"]["replicas"] == 2


def test_edit_immutable_field_is_refused(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    kubectl("create", "deployment", "ed-sel", "-n", ns, "--image=nginx:1.27")
    env = editor(tmp_path, "s/app: ed-sel/app: other/g")
    res = kubectl.run("edit", "deployment", "ed-sel", "-n", ns, env=env, check=False)
    assert res.returncode == 1
    reopened = (tmp_path / "editor.log").read_text().split("=====\n")[1]
    assert "# * spec.selector: Invalid value:" in reopened
    assert "field is immutable" in reopened
    obj = get_json(kubectl, "deploy", "ed-sel", "-n", ns)
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "ed-sel"}}


# -- label ------------------------------------------------------------------------


def labels_of(kubectl: Kubectl, ns: str, name: str) -> dict[str, str]:
    """The labels of config map `name`."""
    return get_json(kubectl, "cm", name, "-n", ns)["metadata"].get("labels") or {}


def test_label_add_overwrite_remove(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "lbl", "-n", ns, "--from-literal=a=1")
    assert kubectl("label", "configmap", "lbl", "-n", ns, "env=dev", "tier=web") == (
        "configmap/lbl labeled\n")
    assert labels_of(kubectl, ns, "lbl") == {"env": "dev", "tier": "web"}

    res = kubectl.run("label", "configmap", "lbl", "-n", ns, "env=prod", check=False)
    assert res.returncode == 1
    assert res.stderr == "error: 'env' already has a value (dev), and --overwrite is false\n"
    assert labels_of(kubectl, ns, "lbl")["env"] == "dev"

    assert kubectl("label", "configmap", "lbl", "-n", ns, "env=prod", "--overwrite") == (
        "configmap/lbl labeled\n")
    assert labels_of(kubectl, ns, "lbl") == {"env": "prod", "tier": "web"}

    assert kubectl("label", "configmap", "lbl", "-n", ns, "tier-") == (
        "configmap/lbl unlabeled\n")
    assert labels_of(kubectl, ns, "lbl") == {"env": "prod"}
    res = kubectl.run("label", "configmap", "lbl", "-n", ns, "tier-")
    assert res.stdout == 'label "tier" not found.\nconfigmap/lbl not labeled\n'

    res = kubectl.run("label", "configmap", "lbl", "-n", ns, "bad key=x", check=False)
    assert res.returncode == 1

    # kubectl checks label values itself; the server checks them too.
    res = kubectl.run("label", "configmap", "lbl", "-n", ns, "v=-bad-", check=False)
    assert res.returncode == 1
    assert res.stderr.startswith('error: invalid label value: "v=-bad-": ')
    res = kubectl.run("patch", "configmap", "lbl", "-n", ns, "--type=merge",
                      "-p", '{"metadata":{"labels":{"v":"-bad-"}}}', check=False)
    assert res.returncode == 1
    assert res.stderr.startswith(
        'The ConfigMap "lbl" is invalid: metadata.labels: Invalid value: "-bad-": ')

    obj = get_json(kubectl, "cm", "lbl", "-n", ns, "--show-managed-fields")
    assert "kubectl-label" in {e["manager"] for e in obj["metadata"]["managedFields"]}


def test_label_with_selector_and_all(kubectl: Kubectl, ns: str) -> None:
    for name in ("grp-a", "grp-b", "grp-c"):
        kubectl("create", "configmap", name, "-n", ns)
    kubectl("label", "configmap", "grp-a", "grp-b", "-n", ns, "grp=one")
    out = kubectl("label", "configmap", "-n", ns, "-l", "grp=one", "picked=yes")
    assert out == "configmap/grp-a labeled\nconfigmap/grp-b labeled\n"
    assert labels_of(kubectl, ns, "grp-c") == {}

    out = kubectl("label", "configmap", "-n", ns, "--all", "everyone=yes")
    assert "configmap/grp-c labeled\n" in out
    listed = kubectl("get", "cm", "-n", ns, "-l", "everyone=yes", "-o", "name").split()
    every = kubectl("get", "cm", "-n", ns, "-o", "name").split()
    assert sorted(listed) == sorted(every)

    out = kubectl("label", "configmap", "-n", ns, "-l", "picked=yes", "grp-", "picked-")
    assert out == "configmap/grp-a unlabeled\nconfigmap/grp-b unlabeled\n"
    assert labels_of(kubectl, ns, "grp-a") == {"everyone": "yes"}


def test_label_namespace_and_dry_run(kubectl: Kubectl, ns: str) -> None:
    assert kubectl("label", "namespace", ns, "team=e2e") == f"namespace/{ns} labeled\n"
    got = get_json(kubectl, "namespace", ns)["metadata"]["labels"]
    assert got == {"kubernetes.io/metadata.name": ns, "team": "e2e"}

    kubectl("create", "configmap", "lbl-dry", "-n", ns)
    out = kubectl("label", "configmap", "lbl-dry", "-n", ns, "x=1", "--dry-run=server",
                  "-o", "jsonpath={.metadata.labels}")
    assert json.loads(out) == {"x": "1"}
    assert labels_of(kubectl, ns, "lbl-dry") == {}


# -- annotate ---------------------------------------------------------------------


def annotations_of(kubectl: Kubectl, ns: str, name: str) -> dict[str, str]:
    """The annotations of config map `name`."""
    return get_json(kubectl, "cm", name, "-n", ns)["metadata"].get("annotations") or {}


def test_annotate_add_overwrite_remove(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "ann", "-n", ns)
    assert kubectl("annotate", "configmap", "ann", "-n", ns, "note=first",
                   "example.com/owner=team a") == "configmap/ann annotated\n"
    assert annotations_of(kubectl, ns, "ann") == {"note": "first",
                                                  "example.com/owner": "team a"}

    res = kubectl.run("annotate", "configmap", "ann", "-n", ns, "note=second", check=False)
    assert res.returncode == 1
    assert res.stderr == ("error: --overwrite is false but found the following declared "
                          "annotation(s): 'note' already has a value (first)\n")

    kubectl("annotate", "configmap", "ann", "-n", ns, "note=second", "--overwrite")
    assert annotations_of(kubectl, ns, "ann")["note"] == "second"

    assert kubectl("annotate", "configmap", "ann", "-n", ns, "note-") == (
        "configmap/ann annotated\n")
    assert annotations_of(kubectl, ns, "ann") == {"example.com/owner": "team a"}

    obj = get_json(kubectl, "cm", "ann", "-n", ns, "--show-managed-fields")
    assert "kubectl-annotate" in {e["manager"] for e in obj["metadata"]["managedFields"]}


def test_annotate_with_selector_and_all(kubectl: Kubectl, ns: str) -> None:
    for name in ("ann-a", "ann-b"):
        kubectl("create", "configmap", name, "-n", ns)
        kubectl("label", "configmap", name, "-n", ns, "annset=1")
    out = kubectl("annotate", "configmap", "-n", ns, "-l", "annset=1", "reviewed=true")
    assert out == "configmap/ann-a annotated\nconfigmap/ann-b annotated\n"
    assert annotations_of(kubectl, ns, "ann-b") == {"reviewed": "true"}

    kubectl("annotate", "configmap", "-n", ns, "--all", "swept=yes")
    for name in kubectl("get", "cm", "-n", ns, "-o", "name").split():
        assert get_json(kubectl, name, "-n", ns)["metadata"]["annotations"]["swept"] == "yes"
    kubectl("annotate", "configmap", "-n", ns, "--all", "swept-")
    assert annotations_of(kubectl, ns, "ann-a") == {"reviewed": "true"}
