"""Fixtures shared by the PII tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trackplan.pii import detect


@pytest.fixture
def national() -> Iterator[None]:
    """Restore the process-wide national detectors (and empty the caches) afterwards."""
    saved = dict(detect._NATIONAL)
    yield
    detect._NATIONAL.update(saved)
    for cache in detect._CLEAN_BY_CLASS:
        cache.clear()
        cache.add(None)
    detect._FOUND.clear()
