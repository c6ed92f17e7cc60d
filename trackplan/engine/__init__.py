"""The enforcement engine: a plan compiled into validators, controls and PII actions."""

from trackplan.engine.enforcer import Enforcer, Result, compile_plan
from trackplan.schema.violations import VIOLATION_TYPES, Violation

__all__ = ["Enforcer", "Result", "Violation", "VIOLATION_TYPES", "compile_plan"]
