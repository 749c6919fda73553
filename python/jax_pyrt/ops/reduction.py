"""Reductions (spec: reduce)."""
