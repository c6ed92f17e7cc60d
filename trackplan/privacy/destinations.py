"""Destinations and consent categories: the plan's ``destinations`` and ``consent`` sections.

Each destination says where events go, under which legal basis (GDPR Art. 6), in which
region, under which transfer mechanism when that region is outside the EEA, whether a data
processing agreement is signed, which consent categories it needs, and which PII categories
it may receive in which form. :func:`load_privacy` reads both sections once into frozen
dataclasses and reports every problem as a :class:`PlanIssue` naming file and pointer.

>>> privacy = load_privacy(load_plan("plans/ecommerce"))     # doctest: +SKIP
>>> privacy.destination("Google Ads").consent
('advertising', 'analytics')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trackplan import pointer as jp
from trackplan.errors import PlanError, PlanIssue
from trackplan.plan.model import Plan

__all__ = [
    "LEGAL_BASES",
    "TRANSFER_MECHANISMS",
    "DESTINATION_FORMS",
    "FORM_RANK",
    "PLAIN_HASH_FORMS",
    "EEA_REGIONS",
    "CONSENT_CATEGORY_RE",
    "Destination",
    "ConsentCategory",
    "CMP_PRESETS",
    "Privacy",
    "load_privacy",
    "in_eea",
]

#: GDPR Art. 6(1) lawful bases, as the plan spells them.
LEGAL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interest",
)

#: How a transfer outside the EEA is covered: an adequacy decision, standard contractual
#: clauses, the EU-US Data Privacy Framework, or nothing (only right inside the EEA).
TRANSFER_MECHANISMS = ("adequacy", "scc", "dpf", "none")

#: Forms in which a destination may receive a PII category, least to most protective.
#: ``reject`` keeps the whole event away from the destination when the category is present.
#: ``sha256`` is the plain (unkeyed) SHA-256 of the value normalised as ad platforms
#: document it (email trimmed and lower-cased, phone in E.164), for destinations that match
#: on it; ``hash`` (HMAC under the plan's key) stays the default everywhere else.
DESTINATION_FORMS = ("allow", "sha256", "hash", "mask", "redact", "drop", "reject")
#: Forms that are a hash made without a secret: anyone can recompute them from a guess.
PLAIN_HASH_FORMS = frozenset({"sha256"})
FORM_RANK = {name: rank for rank, name in enumerate(DESTINATION_FORMS)}

#: EEA member states (ISO 3166-1 alpha-2) and the region names that mean "inside the EEA".
EEA_REGIONS = frozenset(
    {"EU", "EEA", "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU",
     "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS",
     "LI", "NO"}
)  # fmt: skip

#: Segment's rule for consent category ids: case-sensitive, not starting with a digit,
#: fewer than 35 characters.
CONSENT_CATEGORY_RE = re.compile(r"^[^0-9].{0,33}$", re.DOTALL)

_REGION_RE = re.compile(r"^[A-Z]{2,3}$")
_KEYS = frozenset(
    {"name", "vendor", "purpose", "consent", "legal_basis", "region", "transfer", "dpa", "pii"}
)


def in_eea(region: str) -> bool:
    """Whether a destination's processing region is inside the EEA."""
    return region.upper() in EEA_REGIONS


@dataclass(frozen=True, slots=True)
class Destination:
    """One destination of the plan.

    ``pii`` maps a PII category to the form the destination receives it in; ``None`` when
    the destination declares no PII map (it then receives what the plan's own actions
    leave, and the data-protection report lists that as a gap).
    """

    name: str
    legal_basis: str
    region: str
    transfer: str
    dpa: bool
    consent: tuple[str, ...] = ()
    vendor: str | None = None
    purpose: str | None = None
    pii: Mapping[str, str] | None = None
    pointer: str = ""

    @property
    def outside_eea(self) -> bool:
        """True when the destination processes data outside the EEA."""
        return not in_eea(self.region)

    @property
    def plain_hash_categories(self) -> tuple[str, ...]:
        """Categories this destination receives as a plain (unkeyed) hash, sorted."""
        if self.pii is None:
            return ()
        return tuple(sorted(c for c, f in self.pii.items() if f in PLAIN_HASH_FORMS))

    def form(self, category: str) -> str | None:
        """The form this destination receives ``category`` in; None when it declares no map."""
        if self.pii is None:
            return None
        return self.pii.get(category, "drop")


@dataclass(frozen=True, slots=True)
class ConsentCategory:
    """One consent category a user can grant or refuse.

    ``ids`` are the names a consent management platform sends for it in
    ``categoryPreferences`` (OneTrust's ``C0002``, Cookiebot's ``statistics``), from the
    plan (``analytics: {description: ..., ids: [C0002]}``) or the section's ``preset``.
    """

    id: str
    description: str = ""
    ids: tuple[str, ...] = ()


#: ``consent.preset``: the ids a CMP sends for the categories plans usually name.
CMP_PRESETS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "onetrust": {"necessary": ("C0001",), "analytics": ("C0002",), "performance": ("C0002",),
                 "functional": ("C0003",), "advertising": ("C0004",), "targeting": ("C0004",),
                 "marketing": ("C0004",), "social": ("C0005",)},
    "cookiebot": {"necessary": ("necessary",), "functional": ("preferences",),
                  "preferences": ("preferences",), "analytics": ("statistics",),
                  "statistics": ("statistics",), "advertising": ("marketing",),
                  "marketing": ("marketing",)},
    "usercentrics": {"necessary": ("essential",), "essential": ("essential",),
                     "functional": ("functional",), "advertising": ("marketing",),
                     "marketing": ("marketing",)},
}


@dataclass(frozen=True, slots=True)
class Privacy:
    """The plan's destinations and consent categories, validated."""

    destinations: tuple[Destination, ...] = ()
    categories: tuple[ConsentCategory, ...] = ()
    source: str = ""
    _by_name: Mapping[str, Destination] = field(default_factory=dict, repr=False, compare=False)

    @property
    def category_ids(self) -> frozenset[str]:
        """Ids of the consent categories the plan declares."""
        return frozenset(c.id for c in self.categories)

    def destination(self, name: str) -> Destination:
        """The destination called ``name`` (KeyError when there is none)."""
        return self._by_name[name]

    def normalise(self, prefs: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """``categoryPreferences`` keyed by the plan's category ids, reading CMP ids too.

        A category is granted when at least one of its names (its id or a CMP id) is
        present and every one present is ``true``; a conflict fails closed. Without CMP ids
        in the plan, ``prefs`` is returned as it is.
        """
        if prefs is None or not any(c.ids for c in self.categories):
            return prefs
        out: dict[str, Any] = dict(prefs)
        for cat in self.categories:
            if not cat.ids:
                continue
            seen = [prefs[n] for n in (cat.id, *cat.ids) if n in prefs]
            if seen:
                out[cat.id] = all(v is True for v in seen)
        return out


def _location(plan: Plan, section: str) -> tuple[str, str]:
    where = plan.sections.get(section, f"{plan.source}#/{section}")
    file, _, base = where.partition("#")
    return file or plan.source, base


def load_privacy(plan: Plan) -> Privacy:
    """Read and check the plan's ``consent`` and ``destinations`` sections.

    Raises:
        PlanError: listing every problem, each with the file and JSON pointer.
    """
    issues: list[PlanIssue] = []
    cfile, cbase = _location(plan, "consent")
    categories = _categories(plan.consent, cfile, cbase, issues)
    known = {c.id for c in categories}
    dfile, dbase = _location(plan, "destinations")
    destinations: list[Destination] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(plan.destinations):
        where = jp.join(dbase, index)
        dest = _destination(raw, dfile, where, known, issues)
        if dest is None:
            continue
        if dest.name in seen:
            issues.append(
                PlanIssue(
                    dfile,
                    jp.join(where, "name"),
                    f"destination name is also used at {seen[dest.name]}",
                )
            )
            continue
        seen[dest.name] = where
        destinations.append(dest)
    if issues:
        raise PlanError(issues)
    return Privacy(
        tuple(destinations), tuple(categories), plan.source, {d.name: d for d in destinations}
    )


def _categories(
    section: Mapping[str, Any], file: str, base: str, issues: list[PlanIssue]
) -> list[ConsentCategory]:
    raw = section.get("categories", {}) if isinstance(section, Mapping) else {}
    where = jp.join(base, "categories")
    out: list[ConsentCategory] = []
    preset_name = section.get("preset") if isinstance(section, Mapping) else None
    preset: Mapping[str, tuple[str, ...]] = {}
    if preset_name is not None:
        if preset_name not in CMP_PRESETS:
            issues.append(PlanIssue(file, jp.join(base, "preset"),
                                    f"preset must be one of {', '.join(sorted(CMP_PRESETS))}"))
        else:
            preset = CMP_PRESETS[str(preset_name)]
    if not isinstance(raw, Mapping):
        issues.append(
            PlanIssue(
                file, where, "consent categories must be a mapping of category id to description"
            )
        )
        return out
    for cid, desc in raw.items():
        ptr = jp.join(where, str(cid))
        if not isinstance(cid, str) or not CONSENT_CATEGORY_RE.match(cid):
            issues.append(
                PlanIssue(
                    file,
                    ptr,
                    "consent category id must be a non-empty "
                    "string of fewer than 35 characters not starting with a digit",
                )
            )
            continue
        ids: Any = preset.get(cid, ())
        if isinstance(desc, Mapping):
            ids = desc.get("ids", ids)
            desc = desc.get("description")
            if isinstance(ids, str):
                ids = [ids]
            if not isinstance(ids, list | tuple) or not all(
                    isinstance(i, str) and i for i in ids):
                issues.append(PlanIssue(file, jp.join(ptr, "ids"),
                                        "ids must be a list of the ids a CMP sends"))
                continue
        if desc is not None and not isinstance(desc, str):
            issues.append(PlanIssue(file, ptr, "consent category description must be a string"))
            continue
        out.append(ConsentCategory(cid, desc or "", tuple(ids)))
    return out


def _destination(
    raw: Any, file: str, where: str, known: set[str], issues: list[PlanIssue]
) -> Destination | None:
    if not isinstance(raw, Mapping):
        issues.append(PlanIssue(file, where, "a destination must be a mapping"))
        return None
    before = len(issues)

    def bad(key: str, message: str) -> None:
        issues.append(PlanIssue(file, jp.join(where, key), message))

    for key in sorted(set(raw) - _KEYS):
        if not str(key).startswith("x-"):
            bad(str(key), f"unknown destination field; expected one of {', '.join(sorted(_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        bad("name", "destination needs a non-empty name")
    basis = raw.get("legal_basis")
    if basis not in LEGAL_BASES:
        bad("legal_basis", f"legal_basis must be one of {', '.join(LEGAL_BASES)}")
    region = raw.get("region")
    if not isinstance(region, str) or not _REGION_RE.match(region):
        bad("region", "region must be EU, EEA or an ISO 3166 country code such as US")
    transfer = raw.get("transfer", "none")
    if transfer not in TRANSFER_MECHANISMS:
        bad("transfer", f"transfer must be one of {', '.join(TRANSFER_MECHANISMS)}")
    dpa = raw.get("dpa", False)
    if not isinstance(dpa, bool):
        bad("dpa", "dpa must be true or false")
    consent = raw.get("consent", [])
    if isinstance(consent, str):
        consent = [consent]
    if not isinstance(consent, list) or not all(isinstance(c, str) for c in consent):
        bad("consent", "consent must be a list of consent category ids")
        consent = []
    for i, cid in enumerate(consent):
        if cid not in known:
            issues.append(
                PlanIssue(
                    file,
                    jp.join(where, "consent", i),
                    "consent category is not declared under consent.categories",
                )
            )
    pii = raw.get("pii")
    if pii is not None:
        if not isinstance(pii, Mapping):
            bad("pii", "pii must map PII categories to a form")
            pii = None
        else:
            for cat, form in pii.items():
                if form not in DESTINATION_FORMS:
                    issues.append(
                        PlanIssue(
                            file,
                            jp.join(where, "pii", str(cat)),
                            f"form must be one of {', '.join(DESTINATION_FORMS)}",
                        )
                    )
    for key in ("vendor", "purpose"):
        if key in raw and not isinstance(raw[key], str):
            bad(key, f"{key} must be a string")
    if len(issues) != before:
        return None
    return Destination(
        name=str(name),
        legal_basis=str(basis),
        region=str(region).upper(),
        transfer=str(transfer),
        dpa=bool(dpa),
        consent=tuple(sorted(set(consent), key=consent.index)),
        vendor=raw.get("vendor"),
        purpose=raw.get("purpose"),
        pii=None if pii is None else {str(k): str(v) for k, v in pii.items()},
        pointer=where,
    )
