"""Segment's reserved consent event, part of every plan.

``Segment Consent Preference Updated`` is accepted by every plan and must carry
``context.consent.categoryPreferences`` (Segment rejects it otherwise). A plan may define
its own versions of the event; the requirement is added to each. The engine compiles
these rules beside the plan's own (:func:`reserved_rules`).
"""

from __future__ import annotations

from typing import Any

from trackplan.plan.model import CallControls, Plan, Rule

__all__ = ["CONSENT_EVENT", "PREFERENCES_REQUIRED", "reserved_rules"]

#: Segment's reserved event; accepted in every plan, must carry categoryPreferences.
CONSENT_EVENT = "Segment Consent Preference Updated"

#: What the reserved event's call must hold.
PREFERENCES_REQUIRED: dict[str, Any] = {
    "type": "object",
    "required": ["context"],
    "properties": {
        "context": {
            "type": "object",
            "required": ["consent"],
            "properties": {
                "consent": {
                    "type": "object",
                    "required": ["categoryPreferences"],
                    "properties": {
                        "categoryPreferences": {
                            "type": "object",
                            "additionalProperties": {"type": "boolean"},
                        }
                    },
                }
            },
        }
    },
}


def reserved_rules(plan: Plan) -> list[tuple[Rule, CallControls]]:
    """Rules for Segment's reserved consent event, with the controls they run under.

    Every version the plan defines gets the ``categoryPreferences`` requirement added to
    its call schema; a plan without the event gets one version that requires only that.
    Violations of these rules always block: Segment rejects the event without preferences.
    """
    track = plan.controls.track
    controls = CallControls(
        unplanned_events="allow",
        unplanned_properties=track.unplanned_properties,
        violations="block",
        common_violations=track.common_violations,
    )
    own = plan.versions(CONSENT_EVENT)
    if not own:
        controls = CallControls("allow", "allow", "block", track.common_violations)
        rule = Rule(
            "track",
            CONSENT_EVENT,
            1,
            "Segment's reserved consent event.",
            None,
            PREFERENCES_REQUIRED,
            plan.draft,
            "reserved",
            "",
        )
        return [(rule, controls)]
    out = []
    for r in own:
        call = {"allOf": [dict(r.call), PREFERENCES_REQUIRED]} if r.call else PREFERENCES_REQUIRED
        out.append(
            (
                Rule(
                    r.kind,
                    r.name,
                    r.version,
                    r.description,
                    r.payload,
                    call,
                    r.draft,
                    r.source,
                    r.pointer,
                    r.extra,
                ),
                controls,
            )
        )
    return out
