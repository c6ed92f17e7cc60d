"""``trackplan route``, ``trackplan erase`` and ``trackplan report dpia``: thin adapters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from trackplan.cliopts import format_option

__all__ = ["COMMANDS", "route", "erase", "report_group"]


def _label(event: Any) -> str:
    """What an event is printed as; names and types from the event pass the PII detectors."""
    from trackplan.pii.labels import safe_label

    if type(event) is not dict:
        return "(not an object)"
    if event.get("type", "track") == "track" and isinstance(event.get("event"), str):
        return safe_label(event["event"])
    kind = event.get("type", "(no type)")
    return safe_label(kind) if isinstance(kind, str) else "(no type)"


@click.command()
@click.argument("plan", type=click.Path(exists=True))
@click.argument("events", default="-")
@click.option(
    "--suppression",
    type=click.Path(exists=True, dir_okay=False),
    help="Suppression list file: its subjects' events are blocked.",
)
@click.option(
    "--stamp", is_flag=True, help="Also output the event with `integrations` set to the decisions."
)
@click.option("--no-events", is_flag=True, help="Decisions only, without each copy.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="json: one line per event (NDJSON); text: a summary.",
)
def route(
    plan: str, events: str, suppression: str | None, stamp: bool, no_events: bool, fmt: str
) -> None:
    """Route EVENTS (NDJSON, JSON or batch; '-' for stdin) to the plan's destinations.

    For each event: whether the plan allows it and, per destination, whether it is sent
    (consent, integrations, PII forms) and the copy that destination gets.
    """
    from trackplan.engine import compile_plan
    from trackplan.engine.readers import iter_file
    from trackplan.plan.load import load_plan
    from trackplan.privacy.consent import router_of
    from trackplan.privacy.suppression import SuppressionList, suppressed

    loaded = load_plan(plan)
    enforcer = compile_plan(loaded)
    router = router_of(enforcer)  # plan errors in destinations surface before any event
    if suppression:
        slist = SuppressionList.load(suppression, hash_key_env=_hash_key_env(loaded.pii))
        enforcer = suppressed(enforcer, slist)
    out = sys.stdout.buffer
    bad = 0
    for item in iter_file(events):
        if item.error is not None:
            bad += 1
            out.write(orjson.dumps({"line": item.line, "error": item.error}) + b"\n")
            continue
        routing = router.decide(enforcer.enforce(item.event), source=item.event)
        if fmt == "text":
            head = f"line {item.line} {_label(item.event)}: {routing.result.decision}"
            lines = [head]
            for d in routing.deliveries:
                why = "sent" if d.send else f"not sent ({d.reason}"
                if not d.send:
                    why += f": {', '.join(d.detail)})" if d.detail else ")"
                lines.append(f"  {d.destination:<24} {why}")
            out.write(("\n".join(lines) + "\n").encode())
            continue
        doc: dict[str, Any] = {
            "line": item.line,
            "event": _label(item.event),
            **routing.to_dict(with_events=not no_events),
        }
        if stamp:
            doc["stamped"] = routing.stamped()
        out.write(orjson.dumps(doc) + b"\n")
    out.flush()
    sys.exit(1 if bad else 0)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--user-id", "user_ids", multiple=True, help="A user id to erase (repeatable).")
@click.option(
    "--anonymous-id", "anonymous_ids", multiple=True, help="An anonymous id to erase (repeatable)."
)
@click.option(
    "--ids-file",
    type=click.Path(exists=True, dir_okay=False),
    help="File of ids, one a line, matched as user and anonymous ids.",
)
@click.option("--dry-run", is_flag=True, help="Count the rows that would go; change nothing.")
@click.option(
    "--audit-log",
    type=click.Path(dir_okay=False),
    help="Append a JSON line (subject hashes, never ids) to this file.",
)
@click.option(
    "--suppress",
    "suppress_file",
    type=click.Path(dir_okay=False),
    help="Also add the subjects to this suppression list (created if missing).",
)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(exists=True),
    help="Key subject hashes with this plan's hash key (its pii.hash_key_env).",
)
@click.option(
    "--unkeyed-hashes",
    "--unkeyed-subject-hashes",
    "unkeyed_hashes",
    is_flag=True,
    help="Allow plain SHA-256 subject hashes when no key is set (reversible for emails "
    "and guessable ids: not recommended).",
)
@format_option(["text", "json"])
def erase(
    paths: tuple[str, ...],
    user_ids: tuple[str, ...],
    anonymous_ids: tuple[str, ...],
    ids_file: str | None,
    dry_run: bool,
    audit_log: str | None,
    suppress_file: str | None,
    plan_path: str | None,
    unkeyed_hashes: bool,
    fmt: str,
) -> None:
    """Remove every row of the subjects from parquet, NDJSON and CSV files under PATHS.

    Changed files are rewritten aside and renamed into place; files without the subjects
    are not touched. Subject hashes in the audit log and suppression list are HMAC-SHA256,
    keyed with $TRACKPLAN_SUBJECT_KEY, else the plan's hash key (--plan; $TRACKPLAN_HASH_KEY
    by default); plain SHA-256 only with --unkeyed-hashes.
    """
    from trackplan.privacy.erase import EraseOptions, Subjects, read_ids_file
    from trackplan.privacy.erase import erase as run
    from trackplan.privacy.suppression import SuppressionList

    pii: Any = None
    if plan_path:
        from trackplan.plan.load import load_plan

        pii = load_plan(plan_path).pii
    key = _subject_key(
        _hash_key_env(pii), needed=bool(audit_log or suppress_file) and not dry_run,
        unkeyed=unkeyed_hashes,
    )
    subjects = Subjects(
        frozenset(user_ids),
        frozenset(anonymous_ids),
        read_ids_file(ids_file) if ids_file else frozenset(),
    )
    options = EraseOptions(
        dry_run=dry_run, audit_log=Path(audit_log) if audit_log else None, key=key
    )
    report = run(paths, subjects, options=options)
    changed = sum(1 for f in report.files if f.removed)
    if fmt == "json":  # counts and paths only: ids never appear in output
        body = {
            "dry_run": dry_run,
            "removed": report.removed,
            "files": [
                {"path": str(f.path), "rows": f.rows, "removed": f.removed}
                for f in report.files
            ],
            "verified": report.verified,
            "stale_removed": report.stale_removed,
        }
        click.echo(json.dumps(body, indent=2))
    for f in report.files if fmt == "text" else ():
        if f.removed:
            verb = "would remove" if dry_run else "removed"
            click.echo(f"{f.path}: {verb} {f.removed} of {f.rows} rows")
    if fmt == "text":
        click.echo(
            f"{'would remove' if dry_run else 'removed'} {report.removed} rows from "
            f"{changed} of {len(report.files)} files"
            + (" (verified)" if report.verified else "")
            + (
                f"; {report.stale_removed} stale temporary files removed"
                if report.stale_removed
                else ""
            )
        )
    if suppress_file and not dry_run:
        ids = subjects.users | subjects.anonymous
        path = Path(suppress_file)
        base = (
            SuppressionList.load(path, hash_key_env=_hash_key_env(pii))
            if path.exists()
            else SuppressionList.from_ids([], key=key)
        )
        base.add(ids).write(path)


def _hash_key_env(pii: Any) -> str:
    """The variable holding the plan's hash key (``pii.hash_key_env``, else the default)."""
    from collections.abc import Mapping

    from trackplan.pii.policy import DEFAULT_KEY_ENV

    env = pii.get("hash_key_env") if isinstance(pii, Mapping) else None
    return env if isinstance(env, str) and env else DEFAULT_KEY_ENV


def _subject_key(key_env: str, *, needed: bool, unkeyed: bool) -> bytes | None:
    """The key of subject hashes (:func:`~trackplan.privacy.suppression.subject_key`, the
    plan's hash key read from ``key_env``); None (plain SHA-256, with a warning) only when
    unkeyed hashes are chosen explicitly, or when no hash is written at all."""
    from trackplan.privacy.suppression import UNKEYED_WARNING, env_key, subject_key

    if unkeyed:
        if needed:
            click.echo(UNKEYED_WARNING, err=True)
        return None
    if not needed:
        return env_key() or env_key(key_env)
    return subject_key(hash_key_env=key_env)


@click.group("report")
def report_group() -> None:
    """Reports generated from the plan."""


@report_group.command("dpia")
@click.argument("plan", type=click.Path(exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "html", "json"]),
    default="markdown",
    show_default=True,
)
@click.option("--strict", is_flag=True, help="Exit 1 when the report finds gaps.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
def dpia(plan: str, fmt: str, strict: bool, output: str | None) -> None:
    """The data-protection report of PLAN: destinations, PII flows and gaps (for a DPIA)."""
    from trackplan.plan.load import load_plan
    from trackplan.privacy.report import build_report, render

    report = build_report(load_plan(plan))
    text = render(report, fmt)
    if output:
        from trackplan.atomic import write_atomic

        write_atomic(output, text.encode("utf-8"))
    else:
        click.echo(text, nl=False)
    sys.exit(1 if strict and report.gaps else 0)


COMMANDS = [route, erase, report_group]
