"""Vectorised ``format`` checks: cheap tests of the common shape, the exact check for the rest.

Every value a cheap test accepts is valid for the exact checker (jsonschema-rs, through
:func:`trackplan.schema.make_validator`); everything else goes to the exact
checker, once per distinct value. Two cheap tests, tried in order:

* emails at a frequent domain (``user123@example.com``): the domain is learnt from a
  sample of each batch and accepted once the exact checker accepts it with the shortest
  and the longest alphanumeric local part; a value then needs only ``ends_with`` the
  domain and an alphanumeric local part of 1 to 64 characters, a few nanoseconds each;
* a conservative RE2 pattern per format (:data:`FORMAT_PREFILTERS`), matched once per
  distinct value on repetitive columns.

>>> FormatCheck("email").failing(pa.array(["a@example.com", "nope"]))  # doctest: +SKIP
<pyarrow.lib.BooleanArray ...> [false, true]
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from trackplan.schema.validator import make_validator

__all__ = ["FORMAT_PREFILTERS", "FormatCheck", "match_repetitive"]

#: Formats checked by a conservative RE2 pattern: what it accepts the exact checker
#: accepts too (tested), and values it does not accept go to the exact checker.
FORMAT_PREFILTERS: dict[str, str] = {
    "email": (
        r"^[A-Za-z0-9_+-]{1,30}(\.[A-Za-z0-9_+-]{1,10}){0,2}@[A-Za-z0-9]{1,20}"
        r"(-[A-Za-z0-9]{1,10})?(\.[A-Za-z0-9]{1,20}){0,2}\.[A-Za-z]{2,10}$"
    ),
    "date-time": (
        r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]"
        r":[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    ),
    "date": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$",
    "uri": r"^https?://[a-z0-9]{1,30}(\.[a-z0-9]{1,30}){1,3}(/[A-Za-z0-9_-]{1,40}){0,8}$",
    "ipv4": (
        r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
        r"(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$"
    ),
    "uuid": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}

#: Fewer values than this go straight to the exact check: compiling a prefilter costs
#: Arrow about as much as a few thousand exact checks (the ``uri`` one 2 ms a call), and
#: short arrays (dictionaries of distinct values, what an ``anyOf`` branch has left) do
#: not repay it.
PREFILTER_MIN = 4096

#: Values sampled per batch to find frequent email domains, and the share that counts.
DOMAIN_SAMPLE = 256
DOMAIN_SHARE = 0.1

#: Longest local part the email fast path accepts (RFC 5321's limit; checked exactly).
LOCAL_MAX = 64

#: Local parts tried at a domain before the fast path trusts it.
_PROBES = ("a", "Z", "0", "a" * LOCAL_MAX, "9" * LOCAL_MAX)

#: Domains remembered per check (good and bad), so a hostile column cannot grow it.
DOMAIN_CACHE = 64


def match_repetitive(arr: pa.Array, pattern: str) -> pa.BooleanArray:
    """``match_substring_regex``; on repetitive columns, once per distinct value.

    Currency codes, product URLs and enums repeat: matching the dictionary of distinct
    values and taking the answers back is several times cheaper than matching every row.
    """
    n = len(arr)
    if n >= 4096:
        sample = arr.slice(0, 2048)
        if len(pc.unique(sample)) * 2 < len(sample):
            encoded = pc.dictionary_encode(arr)
            ok = pc.match_substring_regex(encoded.dictionary, pattern=pattern)
            return pc.take(ok, encoded.indices)
    return pc.match_substring_regex(arr, pattern=pattern)


def _fill(mask: pa.BooleanArray) -> pa.BooleanArray:
    return pc.fill_null(mask, False) if mask.null_count else mask


class FormatCheck:
    """The ``format`` keyword for one format name, compiled once, used for every batch."""

    def __init__(self, fmt: str) -> None:
        self.format = fmt
        self.prefilter = FORMAT_PREFILTERS.get(fmt)
        self.validator: Any = make_validator({"format": fmt})
        self._domains: dict[str, bool] = {}
        self._lock = threading.Lock()

    def failing(self, arr: pa.Array) -> pa.BooleanArray | None:
        """Mask of present values that break the format, or None when none does."""
        sure: pa.BooleanArray | None = None
        if self.format == "email":
            sure = self._email_fast(arr)
        rest = arr if sure is None else pc.filter(arr, pc.invert(sure))
        if self.prefilter is not None and len(rest) >= PREFILTER_MIN:
            ok = _fill(match_repetitive(rest, self.prefilter))
            rest = pc.filter(rest, pc.invert(ok))
        unique = pc.unique(rest.drop_null()) if len(rest) else rest
        if len(unique) == 0:
            return None
        is_valid = self.validator.is_valid
        bad = [v for v in unique.to_pylist() if not is_valid(v)]
        if not bad:
            return None
        return _fill(pc.is_in(arr, value_set=pa.array(bad, arr.type)))

    # -- emails at frequent domains ---------------------------------------------------

    def _email_fast(self, arr: pa.Array) -> pa.BooleanArray | None:
        """Mask of values surely valid by the domain test (None: the test does not apply)."""
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return None
        domains = [d for d in self._frequent_domains(arr) if self._domain_ok(d)]
        if not domains:
            return None
        sure: pa.BooleanArray | None = None
        length = pc.binary_length(arr)
        binary = pa.large_binary() if pa.types.is_large_string(arr.type) else pa.binary()
        for domain in domains:
            suffix = "@" + domain
            ends = _fill(pc.ends_with(arr, suffix))
            if not pc.any(ends).as_py():
                continue
            # bytes, not characters: where the value ends with the ASCII suffix both agree,
            # and a byte slice is four times cheaper (other rows are masked out by ``ends``)
            local = pc.binary_slice(arr.view(binary), 0, -len(suffix)).view(arr.type)
            fits = pc.less_equal(length, LOCAL_MAX + len(suffix))
            # ascii_is_alnum is false for "" and for anything beyond [A-Za-z0-9]
            ok = _fill(pc.and_(pc.and_(ends, fits), pc.ascii_is_alnum(local)))
            sure = ok if sure is None else pc.or_(sure, ok)
        return sure

    def _frequent_domains(self, arr: pa.Array) -> list[str]:
        step = max(1, len(arr) // DOMAIN_SAMPLE)
        sample = arr.slice(0, step * DOMAIN_SAMPLE)
        if step > 1:
            sample = pc.take(sample, pa.array(range(0, len(sample), step)))
        counts = Counter(
            v.rpartition("@")[2] for v in sample.to_pylist() if isinstance(v, str) and "@" in v
        )
        total = max(1, len(sample))
        return [d for d, c in counts.most_common(4) if c >= DOMAIN_SHARE * total]

    def _domain_ok(self, domain: str) -> bool:
        """Whether every alphanumeric local part of 1 to 64 characters is valid at ``domain``."""
        known = self._domains.get(domain)
        if known is not None:
            return known
        is_valid = self.validator.is_valid
        ok = (
            bool(domain)
            and domain.isascii()
            and all(c.isalnum() or c in ".-" for c in domain)
            and all(
                is_valid(f"{local}@{domain}")
                for local in ("a", "Z", "0", "a" * LOCAL_MAX, "9" * LOCAL_MAX)
            )
        )
        with self._lock:
            if len(self._domains) >= DOMAIN_CACHE:
                self._domains.clear()
            self._domains[domain] = ok
        return ok
