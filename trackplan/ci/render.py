"""Render lint and diff results as text, JSON, Markdown (a PR comment) or GitHub annotations.

GitHub annotations carry a line number when the pointer can be found in the YAML file, so
the finding shows on the right line of the pull request.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import orjson
import yaml

from trackplan import pointer as jp
from trackplan.ci.diff import PLAN_LABEL, Change, PlanDiff
from trackplan.ci.lint import LintReport, reason_of

__all__ = ["lint_text", "lint_json", "lint_github", "diff_text", "diff_json", "diff_markdown",
           "diff_github", "line_of", "capped", "annotation", "ANNOTATIONS_PER_TYPE"]  # fmt: skip

_BADGE = {"MODEL": "breaking", "REVISION": "revision", "ADDITION": "addition",
          "PATCH": "docs"}  # fmt: skip


# -- line numbers for annotations -----------------------------------------------------------
@lru_cache(maxsize=256)
def _tree(file: str) -> yaml.Node | None:
    try:
        text = Path(file).read_text(encoding="utf-8")
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None


def line_of(file: str, pointer: str) -> int | None:
    """The 1-based line of ``pointer`` in a YAML or JSON file, if it can be found.

    The deepest existing node on the way is used (a pointer through a ``$ref`` stops at
    the property that holds the reference).
    """
    node = _tree(file)
    if node is None:
        return None
    line = node.start_mark.line + 1
    try:
        tokens = jp.parse(pointer)
    except ValueError:
        return line
    for token in tokens:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == token), None)
            if nxt is None:
                return line
            key = next(k for k, v in node.value if v is nxt)
            line, node = key.start_mark.line + 1, nxt
        elif (
            isinstance(node, yaml.SequenceNode) and token.isdigit() and int(token) < len(node.value)
        ):
            node = node.value[int(token)]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


#: Annotations GitHub shows per step and type (error, warning, notice); more are dropped
#: silently ("10 warning annotations, 10 error annotations, and 10 notice annotations per
#: step", actions/toolkit docs/problem-matchers.md).
ANNOTATIONS_PER_TYPE = 10


def capped(lines: list[str], *, tool: str) -> str:
    """Annotations within GitHub's per-step limit, the rest as plain log lines.

    At most :data:`ANNOTATIONS_PER_TYPE` of each type become annotations (in order, errors
    first as the callers put them); the others are printed as plain lines so the log keeps
    them, and one notice says how many were not annotated.
    """
    over = Counter[str]()
    shown = Counter[str]()
    levels = [line[2 : line.index(" ")] if line.startswith("::") else "" for line in lines]
    total = Counter(levels)
    overflow = any(n > ANNOTATIONS_PER_TYPE for n in total.values())
    out: list[str] = []
    rest: list[str] = []
    for level, line in zip(levels, lines, strict=True):
        limit = ANNOTATIONS_PER_TYPE - (1 if overflow and level == "notice" else 0)
        if shown[level] < limit:
            shown[level] += 1
            out.append(line)
        else:
            over[level] += 1
            rest.append(f"{level}: {_plain(line)}")
    if over:
        parts = ", ".join(f"{n} {lvl}(s)" for lvl, n in sorted(over.items()))
        out.append(
            f"::notice title={_escape_prop(tool)}::{parts} more than GitHub shows per step "
            f"({ANNOTATIONS_PER_TYPE} per type) are listed in the log below"
        )
        out.extend(rest)
    return "".join(line + "\n" for line in out)


def _plain(line: str) -> str:
    """An annotation line as plain text (so GitHub does not take it for a command)."""
    head, _, message = line[2:].partition("::")
    props = head.partition(" ")[2]
    where = ", ".join(p for p in props.split(",") if p.startswith(("file=", "line=")))
    text = message.replace("%0A", " ").replace("%0D", " ").replace("%25", "%")
    return f"{text} ({where})" if where else text


def annotation(level: str, file: str, pointer: str, title: str, message: str) -> str:
    props = []
    if file.startswith("/"):
        try:
            file = Path(file).relative_to(Path.cwd()).as_posix()
        except ValueError:
            file = ""
    if file and ":" not in file.split("/")[0]:  # REV:path files are not in the work tree
        props.append(f"file={_escape_prop(file)}")
        line = line_of(file, pointer)
        if line is not None:
            props.append(f"line={line}")
    props.append(f"title={_escape_prop(title)}")
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


# -- lint -------------------------------------------------------------------------------------
def lint_text(report: LintReport) -> str:
    """One line per finding, then a count."""
    lines = [str(f) for f in report.findings]
    counts = Counter(f.level for f in report.findings)
    lines.append(
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
    )
    return "\n".join(lines) + "\n"


def lint_json(report: LintReport) -> str:
    """``{"findings": [...], "errors": n, "warnings": n}`` with each rule's reason."""
    findings = [{**f.to_json(), "reason": reason_of(f.rule)} for f in report.findings]
    body = {"findings": findings, "errors": len(report.errors), "warnings": len(report.warnings)}
    return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n"


def lint_github(report: LintReport) -> str:
    """Workflow commands: ``::error file=...,line=...,title=...::message``."""
    level = {"error": "error", "warning": "warning", "info": "notice"}
    lines = [
        annotation(
            level[f.level],
            f.file,
            f.pointer,
            f"trackplan lint {f.rule}",
            f"{f.event + ': ' if f.event else ''}{f.message} ({f.pointer or '/'})",
        )
        for f in sorted(report.findings, key=lambda f: _LEVEL_ORDER[f.level])
    ]
    return capped(lines, tool="trackplan lint")


_LEVEL_ORDER = {"error": 0, "warning": 1, "info": 2}


# -- diff ---------------------------------------------------------------------------------------
def _versions(old: int | None, new: int | None) -> str:
    if old is None:
        return f"v{new} (new)"
    if new is None:
        return f"v{old} (removed)"
    return f"v{old}" if old == new else f"v{old} -> v{new}"


def _change_line(c: Change) -> str:
    where = c.prop or c.pointer or "/"
    extra = f" [column {c.warehouse}]" if c.warehouse else ""
    return f"{c.cls:<8} {c.kind}: {where}: {c.reason}{extra}"


def diff_text(diff: PlanDiff) -> str:
    """Per event: versions, the verdict, then one line per change."""
    out: list[str] = []
    for e in diff.events:
        verdict = "needs a new version" if e.needs_new_version else "no new version needed"
        out.append(
            f"{e.event} {_versions(e.old_version, e.new_version)}: {e.status}, {e.cls}; {verdict}"
        )
        if e.violation:
            out.append(f"  POLICY VIOLATION: {e.violation}")
        out.extend("  " + _change_line(c) for c in e.changes)
    if diff.plan_changes:
        out.append("plan-wide:")
        out.extend("  " + _change_line(c) for c in diff.plan_changes)
    if diff.privacy:
        out.append("privacy:")
        out.extend(f"  {c.event}: {c.prop or c.pointer}: {c.reason}" for c in diff.privacy)
    if not out:
        out.append("no changes")
    out.append("ok" if diff.ok else f"{len(diff.violations)} event(s) violate the version policy")
    return "\n".join(out) + "\n"


def diff_json(diff: PlanDiff) -> str:
    """The JSON report (see :meth:`PlanDiff.to_json`)."""
    return orjson.dumps(diff.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"


def _cell(text: str) -> str:
    """Plain text for a Markdown line or table cell: HTML and table pipes escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _code(text: str) -> str:
    """``text`` as one Markdown code span that no backtick in it can close early (the
    fence is longer than any run of backticks inside; HTML in a code span is shown as is)."""
    text = text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def diff_markdown(diff: PlanDiff) -> str:
    """A pull-request comment a reviewer reads in a minute."""
    counts = Counter(c.cls for c in diff.changes)
    head = "### trackplan diff: " + (
        "no changes"
        if not diff.changes
        else ", ".join(
            f"{counts[k]} {_BADGE[k]}"
            for k in ("MODEL", "REVISION", "ADDITION", "PATCH")
            if counts[k]
        )
    )
    out = [head, ""]
    if diff.violations:
        out.append(
            f"**:x: {len(diff.violations)} event(s) changed incompatibly without a new "
            "version** (policy: a new version for "
            f"{diff.policy.new_version_for} changes)"
        )
        out.extend(f"- **{_cell(e.event)}**: {_cell(e.violation or '')}" for e in diff.violations)
        out.append("")
    elif diff.changes:
        out.extend([":white_check_mark: version policy satisfied", ""])
    if diff.events:
        out += [
            "| Event | Versions | Change | Class | Needs new version |",
            "|---|---|---|---|---|",
        ]
        for e in diff.events:
            flag = "yes" + (" :x:" if e.violation else "") if e.needs_new_version else "no"
            out.append(
                f"| {_cell(e.event)} | {_versions(e.old_version, e.new_version)} | "
                f"{e.status} | {e.cls} | {flag} |"
            )
        out.append("")
    if diff.privacy:
        out.append("#### :lock: Privacy")
        out.extend(
            f"- **{_cell(c.event)}** {_code(c.prop or c.pointer)}: {_cell(c.reason)}"
            for c in diff.privacy
        )
        out.append("")
    warehouse = [c for c in diff.changes if c.warehouse]
    if warehouse:
        out.append("#### Warehouse column types")
        out.extend(
            f"- **{_cell(c.event)}** {_code(c.prop or c.pointer)}: {c.warehouse}"
            for c in warehouse
        )
        out.append("")
    if diff.changes:
        out += [
            "<details><summary>All changes</summary>",
            "",
            "| Event | Property | Change | Class | Reason |",
            "|---|---|---|---|---|",
        ]
        for c in diff.changes:
            out.append(
                f"| {_cell(c.event)} | {_code(c.prop or c.pointer or '/')} | "
                f"{c.kind} | {c.cls} | {_cell(c.reason)} |"
            )
        out += ["", "</details>", ""]
    return "\n".join(out)


def diff_github(diff: PlanDiff) -> str:
    """Annotations: policy violations as errors, MODEL changes as warnings, others notices."""
    lines: list[str] = []
    for e in diff.violations:
        first = e.changes[0] if e.changes else None
        lines.append(
            annotation(
                "error",
                first.file if first else "",
                first.pointer if first else "",
                f"trackplan diff: {e.event} needs a new version",
                e.violation or "",
            )
        )
    for c in diff.changes:
        level = "warning" if c.cls == "MODEL" or c.privacy else "notice"
        title = f"trackplan diff {c.cls}: {c.kind}"
        if c.event == PLAN_LABEL:
            title = f"trackplan diff {c.cls} (plan): {c.kind}"
        lines.append(
            annotation(
                level, c.file, c.pointer, title, f"{c.event}: {c.prop or c.pointer}: {c.reason}"
            )
        )
    return capped(lines, tool="trackplan diff")
