"""The plan model and its loaders and writers."""

from trackplan.plan.load import load_plan
from trackplan.plan.model import CallControls, Controls, Plan, Rule

__all__ = ["Plan", "Rule", "Controls", "CallControls", "load_plan"]
