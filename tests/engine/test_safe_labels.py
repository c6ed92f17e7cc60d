"""Labels printed for event names and types pass the PII detectors (issue 15, item 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trackplan.pii.labels import MAX_LABEL, safe_label

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "trackplan", *args], input=stdin,
                          capture_output=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_safe_label_masks_then_cuts() -> None:
    assert safe_label("Order Completed") == "Order Completed"
    assert safe_label("Searched jane.doe@example.com") == "Searched <email>"
    long = "x" * 95 + " jane.doe.private@gmail.com"
    assert "jane" not in safe_label(long) and len(safe_label(long)) <= MAX_LABEL


def test_validate_and_route_never_print_pii_in_names_or_types(tmp_path: Path) -> None:
    plan = tmp_path / "p"
    (plan / "events").mkdir(parents=True)
    (plan / "plan.yaml").write_text("trackplan: 1\nname: P\n")
    (plan / "events" / "oc.yaml").write_text(
        "name: Order Completed\nproperties:\n  type: object\n")
    events = (b'{"type":"track","event":"Searched jane.doe@example.com","userId":"u"}\n'
              b'{"type":"mail jane.doe@example.com","userId":"u"}\n')
    for args in (("validate", str(plan), "-"), ("validate", str(plan), "-", "--format", "json"),
                 ("route", str(plan), "-"), ("route", str(plan), "-", "--format", "text")):
        result = _run(*args, stdin=events)
        assert result.returncode in (0, 1), result.stderr
        assert b"jane" not in result.stdout + result.stderr, args
        assert b"<email>" in result.stdout, args
