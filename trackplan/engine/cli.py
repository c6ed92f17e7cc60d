"""``trackplan validate``: enforce a plan on event files and report what happened."""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from trackplan.atomic import AtomicOutput, PartsDir
from trackplan.cliopts import output_option
from trackplan.engine import exactjson, split
from trackplan.engine.compiled import Allowed, Result, stamp
from trackplan.engine.enforcer import Enforcer, compile_plan
from trackplan.engine.readers import (
    INPUT_FORMATS,
    MAX_LINE_BYTES,
    Item,
    choose_format,
    iter_events,
    iter_file,
    iter_lines,
    read_document,
    reading,
)
from trackplan.engine.typed import LineResult, TypedPath
from trackplan.errors import InputError
from trackplan.pii.labels import safe_label
from trackplan.plan.load import load_plan

__all__ = ["COMMANDS", "validate", "ValidationReport"]

_SAMPLE = 20
_LABELS = 4096  # distinct (type, event) pairs whose label is remembered
_MISSING = object()
_BLOCK = 512  # output lines written at a time (or fewer, when one is large)
_LARGE = 1 << 16


class ValidationReport:
    """Counts and the first violations of a ``validate`` run."""

    def __init__(self) -> None:
        self.events = 0
        self.allowed = 0
        self.blocked = 0
        self.malformed = 0
        self.violations = 0
        self.omitted = 0
        self.by_type: Counter[str] = Counter()
        self.by_event: dict[str, Counter[str]] = {}
        self.first: list[dict[str, Any]] = []
        #: label -> events allowed as they came (no violation, nothing omitted), counted by
        #: the NDJSON loop without a Counter per event; :meth:`fold` adds them to the rest
        self.passed: dict[str, int] = {}
        #: ``(type, event)`` of an event -> its label (:func:`_event_label`, which scans
        #: names for PII): a dict lookup per event instead of a scan
        self.labels: dict[tuple[Any, Any], str] = {}

    @property
    def clean(self) -> bool:
        """True when nothing was blocked, violated or unreadable."""
        self.fold()
        return not (self.blocked or self.violations or self.malformed)

    def fold(self) -> None:
        """Add the events counted in :attr:`passed` to the totals (idempotent)."""
        for name, count in self.passed.items():
            self.events += count
            self.allowed += count
            counts = self.by_event.setdefault(name, Counter())
            counts["events"] += count
            counts["blocked"] += 0
        self.passed.clear()

    def label(self, event: dict[str, Any]) -> str:
        """:func:`_event_label` of a dict event, remembered by its ``type`` and ``event``."""
        try:
            key = (event.get("type", _MISSING), event.get("event", _MISSING))
            found = self.labels.get(key)
        except TypeError:  # an unhashable type or name
            return _event_label(event)
        if found is None:
            found = _event_label(event)
            if len(self.labels) < _LABELS:
                self.labels[key] = found
        return found

    def add_malformed(self, file: str, line: int, error: str) -> None:
        self.events += 1
        self.malformed += 1
        self.blocked += 1
        self.by_type["Malformed"] += 1
        if len(self.first) < _SAMPLE:
            self.first.append(
                {"file": file, "line": line, "event": None, "type": "Malformed",
                 "pointer": "", "message": error}
            )

    def add(self, file: str, line: int, event: Any, result: Any, *,
            label: str | None = None) -> None:
        self.events += 1
        if result.allowed:
            self.allowed += 1
        else:
            self.blocked += 1
        self.omitted += len(result.omitted)
        name = label if label is not None else _event_label(event)
        counts = self.by_event.setdefault(name, Counter())
        counts["events"] += 1
        counts["blocked"] += 0 if result.allowed else 1
        for v in result.violations:
            self.violations += 1
            self.by_type[v.type] += 1
            counts[v.type] += 1
            if len(self.first) < _SAMPLE:
                self.first.append(
                    {"file": file, "line": line, "event": name, "type": v.type,
                     "pointer": v.pointer, "message": v.message,
                     "schema": v.schema_location}
                )

    def merge(self, other: ValidationReport, line_offset: int) -> None:
        """Add ``other``, the report of a later part of the same file whose line numbers
        start after ``line_offset`` lines (its first violations come after these)."""
        other.fold()
        self.fold()
        self.events += other.events
        self.allowed += other.allowed
        self.blocked += other.blocked
        self.malformed += other.malformed
        self.violations += other.violations
        self.omitted += other.omitted
        self.by_type.update(other.by_type)
        for name, counts in other.by_event.items():
            self.by_event.setdefault(name, Counter()).update(counts)
        for entry in other.first[: max(0, _SAMPLE - len(self.first))]:
            self.first.append({**entry, "line": entry["line"] + line_offset})

    def to_json(self) -> dict[str, Any]:
        self.fold()
        return {
            "events": self.events,
            "allowed": self.allowed,
            "blocked": self.blocked,
            "malformed": self.malformed,
            "violations": self.violations,
            "omitted": self.omitted,
            "by_type": dict(sorted(self.by_type.items())),
            "by_event": {k: dict(sorted(v.items())) for k, v in sorted(self.by_event.items())},
            "first_violations": self.first,
        }

    def to_text(self) -> str:
        self.fold()
        lines = [
            f"{self.events} events: {self.allowed} allowed, {self.blocked} blocked, "
            f"{self.violations} violations, {self.omitted} properties omitted"
            + (f", {self.malformed} malformed" if self.malformed else ""),
        ]
        if self.by_type:
            lines.append("")
            lines.append("violations by type:")
            width = max(len(t) for t in self.by_type)
            for vtype, count in sorted(self.by_type.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"  {vtype:<{width}}  {count}")
        if self.by_event:
            lines.append("")
            lines.append("by event:")
            width = max(len(e) for e in self.by_event)
            for name, counts in sorted(self.by_event.items()):
                detail = ", ".join(
                    f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("events", "blocked")
                )
                lines.append(
                    f"  {name:<{width}}  {counts['events']} events, {counts['blocked']} blocked"
                    + (f"; {detail}" if detail else "")
                )
        if self.first:
            lines.append("")
            lines.append(f"first {len(self.first)} violations:")
            for v in self.first:
                where = f"{v['file']}:{v['line']}"
                lines.append(
                    f"  {where} [{v['event'] or '-'}] {v['type']} at {v['pointer'] or '/'}: "
                    f"{v['message']}"
                )
        return "\n".join(lines)


def _event_label(event: Any) -> str:
    """What the report counts an event by; names from the event pass the PII detectors."""
    if not isinstance(event, dict):
        return "(not an object)"
    kind = event.get("type")
    if kind == "track" or (kind is None and "event" in event):
        name = event.get("event")
        return safe_label(name) if isinstance(name, str) else "(track without event)"
    return f"({safe_label(kind)})" if isinstance(kind, str) else "(no type)"


class _Sink:
    """Where forwarded events go: stdout, or a file replaced atomically when the run ends."""

    def __init__(self, target: str) -> None:
        self.file = None if target == "-" else AtomicOutput(target)

    def write(self, data: bytes) -> None:
        if self.file is not None:
            self.file.write(data)
        else:
            sys.stdout.buffer.write(data)

    def append_file(self, path: str) -> None:
        """Append the content of the file ``path``."""
        if self.file is not None:
            self.file.append_file(path)
            return
        with open(path, "rb") as part:
            shutil.copyfileobj(part, sys.stdout.buffer, _COPY_BLOCK)

    def commit(self) -> None:
        if self.file is not None:
            self.file.commit()
        else:
            sys.stdout.buffer.flush()

    def abort(self) -> None:
        if self.file is not None:
            self.file.abort()


def _refuse_overwriting_inputs(out: str, inputs: tuple[str, ...]) -> None:
    """``--out`` must not name an input: the run would replace the raw data it reads."""
    if out == "-":
        return
    target = Path(out)
    for path in inputs:
        if path == "-":
            continue
        try:
            same = target.exists() and os.path.samefile(target, path)
        except OSError:
            same = False
        if same or target.resolve() == Path(path).resolve():
            raise InputError(
                f"{out}: --out names the input {path}; write the events to another file"
            )


@click.command()
@click.argument("plan", type=click.Path(exists=True))
@click.argument("inputs", nargs=-1, required=True)
@output_option("out", legacy=("--out",), default=None,
               help="Write forwarded events as NDJSON here ('-' = stdout).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Report format.")
@click.option("--input-format", type=click.Choice(INPUT_FORMATS), default="auto",
              show_default=True, help="How to read inputs (auto-detected from content).")
@click.option("--include-blocked", is_flag=True, help="Also write blocked events to --output.")
@click.option("--max-line-bytes", type=click.IntRange(min=1), default=MAX_LINE_BYTES,
              show_default=True,
              help="Longest NDJSON line or JSON document read; longer ones are malformed.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes for a large NDJSON file (0: one per core; 1: this process "
                   "only). Files under 32 MB, stdin and .gz files use one.")
def validate(
    plan: str, inputs: tuple[str, ...], out: str | None, fmt: str, input_format: str,
    include_blocked: bool, max_line_bytes: int, jobs: int,
) -> None:
    """Enforce PLAN on event files (NDJSON, JSON array or batch bodies; '-' for stdin).

    Exit 0 when nothing was blocked or violated, 1 when something was, 2 on bad usage or
    unreadable input.
    """
    enforcer = compile_plan(load_plan(plan))
    for path in inputs:
        if path != "-" and not Path(path).is_file():
            raise InputError(f"{path}: no such file")
    if out:
        _refuse_overwriting_inputs(out, inputs)
    report = ValidationReport()
    sink = _Sink(out) if out else None
    run = _Run(enforcer, report, sink, include_blocked=include_blocked)
    try:
        for path in inputs:
            if input_format not in ("auto", "ndjson"):
                run.items(path, iter_file(path, input_format,  # type: ignore[arg-type]
                                          max_bytes=max_line_bytes))
                continue
            with reading(path) as raw:
                chosen = choose_format(raw, input_format)  # type: ignore[arg-type]
                if chosen == "ndjson":
                    bounds = _ranges(path, jobs)
                    if bounds is None:
                        run.lines(path, iter_lines(raw, max_line_bytes), max_line_bytes)
                    else:
                        run.lines_split(path, bounds, max_line_bytes)
                    continue
                data = read_document(raw, max_line_bytes)
            run.items(path, iter([Item(1, None, f"JSON document longer than {max_line_bytes} "
                                               "bytes")]) if data is None
                      else iter_events(data, chosen, max_bytes=max_line_bytes))  # type: ignore[arg-type]
        run.flush()
        if sink is not None:
            sink.commit()
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    text = orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode() if fmt == "json" \
        else report.to_text()
    click.echo(text, err=(out == "-"))
    sys.exit(0 if report.clean else 1)


class _Run:
    """One ``validate`` run: enforces events, counts them in the report, writes the output.

    NDJSON lines go through :meth:`lines`, which keeps the common case (an event allowed as
    it came) to one parse, one enforce, one dict lookup to count it and, with ``--out``,
    one ``orjson.dumps`` compared with the line: when they are equal the line is what the
    event would be written as, so no number in it can be one orjson reads inexactly, and
    the exact parse of #15 (:mod:`trackplan.engine.exactjson`) cannot change the verdict.
    Only other lines pay the exact-number filter and, when it matches, the exact parse.
    Output goes out in blocks. Everything written and reported is what the event-by-event
    path (:meth:`record`) gives for the same input.
    """

    __slots__ = ("enforcer", "report", "sink", "include_blocked", "buffer")

    def __init__(self, enforcer: Enforcer, report: ValidationReport,
                 sink: _Sink | _PartSink | None, *,
                 include_blocked: bool) -> None:
        self.enforcer = enforcer
        self.report = report
        self.sink = sink
        self.include_blocked = include_blocked
        self.buffer: list[bytes] = []

    def flush(self) -> None:
        if self.buffer and self.sink is not None:
            self.sink.write(b"".join(self.buffer))
        self.buffer.clear()

    def items(self, path: str, items: Iterator[Item]) -> None:
        """Events read by the document readers (arrays, batch bodies, forced formats)."""
        enforce = self.enforcer.enforce
        for item in items:
            self.record(path, item, None if item.error is not None else enforce(item.event))

    def record(self, path: str, item: Item, result: Result | None) -> None:
        """Count one event (or unreadable line) and write what it forwards."""
        report = self.report
        if result is None:
            report.add_malformed(path, item.line, item.error or "unreadable")
            return
        if isinstance(result, LineResult):  # allowed as it is: forward its bytes
            report.add(path, item.line, None, result, label=result.rule_label)
            if self.sink is not None:
                self.buffer.append(result.line.rstrip(b"\r\n") + b"\n")
        else:
            event = item.event if item.event is not None else result.event
            report.add(path, item.line, event, result)
            if self.sink is not None and (result.allowed or self.include_blocked):
                line = _dump_line(_stamped(result))
                if line is None:
                    report.add_malformed(path, item.line, "event nests too deep to write")
                    return
                self.buffer.append(line)
        if len(self.buffer) >= _BLOCK or (self.buffer and len(self.buffer[-1]) > _LARGE):
            self.flush()

    def lines_split(self, path: str, bounds: list[tuple[int, int]], max_bytes: int) -> None:
        """NDJSON lines of one large file, its line-aligned byte ``bounds`` checked at once
        (:mod:`trackplan.engine.split`): the first here, the others in forked children
        that write their output to part files, appended here in order. The output and the
        report are the ones :meth:`lines` gives for the whole file."""
        parts: PartsDir | None = None
        sink = self.sink
        assert not isinstance(sink, _PartSink)  # (a worker's run does not split again)
        if sink is not None:
            # beside the output file (the same file system: appended in the kernel, and
            # room for the output is room for its parts); for stdout, a pipe or a device,
            # in the temporary directory
            target = sink.file
            try:
                parts = PartsDir(target.target.resolve().parent
                                 if target is not None and not target.direct else None)
            except OSError as exc:
                raise InputError(f"cannot make a directory for the parts of the output: "
                                 f"{exc.strerror or exc}") from None
        parts_dir = str(parts.path) if parts is not None else None
        children: list[split.Forked] = []
        try:
            # what exists now is shared with the children: kept out of the collector, whose
            # passes would otherwise write to (and so copy) every page of it in each child
            gc.freeze()
            try:
                for index, (start, end) in enumerate(bounds[1:], start=1):
                    part = os.path.join(parts_dir, f"part-{index}") if parts_dir else None
                    children.append(split.Forked(_check_range, self.enforcer, path, start,
                                                 end, max_bytes, self.include_blocked, part))
            finally:
                gc.unfreeze()
            first = _Counted()
            try:
                with open(path, "rb", buffering=_READ_BUFFER) as fh:
                    start, end = bounds[0]
                    self.lines(path, first.count(iter_lines(
                        split.SliceReader(fh, start, end - start), max_bytes)), max_bytes)
            except OSError as exc:
                raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
            self.flush()
            offset = first.last
            for index, child in enumerate(children, start=1):
                report, count = child.result()
                self.report.merge(report, offset)
                offset += count
                if parts_dir is not None and sink is not None:
                    sink.append_file(os.path.join(parts_dir, f"part-{index}"))
        finally:
            for child in children:
                child.kill()  # (nothing left to end when each gave its result)
            if parts is not None:
                parts.close()

    def exact(self, path: str, number: int, line: bytes) -> None:
        """A line whose numbers orjson may read inexactly: parsed and enforced exactly."""
        try:
            event = exactjson.loads(line)
        except ValueError as exc:
            self.record(path, Item(number, None, f"invalid JSON: {exc}"), None)
            return
        self.record(path, Item(number, event), self.enforcer.enforce(event))

    def lines(self, path: str, lines: Iterator[tuple[int, bytes | None]],
              max_bytes: int) -> None:
        """NDJSON lines (see the class doc)."""
        enforcer = self.enforcer
        typed = TypedPath.of(enforcer)
        match = typed.match if typed.entries else None
        enforce = enforcer.enforce
        loads, dumps, decode_error = orjson.loads, orjson.dumps, orjson.JSONDecodeError
        newline = orjson.OPT_APPEND_NEWLINE
        may_lose = exactjson.may_lose
        report = self.report
        passed = report.passed
        labels = report.labels
        buffer = self.buffer
        append = buffer.append
        writing = self.sink is not None
        rule_labels: dict[int, str] = {}  # id of a typed rule -> its label
        for number, line in lines:
            if line is None:
                report.add_malformed(path, number, f"line longer than {max_bytes} bytes")
                continue
            if line[:1] != b"{" and not line.strip():
                continue
            if match is not None:
                entry = match(line)
                if entry is not None and entry.compiled.transform is None:
                    # valid as it came, decided while decoding: forward the line itself
                    rule = entry.compiled.rule
                    label = rule_labels.get(id(rule))
                    if label is None:  # (the enforcer keeps its rules alive: ids are fixed)
                        label = rule_labels[id(rule)] = LineResult(line, rule).rule_label
                    passed[label] = passed.get(label, 0) + 1
                    if writing:
                        append(line if line[-1:] == b"\n" and line[-2:-1] != b"\r"
                               else line.rstrip(b"\r\n") + b"\n")
                        if len(buffer) >= _BLOCK or len(line) > _LARGE:
                            self.flush()
                    continue
            try:
                event = loads(line)
            except decode_error as exc:
                if may_lose(line):  # (1e400 is JSON orjson refuses)
                    self.exact(path, number, line)
                else:
                    self.record(path, Item(number, None, f"invalid JSON: {exc}"), None)
                continue
            result: Any = enforce(event)
            if result.__class__ is Allowed and result[0] is event:
                if writing:
                    try:
                        data = dumps(event, option=newline)
                    except (TypeError, orjson.JSONEncodeError):
                        data = b""
                    if data != line:  # not as orjson writes it: the event-by-event path
                        if may_lose(line):
                            self.exact(path, number, line)
                        else:
                            self.record(path, Item(number), result)  # type: ignore[arg-type]
                        continue
                    append(line)
                    if len(buffer) >= _BLOCK or len(line) > _LARGE:
                        self.flush()
                try:
                    label = labels[(event.get("type", _MISSING), event.get("event", _MISSING))]
                except (KeyError, TypeError):
                    label = report.label(event)
                passed[label] = passed.get(label, 0) + 1
                continue
            if writing and _changes(event, line) and may_lose(line):
                self.exact(path, number, line)
                continue
            self.record(path, Item(number), result)


_READ_BUFFER = 1 << 20
_COPY_BLOCK = 1 << 20
#: Files at least this large are split when ``--jobs`` allows (two ranges of 16 MB).
_SPLIT_AT = 2 * split.MIN_CHUNK


def _ranges(path: str, jobs: int) -> list[tuple[int, int]] | None:
    """The byte ranges to check ``path`` in, one per process; None: one process (stdin, a
    compressed file, a small file, ``--jobs 1``, or a platform without fork)."""
    if jobs == 1 or path == "-" or path.endswith(".gz") or not split.available():
        return None
    parts = jobs or split.cores()
    try:
        if parts < 2 or os.path.getsize(path) < _SPLIT_AT:
            return None
        bounds = split.chunk_bounds(path, parts)
    except OSError:
        return None  # the one-process path reports it
    return bounds if len(bounds) > 1 else None


class _Counted:
    """Passes ``(number, line)`` pairs through, keeping the last number (the lines read)."""

    def __init__(self) -> None:
        self.last = 0

    def count(self, lines: Iterator[tuple[int, bytes | None]]
              ) -> Iterator[tuple[int, bytes | None]]:
        for number, line in lines:
            self.last = number
            yield number, line


class _PartSink:
    """A worker's output: a plain file, appended to the real output by the parent."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fh = open(path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise InputError(f"{path}: cannot write a part of the output: "
                             f"{exc.strerror or exc}") from None

    def write(self, data: bytes) -> None:
        try:
            self.fh.write(data)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write a part of the output: "
                             f"{exc.strerror or exc}") from None

    def close(self) -> None:
        try:
            self.fh.close()
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write a part of the output: "
                             f"{exc.strerror or exc}") from None


def _check_range(enforcer: Enforcer, path: str, start: int, end: int, max_bytes: int,
                 include_blocked: bool, part: str | None) -> tuple[ValidationReport, int]:
    """In a forked child: the report (and the part file of output) of the lines in
    ``[start, end)`` of ``path``, numbered from 1, and how many lines there were."""
    report = ValidationReport()
    sink = _PartSink(part) if part is not None else None
    run = _Run(enforcer, report, sink, include_blocked=include_blocked)
    counted = _Counted()
    try:
        with open(path, "rb", buffering=_READ_BUFFER) as fh:
            run.lines(path, counted.count(iter_lines(
                split.SliceReader(fh, start, end - start), max_bytes, bom=False)), max_bytes)
        run.flush()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        if sink is not None:
            sink.close()
    report.fold()
    report.labels.clear()
    return report, counted.last


def _changes(event: Any, line: bytes) -> bool:
    """Whether ``line`` differs from ``event`` as orjson writes it (then its numbers may be
    ones orjson reads inexactly; when equal, none is)."""
    try:
        return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE) != line
    except (TypeError, orjson.JSONEncodeError):
        return True


def _stamped(result: Result) -> Any:
    """The event as written: a blocked event's violations in ``context.protocols``, also
    for events blocked before validation (unplanned, not an object...), whose copy the
    enforcer leaves unstamped (stamping again is idempotent)."""
    event = result.event
    if result.allowed or not result.violations or type(event) is not dict:
        return event
    return stamp(dict(event), list(result.violations), [], [])


def _dump_line(event: Any) -> bytes | None:
    """One NDJSON line; numbers orjson cannot write (integers beyond 64 bits, numbers read
    exactly) and nesting it refuses through :func:`exactjson.dumps`; None if neither can."""
    try:
        return orjson.dumps(event) + b"\n"
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return exactjson.dumps(event) + b"\n"
    except (RecursionError, TypeError, orjson.JSONEncodeError):
        pass
    try:
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    except (RecursionError, TypeError, ValueError):
        return None


COMMANDS = [validate]
