"""Client-side PII actions: applied by a verbatim copy of trackplan.pii.actions."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from trackplan.codegen.pii import actions_source
from trackplan.pii.actions import REDACTED, hash_value
from trackplan.plan.model import Plan

from .conftest import RecordingSdk, import_package, run_checkers, write_package

KEY = "client-side-test-key"


@pytest.fixture(scope="module")
def client_side(ecommerce: Plan) -> Plan:
    return dataclasses.replace(ecommerce, pii={**ecommerce.pii, "client_side": True})


@pytest.fixture(scope="module")
def pii_pkg(client_side: Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(client_side, tmp_path_factory.mktemp("pii"), "pii_tracking")


@pytest.fixture(scope="module")
def pii(pii_pkg: Path) -> ModuleType:
    return import_package(pii_pkg)


def test_actions_are_copied_verbatim_not_rewritten(pii_pkg: Path) -> None:
    text = (pii_pkg / "_pii.py").read_text(encoding="utf-8")
    body = text.split("\n", 4)[4]  # after the four header lines
    assert body == actions_source()


def test_no_pii_module_unless_the_plan_asks(ecommerce: Plan) -> None:
    from trackplan.codegen.python import generate_python

    files = generate_python(ecommerce, package="t")
    assert "_pii.py" not in files
    assert "_tp_protect" not in files["__init__.py"]


def test_client_hashes_redacts_and_drops_as_the_plan_says(
    pii: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKPLAN_HASH_KEY", KEY)
    sdk = RecordingSdk()
    client = pii.Client(sdk, validate=True)
    client.order_completed_v1(
        user_id="u", order_id="o", total=1.0, currency="EUR",
        products=[pii.Product(product_id="p", price=1.0)],
        email="Jane.Doe@Example.com", shipping_address={"city": "Lyon"},
    )
    client.signed_up(user_id="u", method="email", email="a@b.co", phone="+44 20 7946 0958",
                     first_name="Jane")
    client.identify(user_id="u", email="a@b.co", last_name="Doe", plan="pro")
    (_, order), (_, signup), (_, ident) = sdk.calls
    props = order["properties"]
    assert props["email"] == hash_value("email", "jane.doe@example.com", KEY.encode())
    assert "shipping_address" not in props  # address: drop
    assert signup["properties"]["phone"] == hash_value("phone", "+442079460958", KEY.encode())
    assert signup["properties"]["first_name"] == REDACTED  # x-pii: name, default redact
    assert signup["properties"]["email"] == hash_value("email", "a@b.co", KEY.encode())
    assert ident["traits"] == {
        "email": hash_value("email", "a@b.co", KEY.encode()), "last_name": REDACTED,
        "plan": "pro",
    }
    # validation ran on what the app passed, before the actions (a hash is no e-mail)
    with pytest.raises(pii.ValidationError):
        client.signed_up(user_id="u", method="email", email="no at sign")


def test_reject_blocks_the_event_in_the_client(
    ecommerce: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = ecommerce.event("Products Searched")
    payload = dict(rule.payload)  # type: ignore[arg-type]
    props = dict(payload["properties"])
    props["card"] = {"type": "string", "x-pii": {"category": "payment_card", "action": "reject"}}
    payload["properties"] = props
    changed = dataclasses.replace(rule, payload=payload, extra={"x-pii-client-side": True})
    plan = dataclasses.replace(
        ecommerce, rules=tuple(changed if r is rule else r for r in ecommerce.rules)
    )
    mod = import_package(write_package(plan, tmp_path, "reject_tracking"))
    monkeypatch.setenv("TRACKPLAN_HASH_KEY", KEY)
    heard: list[str] = []
    sdk = RecordingSdk()
    client = mod.Client(sdk, on_violation=lambda m, v: heard.append(v[0].pointer))
    client.products_searched(user_id="u", query="mugs", card="4242 4242 4242 4242")
    client.products_searched(user_id="u", query="mugs")
    assert heard == ["/properties/card"]  # a pointer into the call, as the pipeline's
    assert [c[1]["properties"] for c in sdk.calls] == [{"query": "mugs"}]
    assert list(mod.PII_TREES) == ["products_searched"]  # the one rule that asks


def test_missing_key_fails_at_construction_naming_the_variable(
    pii: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACKPLAN_HASH_KEY", raising=False)
    with pytest.raises(RuntimeError, match="TRACKPLAN_HASH_KEY"):
        pii.Client(RecordingSdk())


def test_pii_package_passes_mypy_and_ruff(pii_pkg: Path, mypy_cache: Path) -> None:
    mypy, ruff = run_checkers([pii_pkg], pii_pkg.parent, mypy_cache)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    env = {k: v for k, v in os.environ.items() if k != "TRACKPLAN_HASH_KEY"}
    # importing needs no key; only a client that will hash does
    assert subprocess.run([sys.executable, "-c", f"import {pii_pkg.name}"],
                          cwd=pii_pkg.parent, env=env, timeout=60).returncode == 0


def test_check_reports_and_write_removes_a_file_no_longer_generated(
    client_side: Plan, ecommerce: Plan, tmp_path: Path
) -> None:
    from trackplan.codegen.cli import stale_files, write_package
    from trackplan.codegen.python import generate_python

    out = tmp_path / "tracking"
    write_package(generate_python(client_side, package="tracking"), out)
    assert (out / "_pii.py").is_file()
    plain = generate_python(ecommerce, package="tracking")
    assert "_pii.py" in stale_files(plain, out)
    write_package(plain, out)
    assert not (out / "_pii.py").exists()
    assert stale_files(plain, out) == []
