"""Bring JSON Schemas written for any draft to one the plan supports, saying what changed.

Imported rules declare draft-04, draft-06, draft-07, 2019-09 or 2020-12, at the root or on
a nested payload. trackplan checks rules as draft-07 or 2020-12, so :func:`normalise`
rewrites a rule to one of them: draft-07 when everything it declares is draft-07 or older
(as Segment validates rules), 2020-12 when any part declares 2019-09 or 2020-12. Each
rewrite is listed as a note (with its JSON pointer) for the import to report:

* draft-04 ``exclusiveMinimum``/``exclusiveMaximum`` booleans become the numbers of later
  drafts (``{maximum: 5, exclusiveMaximum: true}`` -> ``{exclusiveMaximum: 5}``);
* arrays of ``items`` become ``prefixItems`` (and ``additionalItems`` becomes ``items``)
  when the target is 2020-12, and the reverse when a 2020-12 part is read as draft-07;
* ``dependencies`` splits into ``dependentRequired``/``dependentSchemas`` for 2020-12;
* a nested ``$schema`` is removed (the rule declares its draft once, at the root).

>>> normalise({"$schema": "http://json-schema.org/draft-04/schema#",
...            "type": "integer", "maximum": 5, "exclusiveMaximum": True})[0]
{'$schema': 'http://json-schema.org/draft-07/schema#', 'type': 'integer', 'exclusiveMaximum': 5}
"""

from __future__ import annotations

from typing import Any

from trackplan import pointer as jp
from trackplan.plan.model import DRAFT_URIS

__all__ = ["DIALECTS", "dialect_of", "normalise"]

#: ``$schema`` URIs by dialect (with and without the empty fragment, http and https).
DIALECTS: dict[str, str] = {}
for _n in (4, 6, 7):
    for _scheme in ("http", "https"):
        for _tail in ("#", ""):
            DIALECTS[f"{_scheme}://json-schema.org/draft-0{_n}/schema{_tail}"] = f"draft-0{_n}"
for _year in ("2019-09", "2020-12"):
    for _scheme in ("http", "https"):
        for _tail in ("#", ""):
            DIALECTS[f"{_scheme}://json-schema.org/draft/{_year}/schema{_tail}"] = _year
DIALECTS["http://json-schema.org/schema#"] = "draft-07"  # "the latest", as Snowplow writes it

_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
_ONE = ("additionalProperties", "additionalItems", "not", "if", "then", "else", "contains",
        "propertyNames", "unevaluatedProperties", "unevaluatedItems", "items")  # fmt: skip
_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_NEW = frozenset({"2019-09", "2020-12"})


def dialect_of(schema: Any) -> str | None:
    """The dialect a schema's ``$schema`` names (None: not declared or not known)."""
    if isinstance(schema, dict) and isinstance(schema.get("$schema"), str):
        return DIALECTS.get(schema["$schema"])
    return None


def _declared(schema: Any) -> set[str]:
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            dialect = dialect_of(node)
            if dialect:
                found.add(dialect)
            stack.extend(v for k, v in node.items() if k not in ("enum", "const", "examples"))
        elif isinstance(node, list):
            stack.extend(node)
    return found


def normalise(schema: Any, *, pointer: str = "") -> tuple[Any, list[str]]:
    """``schema`` rewritten to draft-07 or 2020-12, and a note per rewrite.

    Raises nothing: a ``$schema`` it does not know is left for the loader to report.
    """
    declared = _declared(schema)
    target = "2020-12" if declared & _NEW else "draft-07"
    if declared <= {"draft-07", "2020-12"}:
        # only drafts the loader reads (each part in its own): left exactly as written
        return schema, []
    notes: list[str] = []
    root = dialect_of(schema)
    out = _Rewriter(target, notes).walk(schema, root or "draft-07", pointer, top=True)
    if isinstance(out, dict) and (root is not None or declared):
        if out.get("$schema") != DRAFT_URIS[target]:
            if root is not None and root != target:
                notes.append(f"{pointer or '/'}: $schema {root} read as {target}")
            out = {"$schema": DRAFT_URIS[target], **{k: v for k, v in out.items()
                                                     if k != "$schema"}}  # fmt: skip
    return out, notes


class _Rewriter:
    def __init__(self, target: str, notes: list[str]) -> None:
        self.target = target
        self.notes = notes

    def walk(self, node: Any, dialect: str, ptr: str, *, top: bool = False) -> Any:
        if not isinstance(node, dict):
            return node
        own = dialect_of(node)
        if own is not None:
            dialect = own
        out = dict(node)
        if "$schema" in out and not top:
            self.notes.append(f"{ptr}: nested $schema ({own or out['$schema']}) removed")
            del out["$schema"]
        if dialect == "draft-04":
            self._exclusive(out, ptr)
        if self.target == "2020-12" and dialect != "2020-12":
            self._to_2020(out, ptr)
        elif self.target == "draft-07" and "prefixItems" in out:
            self._to_07(out, ptr)
        for key in _MAPS:
            if isinstance(out.get(key), dict):
                out[key] = {n: self.walk(s, dialect, jp.join(ptr, key, n))
                            for n, s in out[key].items()}  # fmt: skip
        for key in _LISTS:
            if isinstance(out.get(key), list):
                out[key] = [self.walk(s, dialect, jp.join(ptr, key, i))
                            for i, s in enumerate(out[key])]  # fmt: skip
        for key in _ONE:
            if isinstance(out.get(key), dict):
                out[key] = self.walk(out[key], dialect, jp.join(ptr, key))
        if isinstance(out.get("dependencies"), dict):
            out["dependencies"] = {
                n: self.walk(s, dialect, jp.join(ptr, "dependencies", n))
                for n, s in out["dependencies"].items()
            }
        return out

    def _exclusive(self, out: dict[str, Any], ptr: str) -> None:
        for bound, flag in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
            value = out.get(flag)
            if not isinstance(value, bool):
                continue
            if value and bound in out:
                out[flag] = out.pop(bound)
                self.notes.append(
                    f"{jp.join(ptr, flag)}: draft-04 {flag}: true with {bound} "
                    f"{out[flag]!r} rewritten as {flag}: {out[flag]!r}"
                )
            else:
                del out[flag]
                self.notes.append(f"{jp.join(ptr, flag)}: draft-04 {flag}: {value} removed")

    def _to_2020(self, out: dict[str, Any], ptr: str) -> None:
        if isinstance(out.get("items"), list):
            out["prefixItems"] = out.pop("items")
            if "additionalItems" in out:
                out["items"] = out.pop("additionalItems")
            self.notes.append(f"{jp.join(ptr, 'items')}: array of items -> prefixItems (2020-12)")
        deps = out.get("dependencies")
        if isinstance(deps, dict):
            del out["dependencies"]
            names = {k: v for k, v in deps.items() if isinstance(v, list)}
            schemas = {k: v for k, v in deps.items() if not isinstance(v, list)}
            if names:
                out["dependentRequired"] = names
            if schemas:
                out["dependentSchemas"] = schemas
            self.notes.append(
                f"{jp.join(ptr, 'dependencies')}: split into dependentRequired/dependentSchemas"
            )

    def _to_07(self, out: dict[str, Any], ptr: str) -> None:
        rest = out.get("items")
        out["items"] = out.pop("prefixItems")
        if rest is not None:
            out["additionalItems"] = rest
        self.notes.append(f"{jp.join(ptr, 'prefixItems')}: prefixItems -> array of items")
