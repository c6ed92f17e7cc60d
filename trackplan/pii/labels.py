"""Labels made from event data (event names, ``type`` values) that are safe to print.

An unplanned event name is free text from the sender: ``Searched jane.doe@example.com``
has been seen in the wild. Reports count events by name, so every label taken from an
event goes through the PII detectors first: what they find becomes ``<category>``, and a
label longer than :data:`MAX_LABEL` characters is cut.

>>> safe_label("Searched jane.doe@example.com")
'Searched <email>'
"""

from __future__ import annotations

from functools import lru_cache

from trackplan.pii.detect import scan

__all__ = ["safe_label", "MAX_LABEL"]

MAX_LABEL = 100


@lru_cache(maxsize=4096)  # event names repeat: a report of millions of events scans each once
def safe_label(text: str) -> str:
    """``text`` with PII replaced by ``<category>`` (on the whole text, then cut)."""
    found = sorted(scan(text))
    if found:
        parts: list[str] = []
        last = 0
        for finding in found:
            if finding.start < last:
                continue  # overlapping findings: the first one covers it
            parts.append(text[last : finding.start])
            parts.append(f"<{finding.category}>")
            last = finding.end
        parts.append(text[last:])
        text = "".join(parts)
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 3] + "..."
