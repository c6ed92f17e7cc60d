"""CI checks for plan changes: lint rules, and a diff that classifies changes (SchemaVer).

>>> from trackplan.ci import diff_plans, lint_plan   # doctest: +SKIP
>>> lint_plan(plan).errors, diff_plans(old, new).ok  # doctest: +SKIP
((), True)
"""

from __future__ import annotations

from trackplan.ci.classify import CLASSES, SchemaChange, compare_schemas
from trackplan.ci.diff import Change, EventDiff, PlanDiff, Policy, diff_plans, policy_of
from trackplan.ci.git import load_plan_at, resolve_spec
from trackplan.ci.lint import RULES, Finding, LintConfig, LintReport, lint_config, lint_plan

__all__ = [
    "CLASSES", "SchemaChange", "compare_schemas", "Change", "EventDiff", "PlanDiff", "Policy",
    "diff_plans", "policy_of", "load_plan_at", "resolve_spec", "RULES", "Finding", "LintConfig",
    "LintReport", "lint_config", "lint_plan",
]  # fmt: skip
