"""``trackplan check``, ``lint`` and ``diff``: thin adapters over :mod:`trackplan.ci`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
import orjson

from trackplan.ci.diff import PlanDiff, diff_plans
from trackplan.ci.git import empty_plan, load_plan_at, resolve_spec, spec_path
from trackplan.ci.lint import RULE_IDS, LintReport, lint_plan
from trackplan.ci.render import (
    annotation,
    capped,
    diff_github,
    diff_json,
    diff_markdown,
    diff_text,
    lint_github,
    lint_json,
    lint_text,
)
from trackplan.ci.sarif import diff_sarif, issues_sarif, lint_sarif
from trackplan.cliopts import emit, format_option, output_option
from trackplan.engine import compile_plan
from trackplan.errors import CompileError, MissingSecretError, PlanError, PlanIssue
from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan

__all__ = ["COMMANDS", "check", "lint", "diff"]

_LINT_FORMATS: dict[str, Callable[[LintReport], str]] = {
    "text": lint_text,
    "json": lint_json,
    "github": lint_github,
    "sarif": lint_sarif,
}
_DIFF_FORMATS: dict[str, Callable[[PlanDiff], str]] = {
    "text": diff_text,
    "json": diff_json,
    "markdown": diff_markdown,
    "github": diff_github,
    "sarif": diff_sarif,
}


def _format_option(
    renderers: Mapping[str, Callable[[Any], str]],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--format`` option choosing among ``renderers`` (text by default)."""
    return format_option(list(renderers), default="text")


_output = output_option(
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the output to this file (atomically) instead of standard output.",
)


def _rule_list(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    ids = tuple(r.strip() for item in value for r in item.split(",") if r.strip())
    unknown = sorted(set(ids) - set(RULE_IDS))
    if unknown:
        raise click.BadParameter(
            f"unknown rule(s) {', '.join(unknown)}; rules: {', '.join(RULE_IDS)}"
        )
    return ids


@click.command()
@click.argument("plan", type=click.Path(path_type=Path))
@_format_option(_LINT_FORMATS)
@click.option(
    "--skip",
    multiple=True,
    callback=_rule_list,
    metavar="RULE,...",
    help="Rules not to run (comma-separated; repeatable).",
)
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@_output
def lint(
    plan: Path, fmt: str, skip: tuple[str, ...], strict: bool, output: Path | None
) -> None:
    """Lint PLAN: schema hygiene, naming, documentation and PII declarations.

    Exit 0 when clean, 1 when a rule at level error fires (or a warning with --strict),
    2 on bad usage. Configure rules in the plan's lint section.
    """
    report = lint_plan(load_plan(plan), skip=skip)
    emit(_LINT_FORMATS[fmt](report), output)
    sys.exit(1 if report.failed(strict=strict) else 0)


@click.command()
@click.argument("specs", nargs=-1, metavar="[OLD] [NEW]")
@click.option(
    "--base",
    "base",
    default=None,
    metavar="REV",
    help="Compare the plan at git revision REV with the working tree.",
)
@click.option(
    "--plan",
    "plan_path",
    default=None,
    metavar="PATH",
    help="The plan path for bare revisions (default: the other argument's path).",
)
@_format_option(_DIFF_FORMATS)
@_output
def diff(
    specs: tuple[str, ...],
    base: str | None,
    plan_path: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Classify every change between two plans and check the version policy.

    OLD and NEW are plan paths, REV:PATH, or bare git revisions (then the plan sits at
    --plan or the other argument's path). With --base REV, OLD is the plan at REV and
    NEW the working tree (PATH from the one argument or --plan):

    \b
        trackplan diff --base main plans/ecommerce
        trackplan diff main HEAD:plans/ecommerce

    Exit 0 when the policy holds, 1 when an event changed incompatibly without a new
    version, 2 on bad usage or an unreadable plan.
    """
    if base is not None:
        if len(specs) > 1 or (not specs and plan_path is None):
            raise click.UsageError("with --base give one plan path (or --plan PATH)")
        path = specs[0] if specs else str(plan_path)
        found = load_plan_at(base, path, missing_ok=True)
        new = load_plan(path)
        # a plan added by this change does not exist at the base: all of it is new
        old = found if found is not None else empty_plan(new, label=f"{base}:{path}")
    else:
        if len(specs) != 2:
            raise click.UsageError("give OLD and NEW, or --base REV [PATH]")
        old_spec, new_spec = specs
        old_default = plan_path or spec_path(new_spec)
        new_default = plan_path or spec_path(old_spec)
        found = resolve_spec(old_spec, default_path=old_default, missing_ok=True)
        new = resolve_spec(new_spec, default_path=new_default)
        old = found if found is not None else empty_plan(new, label=old_spec)
    report = diff_plans(old, new)
    emit(_DIFF_FORMATS[fmt](report), output)
    sys.exit(0 if report.ok else 1)


@click.command()
@click.argument("plan", type=click.Path(path_type=Path))
@format_option(["text", "json", "github", "sarif"])
@output_option("output", type=click.Path(dir_okay=False, path_type=Path),
               help="Write the output to this file instead of standard output.")  # fmt: skip
def check(plan: Path, fmt: str, output: Path | None) -> None:
    """Load, check and compile PLAN (a directory or one file); list every problem found.

    Exit 0 when the plan is valid, 1 when it is not, 2 on bad usage.
    """
    issues: list[PlanIssue] = []
    loaded: Plan | None = None
    try:
        loaded = load_plan(plan)
    except PlanError as exc:
        issues = list(exc.issues)
    if loaded is not None:
        try:
            # a schema the loader accepts can still be beyond the engine (a regex dialect gap)
            compile_plan(loaded).compile_all()
        except MissingSecretError:
            pass  # secrets come from the environment where events are enforced, not here
        except CompileError as exc:
            issues = [PlanIssue(str(plan), "", str(exc))]
    emit(_check_output(plan, loaded, issues, fmt), output)
    sys.exit(1 if issues else 0)


def _check_output(plan: Path, loaded: Plan | None, issues: list[PlanIssue], fmt: str) -> str:
    if fmt == "json":
        body: dict[str, object] = {
            "plan": str(plan),
            "valid": not issues,
            "errors": [
                {"file": i.file, "pointer": i.pointer, "event": i.event, "message": i.message}
                for i in issues
            ],
        }
        if loaded is not None and not issues:
            body.update(
                name=loaded.name,
                events=len(loaded.event_names),
                event_versions=len(loaded.events),
                other_rules=len(loaded.rules) - len(loaded.events),
            )
        return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "sarif":
        return issues_sarif(issues)
    if fmt == "github":
        lines = [
            annotation("error", i.file, i.pointer, "trackplan check",
                       f"{i.event + ': ' if i.event else ''}{i.message}")
            for i in issues
        ]  # fmt: skip
        return capped(lines, tool="trackplan check")
    if issues:
        count = len(issues)
        head = f"{plan}: {count} error{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {i}" for i in issues)]) + "\n"
    assert loaded is not None
    others = len(loaded.rules) - len(loaded.events)
    return (
        f"{plan}: valid plan {loaded.name!r}: {len(loaded.event_names)} events, "
        f"{len(loaded.events)} event versions, {others} other rules\n"
    )


COMMANDS = [check, lint, diff]
