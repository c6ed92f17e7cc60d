"""Code generation from a plan: typed Python tracking packages.

>>> from trackplan.codegen import generate_python           # doctest: +SKIP
>>> files = generate_python(plan, package="tracking")         # doctest: +SKIP

The command line is ``trackplan codegen python PLAN --out PATH [--check]``.
"""

from __future__ import annotations

from trackplan.codegen.python import GENERATOR, generate_python

__all__ = ["GENERATOR", "generate_python"]
