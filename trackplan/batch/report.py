"""Tally check results and render them as text, JSON or a self-contained HTML page.

:class:`Tally` adds up the result batches of :func:`trackplan.batch.check.check_batch`
from any engine; :meth:`Tally.to_dict` is the JSON report (``rows``, ``invalid_rows``,
``by_event``, ``by_rule``, ``files``, ``samples``, ``per_row``); :func:`render_text` and
:func:`render_html` present the same dictionary. Sample values are masked before they
enter the dictionary: declared PII fields by the plan's mask action, other values when a
PII detector recognises them.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Tally", "render", "render_text", "render_html", "FORMATS"]

FORMATS = ("text", "json", "html")

#: Violation rows buffered before they are aggregated (bounds memory, saves per-batch cost).
FLUSH_ROWS = 200_000

#: Sample failing rows kept per rule (at most what a batch carries).
SAMPLES_PER_RULE = 3

Masker = Callable[[str | None, str, str], str]
"""(event, field, value as JSON text) -> the text to show."""


def _label(event: str | None, version: int | None) -> str:
    """``Order Completed v2``; events the plan lacks (version 0) have no version."""
    if event is None:
        return "(no event name)"
    if event == "":
        return "(empty event name)"
    return f"{event} v{version}" if version else f"{event} (not in the plan)"


def _rule_key(event: str | None, version: int | None, field: str, keyword: str) -> str:
    return f"{_label(event, version)}: {field} {keyword}"


class Tally:
    """Running totals over result batches; order-independent, so engines may interleave."""

    def __init__(self) -> None:
        self.rows = 0
        self.files: dict[str, dict[str, int]] = {}
        self.events: dict[tuple[str | None, int], dict[str, int]] = {}
        self.rules: dict[tuple[str | None, int, str, str], int] = {}
        self.unplanned: dict[str | None, int] = {}
        self.samples: dict[tuple[str | None, int, str, str], list[dict[str, Any]]] = {}
        #: file -> format (``parquet``, ``ndjson``, ``csv``): how its rows are named
        self.formats: dict[str, str] = {}
        #: file -> line numbers of NDJSON lines that are not JSON
        self.malformed: dict[str, list[int]] = {}
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def _file(self, name: str) -> dict[str, int]:
        return self.files.setdefault(name, {"rows": 0, "invalid_rows": 0})

    def add(self, result: pa.RecordBatch | pa.Table) -> None:
        """Add one result batch (of :data:`~trackplan.batch.check.RESULT_SCHEMA`)."""
        table = pa.Table.from_batches([result]) if isinstance(result, pa.RecordBatch) else result
        kind = table.column("kind")
        for row in table.filter(pc.not_equal(kind, "violation")).to_pylist():
            count = int(row["count"] or 0)
            if row["kind"] == "rows":
                self.rows += count
                self._file(row["file"])["rows"] += count
            elif row["kind"] == "checked":
                stats = self.events.setdefault(
                    (row["event"], row["version"]), {"rows": 0, "invalid_rows": 0}
                )
                stats["rows"] += count
            elif row["kind"] == "unplanned":
                self.unplanned[row["event"]] = self.unplanned.get(row["event"], 0) + count
            elif row["kind"] == "malformed":
                self.malformed.setdefault(row["file"], []).append(int(row["row"]))
        bad = table.filter(pc.equal(kind, "violation"))
        if bad.num_rows == 0:
            return
        # aggregating costs a few milliseconds per call whatever the size: buffer
        self._pending.append(bad)
        self._pending_rows += bad.num_rows
        if self._pending_rows >= FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        """Aggregate the buffered violation rows."""
        if not self._pending:
            return
        bad = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        per_row = bad.group_by(["file", "row", "event", "version"]).aggregate([])
        for file, count in _counts(per_row, ["file"]):
            self._file(file[0])["invalid_rows"] += count
        for (event, version), count in _counts(per_row, ["event", "version"]):
            stats = self.events.setdefault((event, version), {"rows": 0, "invalid_rows": 0})
            stats["invalid_rows"] += count
        for key, count in _counts(bad, ["event", "version", "field", "keyword"]):
            k = (key[0], key[1], key[2], key[3])
            self.rules[k] = self.rules.get(k, 0) + count
        # each batch carries values for its first failing rows per rule; keeping the
        # smallest (file, row) makes samples the same whatever the batching or engine
        keep = [n for n in bad.column_names if n != "replacement"]  # for the cleaned copy only
        for sample in bad.filter(pc.is_valid(bad.column("value"))).select(keep).to_pylist():
            k = (sample["event"], sample["version"], sample["field"], sample["keyword"])
            kept = self.samples.setdefault(k, [])
            kept.append(sample)
            if len(kept) > SAMPLES_PER_RULE:
                kept.sort(key=lambda s: (s["file"], s["row"]))
                del kept[SAMPLES_PER_RULE:]

    def where(self, file: str, number: int) -> dict[str, Any]:
        """How a report names a row: ``line`` for line formats, ``row`` for parquet (both
        from 1, as :func:`trackplan.batch.engines.numbered` numbers them), and ``at``."""
        if self.formats.get(file, "parquet") == "parquet":
            return {"file": file, "row": number, "at": f"{file} row {number}"}
        return {"file": file, "line": number, "at": f"{file}:{number}"}

    @property
    def invalid_rows(self) -> int:
        """Rows with at least one violation."""
        self._flush()
        return sum(f["invalid_rows"] for f in self.files.values())

    def to_dict(
        self,
        *,
        per_row: Mapping[str, list[str]] | None = None,
        mask: Masker | None = None,
    ) -> dict[str, Any]:
        """The JSON report; sample values pass through ``mask`` first."""
        self._flush()
        by_event = {
            _label(event, version): {"event": event, "version": version, **stats}
            for (event, version), stats in sorted(self.events.items(), key=_sort_key)
        }
        by_rule: dict[str, Any] = {}
        for (event, version, field, keyword), count in sorted(
            self.rules.items(), key=lambda kv: (-kv[1], str(kv[0]))
        ):
            checked = self.events.get((event, version), {}).get("rows", 0)
            samples = []
            for s in sorted(
                self.samples.get((event, version, field, keyword), []),
                key=lambda s: (s["file"], s["row"]),
            ):
                value = s["value"] or None  # "" marks a sample with no value to show
                if value is not None and mask is not None:
                    value = mask(event, field, value)  # the whole sample first, then cut
                if value is not None and len(value) > 80:
                    value = value[:77] + "..."
                samples.append(
                    {
                        **self.where(s["file"], s["row"]),
                        "column": s["column"],
                        "value": value,
                        **({"detail": s["detail"]} if s.get("detail") else {}),
                    }
                )
            by_rule[_rule_key(event, version, field, keyword)] = {
                "event": event,
                "version": version,
                "field": field,
                "keyword": keyword,
                "rows_checked": checked,
                "rows_failing": count,
                "percent": round(100.0 * count / checked, 2) if checked else None,
                "samples": samples,
            }
        malformed = sum(len(v) for v in self.malformed.values())
        files = {name: dict(stats) for name, stats in sorted(self.files.items())}
        for name, lines in self.malformed.items():
            files.setdefault(name, {"rows": 0, "invalid_rows": 0})["malformed"] = len(lines)
        return {
            "rows": self.rows,
            "invalid_rows": self.invalid_rows,
            "malformed": malformed,
            "valid": self.invalid_rows == 0 and malformed == 0,
            "malformed_lines": [
                self.where(name, line)
                for name in sorted(self.malformed)
                for line in sorted(self.malformed[name])[:SAMPLES_PER_RULE]
            ],
            "files": files,
            "by_event": by_event,
            "by_rule": by_rule,
            "unplanned": {str(k): v for k, v in sorted(self.unplanned.items(), key=str)},
            "per_row": {k: list(v) for k, v in (per_row or {}).items()},
        }


def _sort_key(item: tuple[tuple[str | None, int], Any]) -> tuple[str, int]:
    (event, version), _ = item
    return (event or "", version or 0)


def _counts(table: pa.Table, keys: list[str]) -> list[tuple[tuple[Any, ...], int]]:
    grouped = table.group_by(keys).aggregate([([], "count_all")])
    cols = [grouped.column(k).to_pylist() for k in keys]
    counts = grouped.column("count_all").to_pylist()
    return [(tuple(c[i] for c in cols), counts[i]) for i in range(grouped.num_rows)]


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def render_text(report: Mapping[str, Any]) -> str:
    """The terminal report."""
    files = report["files"]
    malformed = report.get("malformed", 0)
    lines = [
        f"{report['rows']:,} rows in {len(files)} file{'s' if len(files) != 1 else ''}: "
        f"{report['invalid_rows']:,} invalid ({_pct(report['invalid_rows'], report['rows'])})"
        + (f", {malformed:,} malformed line{'s' if malformed != 1 else ''} skipped"
           if malformed else "")
    ]
    for where in report.get("malformed_lines", []):
        lines.append(f"  malformed (not JSON): {where['at']}")
    for label, stats in report["by_event"].items():
        lines.append(
            f"  {label}: {stats['rows']:,} rows, {stats['invalid_rows']:,} invalid "
            f"({_pct(stats['invalid_rows'], stats['rows'])})"
        )
    for name, count in report["unplanned"].items():
        lines.append(f"  unplanned event {name}: {count:,} rows (allowed by the plan)")
    if report["by_rule"]:
        lines.append("failing rules (rows failing / rows checked):")
        for key, rule in report["by_rule"].items():
            lines.append(f"  {key}: {rule['rows_failing']:,} / {rule['rows_checked']:,}")
            for s in rule["samples"][:3]:
                value = "" if s["value"] is None else f" = {s['value']}"
                detail = f" ({s['detail']})" if s.get("detail") else ""
                lines.append(f"      {s['at']} [{s['column']}]{value}{detail}")
    if report["per_row"]:
        lines.append("checked per row (no vectorised form):")
        for label, fields in report["per_row"].items():
            lines.append(f"  {label}: {', '.join(fields)}")
    if report.get("representation"):
        lines.append("what these inputs cannot say (see README, batch scans):")
        for note in report["representation"]:
            lines.append(f"  {note}")
    return "\n".join(lines) + "\n"


_CSS = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}
.bad{color:#b00020}.ok{color:#106b21}code{background:#f6f6f6;padding:1px 3px}"""


def _chart(by_rule: Mapping[str, Any]) -> str:
    """A horizontal bar chart of rows failing per rule, as inline SVG."""
    items = list(by_rule.items())[:30]
    if not items:
        return "<p class='ok'>No failing rules.</p>"
    top = max(r["rows_failing"] for _, r in items) or 1
    bar_h, label_w, width = 22, 420, 300
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{label_w + width + 80}' "
        f"height='{bar_h * len(items) + 10}' role='img' aria-label='rows failing per rule'>"
    ]
    for i, (key, rule) in enumerate(items):
        y = i * bar_h + 5
        w = max(1, int(width * rule["rows_failing"] / top))
        parts.append(
            f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end' font-size='12'>"
            f"{html.escape(key)}</text><rect x='{label_w}' y='{y + 3}' width='{w}' "
            f"height='{bar_h - 6}' fill='#c0392b'/><text x='{label_w + w + 4}' y='{y + 15}' "
            f"font-size='12'>{rule['rows_failing']:,}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: Mapping[str, Any], *, title: str = "trackplan scan") -> str:
    """A self-contained HTML page: summary, chart of failures by rule, tables, samples."""
    e = html.escape
    rows, bad = report["rows"], report["invalid_rows"]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p class='{'bad' if bad else 'ok'}'><b>{bad:,}</b> of {rows:,} rows invalid "
        f"({_pct(bad, rows)}) in {len(report['files'])} file(s).</p>",
        "<h2>Failures by rule</h2>",
        _chart(report["by_rule"]),
        "<h2>Events</h2><table><tr><th>event</th><th>rows</th><th>invalid</th><th>%</th></tr>",
    ]
    for label, s in report["by_event"].items():
        out.append(
            f"<tr><td>{e(label)}</td><td>{s['rows']:,}</td><td>{s['invalid_rows']:,}</td>"
            f"<td>{_pct(s['invalid_rows'], s['rows'])}</td></tr>"
        )
    out.append(
        "</table><h2>Rules</h2><table><tr><th>rule</th><th>failing</th>"
        "<th>checked</th><th>%</th><th>samples (PII masked)</th></tr>"
    )
    for key, r in report["by_rule"].items():
        samples = "<br>".join(
            f"{e(s['at'])} <code>{e(s['column'] or '')}</code>"
            + ("" if s["value"] is None else f" = <code>{e(s['value'])}</code>")
            + (f" ({e(s['detail'])})" if s.get("detail") else "")
            for s in r["samples"]
        )
        out.append(
            f"<tr><td>{e(key)}</td><td>{r['rows_failing']:,}</td><td>{r['rows_checked']:,}</td>"
            f"<td>{_pct(r['rows_failing'], r['rows_checked'])}</td><td>{samples}</td></tr>"
        )
    out.append("</table><h2>Files</h2><table><tr><th>file</th><th>rows</th><th>invalid</th></tr>")
    for name, s in report["files"].items():
        out.append(
            f"<tr><td>{e(name)}</td><td>{s['rows']:,}</td><td>{s['invalid_rows']:,}</td></tr>"
        )
    out.append("</table>")
    if report.get("malformed"):
        out.append(f"<h2>Malformed lines</h2><p class='bad'>{report['malformed']:,} lines are "
                   "not JSON (skipped):</p><ul>")
        for where in report.get("malformed_lines", []):
            out.append(f"<li>{e(where['at'])}</li>")
        out.append("</ul>")
    if report.get("representation"):
        out.append("<h2>What these inputs cannot say</h2><ul>")
        for note in report["representation"]:
            out.append(f"<li>{e(note)}</li>")
        out.append("</ul>")
    if report["per_row"]:
        out.append("<h2>Checked per row</h2><ul>")
        for label, fields in report["per_row"].items():
            out.append(f"<li>{e(label)}: {e(', '.join(fields))}</li>")
        out.append("</ul>")
    out.append("</body></html>\n")
    return "\n".join(out)


def render(report: Mapping[str, Any], fmt: str) -> str:
    """The report in ``fmt`` (text, json or html)."""
    if fmt == "json":
        return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "html":
        return render_html(report)
    return render_text(report)
