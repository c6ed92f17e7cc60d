"""Conformance: the same events through every surface of trackplan, compared."""
