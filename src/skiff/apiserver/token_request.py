"""The serviceaccounts/token subresource: a TokenRequest in, a signed token out.

As upstream's TokenREST: the body's name and namespace, when given, must match the
URL; expirationSeconds defaults to an hour and may not be under ten minutes; the
audiences default to the API server's own; a boundObjectRef names a Pod (which must
run as this service account), a Secret or a Node that must exist (with the given
uid, if one is given), and the token is valid only while that object is.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from skiff.api import meta as m
from skiff.api.errors import bad_request, conflict, invalid
from skiff.apiserver.sa_tokens import (
    DEFAULT_EXPIRATION_SECONDS,
    MAX_EXPIRATION_SECONDS,
    MIN_EXPIRATION_SECONDS,
    build_claims,
)

if TYPE_CHECKING:
    from skiff.apiserver.server import APIServer

Obj = dict[str, Any]
GROUP = "authentication.k8s.io"
KIND = "TokenRequest"
# Kinds a token may be bound to, by the plural that stores them.
BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


def _invalid(name: str, field: str, value: Any, message: str) -> Exception:
    return invalid(GROUP, KIND, name, [{"reason": "FieldValueInvalid", "field": field,
                                       "message": f"Invalid value: {value!r}: {message}"
                                       if not isinstance(value, str)
                                       else f'Invalid value: "{value}": {message}'}])


def _spec(name: str, body: Any) -> Obj:
    """The request's spec, type-checked and defaulted."""
    if not isinstance(body, dict):
        raise bad_request("the body must be a TokenRequest")
    spec = body.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise bad_request("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: "
                          "spec must be an object")
    audiences = spec.get("audiences")
    if audiences is None:
        audiences = []
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise bad_request("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: "
                          "spec.audiences must be a list of strings")
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = DEFAULT_EXPIRATION_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise bad_request("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: "
                          "spec.expirationSeconds must be an integer")
    if seconds < MIN_EXPIRATION_SECONDS:
        raise _invalid(name, "spec.expirationSeconds", seconds,
                       "may not specify a duration less than 10 minutes")
    if seconds > MAX_EXPIRATION_SECONDS:
        raise _invalid(name, "spec.expirationSeconds", seconds,
                       "may not specify a duration larger than 2^32 seconds")
    ref = spec.get("boundObjectRef")
    if ref is not None and not isinstance(ref, dict):
        raise bad_request("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: "
                          "spec.boundObjectRef must be an object")
    return {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": ref}


async def create_token(server: APIServer, namespace: str, name: str, body: Any) -> Obj:
    """Serve POST .../serviceaccounts/NAME/token (see the module docstring)."""
    spec = _spec(name, body)
    md = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    if md.get("name") and md["name"] != name:
        raise _invalid(name, "metadata.name", md["name"],
                       "must match the service account name if specified")
    if md.get("namespace") and md["namespace"] != namespace:
        raise _invalid(name, "metadata.namespace", md["namespace"],
                       "must match the service account namespace if specified")
    sa = await _get(server, "serviceaccounts", namespace, name)
    pod = node = secret = None
    ref = spec["boundObjectRef"]
    if ref is not None:
        kind, api_version = ref.get("kind") or "", ref.get("apiVersion") or ""
        if kind not in BINDABLE or api_version != "v1":
            group, _, version = api_version.rpartition("/")
            raise bad_request(f"cannot bind token to object of type {group}/{version}, "
                              f"Kind={kind}")
        ref_name = ref.get("name") or ""
        if not isinstance(ref_name, str) or not ref_name:
            raise _invalid(name, "spec.boundObjectRef.name", ref_name, "a name is required")
        bound = await _get(server, BINDABLE[kind], "" if kind == "Node" else namespace,
                           ref_name)
        if kind == "Pod":
            pod = bound
            pod_sa = (pod.get("spec") or {}).get("serviceAccountName") or ""
            if pod_sa != name:
                raise bad_request(f'cannot bind token for serviceaccount "{name}" to pod '
                                  f'running with serviceaccount "{pod_sa}"')
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            if node_name:
                node = await _get_optional(server, "nodes", "", node_name)
        elif kind == "Secret":
            secret = bound
        else:
            node = bound
        uid = m.uid_of(bound)
        if ref.get("uid") and ref["uid"] != uid:
            raise conflict("", kind, ref_name,
                           f"the UID in the bound object reference ({ref['uid']}) does not "
                           f"match the UID in record ({uid}). The object might have been "
                           "deleted and then recreated")
        ref = {"kind": kind, "apiVersion": "v1", "name": ref_name, "uid": uid}
    audiences = spec["audiences"] or list(server.token_authenticator.audiences)
    claims = build_claims(sa, audiences, spec["expirationSeconds"], pod=pod, node=node,
                          secret=secret)
    token = server.token_signer.sign(claims)
    expires = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
    return {
        "kind": KIND, "apiVersion": f"{GROUP}/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {"audiences": audiences, "expirationSeconds": spec["expirationSeconds"],
                 "boundObjectRef": ref},
        "status": {"token": token, "expirationTimestamp": m.rfc3339(expires)},
    }


async def _get(server: APIServer, plural: str, namespace: str, name: str) -> Obj:
    rt = server.registry.get("", "v1", plural)
    assert rt is not None
    return await server.objects.get(rt, namespace, name)


async def _get_optional(server: APIServer, plural: str, namespace: str, name: str) -> Obj | None:
    from skiff.api.errors import StatusError

    try:
        return await _get(server, plural, namespace, name)
    except StatusError as err:
        if err.code == 404:
            return None
        raise
