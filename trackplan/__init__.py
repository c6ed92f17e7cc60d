"""trackplan: tracking plans as code.

Load a plan, compile it, enforce it on events:

>>> import trackplan
>>> plan = trackplan.load_plan("plans/ecommerce")            # doctest: +SKIP
>>> result = trackplan.compile(plan).enforce(event)           # doctest: +SKIP
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

#: ``trackplan.compile(plan)``: the plan compiled into an :class:`Enforcer`.
compile = compile_plan  # noqa: A001 - the package's verb, as in re.compile

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
    "compile",
    "compile_plan",
    "load_plan",
]
