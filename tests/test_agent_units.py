"""Unit tests of the node agent's pure parts: env expansion, back-off, CRI logs,
atomic volume writes, pod phase and default tolerations."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from skiff.agent.atomic_writer import write_atomic
from skiff.agent.backoff import Backoff
from skiff.agent.env import ConfigError, command_line, container_env, expand
from skiff.agent.logs import LogOptions, read_log
from skiff.agent.status import phase
from skiff.apiserver.admission.default_tolerations import add_default_tolerations


def test_expand_follows_upstream_rules() -> None:
    env = {"A": "1", "B": "x y"}
    assert expand("$(A)-$(B)", env) == "1-x y"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$A $(A", env) == "$A $(A"


def test_env_order_and_references() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
           "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {
               "limits": {"memory": "64Mi"}}}]},
           "status": {"podIP": "10.0.0.5"}}
    container = {
        "name": "c", "command": ["echo", "$(GREETING)"], "args": ["$(MEM)", "$$(NOPE)"],
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [{"name": "GREETING", "value": "hi $(CM_k)"},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {
                    "fieldPath": "metadata.labels['app']"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {
                    "resource": "limits.memory", "divisor": "1Mi"}}}]}

    async def fetch(kind: str, ns: str, name: str) -> dict | None:
        return {"data": {"k": "v", "bad key": "z"}} if name == "cm" else None

    env, warnings = asyncio.run(container_env(pod, container, fetch, {}))
    assert env == [("CM_k", "v"), ("GREETING", "hi v"), ("IP", "10.0.0.5"), ("APP", "x"),
                   ("MEM", "64")]
    assert warnings and "bad key" in warnings[0]
    assert command_line(container, env) == ["echo", "hi v", "64", "$(NOPE)"]


def test_missing_key_is_a_config_error() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}}
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {
        "name": "s", "key": "k"}}}]}

    async def fetch(kind: str, ns: str, name: str) -> dict | None:
        return {"data": {}}

    try:
        asyncio.run(container_env(pod, container, fetch, {}))
    except ConfigError as exc:
        assert str(exc) == "couldn't find key k in Secret ns/s"
    else:
        raise AssertionError("expected a ConfigError")


def test_backoff_doubles_caps_and_resets() -> None:
    b = Backoff(initial=10, maximum=300)
    assert b.remaining("k", since=0, now=1) == 0
    b.next("k", now=1)
    assert b.remaining("k", since=5, now=6) == 9
    for t in (20, 40, 80, 160, 320, 640):
        b.next("k", now=t)
    assert b.delay("k") == 300
    assert b.remaining("k", since=700, now=700 + 601) == 0  # forgotten after 2 × max


def test_read_log_tail_since_timestamps_and_partials(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(b"2024-01-01T00:00:01.000000000Z stdout F one\n"
                    b"2024-01-01T00:00:02.000000000Z stderr P tw\n"
                    b"2024-01-01T00:00:02.100000000Z stderr F o\n"
                    b"2024-01-01T00:00:03.000000000Z stdout F three\n")

    async def collect(opts: LogOptions) -> bytes:
        async def running() -> bool:
            return False
        return b"".join([c async for c in read_log(str(log), opts, running)])

    assert asyncio.run(collect(LogOptions())) == b"one\ntwo\nthree\n"
    assert asyncio.run(collect(LogOptions(tail_lines=2))) == b"two\nthree\n"
    since = dt.datetime(2024, 1, 1, 0, 0, 2, 500000, tzinfo=dt.UTC)
    assert asyncio.run(collect(LogOptions(since=since))) == b"three\n"
    assert asyncio.run(collect(LogOptions(tail_lines=1, timestamps=True))) == \
        b"2024-01-01T00:00:03.000000000Z three\n"
    assert asyncio.run(collect(LogOptions(limit_bytes=5))) == b"one\nt"


def test_atomic_writer_swaps_whole_sets(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    assert write_atomic(vol, {"a": (b"1", 0o644), "sub/b": (b"2", 0o600)})
    assert (vol / "a").read_text() == "1" and (vol / "sub" / "b").read_text() == "2"
    assert (vol / "..data").is_symlink() and (vol / "a").is_symlink()
    assert not write_atomic(vol, {"a": (b"1", 0o644), "sub/b": (b"2", 0o600)})
    old = (vol / "..data").resolve()
    assert write_atomic(vol, {"a": (b"3", 0o644)})
    assert (vol / "a").read_text() == "3" and not (vol / "sub").exists()
    assert not old.exists()


def test_phase_from_container_states() -> None:
    def st(state: dict, last: dict | None = None) -> dict:
        return {"state": state, "lastState": {"terminated": last} if last else {}}

    always = {"spec": {"restartPolicy": "Always"}}
    never = {"spec": {"restartPolicy": "Never"}}
    on_failure = {"spec": {"restartPolicy": "OnFailure"}}
    running = st({"running": {}})
    ok = st({"terminated": {"exitCode": 0}})
    bad = st({"terminated": {"exitCode": 1}})
    waiting = st({"waiting": {"reason": "ContainerCreating"}})
    crashloop = st({"waiting": {"reason": "CrashLoopBackOff"}}, {"exitCode": 1})
    assert phase(always, [], [waiting], True) == "Pending"
    assert phase(always, [], [running, crashloop], True) == "Running"
    assert phase(always, [], [bad], True) == "Running"
    assert phase(never, [], [ok, bad], True) == "Failed"
    assert phase(never, [], [ok], True) == "Succeeded"
    assert phase(on_failure, [], [bad], True) == "Running"
    assert phase(never, [bad], [waiting], False) == "Failed"
    assert phase(always, [running], [waiting], False) == "Pending"


def test_default_tolerations_added_once() -> None:
    pod = {"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable",
                                     "operator": "Exists", "effect": "NoExecute"}]}}
    add_default_tolerations(pod, 300)
    keys = [(t["key"], t.get("tolerationSeconds")) for t in pod["spec"]["tolerations"]]
    assert keys == [("node.kubernetes.io/unreachable", None),
                    ("node.kubernetes.io/not-ready", 300)]
