"""Privacy operations from the plan: destinations, consent routing, suppression, erasure,
and the data-protection report.

- :mod:`trackplan.privacy.destinations`: the ``destinations`` and ``consent`` sections.
- :mod:`trackplan.privacy.consent`: ``route(enforcer, event)`` with Segment's consent rules.
- :mod:`trackplan.privacy.forms`: the PII form each destination receives.
- :mod:`trackplan.privacy.suppression`: hashed suppression lists, ``suppressed(enforcer, list)``.
- :mod:`trackplan.privacy.erase`: crash-safe erasure from parquet, NDJSON and CSV files.
- :mod:`trackplan.privacy.report`: ``trackplan report dpia``.
"""

from __future__ import annotations

__all__: list[str] = []
