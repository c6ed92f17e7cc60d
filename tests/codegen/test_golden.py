"""Golden output for a small plan, and byte-identical output across processes.

Update the golden files after an intended change with
``TRACKPLAN_UPDATE_GOLDEN=1 python -m pytest tests/codegen/test_golden.py``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trackplan.codegen.python import generate_python
from trackplan.plan.load import build_plan
from trackplan.plan.model import Plan

from .conftest import ROOT

GOLDEN = Path(__file__).resolve().parent / "golden" / "small"


def small_plan() -> Plan:
    doc = {
        "name": "Small",
        "version": "2.0.0",
        "definitions": {"money": {"type": "number", "minimum": 0}},
        "events": [
            {"name": "Item Bought", "version": 1, "description": "An item was bought.",
             "properties": {"type": "object", "required": ["sku"], "properties": {
                 "sku": {"type": "string", "pattern": "^[A-Z]+$"}}}},
            {"name": "Item Bought", "version": 2, "description": "v2 adds the price.",
             "properties": {"type": "object", "required": ["sku", "price"], "properties": {
                 "sku": {"type": "string", "description": "Stock keeping unit."},
                 "price": {"$ref": "#/definitions/money"},
                 "size": {"enum": ["S", "M", "L"]},
                 "note": {"type": ["string", "null"]},
                 "tags": {"type": "array", "items": {"type": "string"}},
                 "where": {"type": "object", "properties": {"city": {"type": "string"}}},
             }}},
        ],
        "group": {"traits": {"type": "object", "required": ["name"],
                             "properties": {"name": {"type": "string"}}}},
    }
    return build_plan("small.yaml", doc, source="small.yaml")


def test_generated_files_match_the_golden_copy() -> None:
    files = generate_python(small_plan(), package="small",
                            command="trackplan codegen python small.yaml --out small")
    if os.environ.get("TRACKPLAN_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (GOLDEN / (name + ".golden")).write_text(text, encoding="utf-8")
    if not GOLDEN.is_dir():
        pytest.fail("no golden files: run with TRACKPLAN_UPDATE_GOLDEN=1 once")
    for name, text in files.items():
        expected = (GOLDEN / (name + ".golden")).read_text(encoding="utf-8")
        assert text == expected, f"{name} changed: update the golden files if intended"


_DIGEST = (
    "import hashlib, json, sys\n"
    "from trackplan.plan.load import load_plan\n"
    "from trackplan.codegen.python import generate_python\n"
    "files = generate_python(load_plan(sys.argv[1]), package='t', command='c')\n"
    "print(hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest())\n"
)


def test_output_is_identical_across_processes_and_hash_seeds() -> None:
    plan = str(ROOT / "plans" / "ecommerce")
    digests = set()
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", _DIGEST, plan], env=env,
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        digests.add(done.stdout.strip())
    assert len(digests) == 1
    assert len(hashlib.sha256().hexdigest()) == len(digests.pop())
