"""The generated development-mode validator agrees with the enforcer on payloads."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from trackplan.plan.model import Plan
from trackplan.schema.validator import make_validator

scalars = st.none() | st.booleans() | st.integers(-10, 2_000_000) | st.floats(
    -10, 2e6, allow_nan=False) | st.sampled_from(["", "EUR", "eur", "x" * 70, "a@b.co", "card"])


def _payloads(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid payloads, half of them with one property replaced by an arbitrary value."""
    names = sorted(schema.get("properties", {})) or ["x"]

    def mutate(args: tuple[dict[str, Any], bool, str, Any]) -> dict[str, Any]:
        data, broken, name, value = args
        if broken:
            data = {**data, name: value}
        return data

    return st.tuples(
        from_schema({**schema, "definitions": defs}), st.booleans(), st.sampled_from(names),
        scalars | st.lists(scalars, max_size=3),
    ).map(mutate)


def _agree(runtime: ModuleType, root: Any, pointer: str, defs: dict[str, Any]) -> None:
    key = pointer.rsplit("/", 1)[1]
    payload_schema = root["properties"][key]
    reference = make_validator(
        {**root, "properties": {key: payload_schema}, "required": [key]}
    )

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_payloads(payload_schema, defs))
    def agree(data: dict[str, Any]) -> None:
        ours = runtime.validate(root, pointer, data)
        theirs = reference.is_valid({key: data})
        assert (not ours) == theirs, ours

    agree()


def test_dev_validator_and_enforcer_agree(shop: ModuleType, ecommerce: Plan) -> None:
    schemas = import_module(f"{shop.__name__}._schemas").SCHEMAS
    runtime = import_module(f"{shop.__name__}._runtime")
    for root, pointer in schemas:
        _agree(runtime, root, pointer, dict(ecommerce.definitions))
    assert len(schemas) == len(ecommerce.events) + 3  # events, identify, group, page
