"""Assemble whole-call JSON Schemas from plan rules: one function every backend calls."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from trackplan.plan.jsonutil import walk_schemas
from trackplan.plan.model import DRAFT_URIS, PAYLOAD_KEY, Plan, Rule

__all__ = ["rule_call_schema", "rule_call_view", "split_call_schema", "call_schema", "DEFS_KEYS"]

DEFS_KEYS = ("definitions", "$defs")


def rule_call_schema(rule: Rule) -> dict[str, Any]:
    """The Segment ``jsonSchema`` form of a rule: ``call`` with the payload put back in.

    A copy the caller may change; :func:`rule_call_view` is the same without copying.
    """
    return copy.deepcopy(rule_call_view(rule))


def rule_call_view(rule: Rule) -> dict[str, Any]:
    """:func:`rule_call_schema` sharing the rule's own schemas, for readers: only the
    top-level mapping and its ``properties`` are new, so it must not be changed deeper
    (plans are read-only). Deep-copying a whole plan's schemas cost more than reading
    them."""
    schema: dict[str, Any] = dict(rule.call) if rule.call is not None else {}
    key = rule.payload_key
    if key is not None and rule.payload is not None:
        props = dict(schema.get("properties", {}))
        props[key] = rule.payload
        schema["properties"] = props
    return schema


def split_call_schema(
    kind: str, schema: Mapping[str, Any]
) -> tuple[Mapping[str, Any] | bool | None, dict[str, Any] | None]:
    """Inverse of :func:`rule_call_schema`: ``(payload, call)`` from a whole-call schema."""
    call = copy.deepcopy(dict(schema))
    key = PAYLOAD_KEY.get(kind)
    payload: Mapping[str, Any] | bool | None = None
    props = call.get("properties")
    if key is not None and isinstance(props, dict) and key in props:
        props = dict(props)
        payload = props.pop(key)
        if props:
            call["properties"] = props
        else:
            # rule_call_schema puts it back: an empty remainder is noise, not information
            del call["properties"]
    return payload, (call or None)


def _strip_root(schema: dict[str, Any], defs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Remove root-only keywords from a rule schema, moving its definitions into ``defs``."""
    out = dict(schema)
    out.pop("$schema", None)
    out.pop("$id", None)
    for key in DEFS_KEYS:
        if key in out:
            found = out.pop(key)
            if isinstance(found, dict):
                defs[key].update(found)
    return out


def _rebase_local_refs(schema: Any, prefix: str) -> None:
    """Point ``#/...`` refs written against a rule's own root at its place in ``allOf``."""
    for _path, node in walk_schemas(schema):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            head = ref[2:].split("/", 1)[0]
            if head not in DEFS_KEYS:
                node["$ref"] = prefix + ref[1:]


def call_schema(
    plan: Plan,
    rule: Rule,
    *,
    with_common: bool = True,
    extra: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The whole-call schema of ``rule``: ``allOf`` of ``extra``, the common rule, the rule.

    Plan-wide definitions are reachable as ``#/definitions/<name>`` and ``#/$defs/<name>``.
    """
    defs: dict[str, dict[str, Any]] = {k: dict(plan.definitions) for k in DEFS_KEYS}
    branches: list[Any] = [dict(e) for e in extra]
    common = plan.common
    if with_common and common is not None and rule.kind != "common":
        branches.append(_strip_root(rule_call_schema(common), defs))
    branches.append(_strip_root(rule_call_schema(rule), defs))
    for index, branch in enumerate(branches):
        _rebase_local_refs(branch, f"#/allOf/{index}")
    root: dict[str, Any] = {"$schema": DRAFT_URIS[rule.draft]}
    for key in DEFS_KEYS:
        if defs[key]:
            root[key] = defs[key]
    root["allOf"] = branches
    return root
