"""The batch representations of a list of events, what each cannot say, and reading them back.

:data:`GAPS` is the one table of what a representation truly cannot say (mirrored in the
README's batch section). The harness normalises exactly these cases and nothing else: an
event is normalised for a representation (:func:`normalise`) before the reference
(``enforce``) sees it, and a representation's output rows are read back under the same
rules (:func:`read_back`). An event a representation cannot hold at all is left out of
that representation's comparison, and counted (:func:`representable`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trackplan.batch.mapping import snake_case

__all__ = [
    "GAPS",
    "REPRESENTATIONS",
    "Written",
    "write",
    "normalise",
    "representable",
    "read_back",
    "ENVELOPE_COLUMNS",
]

Event = dict[str, Any]

#: What a representation cannot say -> how the harness treats it. The only normalisations.
GAPS: dict[str, str] = {
    "null-is-absent": "a null cell is how a missing key is written, so a JSON null reads as "
    "absent (a null struct and an absent object alike)",
    "empty-is-absent": "an empty field is how a missing value is written, so an empty "
    "string reads as absent",
    "one-type-per-column": "a column holds one type: an event whose value has another type "
    "than its column's cannot be written (NDJSON keeps it)",
    "scalars-only": "no nested objects or arrays: an event with one in its payload cannot "
    "be written (context is flattened into context_* columns)",
    "track-tables": "one table per track event (Segment's warehouse layout): identify "
    "calls are not written as flat tables here",
}

#: representation -> the gaps it has
REPRESENTATIONS: dict[str, tuple[str, ...]] = {
    "ndjson": (),
    "parquet-nested": ("null-is-absent", "one-type-per-column"),
    "parquet-flat": ("null-is-absent", "one-type-per-column", "track-tables"),
    "csv": (
        "null-is-absent",
        "empty-is-absent",
        "one-type-per-column",
        "scalars-only",
        "track-tables",
    ),
}

#: flat envelope columns (Segment's warehouse names) -> call field
ENVELOPE_COLUMNS = {
    "id": "messageId",
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "timestamp": "timestamp",
    "event_text": "event",
    "type": "type",
}


def _drop(value: Any, empty: bool) -> Any:
    """``value`` without null (and, with ``empty``, empty-string) object members."""
    if isinstance(value, dict):
        return {
            k: _drop(v, empty)
            for k, v in value.items()
            if v is not None and not (empty and v == "")
        }
    if isinstance(value, list):
        return [_drop(v, empty) for v in value]
    return value


def normalise(rep: str, event: Event) -> Event:
    """``event`` as ``rep`` can say it (only the cases :data:`GAPS` names)."""
    gaps = REPRESENTATIONS[rep]
    if "null-is-absent" not in gaps:
        return event
    return _drop(event, "empty-is-absent" in gaps)  # type: ignore[no-any-return]


def _flat_context(ctx: Any, prefix: str = "context") -> dict[str, tuple[str, ...]]:
    """Columns of a flattened context: ``context_user_agent`` -> ('context', 'userAgent')."""
    out: dict[str, tuple[str, ...]] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        else:
            out["_".join(snake_case(p) for p in path)] = path

    walk(ctx, (prefix,))
    return out


def representable(rep: str, event: Event) -> bool:
    """Whether ``rep`` can hold ``event`` at all (the shape; types are checked on writing)."""
    gaps = REPRESENTATIONS[rep]
    if "track-tables" in gaps and (event.get("type") != "track" or "event" not in event):
        return False
    if "scalars-only" in gaps:
        payload = event.get("properties") or {}
        if any(isinstance(v, (dict, list)) for v in payload.values()):
            return False
        if any(isinstance(v, list) for v in _leaves(event.get("context"))):
            return False
    return True


def _leaves(node: Any) -> Iterable[Any]:
    if isinstance(node, dict):
        for v in node.values():
            yield from _leaves(v)
    else:
        yield node


@dataclass
class Written:
    """Files of one representation, and how their rows map back to events."""

    rep: str
    root: Path
    files: list[Path] = field(default_factory=list)
    #: file -> messageId of each row, in order
    ids: dict[str, list[str]] = field(default_factory=dict)
    #: flat layouts: column -> call path
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _flat_row(event: Event, columns: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    row: dict[str, Any] = {"event": snake_case(str(event["event"]))}
    for col, call_field in ENVELOPE_COLUMNS.items():
        if call_field in event and col != "type":
            row[col] = event[call_field]
            columns[col] = (call_field,)
    for col, path in _flat_context(event.get("context") or {}).items():
        node: Any = event
        for p in path:
            node = node[p]
        row[col] = node
        columns[col] = path
    for name, value in (event.get("properties") or {}).items():
        row[name] = value
        columns[name] = ("properties", name)
    return row


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    names = list(dict.fromkeys(k for r in rows for k in r))  # from_pylist reads row 0's keys
    return pa.Table.from_pylist([{k: r.get(k) for k in names} for r in rows])


def write(rep: str, events: list[Event], root: Path) -> Written:
    """Write ``events`` (already normalised and representable) as ``rep`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    out = Written(rep, root)
    if rep == "ndjson":
        path = root / "events.ndjson"
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
        out.files.append(path)
        out.ids[str(path)] = [e["messageId"] for e in events]
        return out
    if rep == "parquet-nested":
        path = root / "events.parquet"
        pq.write_table(_table(events), path, row_group_size=400)
        out.files.append(path)
        out.ids[str(path)] = [e["messageId"] for e in events]
        return out
    by_event: dict[str, list[Event]] = {}
    for e in events:
        by_event.setdefault(str(e["event"]), []).append(e)
    for name, group in sorted(by_event.items()):
        table = _table([_flat_row(e, out.columns) for e in group])
        if rep == "csv":
            path = root / f"{snake_case(name)}.csv"
            pacsv.write_csv(table, path)
        else:
            path = root / f"{snake_case(name)}.parquet"
            pq.write_table(table, path)
        out.files.append(path)
        out.ids[str(path)] = [e["messageId"] for e in group]
    return out


def _set(event: Event, path: tuple[str, ...], value: Any) -> None:
    node = event
    for p in path[:-1]:
        node = node.setdefault(p, {})
    node[path[-1]] = value


def read_back(written: Written, out_root: Path) -> dict[str, Event]:
    """The rows of the redacted copy of ``written`` (under ``out_root``) as events, by
    messageId, read under the representation's own rules."""
    empty = "empty-is-absent" in REPRESENTATIONS[written.rep]
    events: dict[str, Event] = {}
    for path in written.files:
        target = out_root / path.relative_to(written.root)
        if not target.exists():
            continue
        if written.rep == "ndjson":
            rows = [orjson.loads(line) for line in target.read_bytes().splitlines() if line]
        elif target.suffix == ".csv":
            rows = pacsv.read_csv(target).to_pylist()
        else:
            rows = pq.read_table(target).to_pylist()
        for row in rows:
            if written.rep in ("parquet-flat", "csv"):
                event: Event = {"type": "track"}
                for col, value in row.items():
                    if col in written.columns:
                        _set(event, written.columns[col], value)
                row = event
            row = _drop(row, empty) if written.rep != "ndjson" else row
            events[str(row.get("messageId"))] = row
    return events
