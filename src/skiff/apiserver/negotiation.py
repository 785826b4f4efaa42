"""Content negotiation: what representation the client asked for."""

from __future__ import annotations

from dataclasses import dataclass

from skiff.api.errors import not_acceptable

TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
_SERVED = "application/json, application/yaml, application/json;as=Table;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class Representation:
    """The chosen response form."""

    table: bool = False


def negotiate(accept: str | None) -> Representation:
    """Pick JSON or a server-side Table from an Accept header.

    A Table is chosen only when the client lists it before anything else it would
    take, as kubectl's `get` does; a client that accepts only protobuf or CBOR is
    told 406, since responses are always JSON.
    """
    if not accept:
        return Representation()
    acceptable = False
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mt = fields[0].lower()
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if mt in ("application/json", "application/*", "*/*", "application/yaml"):
            if params.get("as") == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io":
                if params.get("v", "v1") in ("v1", "v1beta1"):
                    return Representation(table=True)
                continue
            if params.get("as"):
                continue
            acceptable = True
            break
    if not acceptable:
        raise not_acceptable(_SERVED)
    return Representation()
