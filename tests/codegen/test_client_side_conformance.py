"""The generated client with ``pii: {client_side: true}`` forwards what ``enforce`` forwards.

The same calls go through the enforcer (in process) and through a generated client run
in a separate interpreter with the standard library alone (``python -I -S``: neither
trackplan nor jsonschema-rs importable). For each call, both must agree on whether it is
sent, and the payload and ``context`` sent must be equal (``context.protocols`` aside: the
enforcer records its findings there, the client its event version): declared fields,
``context.ip``, ``context.traits`` and values the detectors find in free text, nested
objects and arrays alike.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.pii.planted import corpus, segment_export
from trackplan.codegen.pii import VENDORED, vendored_text
from trackplan.codegen.python import generate_python
from trackplan.engine import compile_plan
from trackplan.plan.model import Plan
from trackplan.plan.segment import import_segment

from .conftest import write_package

KEY = "client-side-conformance-key"
PII_DIR = Path(__file__).resolve().parents[2] / "trackplan" / "pii"

#: Runs a list of client calls with a recording SDK; prints what the SDK received.
RUNNER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
package = __import__(sys.argv[2])
calls = json.load(sys.stdin)
sent = []
class Sdk:
    def _record(self, kind, **kw):
        sent.append([kind, kw])
    def track(self, **kw): self._record("track", **kw)
    def identify(self, **kw): self._record("identify", **kw)
    def group(self, **kw): self._record("group", **kw)
rejected = []
client = package.Client(Sdk(), on_violation=lambda m, v: rejected.append(v[0].pointer))
out = []
for method, kwargs in calls:
    before = len(sent)
    getattr(client, method)(**kwargs)
    out.append(sent[-1] if len(sent) > before else None)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("trackplan", "jsonschema_rs"))
print(json.dumps({"sent": out, "rejected": rejected, "imported": leaked}))
"""


def run_client(package: Path, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The calls through the generated client in ``python -I -S`` (stdlib only)."""
    env = {"TRACKPLAN_HASH_KEY": KEY, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(package.parent), package.name],
        input=json.dumps(calls), capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["imported"] == []  # nothing from trackplan, no jsonschema-rs
    return result


def _compile(plan: Plan, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TRACKPLAN_HASH_KEY", KEY)
    return compile_plan(plan)


def _without_protocols(context: Any) -> Any:
    if not isinstance(context, dict):
        return context
    return {k: v for k, v in context.items() if k != "protocols"}


def assert_conforms(
    enforcer: Any, calls: list[tuple[str, dict[str, Any]]], events: list[dict[str, Any]],
    result: dict[str, Any],
) -> int:
    """Compare the client's output with the enforcer's on the same calls; the count sent."""
    sent = 0
    for (method, _), event, got in zip(calls, events, result["sent"], strict=True):
        verdict = enforcer.enforce(event)
        if got is None:  # the client rejected it: the plan's reject, as in the pipeline
            assert not verdict.allowed, method
            assert any(v.type == "PII" for v in verdict.violations), method
            continue
        assert verdict.allowed, (method, [(v.type, v.pointer) for v in verdict.violations])
        sent += 1
        key = "properties" if event["type"] == "track" else "traits"
        forwarded = verdict.event
        assert got[1][key] == forwarded[key], method
        assert _without_protocols(got[1]["context"]) == _without_protocols(
            forwarded.get("context")
        ), method
        assert got[1]["user_id"] == forwarded.get("userId")
    return sent


# -- the imported Segment plan with planted PII ----------------------------------------------
@pytest.fixture(scope="module")
def segment_client_side() -> Plan:
    plan = import_segment(segment_export(), source="segment.json")
    return dataclasses.replace(plan, pii={"client_side": True})


def _planned_call(
    event: dict[str, Any], planned: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The client's kwargs for a corpus event and the event as the client sends it (the
    client's typed methods take only planned properties)."""
    props = {k: v for k, v in event["properties"].items() if k in planned}
    context = {**event["context"], "protocols": {"event_version": 1}}
    kwargs = {**props, "user_id": event["userId"], "context": event["context"]}
    return kwargs, {**event, "properties": props, "context": context}


def test_planted_pii_leaves_the_client_as_it_leaves_the_pipeline(
    segment_client_side: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = write_package(segment_client_side, tmp_path, "seg_client")
    rule = segment_client_side.event("Order Placed")
    planned = set(rule.payload["properties"])  # type: ignore[index]
    events, planted = corpus(160, seed=6)
    calls, inputs = [], []
    for event in events:
        kwargs, sent_event = _planned_call(event, planned)
        calls.append(("order_placed", kwargs))
        inputs.append(sent_event)
    result = run_client(package, calls)
    enforcer = _compile(segment_client_side, monkeypatch)
    assert assert_conforms(enforcer, calls, inputs, result) == len(events)
    # and the planted values are gone from what the client sent (planned positions)
    text = json.dumps(result["sent"], ensure_ascii=False)
    kept = [p for p in planted if p.position != "unplanned" and json.dumps(p.text)[1:-1] in text]
    assert kept == [], [(p.category, p.position) for p in kept[:5]]


# -- the example plan: hash, mask, drop and reject defaults -----------------------------------
@pytest.fixture(scope="module")
def shop_client_side(ecommerce: Plan) -> Plan:
    return dataclasses.replace(ecommerce, pii={**ecommerce.pii, "client_side": True})


_IN_TEXT = [
    "jane.roe@example.org", "+44 20 7946 0958", "4242 4242 4242 4242", "DE89370400440532013000",
    "198.51.100.23", "536-22-1234", "sk_live_a1B2c3D4e5F6g7H8i9J0k1L2", "2001:db8:5::17",
]  # fmt: skip


def _shop_calls(n: int, seed: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(method, kwargs, the call the SDK sends): searches with PII in the query, identify
    and sign-up with declared PII, carts with PII in nested and array positions."""
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for i in range(n):
        pii = rng.choice(_IN_TEXT)
        context: dict[str, Any] = {"ip": f"203.0.113.{i % 250 + 1}",
                                   "traits": {"email": f"u{i}@example.com", "memo": pii}}
        user = f"u-{i}"
        choice = i % 4
        if choice == 0:
            query = rng.choice(("gift for {}", "{}", "call {} about mugs", "mugs")).format(pii)
            kwargs: dict[str, Any] = {"query": query}
            method, event, kind = "products_searched", "Products Searched", "track"
        elif choice == 1:
            kwargs = {"email": f"Jane{i}@Example.com", "phone": "+44 20 7946 0958",
                      "first_name": "Jane", "plan": "pro"}  # fmt: skip
            method, event, kind = "identify", None, "identify"
        elif choice == 2:
            kwargs = {"method": "email", "email": f"j{i}@example.com", "first_name": "Ann",
                      "referral_code": rng.choice(("R-1", pii[:32]))}  # fmt: skip
            method, event, kind = "signed_up", "Signed Up", "track"
        else:
            product = {"product_id": f"p{i}", "price": 9.5, "name": "Mug",
                       "coupon": rng.choice(("SPRING", pii[:64])),
                       "notes": {"gift_message": f"for {pii}"}}  # fmt: skip
            kwargs = {"cart_id": f"c{i}", "products": [product]}
            method, event, kind = "cart_viewed", "Cart Viewed", "track"
        call: dict[str, Any] = {"type": kind, "userId": user, "messageId": f"m{i}",
                                "timestamp": "2026-12-01T10:00:00Z"}  # fmt: skip
        if kind == "track":
            call["event"] = event
            call["properties"] = kwargs
            call["context"] = {**context, "protocols": {"event_version": 1}}
        else:
            call["traits"] = kwargs
            call["context"] = context
        out.append((method, {**kwargs, "user_id": user, "context": context}, call))
    return out


def test_example_plan_client_matches_enforce(
    shop_client_side: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = write_package(shop_client_side, tmp_path, "shop_client_side")
    triples = _shop_calls(400, seed=14)
    calls = [(m, kw) for m, kw, _ in triples]
    result = run_client(package, calls)
    enforcer = _compile(shop_client_side, monkeypatch)
    sent = assert_conforms(enforcer, calls, [c for _, _, c in triples], result)
    # cards and API keys block the call (payment_card and credentials: reject) ...
    assert 0 < sent < len(calls) and result["rejected"]
    # ... context.ip is masked and identify traits hashed, as the pipeline does
    identify = next(s for s in result["sent"] if s and s[0] == "identify")
    assert identify[1]["context"]["ip"].endswith(".0")
    assert len(identify[1]["traits"]["email"]) == 64


# -- one source ---------------------------------------------------------------------------------
def test_vendored_actions_and_detectors_equal_their_source(shop_client_side: Plan) -> None:
    files = generate_python(shop_client_side, package="vendored")
    for generated, source in VENDORED.items():
        header, _, body = files[generated].partition("\n# Regenerate: ")
        body = body.split("\n", 1)[1]
        assert header.startswith("# Generated by trackplan")
        source_text = (PII_DIR / source).read_text(encoding="utf-8")
        assert body == vendored_text(source_text), generated
        # the only difference: the copies import each other relatively
        assert len(body.splitlines()) == len(source_text.splitlines())
    # at module level the copies import the standard library and each other only; a
    # function-level import (the opt-in national detectors, which a client never enables)
    # is proved never to run by the client's own `python -I -S` runs above
    for name in VENDORED:
        imported = set()
        for node in ast.parse(files[name]).body:
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add((node.module or "").split(".")[0])
        assert imported - {"jsonschema_rs"} <= sys.stdlib_module_names, (name, imported)


def test_client_side_output_is_byte_identical_run_to_run(shop_client_side: Plan) -> None:
    first = generate_python(shop_client_side, package="same")
    assert generate_python(shop_client_side, package="same") == first


def test_hostile_keys_enter_the_client_as_literals_only(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = ["'); import os; os._exit(3) #", '"""', "\\", "a\nb", "__import__('os')"]
    props = {name: {"type": "string", "x-pii": "email"} for name in hostile}
    props["note"] = {"type": "string"}
    doc = segment_export()
    track = doc["rules"][1]["jsonSchema"]["properties"]["properties"]
    track["properties"] = props
    plan = dataclasses.replace(import_segment(doc, source="s.json"), pii={"client_side": True})
    package = write_package(plan, tmp_path, "hostile_client")
    kwargs = {"user_id": "u", "note": "write to ann@example.org"}
    result = run_client(package, [("order_placed", kwargs)])
    enforcer = _compile(plan, monkeypatch)
    event = {"type": "track", "event": "Order Placed", "userId": "u",
             "properties": {"note": "write to ann@example.org"},
             "context": {"protocols": {"event_version": 1}}}  # fmt: skip
    assert result["sent"][0][1]["properties"] == enforcer.enforce(event).event["properties"]
    assert result["sent"][0][1]["properties"]["note"] == "write to [REDACTED]"
