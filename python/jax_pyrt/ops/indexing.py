"""Gather and scatter (spec: gather, scatter, dynamic_gather)."""

from . import op  # noqa: F401
