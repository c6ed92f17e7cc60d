"""trackplan: tracking plans as code.

Load a plan, compile it, enforce it on events:

>>> import trackplan
>>> plan = trackplan.load_plan("plans/ecommerce")            # doctest: +SKIP
>>> result = plan.compile().enforce(event)                    # doctest: +SKIP
"""

from trackplan.engine import Enforcer, Result, Violation, compile_plan
from trackplan.errors import (
    CompileError,
    InputError,
    MissingSecretError,
    PlanError,
    PlanIssue,
    TrackplanError,
)
from trackplan.plan import Plan, Rule, load_plan

__version__ = "0.1.0"

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
    "compile_plan",
    "load_plan",
]
