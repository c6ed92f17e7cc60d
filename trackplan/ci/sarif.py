"""SARIF 2.1.0 logs of ``check``, ``lint`` and ``diff``, for GitHub code scanning.

One run per log, tool ``trackplan``; every rule a result refers to is listed under
``tool.driver.rules`` with its reason; each result carries the file (relative to the
working directory, as code scanning expects paths relative to the repository) and, where
the JSON pointer can be found in the YAML file, the line. Files read from a git revision
(``REV:path``) are given as ``path``.

>>> json.loads(lint_sarif(report))["version"]       # doctest: +SKIP
'2.1.0'
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson

from trackplan.ci.diff import Change, PlanDiff
from trackplan.ci.lint import RULES, LintReport
from trackplan.ci.render import line_of
from trackplan.errors import PlanIssue

__all__ = [
    "SARIF_SCHEMA", "Result", "sarif_log", "lint_sarif", "diff_sarif", "issues_sarif", "merge",
]  # fmt: skip

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_URI = "https://github.com/trackplan/trackplan"
_LEVEL = {"error": "error", "warning": "warning", "info": "note", "notice": "note"}


@dataclass(frozen=True, slots=True)
class Result:
    """One SARIF result before rendering: rule, level, message and place."""

    rule: str
    level: str  # error, warning or note
    message: str
    file: str
    pointer: str


def _tool_version() -> str:
    try:
        return version("trackplan")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "0"


def _where(file: str, pointer: str) -> dict[str, Any] | None:
    if not file:
        return None
    head = file.split("/")[0]
    on_disk = file
    if ":" in head:  # REV:path, read from git: report the path, no line
        file = file.split(":", 1)[1]
        on_disk = ""
    path = Path(file)
    if path.is_absolute():
        try:
            file = path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            file = path.as_posix()
    location: dict[str, Any] = {"artifactLocation": {"uri": file}}
    line = line_of(on_disk, pointer) if on_disk else None
    location["region"] = {"startLine": line or 1}
    return {
        "physicalLocation": location,
        "logicalLocations": [{"fullyQualifiedName": pointer or "/", "kind": "element"}],
    }


def sarif_log(results: Iterable[Result], rules: dict[str, str]) -> str:
    """A SARIF 2.1.0 log of ``results``; ``rules`` maps each rule id to its description."""
    items = list(results)
    used = sorted({r.rule for r in items})
    index = {rule: i for i, rule in enumerate(used)}
    driver = {
        "name": "trackplan",
        "informationUri": _URI,
        "version": _tool_version(),
        "rules": [
            {
                "id": rule,
                "name": _name(rule),
                "shortDescription": {"text": rules.get(rule, rule)},
                "fullDescription": {"text": rules.get(rule, rule)},
            }
            for rule in used
        ],
    }
    out = []
    for r in items:
        result: dict[str, Any] = {
            "ruleId": r.rule,
            "ruleIndex": index[r.rule],
            "level": r.level,
            "message": {"text": r.message},
        }
        where = _where(r.file, r.pointer)
        if where is not None:
            result["locations"] = [where]
        out.append(result)
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0",
           "runs": [{"tool": {"driver": driver}, "results": out}]}  # fmt: skip
    return orjson.dumps(log, option=orjson.OPT_INDENT_2).decode() + "\n"


def _name(rule: str) -> str:
    """A rule id as a SARIF rule name (letters and digits, PascalCase)."""
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", rule) if p)


def lint_sarif(report: LintReport) -> str:
    """The lint findings as SARIF; rule ids are the lint rule ids."""
    reasons = {r.id: r.reason for r in RULES}
    results = (
        Result(f.rule, _LEVEL[f.level], f"{f.event + ': ' if f.event else ''}{f.message}",
               f.file, f.pointer)
        for f in report.findings
    )  # fmt: skip
    return sarif_log(results, reasons)


def _diff_rule(c: Change) -> str:
    return "diff/" + c.kind.replace(" ", "-")


def diff_sarif(diff: PlanDiff) -> str:
    """The diff as SARIF: policy violations are errors, MODEL and privacy changes warnings,
    other changes notes; rule ids are ``diff/<change kind>`` and ``diff/version-policy``."""
    results: list[Result] = []
    rules: dict[str, str] = {
        "diff/version-policy": "An event changed incompatibly without a new version."
    }
    for e in diff.violations:
        first = e.changes[0] if e.changes else None
        results.append(
            Result("diff/version-policy", "error", f"{e.event}: {e.violation}",
                   first.file if first else "", first.pointer if first else "")
        )  # fmt: skip
    for c in diff.changes:
        rule = _diff_rule(c)
        rules.setdefault(rule, f"A change of kind '{c.kind}' between two plan versions.")
        level = "warning" if c.cls == "MODEL" or c.privacy else "note"
        message = f"{c.event}: {c.prop or c.pointer}: {c.cls}: {c.reason}"
        results.append(Result(rule, level, message, c.file, c.pointer))
    return sarif_log(results, rules)


def issues_sarif(issues: Iterable[PlanIssue], *, rule: str = "check/plan-invalid") -> str:
    """Plan problems found by ``check`` as SARIF errors."""
    results = (
        Result(rule, "error", f"{i.event + ': ' if i.event else ''}{i.message}", i.file,
               i.pointer)
        for i in issues
    )  # fmt: skip
    return sarif_log(results, {rule: "The plan is not valid: trackplan cannot load it."})


def merge(logs: Iterable[str]) -> str:
    """One SARIF log with one ``trackplan`` run holding the results of several logs.

    Code scanning takes one run per tool and category in an upload, so the check, lint
    and diff logs of every plan are merged before they are uploaded.
    """
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for text in logs:
        for run in json.loads(text).get("runs", []):
            ids = [r["id"] for r in run["tool"]["driver"].get("rules", [])]
            for rule in run["tool"]["driver"].get("rules", []):
                rules.setdefault(rule["id"], rule)
            for result in run.get("results", []):
                rule_id = result.get("ruleId") or ids[result["ruleIndex"]]
                results.append({**result, "ruleId": rule_id})
    order = sorted(rules)
    index = {rule: i for i, rule in enumerate(order)}
    for result in results:
        result["ruleIndex"] = index[result["ruleId"]]
    driver = {"name": "trackplan", "informationUri": _URI, "version": _tool_version(),
              "rules": [rules[r] for r in order]}  # fmt: skip
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0",
           "runs": [{"tool": {"driver": driver}, "results": results}]}  # fmt: skip
    return orjson.dumps(log, option=orjson.OPT_INDENT_2).decode() + "\n"


def main(argv: list[str]) -> int:
    """``python -m trackplan.ci.sarif OUT IN...``: merge SARIF logs (missing ones skipped)."""
    if not argv:
        print("usage: python -m trackplan.ci.sarif OUT IN...", file=sys.stderr)
        return 2
    out, *inputs = argv
    texts = [Path(p).read_text(encoding="utf-8") for p in inputs if Path(p).is_file()]
    Path(out).write_text(merge(texts), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
