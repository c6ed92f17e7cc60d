"""Lossless JSON numbers: integers beyond 64 bits and decimals a double cannot hold.

orjson reads integers beyond 64 bits as floats and ``1e-400`` as ``0.0``, and refuses
``1e400``. Events holding such numbers are parsed here instead: integers stay Python
integers, and a number whose double would print differently is an :class:`ExactFloat`, a
float (so rules compare it as a number) that keeps its source text. :func:`dumps` writes
both back as they came.

>>> event = loads(b'{"big": 123456789012345678901234567890, "tiny": 1e-400}')
>>> dumps(event)
b'{"big":123456789012345678901234567890,"tiny":1e-400}'
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

__all__ = ["ExactFloat", "may_lose", "loads", "dumps"]

#: Bytes that may hold a number orjson does not read exactly: 16 or more significant digits
#: (a run of 17 digits and a decimal point, or 16 digits without one; a double keeps any 15),
#: or an exponent of three digits. A cheap filter anchored on a digit (about 2 us a line):
#: a match inside a string only costs time.
_RISKY = re.compile(rb"[0-9](?:[0-9]{15}|[0-9.]{16}|[eE][+-]?[0-9]{3})")


class ExactFloat(float):
    """A float that remembers the JSON text it was read from."""

    text: str

    def __new__(cls, text: str) -> ExactFloat:
        self = super().__new__(cls, float(text))
        self.text = text
        return self


def may_lose(data: bytes) -> bool:
    """Whether reading ``data`` with orjson could change one of its numbers."""
    return _RISKY.search(data) is not None


def _number(text: str) -> float:
    value = float(text)
    try:
        exact = Decimal(repr(value)) == Decimal(text)
    except InvalidOperation:
        exact = False
    return value if exact else ExactFloat(text)


def loads(data: bytes | str) -> Any:
    """Parse JSON keeping every number exact (see the module doc).

    Raises:
        ValueError: ``data`` is not JSON (``json.JSONDecodeError`` or ``UnicodeDecodeError``).
    """
    return json.loads(data, parse_float=_number, parse_constant=_refuse)


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def dumps(value: Any) -> bytes:
    """Compact JSON of ``value``; :class:`ExactFloat` and big integers as they were read.

    Raises:
        TypeError: a value JSON cannot hold. RecursionError: nesting too deep.
    """
    if type(value) is dict:
        return (
            b"{"
            + b",".join(orjson.dumps(str(k)) + b":" + dumps(v) for k, v in value.items())
            + b"}"
        )
    if type(value) is list:
        return b"[" + b",".join(dumps(v) for v in value) + b"]"
    if isinstance(value, ExactFloat):
        return value.text.encode()
    if type(value) is int:
        return str(value).encode()
    return orjson.dumps(value)
