"""Service account tokens in one process: JWS framing, claims, what the authenticator
accepts, the agent's refresh rule, and the admission plugin's default volume."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from skiff.agent.token_manager import TokenManager, requires_refresh
from skiff.api.errors import StatusError
from skiff.apiserver import jws
from skiff.apiserver.admission.service_account import MOUNT_PATH, admit_pod
from skiff.apiserver.pki import ensure_pki
from skiff.apiserver.sa_tokens import ISSUER, TokenAuthenticator, TokenSigner, build_claims
from skiff.runtime.process.shim import join_in_root

NOW = 1_800_000_000
SA = {"metadata": {"name": "robot", "namespace": "ns", "uid": "sa-uid"}}
POD = {"metadata": {"name": "web", "namespace": "ns", "uid": "pod-uid"},
       "spec": {"serviceAccountName": "robot", "nodeName": "n1"}}
NODE = {"metadata": {"name": "n1", "uid": "node-uid"}}


def _b64(obj: Any) -> str:
    return jws.b64url(json.dumps(obj).encode())


@pytest.fixture
def signer(tmp_path: Path) -> TokenSigner:
    return TokenSigner(ensure_pki(tmp_path / "pki").sa_key)


def test_signing_key_is_created_and_kept(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    assert pki.sa_key is not None and pki.sa_key.exists()
    assert pki.sa_key.stat().st_mode & 0o777 == 0o600
    first = pki.sa_key.read_bytes()
    # An older cluster without the key gets one; an existing key is never replaced.
    assert ensure_pki(tmp_path / "pki").sa_key.read_bytes() == first  # type: ignore[union-attr]
    pki.sa_key.unlink()
    assert ensure_pki(tmp_path / "pki").sa_key.exists()  # type: ignore[union-attr]


def test_claims_as_upstream() -> None:
    claims = build_claims(SA, ["aud-1"], 600, pod=POD, node=NODE, now=NOW)
    assert claims["iss"] == ISSUER and claims["sub"] == "system:serviceaccount:ns:robot"
    assert claims["aud"] == ["aud-1"]
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (NOW, NOW, NOW + 600)
    assert claims["kubernetes.io"] == {
        "namespace": "ns", "serviceaccount": {"name": "robot", "uid": "sa-uid"},
        "pod": {"name": "web", "uid": "pod-uid"}, "node": {"name": "n1", "uid": "node-uid"}}
    assert claims["jti"] and claims["jti"] != build_claims(SA, [], 600, now=NOW)["jti"]


def test_signature_round_trip_and_tampering(signer: TokenSigner) -> None:
    token = signer.sign({"sub": "x"})
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "kid": signer.key_id}
    assert signer.verify(token) == {"sub": "x"}
    h, _p, s = token.split(".")
    with pytest.raises(jws.InvalidToken):
        signer.verify(f"{h}.{_b64({'sub': 'admin'})}.{s}")
    with pytest.raises(jws.InvalidToken):
        signer.verify(f"{_b64({'alg': 'none'})}.{_b64({'sub': 'x'})}.")
    with pytest.raises(jws.InvalidToken):
        signer.verify(f"{_b64({'alg': 'HS256'})}.{_b64({'sub': 'x'})}.{s}")
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(jws.InvalidToken):
        signer.verify(jws.sign({"sub": "x"}, other, signer.key_id))
    for junk in ("", "a.b", "a.b.c", "!!.??.**", f"{h}.{_b64([1])}.{s}"):
        with pytest.raises(jws.InvalidToken):
            signer.verify(junk)


def _authenticator(signer: TokenSigner, objects: dict[tuple[str, str], Any]
                   ) -> TokenAuthenticator:
    def lookup(plural: str, namespace: str, name: str) -> Any:
        return objects.get((plural, f"{namespace}/{name}"))

    return TokenAuthenticator(signer, lookup)


def test_authenticator_accepts_valid_tokens_only(signer: TokenSigner) -> None:
    objects: dict[tuple[str, str], Any] = {("serviceaccounts", "ns/robot"): SA,
                                           ("pods", "ns/web"): POD}
    auth = _authenticator(signer, objects)
    plain = signer.sign(build_claims(SA, [ISSUER], 3600, now=NOW))
    who = auth.authenticate(plain, now=NOW + 10)
    assert who is not None and who.name == "system:serviceaccount:ns:robot"
    assert who.groups == ("system:serviceaccounts", "system:serviceaccounts:ns",
                          "system:authenticated")
    assert who.uid == "sa-uid"
    # Expired (beyond the minute of leeway), not yet valid, or meant for someone else.
    assert auth.authenticate(plain, now=NOW + 3600 + 61) is None
    assert auth.authenticate(plain, now=NOW - 61) is None
    vault = signer.sign(build_claims(SA, ["vault"], 3600, now=NOW))
    assert auth.authenticate(vault, now=NOW) is None
    assert auth.authenticate(vault, now=NOW, audiences=("vault",)) is not None
    wrong_issuer = signer.sign({**build_claims(SA, [ISSUER], 3600, now=NOW), "iss": "x"})
    assert auth.authenticate(wrong_issuer, now=NOW) is None
    # Bound to a pod: valid while that very pod exists and is not past its deletion.
    bound = signer.sign(build_claims(SA, [ISSUER], 3600, pod=POD, node=NODE, now=NOW))
    who = auth.authenticate(bound, now=NOW)
    assert who is not None and who.extra["authentication.kubernetes.io/pod-uid"] == ["pod-uid"]
    assert who.extra["authentication.kubernetes.io/node-name"] == ["n1"]
    objects[("pods", "ns/web")] = {**POD, "metadata": {**POD["metadata"], "uid": "other"}}
    assert auth.authenticate(bound, now=NOW) is None
    gone_at = dt.datetime.fromtimestamp(NOW - 1, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    objects[("pods", "ns/web")] = {**POD, "metadata": {**POD["metadata"],
                                                       "deletionTimestamp": gone_at}}
    assert auth.authenticate(bound, now=NOW) is None
    del objects[("pods", "ns/web")]
    assert auth.authenticate(bound, now=NOW) is None
    # The service account recreated under the same name is another account.
    objects[("serviceaccounts", "ns/robot")] = {"metadata": {**SA["metadata"], "uid": "new"}}
    assert auth.authenticate(plain, now=NOW) is None
    assert auth.authenticate("not-a-jwt", now=NOW) is None


def _token_request(exp: float, seconds: int, token: str = "t") -> dict[str, Any]:
    stamp = dt.datetime.fromtimestamp(exp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": stamp}}


def test_refresh_at_eighty_percent_or_a_day() -> None:
    tr = _token_request(NOW + 1000, 1000)
    assert not requires_refresh(tr, NOW + 799)
    assert requires_refresh(tr, NOW + 800)
    year = 365 * 24 * 3600
    long = _token_request(NOW + year, year)
    assert not requires_refresh(long, NOW + 3600)
    assert requires_refresh(long, NOW + 24 * 3600)
    assert requires_refresh({}, NOW)


def test_token_manager_caches_refreshes_and_survives_failures() -> None:
    clock = [float(NOW)]
    calls: list[int] = []
    failing = [False]

    async def request(ns: str, sa: str, spec: dict[str, Any]) -> dict[str, Any]:
        if failing[0]:
            raise ConnectionError("API down")
        calls.append(1)
        return _token_request(clock[0] + spec["expirationSeconds"],
                              spec["expirationSeconds"], f"tok-{len(calls)}")

    tm = TokenManager(request, clock=lambda: clock[0])
    spec = {"audiences": [], "expirationSeconds": 1000,
            "boundObjectRef": {"kind": "Pod", "name": "p", "uid": "u1"}}

    async def scenario() -> None:
        assert await tm.token("ns", "sa", spec) == "tok-1"
        clock[0] += 500
        assert await tm.token("ns", "sa", spec) == "tok-1"
        clock[0] += 400  # 90% of its life: a new one
        assert await tm.token("ns", "sa", spec) == "tok-2"
        clock[0] += 850
        failing[0] = True  # due, but the old one is still valid: keep it
        assert await tm.token("ns", "sa", spec) == "tok-2"
        clock[0] += 200  # expired and the API is still down: fail
        with pytest.raises(ConnectionError):
            await tm.token("ns", "sa", spec)
        failing[0] = False
        assert await tm.token("ns", "sa", spec) == "tok-3"
        tm.forget_pod("u1")
        assert await tm.token("ns", "sa", spec) == "tok-4"

    asyncio.run(scenario())


class _Store:
    def __init__(self, objects: dict[str, Any]) -> None:
        self.objects = objects

    def get_now(self, key: str) -> Any:
        if key not in self.objects:
            return None
        return type("KV", (), {"value": json.dumps(self.objects[key]).encode()})()


_DEFAULT_SA = {"/registry/core/serviceaccounts/ns/default": {"metadata": {"name": "default"}}}


async def test_admission_mounts_the_api_credentials() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "initContainers": [{"name": "i"}],
        "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [
            {"name": "own", "mountPath": MOUNT_PATH}]}],
        "volumes": [{"name": "own", "emptyDir": {}}]}}
    await admit_pod(_Store(dict(_DEFAULT_SA)), pod)  # type: ignore[arg-type]
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    vol = spec["volumes"][1]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == 21
    sources = vol["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["path"] == "namespace"
    mount = {"name": vol["name"], "readOnly": True, "mountPath": MOUNT_PATH}
    assert spec["initContainers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert len(spec["containers"][1]["volumeMounts"]) == 1  # mounts its own there


async def test_admission_honours_automount_false() -> None:
    off = {"metadata": {"name": "p", "namespace": "ns"},
           "spec": {"automountServiceAccountToken": False, "containers": [{"name": "a"}]}}
    await admit_pod(_Store(dict(_DEFAULT_SA)), off)  # type: ignore[arg-type]
    assert "volumes" not in off["spec"]
    store = _Store({"/registry/core/serviceaccounts/ns/quiet": {
        "metadata": {"name": "quiet"}, "automountServiceAccountToken": False}})
    by_sa = {"metadata": {"name": "p", "namespace": "ns"},
             "spec": {"serviceAccountName": "quiet", "containers": [{"name": "a"}]}}
    await admit_pod(store, by_sa)  # type: ignore[arg-type]
    assert "volumes" not in by_sa["spec"]
    # The pod's own true wins over the account's false.
    on = {"metadata": {"name": "p", "namespace": "ns"},
          "spec": {"serviceAccountName": "quiet", "automountServiceAccountToken": True,
                   "containers": [{"name": "a"}]}}
    await admit_pod(store, on)  # type: ignore[arg-type]
    assert len(on["spec"]["volumes"]) == 1


@pytest.mark.parametrize("automount", [None, False])
async def test_admission_refuses_a_missing_service_account(automount: bool | None) -> None:
    spec: dict[str, Any] = {"serviceAccountName": "ghost", "containers": [{"name": "a"}]}
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}
    with pytest.raises(StatusError) as err:
        await admit_pod(_Store(dict(_DEFAULT_SA)), pod)  # type: ignore[arg-type]
    assert (err.value.code, err.value.reason) == (403, "Forbidden")
    assert err.value.message == ('pods "p" is forbidden: error looking up service account '
                                 'ns/ghost: serviceaccount "ghost" not found')
    assert err.value.details == {"name": "p", "kind": "pods"}


async def test_admission_waits_a_little_for_the_default_account() -> None:
    store = _Store({})
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{"name": "a"}]}}

    async def controller() -> None:
        # The account appears a moment after the pod was sent, as in a new namespace.
        await asyncio.sleep(0.3)
        store.objects.update(_DEFAULT_SA)

    creating = asyncio.create_task(controller())
    await admit_pod(store, pod)  # type: ignore[arg-type]
    await creating
    assert pod["spec"]["serviceAccountName"] == "default" and pod["spec"]["volumes"]
    # It does give up: a namespace that never gets its account refuses pods.
    with pytest.raises(StatusError, match='serviceaccount "default" not found'):
        await admit_pod(_Store({}), {"metadata": {"name": "q", "namespace": "ns"},  # type: ignore[arg-type]
                                     "spec": {"containers": [{"name": "a"}]}})


def test_mount_paths_resolve_symlinks_inside_the_root(tmp_path: Path) -> None:
    root = str(tmp_path)
    os.makedirs(tmp_path / "run")
    os.makedirs(tmp_path / "var")
    os.symlink("/run", tmp_path / "var" / "run")
    os.symlink("../run", tmp_path / "var" / "rel")
    os.symlink("/../../..", tmp_path / "escape")
    assert join_in_root(root, "/var/run/secrets/x") == f"{root}/run/secrets/x"
    assert join_in_root(root, "/var/rel/a") == f"{root}/run/a"
    assert join_in_root(root, "/../../etc") == f"{root}/etc"
    assert join_in_root(root, "/escape/etc") == f"{root}/etc"
    assert join_in_root("/", "/var/run") == "/var/run"
