"""``unplanned_properties: block`` for batches, decided as the enforcer decides it.

The enforcer (``trackplan.engine.enforcer``) blocks a call whose payload holds a key its
rule does not list (neither in ``properties`` nor matching a ``patternProperties`` regex)
with one ``Additional-Properties`` violation per such key, and checks nothing else of it.
A call without a rule (an unplanned event let through, a ``screen`` call) lists nothing:
any property blocks it. :class:`UnplannedCheck` holds what one rule lists;
:func:`present` finds, over an Arrow payload struct, the rows holding each unplanned key
(a null value is an absent key, as everywhere in the scan).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trackplan.batch.mapping import Layout, payload_struct
from trackplan.batch.rules import struct_child
from trackplan.engine.compiled import listed_properties
from trackplan.plan.model import PAYLOAD_KEY, CallControls

__all__ = ["UNPLANNED", "UnplannedCheck", "present", "omitted"]

#: The keyword of a property blocked by ``unplanned_properties: block``.
UNPLANNED = "unplanned"


@dataclass(frozen=True)
class UnplannedCheck:
    """What one rule (or a call type without one) lists, under ``unplanned_properties:
    block``: a payload key neither in ``planned`` nor matching a pattern blocks the row."""

    planned: frozenset[str]
    patterns: tuple[re.Pattern[str], ...] = ()
    #: ``block`` (the row is blocked) or, False, ``omit`` (the keys are dropped, unseen)
    block: bool = True

    @classmethod
    def build(cls, payload: Any, controls: CallControls, where: str) -> UnplannedCheck | None:
        """None when the controls let unplanned properties through (``allow``) or every key
        is planned (payload ``true``, or ``additionalProperties`` with a schema).

        Args:
            payload: the rule's payload schema (None for a call without a rule).
            controls: the controls the rule runs under.
            where: ``file [label]`` of the rule, for the error of a bad regex.
        """
        if controls.unplanned_properties == "allow":
            return None
        planned, patterns, listed_only = listed_properties(payload, where)
        if not listed_only:
            return None
        return cls(planned, patterns, controls.unplanned_properties == "block")

    def names(self, keys: Iterable[str]) -> list[str]:
        """The unplanned ones of ``keys``, sorted."""
        return sorted(
            k for k in keys
            if k not in self.planned and not any(p.search(k) for p in self.patterns)
        )  # fmt: skip


def present(
    check: UnplannedCheck,
    batch: pa.RecordBatch,
    layout: Layout,
    kind: str,
    payload: tuple[pa.StructArray, Mapping[str, str]] | None = None,
    *,
    own: bool = False,
) -> tuple[list[tuple[str, str, np.ndarray]], np.ndarray | None]:
    """The unplanned properties the rows of ``batch`` (calls of type ``kind``) hold.

    Args:
        payload: the payload struct and its source columns, when already built.
        own: ``payload`` is the calls' payload wherever it was read from (``context.traits``).

    Returns:
        (property, source column, rows holding it) for each one some row holds, and the
        mask of the rows left to check (None when no row is blocked).
    """
    key = PAYLOAD_KEY.get(kind)
    if key is None:
        return [], None
    if layout.payload_column is not None and not own:
        # nested: only the call type's own payload column (the enforcer reads no other)
        if key not in batch.schema.names or not pa.types.is_struct(batch.schema.field(key).type):
            return [], None
    arr, sources = payload if payload is not None else payload_struct(batch, layout, [], key)
    hits: list[tuple[str, str, np.ndarray]] = []
    blocked: np.ndarray | None = None
    for name in check.names(f.name for f in arr.type):
        rows = pc.is_valid(struct_child(arr, name)).to_numpy(zero_copy_only=False)
        if not rows.any():
            continue
        column = sources.get(name) or (
            name if layout.payload_column is None else f"{layout.payload_column}.{name}"
        )
        hits.append((name, column, rows))
        blocked = rows if blocked is None else blocked | rows
    return hits, None if blocked is None else ~blocked


def omitted(check: UnplannedCheck, payload: pa.StructArray) -> pa.StructArray:
    """``payload`` without its unplanned fields: what the enforcer validates under
    ``unplanned_properties: omit``, having dropped them first."""
    names = set(check.names(f.name for f in payload.type))
    if not names:
        return payload
    keep = [i for i, f in enumerate(payload.type) if f.name not in names]
    if not keep:
        return pa.StructArray.from_arrays([pa.nulls(len(payload))], names=["__none__"])
    return pa.StructArray.from_arrays(
        [payload.field(i) for i in keep], names=[payload.type.field(i).name for i in keep]
    )
