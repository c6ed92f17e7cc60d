"""The same events through every surface: equal decisions, violations and forwarded PII.

Each test compares one aspect of one surface with ``enforce`` on the same events (for a
batch representation: on the events as that representation can say them, see
:data:`tests.conformance.representations.GAPS`). Divergences that exist today are marked
``xfail(strict=True)`` in :data:`KNOWN`, naming the item of issue 14 that fixes them; once
fixed, the strict mark fails and must be removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conformance.events import PII_VALUES
from tests.conformance.harness import BATCH, CORPORA, DESTINATIONS, Harness
from tests.conformance.records import ABSENT, ASPECTS, PII, Record, diverging, string_leaves
from tests.conformance.representations import REPRESENTATIONS

_SCAN_ASPECTS = ("schema-violations", "envelope-violations", "pii-violations")
_REDACT_ASPECTS = ("decision", "forwarded-pii")

#: (corpus, surface, aspect) -> why it diverges today. Nothing else may diverge; nothing
#: does now (each entry was removed with the fix that made it pass).
KNOWN: dict[tuple[str, str, str], str] = {}


def _cases() -> Iterator[Any]:
    for corpus in CORPORA:
        surfaces: list[tuple[str, tuple[str, ...]]] = [("validate", ASPECTS)]
        for rep in BATCH[corpus]:
            surfaces.append((f"scan:{rep}", _SCAN_ASPECTS))
            surfaces.append((f"redact:{rep}", _REDACT_ASPECTS))
        surfaces += [(f"route:{d}", ASPECTS) for d in DESTINATIONS]
        if corpus == "generated":
            surfaces += [
                ("client", ("decision", "forwarded-pii")),
                ("enforce:no-pii-section", ASPECTS),
            ]
        for surface, aspects in surfaces:
            for aspect in aspects:
                reason = KNOWN.get((corpus, surface, aspect))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                yield pytest.param(
                    corpus, surface, aspect, marks=marks, id=f"{corpus}-{surface}-{aspect}"
                )


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Harness]:
    return {c: Harness(c, tmp_path_factory.mktemp(f"conformance-{c}")) for c in CORPORA}


def _pair(h: Harness, surface: str) -> tuple[dict[str, Record], dict[str, Record]]:
    """(reference records, the surface's records) on the events the surface takes."""
    kind, _, arg = surface.partition(":")
    if kind == "validate":
        return h.reference, h.validate
    if kind == "scan":
        return h.reference_for(arg), h.scan(arg)
    if kind == "redact":
        return h.reference_for(arg), h.redact(arg)
    if kind == "route":
        return h.reference, h.routes[arg]
    if kind == "client":
        found = h.client
        # the client checks payloads only in development mode and leaves the envelope to the
        # SDK: it is compared on events whose only violations (if any) are PII
        ref = {
            k: r
            for k, r in h.client_reference.items()
            if k in found and all(t == PII for t, _ in r.violations or ())
        }
        return ref, {k: found[k] for k in ref}
    if surface == "enforce:no-pii-section":
        without, restated = h.no_pii_section
        return restated, without
    raise AssertionError(surface)


def _kind(value: Any, raw: str) -> str:
    """How a forwarded value relates to the input, without showing it."""
    if value == ABSENT:
        return "absent"
    return "unchanged" if value == raw else "changed"


def _describe(events: list[Any], diff: dict[str, tuple[Any, Any]], aspect: str) -> str:
    by_id = {e["messageId"]: e for e in events}
    lines = []
    for key, (want, got) in list(diff.items())[:6]:
        if aspect == "forwarded-pii":
            raw = {p: path for p, path in string_leaves(by_id[key])}
            detail = ", ".join(
                f"{p}: enforce {_kind(want[p], _raw(by_id[key], raw[p]))}, surface "
                f"{_kind(got[p], _raw(by_id[key], raw[p]))}"
                for p in sorted(want)
            )
        else:
            detail = f"enforce only {want}, surface only {got}"
        lines.append(f"  {key}: {detail}")
    return "\n".join(lines)


def _raw(event: Any, path: list[Any]) -> Any:
    for p in path:
        event = event[p]
    return event


@pytest.mark.parametrize(("corpus", "surface", "aspect"), list(_cases()))
def test_surface_agrees_with_enforce(
    harnesses: dict[str, Harness], corpus: str, surface: str, aspect: str
) -> None:
    h = harnesses[corpus]
    ref, found = _pair(h, surface)
    given = len(h.events_for(surface))
    least = given * 9 // 10 if surface == "client" else min(100, given // 4)
    assert len(ref) >= least, f"{surface} compared on {len(ref)} of {given} events"
    if aspect == "forwarded-pii":  # compared where both forward the event: not on none
        both = sum(bool(r.allowed and found[k].allowed) for k, r in ref.items() if k in found)
        allowed = sum(bool(r.allowed) for r in ref.values())
        assert both >= allowed // 3, (
            f"{surface} forwards {both} of the {allowed} events enforce allows"
        )
    if surface.startswith("route:") and aspect == "forwarded-pii":
        diff = _leaks(h.events, ref, found)
    else:
        diff = diverging(ref, found, aspect)
    assert not diff, (
        f"{surface} and enforce disagree on {aspect} for {len(diff)} of {len(ref)} events:\n"
        + _describe(h.events_for(surface), diff, aspect)
    )


def _leaks(events: list[Any], ref: dict[str, Record], found: dict[str, Record]) -> dict[str, Any]:
    """A destination's copy may differ from enforce's where the destination's form is
    stricter, but never forwards a value as sent where enforce changes or drops it."""
    by_id = {e["messageId"]: e for e in events}
    out: dict[str, tuple[Any, Any]] = {}
    for key, rec in found.items():
        base = ref[key]
        if not (base.allowed and rec.pii is not None and base.pii is not None):
            continue
        paths = dict(string_leaves(by_id[key]))
        bad = {
            p: v
            for p, v in rec.pii.items()
            if base.pii.get(p) != _raw(by_id[key], paths[p]) and v == _raw(by_id[key], paths[p])
        }
        if bad:
            out[key] = ({p: base.pii[p] for p in bad}, bad)
    return out


def test_every_category_is_planted_in_every_position(harnesses: dict[str, Harness]) -> None:
    """The generated corpus is not vacuous: enforce reports PII of every category at every
    kind of position, and each representation holds most events."""
    h = harnesses["generated"]
    enforcer = h.enforcer
    categories: set[str] = set()
    positions: set[str] = set()
    for event in h.events:
        for v in enforcer.enforce(event).violations:
            if v.type == PII:
                categories.update(c for c in _CATEGORIES if c in v.message)
                positions.add(_position(v.pointer))
    assert categories == set(_CATEGORIES), sorted(set(_CATEGORIES) - categories)
    assert {"payload", "nested", "array", "traits", "context.traits"} <= positions
    for rep in REPRESENTATIONS:
        held = len(h.reference_for(rep))
        assert held >= len(h.events) // 4, f"{rep} holds {held} of {len(h.events)} events"


def _position(pointer: str) -> str:
    parts = pointer.split("/")[1:]
    if parts[:2] == ["context", "traits"]:
        return "context.traits"
    if parts[0] == "context":
        return "context." + parts[1]
    if any(p.isdigit() for p in parts):
        return "array"
    if parts[0] == "traits":
        return "traits"
    return "payload" if len(parts) == 2 else "nested"


_CATEGORIES = tuple(PII_VALUES)


def test_detected_value_gets_its_category_action(harnesses: dict[str, Harness]) -> None:
    """The example plan rejects payment cards and credentials: an event where one is
    detected is blocked, on every surface (enforce here; the others follow by the above)."""
    h = harnesses["generated"]
    enforcer = h.enforcer
    allowed = 0
    for event in h.events:
        result = enforcer.enforce(event)
        if result.allowed and any(
            v.type == PII and ("payment_card" in v.message or "credentials" in v.message)
            for v in result.violations
        ):
            allowed += 1
    assert allowed == 0, f"{allowed} events with a detected card or credential were allowed"
