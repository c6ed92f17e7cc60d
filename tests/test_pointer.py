"""JSON pointers (RFC 6901): resolving one into a document."""

from __future__ import annotations

from trackplan import pointer as jp

DOC = {"definitions": {"a/b": {"type": "string"}, "m~n": [1, {"x": True}]}, "": 0}


def test_resolve_follows_keys_indexes_and_escapes() -> None:
    assert jp.resolve(DOC, "") is DOC
    assert jp.resolve(DOC, "/definitions/a~1b") == {"type": "string"}
    assert jp.resolve(DOC, "/definitions/m~0n/1/x") is True
    assert jp.resolve(DOC, "/") == 0  # the empty key


def test_resolve_gives_the_default_where_nothing_is() -> None:
    missing = object()
    for pointer in ("/nope", "/definitions/m~0n/2", "/definitions/m~0n/-1", "no-slash"):
        assert jp.resolve(DOC, pointer, missing) is missing
    assert jp.resolve(DOC, "/definitions/a~1b/type/more") is None
