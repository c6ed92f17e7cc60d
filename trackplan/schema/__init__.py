"""Schema compilation: JSON Schema to validators, flattened fast schemas, msgspec types for
typed decoding, and the violations they report. Knows the plan, nothing of PII or privacy.

- :mod:`trackplan.schema.validator`: :func:`make_validator`, the only way to build one.
- :mod:`trackplan.schema.envelope`: the Segment call envelope every event is checked against.
- :mod:`trackplan.schema.flatten`: whole-call schemas merged for the fast validator.
- :mod:`trackplan.schema.msgtypes`: plan schemas as msgspec types (the NDJSON bytes path).
- :mod:`trackplan.schema.violations`: :class:`Violation`, what every surface reports.
"""

from __future__ import annotations

from trackplan.schema.validator import RemoteRefRefused, make_validator, refuse_remote
from trackplan.schema.violations import VIOLATION_TYPES, Violation

__all__ = ["RemoteRefRefused", "VIOLATION_TYPES", "Violation", "make_validator", "refuse_remote"]
