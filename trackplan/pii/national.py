"""Turn on the opt-in national detectors: phone numbers in national formats
(phonenumbers) and checksum-bearing national identity numbers (python-stdnum).

:mod:`trackplan.pii.detect` runs them but never imports their libraries (generated clients
carry a copy of it that must run on the standard library alone); this module hands it
their span finders.

>>> enable_national(phone_regions=["DE"], id_countries=["de"])   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable

from trackplan.pii.detect import set_national
from trackplan.pii.national_ids import id_spans
from trackplan.pii.phones import national_spans
from trackplan.pii.policy import PiiPolicy

__all__ = ["enable_national", "enable_for"]


def enable_national(*, phone_regions: Iterable[str] = (), id_countries: Iterable[str] = ()) -> None:
    """Also detect the national phone formats of ``phone_regions`` (``"DE"``) and the
    identity numbers of ``id_countries`` (``"de"``), process-wide (see
    :func:`trackplan.pii.detect.set_national`)."""
    set_national(
        phone_regions=phone_regions,
        id_countries=id_countries,
        phone_spans=national_spans,
        id_spans=id_spans,
    )


def enable_for(policy: PiiPolicy) -> None:
    """Turn on what ``policy`` opts into (its ``phone_regions`` and ``id_countries``), where
    its detection is on; every surface that detects calls this, so they find the same."""
    if policy.detection.enabled and (policy.phone_regions or policy.id_countries):
        enable_national(phone_regions=policy.phone_regions, id_countries=policy.id_countries)
