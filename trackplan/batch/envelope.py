"""The Segment envelope checked on batches, as the enforcer checks it on every call.

The enforcer validates each call against :func:`trackplan.schema.envelope.envelope_schema`
of its call type and blocks it on any failure, reporting an ``Envelope`` violation at the
failing field (``/messageId``, ``/timestamp``, ``/groupId``) or at the call itself (``""``)
when neither ``userId`` nor ``anonymousId`` is present and non-empty. The scan reports the
same failures under the keyword :data:`ENVELOPE` with the call field as its field (``""``
for the identity rule), vectorised: the field checks by the envelope schema compiled into
a :class:`~trackplan.batch.rules.Node`, the identity rule by column masks.

Left to the rest of the scan: the event name (reported as ``event``) and the payload key
(checked as the payload).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trackplan.batch.mapping import call_struct
from trackplan.batch.rules import Node, row_failures
from trackplan.plan.model import PAYLOAD_KEY
from trackplan.schema.envelope import envelope_schema
from trackplan.schema.validator import make_validator

__all__ = ["ENVELOPE", "IDENTITY", "EnvelopeCheck", "envelope_check"]

#: The keyword of envelope failures in the scan's output (the enforcer's violation type).
ENVELOPE = "envelope"

#: The field of the identity rule's failures: the call itself, as the enforcer points at it.
IDENTITY = ""

_IDS = ("userId", "anonymousId")


def _fields_schema(kind: str, *, payload: bool = False) -> dict[str, Any]:
    """The envelope schema of ``kind`` without the identity rule, the event name and
    (unless ``payload``) the payload key, which are checked elsewhere."""
    schema = envelope_schema(kind)
    schema.pop("anyOf", None)
    skip = {"event"} if payload else {"event", PAYLOAD_KEY.get(kind)}
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in skip}
    schema["required"] = [r for r in schema["required"] if r not in skip]
    return schema


def _identified(child: pa.Array) -> np.ndarray:
    """Rows whose id value is present and non-empty: a number, or a string of length >= 1."""
    if isinstance(child, pa.ChunkedArray):
        child = child.combine_chunks()
    if pa.types.is_dictionary(child.type):
        child = child.cast(child.type.value_type)
    typ = child.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        ok = pc.greater_equal(pc.binary_length(child), 1)  # non-empty: a byte or more
    elif pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        ok = pc.is_valid(child)
    else:  # no other type is a string or a number: the id is of the wrong type
        return np.zeros(len(child), dtype=bool)
    found: np.ndarray = pc.fill_null(ok, False).to_numpy(zero_copy_only=False)
    return found


class EnvelopeCheck:
    """The envelope of one call type, for batches and for JSON rows."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.schema = _fields_schema(kind)
        self.node = Node(self.schema, "", {})
        self._validator: Any = None

    def failures(self, batch: pa.RecordBatch) -> tuple[list[tuple[str, np.ndarray]],
                                                        dict[str, str]]:
        """(field, failing rows) over the whole batch, and field -> its source column."""
        arr, sources = call_struct(batch, self.schema, {})
        found: list[tuple[str, np.ndarray]] = []
        for fld, _keyword, mask in self.node.evaluate(arr):
            failing = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
            if failing.any():
                found.append((fld, failing))
        identified = np.zeros(batch.num_rows, dtype=bool)
        for name in _IDS:
            if arr.type.get_field_index(name) >= 0:
                identified |= _identified(pc.struct_field(arr, name))
        if not identified.all():
            found.append((IDENTITY, ~identified))
        return found, sources

    def row(self, event: dict[str, Any]) -> list[str]:
        """The failing fields of one call read as JSON (``""``: the identity rule)."""
        if self._validator is None:  # the payload key's type too: nothing else says it
            self._validator = make_validator(_fields_schema(self.kind, payload=True))
        fields = sorted({fld for fld, _ in row_failures(self._validator, event)})
        if not any(_id_ok(event.get(name, None), name in event) for name in _IDS):
            fields.insert(0, IDENTITY)
        return fields


def _id_ok(value: Any, present: bool) -> bool:
    if not present or value is None or isinstance(value, bool):
        return False
    if isinstance(value, str):
        return len(value) >= 1
    return isinstance(value, int | float)


@functools.cache
def envelope_check(kind: str) -> EnvelopeCheck:
    """The (shared) envelope check of a call type."""
    return EnvelopeCheck(kind)
