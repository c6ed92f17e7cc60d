"""Generated package for the example plan: deterministic, typed, lint-clean, checkable in CI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from trackplan.codegen.python import GENERATOR, generate_python
from trackplan.plan.model import Plan

from .conftest import ROOT, run_checkers, write_package


def test_output_is_byte_identical_when_generated_twice(ecommerce: Plan) -> None:
    first = generate_python(ecommerce, package="tracking", command="trackplan codegen x")
    second = generate_python(ecommerce, package="tracking", command="trackplan codegen x")
    assert first == second
    assert {"__init__.py", "_runtime.py", "_schemas.py", "py.typed"} <= set(first)


def test_header_names_plan_version_digest_and_regenerate_command(ecommerce: Plan) -> None:
    command = "trackplan codegen python plans/ecommerce --out app/tracking"
    files = generate_python(ecommerce, package="tracking", command=command)
    for name, text in files.items():
        if not name.endswith(".py"):
            continue
        head = text.splitlines()[:4]
        assert GENERATOR in head[0]
        assert head[1] == f"# Plan: {ecommerce.name} version {ecommerce.version}"
        assert head[2] == f"# Plan digest: sha256:{ecommerce.digest()}"
        assert head[3] == f"# Regenerate: {command}"
        ast.parse(text)


def test_every_event_version_has_a_method_and_a_class(shop: object, ecommerce: Plan) -> None:
    methods = shop.METHODS  # type: ignore[attr-defined]
    tracked = {(v[1], v[2]) for v in methods.values() if v[0] == "track"}
    assert tracked == {(r.name, r.version) for r in ecommerce.events}
    # the newest version gets the plain name
    assert methods["order_completed"][1:3] == ("Order Completed", 2)
    assert methods["order_completed_v1"][1:3] == ("Order Completed", 1)
    assert {"identify", "group"} <= set(methods)
    for cls in ("OrderCompleted", "OrderCompletedV1", "Product", "IdentifyTraits", "GroupTraits"):
        assert cls in shop.__all__  # type: ignore[attr-defined]


GOOD = '''
from shop_tracking import Client, Product, Sdk


def send(sdk: Sdk) -> None:
    client = Client(sdk, validate=True)
    client.order_completed(
        user_id="u1", order_id="o1", checkout_id="c1", total=30.0, currency="EUR",
        products=[Product(product_id="p1", price=10.0, quantity=1)],
        payment_method="card",
    )
    client.identify(user_id="u1", plan="pro", newsletter=True)
    client.group(user_id="u1", group_id="g1", name="ACME", employees=12)
'''

BAD = '''
from shop_tracking import Client, Sdk

def send(sdk: Sdk) -> None:
    client = Client(sdk)
    client.order_completed(user_id="u1", order_id=1, checkout_id="c", total=1.0,
                           currency="EUR", products=[])
    client.order_completed(user_id="u1", order_id="o", total=1.0, currency="EUR",
                           products=[])
    client.signed_up(user_id="u1", method="myspace")
    client.product_added(user_id="u1", cart_id="c", product_id="p", price=1.0,
                         quantity=1, colour="red")
    client.signed_up(user_id="u1", method="email", email=None)
'''


IDENTITY = '''
from shop_tracking import Client, Sdk

def send(sdk: Sdk) -> None:
    client = Client(sdk)
    client.products_searched(query="x", user_id="u")
    client.products_searched(query="x", anonymous_id="a")
    client.page(user_id="u", anonymous_id="a", name="Home", path="/")
    client.alias(previous_id="a", user_id="u")
    client.products_searched(query="x")
    client.page(name="Home")
    client.identify(plan="pro")
    client.alias(previous_id="a")
'''


def test_a_call_needs_user_id_or_anonymous_id_in_the_types(
    shop_pkg: Path, mypy_cache: Path
) -> None:
    work = shop_pkg.parent
    (work / "identity_use.py").write_text(IDENTITY, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(mypy_cache),
         str(work / "identity_use.py")],
        cwd=work, capture_output=True, text=True, timeout=300,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    # the four calls with both, one or the other id pass; the four without are rejected
    assert {int(line.split(":")[1]) for line in errors} == {10, 11, 12, 13}, done.stdout
    assert all("No overload variant" in line or "Missing named argument" in line
               for line in errors), done.stdout


def test_generated_package_passes_mypy_strict_and_ruff_and_types_catch_misuse(
    shop_pkg: Path, mypy_cache: Path
) -> None:
    work = shop_pkg.parent
    (work / "good_use.py").write_text(GOOD, encoding="utf-8")
    mypy, ruff = run_checkers([shop_pkg, work / "good_use.py"], work, mypy_cache)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr

    (work / "bad_use.py").write_text(BAD, encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(mypy_cache),
         str(work / "bad_use.py")],
        cwd=work, capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 1
    errors = [line for line in bad.stdout.splitlines() if ": error:" in line]
    lines = {int(line.split(":")[1]) for line in errors}
    # wrong type, missing required property, value outside the enum, unknown property,
    # None for a property that is not nullable: each call is rejected
    assert lines == {6, 8, 10, 11, 13}, bad.stdout


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120,
    )


def test_cli_writes_then_check_passes_and_fails_naming_stale_files(tmp_path: Path) -> None:
    plan = str(ROOT / "plans" / "ecommerce")
    out = tmp_path / "tracking"
    done = _cli("codegen", "python", plan, "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "__init__.py").is_file()
    check = _cli("codegen", "python", plan, "--out", str(out), "--check", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    header = (out / "__init__.py").read_text(encoding="utf-8").splitlines()[3]
    # (a long path gets a noqa marker for line-length linters after it)
    # paths relative to the working directory (no git here) or absolute outside it
    assert header.startswith(f"# Regenerate: trackplan codegen python {plan} -o tracking")

    init = out / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + "# hand edit\n", encoding="utf-8")
    (out / "_schemas.py").unlink()
    stale = _cli("codegen", "python", plan, "--out", str(out), "--check", cwd=tmp_path)
    assert stale.returncode == 1
    assert f"stale: {out / '__init__.py'}" in stale.stderr
    assert f"stale: {out / '_schemas.py'}" in stale.stderr
    assert "_runtime.py" not in stale.stderr
    assert not (out / "_schemas.py").exists()  # --check writes nothing

    again = _cli("codegen", "python", plan, "--out", str(out), cwd=tmp_path)
    assert again.returncode == 0
    assert _cli("codegen", "python", plan, "--out", str(out), "--check",
                cwd=tmp_path).returncode == 0


def test_cli_refuses_an_output_directory_that_is_not_a_package_name(tmp_path: Path) -> None:
    done = _cli("codegen", "python", str(ROOT / "plans" / "ecommerce"), "--out",
                str(tmp_path / "my-tracking"), cwd=tmp_path)
    assert done.returncode == 2
    assert "not a Python identifier" in done.stderr


def test_write_package_helper_matches_cli_output(ecommerce: Plan, tmp_path: Path) -> None:
    pkg = write_package(ecommerce, tmp_path, "tracking")
    files = generate_python(ecommerce, package="tracking")
    for name, text in files.items():
        assert (pkg / name).read_text(encoding="utf-8") == text
