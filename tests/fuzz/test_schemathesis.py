"""Schemathesis against the OpenAPI v3 the server itself serves (core/v1 and apps/v1):
no generated request may get a 5xx, and every 4xx must be a Kubernetes Status.

Run with `make fuzz` (installs schemathesis). Skipped when schemathesis is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

import requests  # noqa: E402 - schemathesis' own transport, installed with it
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from tests.bad_input_client import RawClient  # noqa: E402
from tests.e2e.conftest import Cluster  # noqa: E402

GROUP_VERSIONS = ("/openapi/v3/api/v1", "/openapi/v3/apis/apps/v1")
EXAMPLES_PER_OPERATION = 4
BUDGET_SECONDS = 90.0
# A read at a revision the store has not reached is upstream's 504 Timeout
# ("Too large resource version"); every other 5xx is a bug.
ALLOWED_5XX = {(504, "Timeout")}


def merged_openapi(api: RawClient, body_depth: int = 3) -> dict[str, Any]:
    """One document from the served group-version documents, adapted for a bounded run.

    - Watches stream until the client gives up, so the `watch` parameter and the
      deprecated /watch/ paths are left out (tests/test_bad_input.py covers their
      bad input).
    - Request bodies keep the served schemas to `body_depth` levels of `$ref`, with
      anything allowed below: generating whole PodSpecs costs seconds an example.
    - Response schemas are dropped: the checks here are about status codes.
    """
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for gv in GROUP_VERSIONS:
        r = api.get(gv)
        assert r.status == 200, r.text()
        part = r.json()
        components.update(part.get("components", {}).get("schemas", {}))
        paths.update({p: item for p, item in part["paths"].items() if "/watch/" not in p})

    def shallow(schema: Any, depth: int) -> Any:
        if isinstance(schema, list):
            return [shallow(x, depth) for x in schema]
        if not isinstance(schema, dict):
            return schema
        if "$ref" in schema:
            if depth <= 0:
                return {}
            return shallow(components.get(schema["$ref"].rsplit("/", 1)[-1], {}), depth - 1)
        return {k: v if k == "description" else shallow(v, depth) for k, v in schema.items()}

    for item in paths.values():
        if "parameters" in item:
            item["parameters"] = [p for p in item["parameters"] if p.get("name") != "watch"]
        for op in item.values():
            if not isinstance(op, dict):
                continue
            op["parameters"] = [p for p in op.get("parameters", []) if p.get("name") != "watch"]
            op["responses"] = {"default": {"description": "any answer"}}
            if "requestBody" in op:
                op["requestBody"] = shallow(op["requestBody"], body_depth)
    return {"openapi": "3.0.0", "info": {"title": "skiff", "version": "v1"}, "paths": paths}


def problem(status: int, content_type: str, body: bytes) -> str | None:
    """What is wrong with one answer, or None."""
    import json

    reason = ""
    if content_type.startswith("application/json") and body:
        try:
            data = json.loads(body)
        except ValueError:
            return "a JSON Content-Type with a body that is not JSON"
        if isinstance(data, dict) and data.get("kind") == "Status":
            reason = str(data.get("reason", ""))
    if status >= 500 and (status, reason) not in ALLOWED_5XX:
        return f"server error {status} {reason}"
    if 400 <= status < 500 and status != 405 and not reason:
        return f"{status} without a Kubernetes Status"
    return None


def runner(operation: Any, mode: GenerationMode,
           call: Callable[[Any], None]) -> Callable[[], None]:
    """A bounded hypothesis run of `call` over generated cases of `operation`.

    Valid requests go to the existing "default" namespace, so they get past the
    namespace check into decoding, validation and storage; invalid ones (negative
    mode) go anywhere.
    """
    params = ({"namespace": "default"} if mode == GenerationMode.POSITIVE
              and "{namespace}" in operation.path else None)

    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode, path_parameters=params))
    def run(case: Any) -> None:
        call(case)

    return run


def test_schemathesis_no_server_errors(fuzz_cluster: Cluster, fuzz_api: RawClient) -> None:
    schema = schemathesis.openapi.from_dict(merged_openapi(fuzz_api))
    session = requests.Session()
    session.verify = str(fuzz_cluster.data_dir / "pki" / "ca.crt")
    session.headers["Authorization"] = f"Bearer {fuzz_api.token}"
    base_url = f"https://127.0.0.1:{fuzz_cluster.port}"
    deadline = time.monotonic() + BUDGET_SECONDS
    failures: dict[str, str] = {}
    calls = 0
    operations = skipped = 0

    for result in schema.get_all_operations():
        try:
            operation = result.ok()
        except Exception:  # noqa: BLE001 - an operation schemathesis cannot model
            skipped += 1
            continue
        operations += 1
        label = operation.label

        def call(case: Any, label: str = label) -> None:
            nonlocal calls
            if time.monotonic() > deadline or label in failures:
                return
            response = case.call(base_url=base_url, session=session, timeout=20,
                                 verify=session.verify)
            calls += 1
            ctype = {k.lower(): v for k, v in response.headers.items()}.get("content-type", "")
            found = problem(response.status_code,
                            ctype[0] if isinstance(ctype, list) and ctype else str(ctype or ""),
                            response.content)
            if found:
                sent = response.request.body
                failures[label] = (f"{found}: {case.method} {response.request.url} "
                                   f"({response.request.headers.get('Content-Type')} body "
                                   f"{(sent or b'')[:300]!r}) -> {response.content[:300]!r}")

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                runner(operation, mode, call)()
            except Exception as exc:  # noqa: BLE001 - generation errors are no server bugs
                if not any(k in type(exc).__name__ for k in ("Serializ", "Unsatisfiable",
                                                              "Generation")):
                    raise
        if time.monotonic() > deadline:
            break

    print(f"schemathesis: {calls} requests over {operations} operations "
          f"({skipped} not modelled)")
    assert fuzz_api.ready(), "the server stopped answering /readyz"
    # The budget is time; a loaded machine reaches fewer operations, but never few.
    assert operations > 60 and calls > 300, (operations, calls, skipped)
    log = fuzz_cluster.log()
    assert not failures, "\n".join(
        [f"{k}: {v}" for k, v in sorted(failures.items())] + [log[-4000:]])
    assert "Traceback" not in log, log[-4000:]
