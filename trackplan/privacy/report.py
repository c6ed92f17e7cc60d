"""The data-protection report: what a privacy owner needs for a DPIA and the record of processing.

It lists every destination (legal basis, region, transfer mechanism, DPA, consent
categories), every declared PII field with its category and the plan's action, the form
in which each destination receives it, and the gaps found:

- ``transfer``: a destination outside the EEA with no transfer mechanism;
- ``consent``: a consent-based destination without a consent category;
- ``pii-destination``: PII reaching a destination that may not receive its category
  (a destination without a ``pii`` map gets the plan's forms of every category);
- ``pii-action``: a PII field without a declared action (neither its own nor a plan
  default for its category, so the built-in default applies);
- ``dpa``: a destination without a signed data processing agreement.

and flags what is allowed but needs a privacy owner's eye:

- ``plain-hash``: a destination receives a plain (unkeyed) SHA-256 of a category (what ad
  platforms match on): anyone holding candidate values can recompute and match it.

>>> print(render(build_report(load_plan("plans/ecommerce")), "markdown"))  # doctest: +SKIP
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import orjson

from trackplan import pointer as jp
from trackplan.plan.model import Plan
from trackplan.privacy.destinations import Destination, Privacy, load_privacy
from trackplan.privacy.forms import (
    ANY,
    PiiField,
    effective_form,
    pii_fields,
    policy_without_key,
)

__all__ = ["Gap", "PiiFlow", "DpiaReport", "build_report", "render", "FORMATS"]

FORMATS = ("markdown", "html", "json")

_BASIS = {
    "consent": "Consent (Art. 6(1)(a))",
    "contract": "Contract (Art. 6(1)(b))",
    "legal_obligation": "Legal obligation (Art. 6(1)(c))",
    "vital_interests": "Vital interests (Art. 6(1)(d))",
    "public_task": "Public task (Art. 6(1)(e))",
    "legitimate_interest": "Legitimate interest (Art. 6(1)(f))",
}
_TRANSFER = {
    "adequacy": "adequacy decision",
    "scc": "standard contractual clauses",
    "dpf": "EU-US Data Privacy Framework",
    "none": "none",
}


@dataclass(frozen=True, slots=True)
class Gap:
    """One problem a privacy owner must resolve; ``where`` is ``file#pointer``."""

    kind: str
    message: str
    where: str
    destination: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "kind": self.kind,
            "message": self.message,
            "where": self.where,
            "destination": self.destination,
        }


@dataclass(frozen=True, slots=True)
class PiiFlow:
    """One declared PII field and the form each destination receives it in.

    ``forms`` maps destination name to a form (``allow``, ``hash``, ``mask``,
    ``redact``), ``not received`` or ``event not sent`` (the destination rejects it).
    """

    event: str
    pointer: str
    category: str
    action: str
    declared: bool
    forms: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "event": self.event,
            "pointer": self.pointer,
            "category": self.category,
            "action": self.action,
            "action_declared": self.declared,
            "destinations": dict(self.forms),
        }


@dataclass(frozen=True, slots=True)
class DpiaReport:
    """The whole report."""

    plan: str
    version: str
    digest: str
    privacy: Privacy
    flows: tuple[PiiFlow, ...]
    gaps: tuple[Gap, ...]
    flags: tuple[Gap, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what ``--format json`` prints)."""
        return {
            "plan": self.plan,
            "version": self.version,
            "digest": self.digest,
            "destinations": [_dest_dict(d) for d in self.privacy.destinations],
            "consent_categories": {c.id: c.description for c in self.privacy.categories},
            "consent_category_ids": {c.id: list(c.ids) for c in self.privacy.categories
                                     if c.ids},
            "pii": [f.to_dict() for f in self.flows],
            "gaps": [g.to_dict() for g in self.gaps],
            "flags": [g.to_dict() for g in self.flags],
        }


def _dest_dict(d: Destination) -> dict[str, Any]:
    return {
        "name": d.name,
        "vendor": d.vendor,
        "purpose": d.purpose,
        "legal_basis": d.legal_basis,
        "region": d.region,
        "outside_eea": d.outside_eea,
        "transfer": d.transfer,
        "dpa": d.dpa,
        "consent": list(d.consent),
        "pii": dict(d.pii) if d.pii is not None else None,
        "plain_hash": list(d.plain_hash_categories),
    }


def _flow_form(f: PiiField, dest: Destination) -> str:
    if f.action in ("drop", "reject"):
        return "not received"
    changed = effective_form(f.action, dest.form(f.category))
    form = f.action if changed is None else changed
    if form == "drop":
        return "not received"
    if form == "reject":
        return "event not sent"
    return form


def _declared_actions(plan: Plan, count: int) -> list[bool]:
    """Per declared field: whether its action is declared (by its annotation or a plan
    default for its category) rather than the built-in default.

    The policy is built twice more with every category's default set to two different
    actions: a field whose action follows the defaults has no action of its own.
    """
    from trackplan.pii.actions import CATEGORIES

    cats = [*CATEGORIES, *(plan.pii.get("categories") or [])] if plan.pii else list(CATEGORIES)
    a = pii_fields(plan, policy_without_key(plan, {c: "allow" for c in cats}))
    b = pii_fields(plan, policy_without_key(plan, {c: "drop" for c in cats}))
    own_defaults = plan.pii.get("defaults") or {} if plan.pii else {}
    out = []
    for fa, fb in zip(a, b, strict=True):
        from_annotation = fa.action == fb.action
        out.append(from_annotation or fa.category in own_defaults)
    assert len(out) == count
    return out


def build_report(plan: Plan) -> DpiaReport:
    """The data-protection report of ``plan`` (raises PlanError on a bad privacy section)."""
    privacy = load_privacy(plan)
    dfile, _, _ = plan.sections.get("destinations", f"{plan.source}#").partition("#")
    labels: dict[tuple[str, str | None, int], str] = {
        (r.kind, r.name, r.version): r.label for r in plan.rules
    }
    multi = {r.name for r in plan.events if len(plan.versions(str(r.name))) > 1}
    flows: list[PiiFlow] = []
    fields = pii_fields(plan)
    for f, declared in zip(fields, _declared_actions(plan, len(fields)), strict=True):
        label = "every call" if f.rule is None else labels.get(f.rule, str(f.rule[1]))
        if f.rule is not None and f.rule[1] in multi:
            label += f" v{f.rule[2]}"
        ptr = jp.from_parts(f.path).replace(jp.escape(ANY), ANY)
        forms = {d.name: _flow_form(f, d) for d in privacy.destinations}
        flows.append(PiiFlow(label, ptr, f.category, f.action, declared, forms))
    flows.sort(key=lambda fl: (fl.event != "every call", fl.event.lower(), fl.pointer))
    gaps: list[Gap] = []
    flags: list[Gap] = []
    for d in privacy.destinations:
        where = f"{dfile}#{d.pointer}"
        plain = [
            c
            for c in d.plain_hash_categories
            if any(fl.category == c and fl.forms[d.name] == "sha256" for fl in flows)
        ]
        if plain:
            flags.append(
                Gap(
                    "plain-hash",
                    f"{d.name} receives {', '.join(plain)} as plain SHA-256 without a key "
                    "(for its matching): anyone holding candidate values can recompute and "
                    "match them; every other destination gets HMAC under the plan's key",
                    f"{where}/pii",
                    d.name,
                )
            )
        if d.outside_eea and d.transfer == "none":
            gaps.append(
                Gap(
                    "transfer",
                    f"{d.name} processes data in {d.region}, outside the "
                    "EEA, with no transfer mechanism (adequacy, scc or dpf)",
                    f"{where}/transfer",
                    d.name,
                )
            )
        if d.legal_basis == "consent" and not d.consent:
            gaps.append(
                Gap(
                    "consent",
                    f"{d.name} relies on consent but names no consent "
                    "category, so every event reaches it",
                    f"{where}/consent",
                    d.name,
                )
            )
        if not d.dpa:
            gaps.append(
                Gap(
                    "dpa",
                    f"{d.name} has no signed data processing agreement",
                    f"{where}/dpa",
                    d.name,
                )
            )
        if d.pii is None:
            reached = sorted(
                {
                    fl.category
                    for fl in flows
                    if fl.forms[d.name] not in ("not received", "event not sent")
                }
            )
            for cat in reached:
                gaps.append(
                    Gap(
                        "pii-destination",
                        f"{cat} reaches {d.name}, which declares no PII categories it may receive",
                        f"{where}/pii",
                        d.name,
                    )
                )
    for fl in flows:
        if not fl.declared:
            gaps.append(
                Gap(
                    "pii-action",
                    f"{fl.event} {fl.pointer}: {fl.category} has no "
                    f"declared action (the default {fl.action} applies)",
                    fl.event + "#" + fl.pointer,
                )
            )
    return DpiaReport(
        plan.name, plan.version, plan.digest(), privacy, tuple(flows), tuple(gaps), tuple(flags)
    )


# -- rendering ----------------------------------------------------------------------------
def _dest_rows(report: DpiaReport) -> tuple[list[str], list[list[str]]]:
    head = [
        "Destination",
        "Vendor",
        "Purpose",
        "Legal basis",
        "Region",
        "Transfer",
        "DPA",
        "Consent categories",
        "Hashes",
    ]
    rows = []
    for d in report.privacy.destinations:
        region = d.region + (" (outside EEA)" if d.outside_eea else "")
        rows.append(
            [
                d.name,
                d.vendor or "",
                d.purpose or "",
                _BASIS[d.legal_basis],
                region,
                _TRANSFER[d.transfer],
                "yes" if d.dpa else "no",
                ", ".join(_with_ids(report.privacy, c) for c in d.consent) or "none",
                _hashes(d),
            ]
        )
    return head, rows


def _with_ids(privacy: Privacy, category: str) -> str:
    """A category with the CMP ids that mean it: ``analytics (C0002)``."""
    ids = next((c.ids for c in privacy.categories if c.id == category), ())
    return f"{category} ({', '.join(ids)})" if ids else category


def _hashes(d: Destination) -> str:
    plain = d.plain_hash_categories
    if plain:
        return f"plain SHA-256 (flagged): {', '.join(plain)}; others HMAC"
    return "HMAC (keyed)"


def _flow_rows(report: DpiaReport) -> tuple[list[str], list[list[str]]]:
    names = [d.name for d in report.privacy.destinations]
    head = ["Event", "Field", "Category", "Plan action", *names]
    rows = [
        [
            f.event,
            f.pointer,
            f.category,
            f.action + ("" if f.declared else " (default)"),
            *(f.forms[n] for n in names),
        ]
        for f in report.flows
    ]
    return head, rows


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(h) for h in head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(report: DpiaReport) -> str:
    parts = [
        f"# Data-protection report: {report.plan} {report.version}",
        "",
        f"Plan digest `{report.digest[:16]}`. Generated by `trackplan report dpia`.",
        "",
        "## Destinations",
        "",
        _md_table(*_dest_rows(report)),
        "",
        "## Consent categories",
        "",
    ]
    parts += [f"- `{c.id}`: {c.description}" for c in report.privacy.categories] or ["none"]
    parts += ["", "## PII and the form each destination receives", ""]
    parts.append(_md_table(*_flow_rows(report)) if report.flows else "No declared PII.")
    parts += ["", f"## Gaps ({len(report.gaps)})", ""]
    parts += [f"- **{g.kind}**: {g.message} (`{g.where}`)" for g in report.gaps] or ["None."]
    if report.flags:
        parts += ["", f"## Flags ({len(report.flags)})", ""]
        parts += [f"- **{g.kind}**: {g.message} (`{g.where}`)" for g in report.flags]
    return "\n".join(parts) + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}.gap{color:#a40000}code{background:#f6f6f6}"
)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out += ["<tr>", *(f"<td>{e(c)}</td>" for c in row), "</tr>"]
    out.append("</tbody></table>")
    return "".join(out)


def _html(report: DpiaReport) -> str:
    e = html.escape
    title = f"Data-protection report: {report.plan} {report.version}"
    cats = "".join(
        f"<li><code>{e(c.id)}</code>: {e(c.description)}</li>" for c in report.privacy.categories
    )
    gaps = "".join(
        f'<li class="gap"><strong>{e(g.kind)}</strong>: {e(g.message)} '
        f"(<code>{e(g.where)}</code>)</li>"
        for g in report.gaps
    )
    flows = _html_table(*_flow_rows(report)) if report.flows else "<p>No declared PII.</p>"
    flags = "".join(
        f'<li class="gap"><strong>{e(g.kind)}</strong>: {e(g.message)} '
        f"(<code>{e(g.where)}</code>)</li>"
        for g in report.flags
    )
    flagged = f"<h2>Flags ({len(report.flags)})</h2><ul>{flags}</ul>" if flags else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(title)}</h1><p>Plan digest <code>{e(report.digest[:16])}</code>.</p>"
        f"<h2>Destinations</h2>{_html_table(*_dest_rows(report))}"
        f"<h2>Consent categories</h2><ul>{cats or '<li>none</li>'}</ul>"
        f"<h2>PII and the form each destination receives</h2>{flows}"
        f"<h2>Gaps ({len(report.gaps)})</h2><ul>{gaps or '<li>None.</li>'}</ul>"
        f"{flagged}</body></html>\n"
    )


def render(report: DpiaReport, fmt: str) -> str:
    """The report as ``markdown``, self-contained ``html`` or ``json``."""
    if fmt == "json":
        return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "html":
        return _html(report)
    if fmt == "markdown":
        return _markdown(report)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
