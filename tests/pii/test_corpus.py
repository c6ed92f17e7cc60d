"""Precision and recall of the value detectors on the labelled corpus in ``corpus/``."""

from __future__ import annotations

from pathlib import Path

from trackplan.pii.actions import CATEGORIES
from trackplan.pii.detect import findings_for
from trackplan.pii.national import enable_national

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


def _measure(rows: list[tuple[str, str | None, str]]) -> dict[str, tuple[int, int, int]]:
    """Per category: (true positives, misses, false alarms naming it)."""
    out: dict[str, list[int]] = {}
    for label, key, value in rows:
        found = {f.category for f in findings_for(key, value)}
        if label != "-":
            row = out.setdefault(label, [0, 0, 0])
            row[0 if label in found else 1] += 1
        for wrong in found - {label}:
            out.setdefault(wrong, [0, 0, 0])[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def test_precision_and_recall_per_category_with_the_national_detectors_on() -> None:
    """The whole corpus and the opt-in one, with the phone regions and id countries of a
    plan for European users on: every category keeps precision >= 0.98, recall >= 0.95."""
    import sys

    from trackplan.pii import detect

    sys.path.insert(0, str(CORPUS))
    try:
        from build import OPTIN_COUNTRIES, OPTIN_REGIONS
    finally:
        sys.path.pop(0)
    saved = dict(detect._NATIONAL)
    try:
        enable_national(phone_regions=OPTIN_REGIONS, id_countries=OPTIN_COUNTRIES)
        rows = _rows("positives.tsv") + _rows("negatives.tsv") + _rows("optin.tsv")
        figures = _measure(rows)
    finally:
        detect._NATIONAL.update(saved)
        enable_national()
        for cache in detect._CLEAN_BY_CLASS:
            cache.clear()
            cache.add(None)
        detect._FOUND.clear()
    print("\nwith national detectors on:")
    for label, (tp, fn, fp) in sorted(figures.items()):
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"  {label:14s} precision {precision:.3f} recall {recall:.3f} ({tp}/{tp + fn})")
        assert precision >= 0.98, (label, precision)
        assert recall >= 0.95, (label, recall)


def test_precision_and_recall_per_category_built_in() -> None:
    figures = _measure(_rows("positives.tsv") + _rows("negatives.tsv"))
    print("\nbuilt-in detectors:")
    for label, (tp, fn, fp) in sorted(figures.items()):
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"  {label:14s} precision {precision:.3f} recall {recall:.3f} ({tp}/{tp + fn})")
        assert precision >= 0.98, (label, precision)
        assert recall >= 0.95, (label, recall)
