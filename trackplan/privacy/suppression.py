"""Suppression lists: subjects whose events are blocked, stored only as hashes.

A list file holds one hex digest per line under a header naming the scheme:

.. code-block:: text

    # trackplan suppression list v1
    # scheme: hmac-sha256
    3f1c...e9

``hmac-sha256`` digests are keyed (:func:`subject_key`: the secret in :data:`KEY_ENV` when
set, else the plan's hash key, ``$TRACKPLAN_HASH_KEY`` or the variable the plan names;
never written to the file or logged). ``sha256`` digests are unkeyed: predictable ids
(``usr_100000``) are recovered from them by enumeration, so they are made only by explicit
choice (``trackplan erase --unkeyed-subject-hashes``, ``key=None`` in code). A digest covers
the id alone, so one entry suppresses the id whether it arrives as ``userId`` or
``anonymousId``.

>>> slist = SuppressionList.from_ids(["user-42"], key=None)
>>> slist.contains("user-42"), slist.contains("user-43")
(True, False)
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson

from trackplan.atomic import write_bytes_atomic
from trackplan.engine import Enforcer, Result, Violation
from trackplan.errors import InputError, MissingSecretError
from trackplan.pii.policy import DEFAULT_KEY_ENV

__all__ = [
    "KEY_ENV",
    "SUPPRESSED",
    "SCHEMES",
    "SuppressionList",
    "subject_hash",
    "env_key",
    "subject_key",
    "key_check",
    "UNKEYED_WARNING",
    "suppressed",
]

#: The environment variable holding the key of subject hashes (suppression, audit logs).
KEY_ENV = "TRACKPLAN_SUBJECT_KEY"
#: The violation type of a suppressed subject's event.
SUPPRESSED = "Suppressed"
SCHEMES = ("hmac-sha256", "sha256")
_HEADER = "# trackplan suppression list v1"


def env_key(env: str = KEY_ENV) -> bytes | None:
    """The subject-hash key from the environment, or None when unset or empty."""
    value = os.environ.get(env)
    return value.encode() if value else None


#: What the CLI prints when subject hashes are made without a key, by explicit choice.
UNKEYED_WARNING = (
    "warning: subject hashes are plain SHA-256 without a key (--unkeyed-subject-hashes): "
    "anyone can recover predictable ids (usr_100000) from them by enumeration"
)


def subject_key(
    *, hash_key_env: str = DEFAULT_KEY_ENV, key_env: str = KEY_ENV, check: str | None = None
) -> bytes:
    """The key of subject hashes: ``$TRACKPLAN_SUBJECT_KEY`` when set (a key of their own),
    else the plan's hash key (the variable ``hash_key_env`` names); with ``check`` (a list's
    :func:`key_check`), the first of the two that matches it.

    Raises:
        MissingSecretError: neither is set, or none matches ``check`` (the message names
            the variables, never a value).
    """
    for env in (key_env, hash_key_env):
        key = env_key(env)
        if key is not None and (check is None or key_check(key) == check):
            return key
    if check is not None:
        raise MissingSecretError(
            f"the suppression list is keyed with another key than {key_env} or "
            f"{hash_key_env} hold: set the one it was made with"
        )
    raise MissingSecretError(
        f"subject hashes are keyed: set {hash_key_env} (the plan's hash key) or {key_env}, "
        "or choose unkeyed hashes explicitly with --unkeyed-subject-hashes (or --unkeyed-hashes)"
    )


def key_check(key: bytes) -> str:
    """A short fingerprint of a subject key (HMAC of a fixed text): a list records it so
    loading it with another key fails instead of matching nobody. Reveals nothing of the
    key or of any id."""
    return hmac.new(key, b"trackplan subject key check", hashlib.sha256).hexdigest()[:16]


def subject_hash(subject_id: str, key: bytes | None) -> str:
    """Hex digest of a subject id: HMAC-SHA256 with ``key``, plain SHA-256 without."""
    data = subject_id.encode("utf-8")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SuppressionList:
    """Hashed subject ids; ``key`` is the HMAC key (None for ``sha256`` lists)."""

    scheme: str
    digests: frozenset[str]
    key: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_ids(cls, ids: Iterable[str], *, key: bytes | None) -> SuppressionList:
        """A list of ``ids``, keyed when ``key`` is given."""
        scheme = "sha256" if key is None else "hmac-sha256"
        return cls(scheme, frozenset(subject_hash(i, key) for i in ids), key)

    @classmethod
    def load(
        cls, path: str | Path, *, key_env: str = KEY_ENV, hash_key_env: str = DEFAULT_KEY_ENV
    ) -> SuppressionList:
        """Read a list file; a keyed list needs its key (:func:`subject_key`).

        Raises:
            InputError: the file is missing or malformed.
            MissingSecretError: the list is keyed and the key is not set.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot read suppression list: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a suppression list (not UTF-8 text)") from None
        scheme = "sha256"
        check: str | None = None
        digests: set[str] = set()
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                head, _, value = line[1:].partition(":")
                if head.strip() == "key-check":
                    check = value.strip()
                if head.strip() == "scheme":
                    scheme = value.strip()
                    if scheme not in SCHEMES:
                        raise InputError(
                            f"{path}:{number}: unknown scheme; expected one of {', '.join(SCHEMES)}"
                        )
                continue
            if len(line) != 64 or any(c not in "0123456789abcdef" for c in line):
                raise InputError(f"{path}:{number}: not a SHA-256 hex digest")
            digests.add(line)
        key = None
        if scheme == "hmac-sha256":
            try:
                key = subject_key(hash_key_env=hash_key_env, key_env=key_env, check=check)
            except MissingSecretError as exc:
                raise MissingSecretError(f"{path}: {exc}") from None
        return cls(scheme, frozenset(digests), key)

    def contains(self, subject_id: str) -> bool:
        """Whether ``subject_id`` is suppressed."""
        return subject_hash(subject_id, self.key) in self.digests

    def add(self, ids: Iterable[str]) -> SuppressionList:
        """A new list with ``ids`` added (hashed with this list's scheme)."""
        more = {subject_hash(i, self.key) for i in ids}
        return SuppressionList(self.scheme, self.digests | more, self.key)

    def dumps(self) -> str:
        """The file text: header and sorted digests (never the key)."""
        head = [_HEADER, f"# scheme: {self.scheme}"]
        if self.key is not None:
            head.append(f"# key-check: {key_check(self.key)}")
        lines = [*head, *sorted(self.digests)]
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> None:
        """Write the list atomically (aside, fsync, rename)."""
        write_bytes_atomic(Path(path), self.dumps().encode())


# -- the enforcer hook ------------------------------------------------------------------
_IDS = (("userId", "/userId"), ("anonymousId", "/anonymousId"))


class _Ids(msgspec.Struct):
    userId: Any = None  # noqa: N815 - wire names
    anonymousId: Any = None  # noqa: N815


_decode_ids = msgspec.json.Decoder(_Ids).decode


def _hit(slist: SuppressionList, fields: Any) -> str | None:
    """The pointer of the first suppressed id in a dict (or ``_Ids``), else None."""
    for name, ptr in _IDS:
        value = fields.get(name) if type(fields) is dict else getattr(fields, name)
        if value is None or value == "":
            continue
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            if slist.contains(str(value)):
                return ptr
    return None


def _blocked(event: Any, ptr: str) -> Result:
    message = f"{ptr[1:]} is on the suppression list"
    return Result(False, event, (Violation(SUPPRESSED, ptr, message),))


def suppressed(enforcer: Enforcer, slist: SuppressionList) -> Enforcer:
    """A copy of ``enforcer`` that blocks events of suppressed subjects first.

    The copy shares the compiled rules; the original enforcer keeps its own fast path
    untouched (no check at all when no list is set).
    """
    inner_enforce = enforcer.enforce
    inner_bytes = enforcer.enforce_bytes
    clone = copy.copy(enforcer)

    def enforce(event: Any) -> Result:
        if type(event) is dict:
            ptr = _hit(slist, event)
            if ptr is not None:
                return _blocked(event, ptr)
        return inner_enforce(event)

    def enforce_bytes(line: bytes) -> Result:
        try:
            ids = _decode_ids(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return inner_bytes(line)  # not an object: the engine explains it
        ptr = _hit(slist, ids)
        if ptr is not None:
            return _blocked(orjson.loads(line), ptr)
        return inner_bytes(line)

    clone.__dict__["enforce"] = enforce
    clone.__dict__["enforce_bytes"] = enforce_bytes
    clone.__dict__["suppression"] = slist
    return clone
