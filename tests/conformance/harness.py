"""Run every surface on the conformance events once per session, and keep their records.

Two corpora: the bundled examples (``examples/events.ndjson`` under ``plans/ecommerce``,
through the surfaces that read NDJSON), and the generated events under the example plan
with unplanned properties allowed (so PII under unplanned keys is forwarded, and detectors
must find it), through every surface and representation.
"""

from __future__ import annotations

import shutil
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from tests.conformance.events import Generation, example_events
from tests.conformance.records import Record
from tests.conformance.representations import (
    REPRESENTATIONS,
    normalise,
    representable,
    write,
)
from tests.conformance.surfaces import (
    client_records,
    enforce_records,
    route_records,
    scan_records,
    validate_records,
)
from trackplan import compile_plan, load_plan

__all__ = ["Harness", "DESTINATIONS", "CORPORA", "BATCH"]

ROOT = Path(__file__).resolve().parents[2]
ECOMMERCE = ROOT / "plans" / "ecommerce"
DESTINATIONS = ("Amplitude", "Salesforce", "Google Ads", "Snowflake")
CORPORA = ("examples", "generated")
#: representations each corpus goes through (the examples hold type mismatches: NDJSON)
BATCH = {"examples": ("ndjson",), "generated": tuple(REPRESENTATIONS)}

Records = dict[str, Record]


def plan_variant(target: Path, edit: Any) -> Path:
    """A copy of the example plan with ``edit(doc)`` applied to its ``plan.yaml``."""
    shutil.copytree(ECOMMERCE, target)
    doc = yaml.safe_load((target / "plan.yaml").read_text(encoding="utf-8"))
    edit(doc)
    (target / "plan.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return target


def _open(doc: dict[str, Any]) -> None:
    """Unplanned properties and traits forwarded, so PII under unplanned keys reaches out."""
    for kind in ("track", "identify"):
        doc["controls"][kind]["unplanned_properties"] = "allow"


def _client_side(doc: dict[str, Any]) -> None:
    _open(doc)
    doc["pii"]["client_side"] = True


def _no_pii_section(doc: dict[str, Any]) -> None:
    _open(doc)
    del doc["pii"]


def _explicit_default_pii(doc: dict[str, Any]) -> None:
    """The same plan with a ``pii:`` section that only restates a default."""
    _open(doc)
    doc["pii"] = {"hash_key_env": "TRACKPLAN_HASH_KEY"}


class Harness:
    """Surfaces' records for one corpus, computed on first use."""

    def __init__(self, corpus: str, tmp: Path) -> None:
        self.corpus = corpus
        self.tmp = tmp
        if corpus == "generated":  # both drawn in parallel, in fresh interpreters
            self._drawn, self._client_drawn = Generation(), Generation(valid=True)
            self.events = self._drawn.events
        else:
            self.events = example_events()

    # -- plans -------------------------------------------------------------------------
    @cached_property
    def plan_dir(self) -> Path:
        if self.corpus == "examples":
            return ECOMMERCE
        return plan_variant(self.tmp / "plan", _open)

    @cached_property
    def plan(self) -> Any:
        return load_plan(self.plan_dir)

    @cached_property
    def enforcer(self) -> Any:
        return compile_plan(self.plan)

    # -- the reference -------------------------------------------------------------------
    @cached_property
    def reference(self) -> Records:
        return enforce_records(self.enforcer, self.events)

    def reference_for(self, rep: str) -> Records:
        """``enforce`` on the events as ``rep`` can say them, for those it can hold."""
        return self._rep(rep)[0]

    def _rep(self, rep: str) -> tuple[Records, Records, Records]:
        cache: dict[str, Any] = self.__dict__.setdefault("_reps", {})
        if rep not in cache:
            events = [normalise(rep, e) for e in self.events if representable(rep, e)]
            written = write(rep, events, self.tmp / rep)
            scanned, redacted = scan_records(self.plan, written, events, self.tmp / f"{rep}-clean")
            cache[rep] = (enforce_records(self.enforcer, events), scanned, redacted)
        return cache[rep]  # type: ignore[no-any-return]

    def excluded(self, rep: str) -> int:
        """Events ``rep`` cannot hold (left out of its comparison)."""
        return sum(not representable(rep, e) for e in self.events)

    # -- surfaces ------------------------------------------------------------------------
    def scan(self, rep: str) -> Records:
        return self._rep(rep)[1]

    def redact(self, rep: str) -> Records:
        return self._rep(rep)[2]

    @cached_property
    def validate(self) -> Records:
        return validate_records(self.plan_dir, self.events, self.tmp)

    @cached_property
    def routes(self) -> dict[str, Records]:
        return route_records(self.plan_dir, self.events, self.tmp)

    @cached_property
    def client_plan(self) -> Any:
        return load_plan(plan_variant(self.tmp / "client-plan", _client_side))

    @cached_property
    def client(self) -> Records:
        from tests.codegen.conftest import import_package, write_package

        package = write_package(self.client_plan, self.tmp, "conformance_client")
        module = import_package(package)

        def factory(sdk: Any) -> Any:
            return module.Client(sdk, on_violation=lambda message, found: None)

        return client_records(factory, self.client_events)

    @cached_property
    def client_events(self) -> list[dict[str, Any]]:
        """Events the typed client can express: planned, with values the plan accepts."""
        return self._client_drawn.events

    @cached_property
    def client_reference(self) -> Records:
        return enforce_records(compile_plan(self.client_plan), self.client_events)

    def events_for(self, surface: str) -> list[dict[str, Any]]:
        """The events ``surface`` is given."""
        return self.client_events if surface == "client" else self.events

    @cached_property
    def no_pii_section(self) -> tuple[Records, Records]:
        """(enforce with the plan's ``pii:`` section removed, enforce with one that only
        restates a default): a plan that declares PII must detect without opting in."""
        without = compile_plan(load_plan(plan_variant(self.tmp / "no-pii", _no_pii_section)))
        restated = load_plan(plan_variant(self.tmp / "pii-default", _explicit_default_pii))
        return (
            enforce_records(without, self.events),
            enforce_records(compile_plan(restated), self.events),
        )
