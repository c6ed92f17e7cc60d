"""trackplan: tracking plans as code.

Load a plan, compile it, enforce it on events:

>>> import trackplan
>>> plan = trackplan.load_plan("plans/ecommerce")            # doctest: +SKIP
>>> result = trackplan.compile(plan).enforce(event)           # doctest: +SKIP

The names below are imported when first used, so ``import trackplan`` (and every CLI
command that needs only part of the package) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trackplan.errors import (
    CompileError,
    InputError,
    MissingSecretError,
    PlanError,
    PlanIssue,
    TrackplanError,
)

if TYPE_CHECKING:
    from trackplan.engine import Enforcer, Result, Violation, compile_plan
    from trackplan.plan import Plan, Rule, load_plan

    #: ``trackplan.compile(plan)``: the plan compiled into an :class:`Enforcer`.
    compile = compile_plan  # noqa: A001 - the package's verb, as in re.compile

__version__ = "0.1.0"

#: Public names imported on first use: name -> module that defines it.
_LAZY = {
    "Enforcer": "trackplan.engine",
    "Result": "trackplan.engine",
    "Violation": "trackplan.engine",
    "compile_plan": "trackplan.engine",
    "compile": "trackplan.engine",
    "Plan": "trackplan.plan",
    "Rule": "trackplan.plan",
    "load_plan": "trackplan.plan",
}

__all__ = [
    "CompileError",
    "Enforcer",
    "InputError",
    "MissingSecretError",
    "Plan",
    "PlanError",
    "PlanIssue",
    "Result",
    "Rule",
    "TrackplanError",
    "Violation",
    "__version__",
    "compile",
    "compile_plan",
    "load_plan",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trackplan' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), "compile_plan" if name == "compile" else name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
