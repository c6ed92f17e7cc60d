"""Helpers of the privacy tests: small plans with destinations, and running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from trackplan.plan.load import build_plan
from trackplan.plan.model import Plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "plans" / "ecommerce"

#: A (no category), B (analytics), C (advertising and analytics), D (functional)
DESTINATIONS: list[dict[str, Any]] = [
    {"name": "A", "legal_basis": "contract", "region": "EU", "dpa": True},
    {"name": "B", "legal_basis": "consent", "region": "US", "transfer": "scc", "dpa": True,
     "consent": ["analytics"]},
    {"name": "C", "legal_basis": "consent", "region": "EU", "dpa": True,
     "consent": ["advertising", "analytics"]},
    {"name": "D", "legal_basis": "consent", "region": "DE", "dpa": True,
     "consent": ["functional"]},
]
CATEGORIES = {"categories": {"analytics": "Analytics.", "advertising": "Ads.",
                             "functional": "Chat."}}


def make_plan(destinations: list[Any] | None = None,
              consent: dict[str, Any] | None = None, **sections: Any) -> Plan:
    """A one-file plan with one event (``Viewed``) and the given privacy sections."""
    doc: dict[str, Any] = {
        "trackplan": 1,
        "name": "privacy-test",
        "controls": {"track": {"unplanned_events": "block"}},
        "events": [{"name": "Viewed", "properties": {
            "type": "object", "properties": {"item": {"type": "string"}}}}],
        "destinations": DESTINATIONS if destinations is None else destinations,
        "consent": CATEGORIES if consent is None else consent,
    }
    doc.update(sections)
    return build_plan("plan.yaml", doc)


def viewed(**over: Any) -> dict[str, Any]:
    """A valid ``Viewed`` track call."""
    event: dict[str, Any] = {"type": "track", "event": "Viewed", "userId": "u-1",
                             "properties": {"item": "sku-1"}}
    event.update(over)
    return event


def run_cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m trackplan ARGS`` as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True, text=True, cwd=cwd or ROOT, timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
    )
