"""What each Segment call kind adds to a generated client method, beyond its payload.

``track``, ``identify``, ``group``, ``page`` and ``screen`` methods take the payload's
fields as keyword arguments; this module says which other arguments a kind takes, how the
identity rule (``user_id`` or ``anonymous_id``) enters the signature, and the ``alias``
method, which has no payload.

>>> payload_key("identify"), KIND_ARGUMENTS["page"]
('traits', ('name', 'category'))
"""

from __future__ import annotations

__all__ = ["KIND_ARGUMENTS", "IDENTITY", "ALIAS_METHOD", "payload_key"]

#: Keyword arguments a call kind adds before the payload's (Segment's call fields).
KIND_ARGUMENTS = {"group": ("group_id",), "page": ("name", "category"),
                   "screen": ("name", "category")}  # fmt: skip
#: The identity rule in the types: one overload needs user_id, one anonymous_id, so a
#: call with neither matches no overload and mypy rejects it.
IDENTITY: dict[str | None, tuple[str, str]] = {
    "user": ("        user_id: str,", "        anonymous_id: str | None = None,"),
    "anonymous": ("        user_id: str | None = None,", "        anonymous_id: str,"),
    None: ("        user_id: str | None = None,", "        anonymous_id: str | None = None,"),
}


def payload_key(kind: str) -> str:
    """The SDK argument a kind's payload goes in."""
    return "traits" if kind in ("identify", "group") else "properties"


#: The generated ``alias`` method (source lines, class-body indentation).
ALIAS_METHOD = (
    "    def alias(",
    "        self,",
    "        *,",
    "        previous_id: str,",
    "        user_id: str,",
    "        context: Mapping[str, Any] | None = None,",
    "        timestamp: datetime | None = None,",
    "        integrations: Mapping[str, Any] | None = None,",
    "        message_id: str | None = None,",
    "    ) -> None:",
    '        """Link ``previous_id`` (an anonymous or former id) to ``user_id``."""',
    "        self._tp_sdk.alias(",
    "            previous_id=previous_id,",
    "            user_id=user_id,",
    "            context=dict(context) if context is not None else None,",
    "            timestamp=timestamp,",
    "            integrations=integrations,",
    "            message_id=message_id,",
    "        )",
)
