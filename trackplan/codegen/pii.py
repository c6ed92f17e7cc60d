"""What the generated client does with PII itself, read from the plan's policy.

A plan asks for client-side PII handling with ``pii: {client_side: true}`` (every call)
or ``x-pii-client-side: true`` on one rule. The client then does to each call what the
pipeline's enforcer does: the plan's action on every field it declares (the payload,
``context`` and the envelope alike; the common rule's ``context.ip`` included) and the
same detectors on what no declaration covers, each detected category getting the plan's
action for it.

Nothing is written twice. Which fields a call's walk visits, and where detectors scan,
is the enforcer's own tree for the rule (:class:`trackplan.pii.engine.Transformer`),
written into the package as a literal; the values are transformed and scanned by
verbatim copies of :mod:`trackplan.pii.actions` and :mod:`trackplan.pii.detect` (both
standard library only) shipped in the package as ``_pii.py`` and ``_pii_detect.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from trackplan.pii.engine import Transformer
from trackplan.pii.national_ids import ID_FORMATS
from trackplan.pii.phones import numbering_data
from trackplan.pii.policy import PiiPolicy
from trackplan.plan.model import Plan, Rule

__all__ = [
    "ClientPii", "client_pii", "actions_source", "detect_source", "iban_source", "e164_source",
    "VENDORED", "IMPORTS", "vendored_text",
]  # fmt: skip

#: Generated module -> the trackplan module copied into it verbatim (but for IMPORTS).
VENDORED: Mapping[str, str] = {
    "_pii.py": "actions.py",
    "_pii_detect.py": "detect.py",
    "_pii_iban.py": "iban_registry.py",
    "_pii_e164.py": "e164.py",
}
#: The one rewrite of the copies: their imports of each other, made package-relative.
IMPORTS: Mapping[str, str] = {
    "from trackplan.pii.iban_registry import": "from ._pii_iban import",
}


class _AnyKey(Mapping[str, str]):
    """An environment in which every variable is set: codegen never reads the hash key."""

    def __getitem__(self, key: str) -> str:
        return "codegen-never-reads-the-key"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class ClientPii:
    """The PII walk of each rule's calls (the enforcer's tree), detection and the key."""

    def __init__(
        self,
        trees: dict[tuple[str, int], dict[str, Any]],
        detection: dict[str, Any],
        key_env: str,
        needs_key: bool,
        phone: dict[str, Any] | None = None,
        ids: list[str] | None = None,
    ) -> None:
        self._trees = trees
        self.detection = detection
        self.key_env = key_env
        self.needs_key = needs_key
        #: ``{"region": default region, "data": numbering data}`` for phones in E.164
        self.phone = phone or {"region": None, "data": {"codes": {}, "regions": {}}}
        #: python-stdnum modules (under ``stdnum.``) of the plan's ``pii.id_countries``, in
        #: order: a declared government id valid under one is hashed in its compact form
        self.ids = ids or []

    def tree(self, kind: str, rule: Rule | None) -> dict[str, Any] | None:
        """The walk of a ``kind`` call of ``rule`` (None: the client leaves it alone)."""
        return self._trees.get((kind, id(rule)))

    def __bool__(self) -> bool:
        return bool(self._trees)


def _asks(plan: Plan, rule: Rule | None) -> bool:
    pii = plan.pii if isinstance(plan.pii, Mapping) else {}
    if pii.get("client_side") is True:
        return True
    return rule is not None and rule.extra.get("x-pii-client-side") is True


def _node(node: Any, actions: set[str]) -> dict[str, Any]:
    """A tree node of the enforcer's walk as JSON: ``k`` children by key, ``*`` every item,
    ``leaf`` ``[category, action]`` of a declaration, ``d`` scanned, ``p`` a person's."""
    out: dict[str, Any] = {}
    if node.keys:
        out["k"] = {key: _node(child, actions) for key, child in sorted(node.keys.items())}
    if node.star is not None:
        out["*"] = _node(node.star, actions)
    if node.leaf is not None:
        out["leaf"] = [node.leaf.category, node.leaf.action]
        if node.leaf.category is not None:
            actions.add(node.leaf.action)
    if node.detect:
        out["d"] = True
    if node.person:
        out["p"] = True
    return out


def client_pii(plan: Plan) -> ClientPii:
    """The client-side PII walk per call (empty when the plan asks for none)."""
    calls: list[tuple[str, Rule | None]] = [
        ("identify", plan.rule("identify")),
        ("group", plan.rule("group")),
        *(("track", rule) for rule in plan.events),
    ]
    asked = [(kind, rule) for kind, rule in calls if _asks(plan, rule)]
    if not asked:
        return ClientPii({}, {}, "", False)
    policy = PiiPolicy.from_plan(plan, environ=_AnyKey())
    used: set[str] = set()
    trees: dict[tuple[str, int], dict[str, Any]] = {}
    for kind, rule in asked:
        transformer = Transformer(policy, rule, kind)
        if not transformer.inert():
            trees[(kind, id(rule))] = _node(transformer.root, used)
    det = policy.detection
    on = det.enabled
    actions = {c: policy.detection_action(c) for c in policy.categories}
    detection = {"values": on and det.values, "key_names": on and det.key_names, "actions": actions}
    if on and (det.values or det.key_names):
        used.update(actions.values())
    # phones hashed in E.164 as the pipeline hashes them: the numbering data of the plan's
    # regions, from phonenumbers' metadata (the client may lack phonenumbers)
    region = policy.default_region
    regions = sorted({*([region] if region else []), *policy.phone_regions})
    phone = {"region": region, "data": numbering_data(regions)}
    # government ids hashed in python-stdnum's compact form, as the pipeline hashes them
    ids = [module for c in policy.id_countries for module, _ in ID_FORMATS.get(c, ())]
    return ClientPii(trees, detection, policy.hash_key_env, "hash" in used, phone, ids)


def _source(name: str) -> str:
    text = resources.files("trackplan.pii").joinpath(name).read_text(encoding="utf-8")
    return vendored_text(text)


def vendored_text(source: str) -> str:
    """``source`` as a generated package carries it: imports of the other copies relative."""
    for old, new in IMPORTS.items():
        source = source.replace(f"\n{old} ", f"\n{new} ")
    return source


def iban_source() -> str:
    """The source of :mod:`trackplan.pii.iban_registry`, copied into generated packages."""
    return _source(VENDORED["_pii_iban.py"])


def actions_source() -> str:
    """The source of :mod:`trackplan.pii.actions`, copied into generated packages."""
    return _source(VENDORED["_pii.py"])


def detect_source() -> str:
    """The source of :mod:`trackplan.pii.detect`, copied into generated packages."""
    return _source(VENDORED["_pii_detect.py"])


def e164_source() -> str:
    """The source of :mod:`trackplan.pii.e164`, copied into generated packages."""
    return _source(VENDORED["_pii_e164.py"])
