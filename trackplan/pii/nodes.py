"""The node types of the PII walk, shared by the walk (:mod:`trackplan.pii.engine`) and the
transforms generated for valid events (:mod:`trackplan.pii.fastpath`).

A rule's PII work is a tree of :class:`Node` (declared children, a ``*`` child for array
items and unlisted keys, the declared field at a leaf, whether detection covers it);
:data:`DROP` marks a field to remove, :class:`Block` blocks the event (``reject``); the
string results of ``hash``, ``mask`` and ``redact`` are memoised per (action, category) in
bounded dicts (:func:`store`).
"""

from __future__ import annotations

from typing import Any

from trackplan.pii.policy import ANY, DeclaredField

__all__ = [
    "Block",
    "DETECT_ALL",
    "DROP",
    "Drop",
    "MAX_SCAN_DEPTH",
    "MEMO_ACTIONS",
    "MEMO_MAX",
    "Node",
    "inherit_detection",
    "store",
]

#: Actions whose result on a string depends on the string alone (memoised per category).
MEMO_ACTIONS = frozenset({"hash", "mask", "redact"})
#: Entries a memo holds before it is cleared.
MEMO_MAX = 4096


def store(memo: dict[str, Any], value: str, new: Any) -> None:
    """Remember ``new`` as the result for ``value`` in ``memo`` (cleared when full)."""
    if len(memo) >= MEMO_MAX:
        memo.clear()
    memo[value] = new


class Drop:
    """Sentinel: remove this field."""


DROP = Drop()


class Block(Exception):
    """Raised inside a transform to block the event (``reject``)."""


class Node:
    """One step of the precomputed path tree: declared children, a leaf, detection."""

    __slots__ = ("keys", "star", "leaf", "detect", "person")

    def __init__(self) -> None:
        self.keys: dict[str, Node] = {}
        self.star: Node | None = None
        self.leaf: DeclaredField | None = None
        self.detect = False
        self.person = False

    def child(self, token: str) -> Node:
        if token == ANY:
            if self.star is None:
                self.star = Node()
            return self.star
        node = self.keys.get(token)
        if node is None:
            node = self.keys[token] = Node()
        return node

    def inert(self) -> bool:
        """True when visiting this subtree can change nothing."""
        if self.leaf is not None or self.detect:
            return False
        if self.star is not None and not self.star.inert():
            return False
        return all(c.inert() for c in self.keys.values())


def inherit_detection(node: Node) -> None:
    """Detection covers a whole subtree: a declared field inside a scanned object (an
    ``email`` declared in ``products`` items) leaves its siblings scanned."""
    stack = [node]
    while stack:
        parent = stack.pop()
        children = [*parent.keys.values(), *([parent.star] if parent.star else [])]
        for child in children:
            if parent.detect:
                child.detect = True
            stack.append(child)


#: Deeper undeclared containers are redacted unscanned (each level costs two frames).
MAX_SCAN_DEPTH = 200

DETECT_ALL = Node()
DETECT_ALL.detect = True
