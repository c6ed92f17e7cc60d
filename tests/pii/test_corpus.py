"""Precision and recall of the value detectors on the labelled corpus in ``corpus/``."""

from __future__ import annotations

from pathlib import Path

from trackplan.pii.actions import CATEGORIES
from trackplan.pii.detect import findings_for

CORPUS = Path(__file__).resolve().parent / "corpus"


def _rows(name: str) -> list[tuple[str, str | None, str]]:
    rows = []
    for line in (CORPUS / name).read_text(encoding="utf-8").splitlines():
        label, key, value = line.split("\t", 2)
        rows.append((label, None if key == "-" else key, value))
    return rows


def test_corpus_is_large_and_covers_every_detector() -> None:
    pos, neg = _rows("positives.tsv"), _rows("negatives.tsv")
    assert len(pos) >= 200 and len(neg) >= 200
    labels = {label for label, _, _ in pos}
    assert labels == {
        "email",
        "phone",
        "payment_card",
        "bank_account",
        "ip",
        "government_id",
        "credentials",
    }
    assert labels <= set(CATEGORIES)
    assert {label for label, _, _ in neg} == {"-"}


def test_precision_and_recall(capsys: object) -> None:
    tp = fn = fp = 0
    misses, false_alarms = [], []
    per_label: dict[str, list[int]] = {}
    for label, key, value in _rows("positives.tsv"):
        found = {f.category for f in findings_for(key, value)}
        hit = label in found
        tp += hit
        fn += not hit
        fp += bool(found - {label})  # a wrong category is a false alarm too
        per_label.setdefault(label, [0, 0])[0 if hit else 1] += 1
        if not hit:
            misses.append((label, value))
    for _, key, value in _rows("negatives.tsv"):
        found = findings_for(key, value)
        if found:
            fp += 1
            false_alarms.append((value, [f.detector for f in found]))
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    print(
        f"\ndetector corpus: precision {precision:.4f}, recall {recall:.4f} "
        f"(tp {tp}, fn {fn}, fp {fp})"
    )
    for label, (hit, miss) in sorted(per_label.items()):
        print(f"  {label:14s} recall {hit / (hit + miss):.3f} ({hit}/{hit + miss})")
    print(f"  misses: {misses}\n  false alarms: {false_alarms}")
    assert precision >= 0.98, false_alarms
    assert recall >= 0.95, misses


def test_corpus_values_are_found_where_they_sit() -> None:
    """The span a detector reports covers the PII, not the surrounding text."""
    for label, key, value in _rows("positives.tsv"):
        if key != "note":
            continue
        for f in findings_for(key, value):
            if f.category == label:
                assert 0 < f.end - f.start < len(value)
