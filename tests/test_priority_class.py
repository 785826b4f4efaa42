"""PriorityClass validation and the Priority admission rules."""

from __future__ import annotations

from skiff.api.validation.scheduling import validate_priorityclass


def pc(name: str, value: object = 100, **extra: object) -> dict:
    return {"metadata": {"name": name}, "value": value, **extra}


def messages(obj: dict, old: dict | None = None) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in validate_priorityclass(obj, old)]


def test_user_classes_are_capped_and_system_names_reserved() -> None:
    assert messages(pc("ok", 1_000_000_000)) == []
    assert messages(pc("big", 1_000_000_001)) == [
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    assert "reserved for system use only" in messages(pc("system-mine", 5))[0]
    assert messages(pc("system-node-critical", 2_000_001_000)) == []
    assert messages(pc("system-node-critical", 7))


def test_value_and_policy_are_immutable_and_policy_is_an_enum() -> None:
    old = pc("a", 10, preemptionPolicy="Never")
    assert "value: Forbidden: may not be changed in an update." in \
        messages(pc("a", 11, preemptionPolicy="Never"), old)
    assert any("preemptionPolicy" in m for m in
               messages(pc("a", 10, preemptionPolicy="PreemptLowerPriority"), old))
    assert any("Unsupported value" in m for m in messages(pc("a", preemptionPolicy="Sometimes")))
    assert any("value" in m for m in messages({"metadata": {"name": "x"}}))
