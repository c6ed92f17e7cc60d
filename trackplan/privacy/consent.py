"""Consent routing: which destinations an event goes to, and the copy each one gets.

Routing wraps :meth:`Enforcer.enforce` (a blocked event goes nowhere), then decides
per destination with Segment's consent semantics, in this order:

1. consent, read from ``context.consent.categoryPreferences``:

   - no ``context.consent``, an empty consent object, or one without
     ``categoryPreferences``: every destination receives;
   - an empty ``categoryPreferences``: every category counts as false, so only
     destinations without a category receive;
   - a destination mapped to several categories needs every one of them ``true``
     (a category missing from the preferences counts as false);
   - categories the plan does not declare are ignored;
   - a ``context.consent`` or ``categoryPreferences`` that is not an object fails closed:
     treated as an empty ``categoryPreferences``;

2. the ``integrations`` object: ``{"<destination>": false}`` turns a destination off,
   ``{"All": false}`` turns off every destination not named with a true value (or an
   options object); consent always wins over ``integrations``;

3. the destination's PII forms (:mod:`trackplan.privacy.forms`): a category the
   destination may not receive is dropped, or hashed, masked or redacted as it declares; a
   ``reject`` form keeps the event away from the destination when the category is present.

>>> routing = route(enforcer, event)                              # doctest: +SKIP
>>> {d.destination: d.send for d in routing.deliveries}          # doctest: +SKIP
{'Amplitude': True, 'Salesforce': True, 'Google Ads': False, 'Snowflake': True}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trackplan.engine import Enforcer, Result
from trackplan.pii.policy import PiiPolicy
from trackplan.plan.model import Plan
from trackplan.plan.reserved import CONSENT_EVENT
from trackplan.privacy.destinations import Privacy, load_privacy
from trackplan.privacy.forms import DestinationForms

__all__ = [
    "CONSENT_EVENT",
    "Delivery",
    "Routing",
    "Router",
    "route",
    "preferences",
    "consent_allows",
    "integrations_allow",
]

#: Why a destination does or does not get an event.
SENT, BLOCKED, NO_CONSENT, INTEGRATIONS_OFF, PII_REJECTED = (
    "sent", "blocked", "consent", "integrations", "pii",
)  # fmt: skip


def preferences(event: Any) -> Mapping[str, Any] | None:
    """The event's ``categoryPreferences``; None when it carries no consent decision."""
    if type(event) is not dict:
        return None
    ctx = event.get("context")
    if type(ctx) is not dict or "consent" not in ctx:
        return None
    consent = ctx["consent"]
    if type(consent) is not dict:
        return {}  # malformed consent: fail closed
    if not consent or "categoryPreferences" not in consent:
        return None
    prefs = consent["categoryPreferences"]
    return prefs if type(prefs) is dict else {}


def consent_allows(categories: tuple[str, ...], prefs: Mapping[str, Any] | None) -> bool:
    """Segment's rule: no decision lets everything through; else every category must be true.

    ``categories`` are the destination's categories (all declared by the plan, so
    categories in ``prefs`` the plan does not know are ignored by construction).
    """
    if prefs is None or not categories:
        return True
    return all(prefs.get(c) is True for c in categories)


def integrations_allow(name: str, event: Any) -> bool:
    """Whether the event's ``integrations`` object leaves destination ``name`` on."""
    flags = event.get("integrations") if type(event) is dict else None
    if type(flags) is not dict:
        return True
    if name in flags:
        return flags[name] is not False
    return flags.get("All", True) is not False


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one destination gets: ``event`` is its form of the event, None when not sent.

    Destinations that receive the same form share one copy, and a copy shares every part
    it does not change with the enforced event: treat ``event`` as read-only.

    ``reason`` is ``sent``, ``blocked`` (the plan blocked the event), ``consent``,
    ``integrations`` or ``pii`` (the destination rejects a PII category the event holds);
    ``detail`` says more without event values (missing categories, PII categories).
    """

    destination: str
    send: bool
    reason: str
    event: Any = None
    detail: tuple[str, ...] = ()

    def to_dict(self, *, with_event: bool = True) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {"send": self.send, "reason": self.reason}
        if self.detail:
            out["detail"] = list(self.detail)
        if with_event and self.send:
            out["event"] = self.event
        return out


@dataclass(frozen=True, slots=True)
class Routing:
    """The route of one event: the enforcement result and one delivery per destination."""

    result: Result
    deliveries: tuple[Delivery, ...]

    @property
    def sent(self) -> tuple[str, ...]:
        """Names of the destinations that get the event."""
        return tuple(d.destination for d in self.deliveries if d.send)

    def delivery(self, name: str) -> Delivery:
        """The delivery to destination ``name``."""
        for d in self.deliveries:
            if d.destination == name:
                return d
        raise KeyError(name)

    def stamped(self) -> Any:
        """The enforced event with ``integrations`` set to these decisions, for a downstream
        Segment workspace to enforce the same ones (a copy; None when the event is blocked)."""
        if not self.result.allowed or type(self.result.event) is not dict:
            return None
        out = dict(self.result.event)
        flags = out.get("integrations")
        flags = dict(flags) if type(flags) is dict else {}
        flags["All"] = False
        for d in self.deliveries:
            flags[d.destination] = flags.get(d.destination, True) if d.send else False
        out["integrations"] = flags
        return out

    def to_dict(self, *, with_events: bool = True) -> dict[str, Any]:
        """JSON form: the decision, violations and every delivery."""
        return {
            "allowed": self.result.allowed,
            "violations": [v.to_dict() for v in self.result.violations],
            "destinations": {
                d.destination: d.to_dict(with_event=with_events) for d in self.deliveries
            },
        }


class Router:
    """Routes enforced events to the plan's destinations (built once per enforcer)."""

    def __init__(
        self, plan: Plan, privacy: Privacy | None = None, *, policy: PiiPolicy | None = None
    ) -> None:
        self.privacy = privacy if privacy is not None else load_privacy(plan)
        self.forms: DestinationForms = DestinationForms(plan, self.privacy, policy)
        self._categories = tuple({c for d in self.privacy.destinations for c in d.consent})
        self._consent: dict[frozenset[str] | None, tuple[Delivery | None, ...]] = {}
        self._refusals: dict[tuple[str, str, tuple[str, ...]], Delivery] = {}

    def decide(self, result: Result, *, source: Any = None) -> Routing:
        """Deliveries for an enforcement result (``source``: the event as it came in,
        before the plan's PII actions; ``sha256`` forms are made from it)."""
        dests = self.privacy.destinations
        if not result.allowed:
            return Routing(result, tuple(Delivery(d.name, False, BLOCKED) for d in dests))
        event = result.event
        out = list(self._by_consent(preferences(event)))
        flags = event.get("integrations") if type(event) is dict else None
        if type(flags) is dict and flags:
            for index, dest in enumerate(dests):
                if out[index] is None and not integrations_allow(dest.name, event):
                    out[index] = self._refused(dest.name, INTEGRATIONS_OFF, ())
        passing = [dest for dest, d in zip(dests, out, strict=True) if d is None]
        if passing:
            # the PII fields are found once; destinations with the same forms share a copy
            copies = iter(self.forms.apply_all(passing, event, result.rule, source=source))
            for index, dest in enumerate(dests):
                if out[index] is None:
                    copy, rejected = next(copies)
                    out[index] = (self._refused(dest.name, PII_REJECTED, rejected)
                                  if rejected else _sent(dest.name, copy))
        return Routing(result, tuple(d for d in out if d is not None))

    def _by_consent(self, raw: Mapping[str, Any] | None) -> tuple[Delivery | None, ...]:
        """Per destination, its refusal for lack of consent, or None when consent lets it
        receive (cached by the set of granted categories: that is all the rule reads)."""
        prefs = self.privacy.normalise(raw)  # CMP ids read as categories
        granted = None if prefs is None else frozenset(
            c for c in self._categories if prefs.get(c) is True)
        found = self._consent.get(granted)
        if found is None:
            out: list[Delivery | None] = []
            for dest in self.privacy.destinations:
                if granted is None or not dest.consent or all(c in granted
                                                              for c in dest.consent):
                    out.append(None)
                else:
                    missing = tuple(c for c in dest.consent if c not in granted)
                    out.append(Delivery(dest.name, False, NO_CONSENT, detail=missing))
            found = self._consent[granted] = tuple(out)
        return found

    def _refused(self, name: str, reason: str, detail: tuple[str, ...]) -> Delivery:
        key = (name, reason, detail)
        found = self._refusals.get(key)
        if found is None:
            found = Delivery(name, False, reason, detail=detail)
            if len(self._refusals) < 4096:
                self._refusals[key] = found
        return found


_new = object.__new__
_SET = {name: getattr(Delivery, name).__set__ for name in Delivery.__slots__}


def _sent(name: str, copy: Any) -> Delivery:
    """``Delivery(name, True, SENT, copy)`` without the frozen dataclass's slower
    ``__init__`` (one per destination and event)."""
    out: Delivery = _new(Delivery)
    _SET["destination"](out, name)
    _SET["send"](out, True)
    _SET["reason"](out, SENT)
    _SET["event"](out, copy)
    _SET["detail"](out, ())
    return out


def router_of(enforcer: Enforcer) -> Router:
    """The enforcer's router, built on first use and kept on the enforcer."""
    found = enforcer.__dict__.get("_router")
    if found is None:
        found = Router(enforcer.plan, policy=getattr(enforcer, "pii", None))
        enforcer.__dict__["_router"] = found
    assert isinstance(found, Router)
    return found


def route(enforcer: Enforcer, event: Any) -> Routing:
    """Enforce the plan on ``event``, then route it to every destination of the plan."""
    return router_of(enforcer).decide(enforcer.enforce(event), source=event)


__all__ += ["router_of", "SENT", "BLOCKED", "NO_CONSENT", "INTEGRATIONS_OFF", "PII_REJECTED"]
