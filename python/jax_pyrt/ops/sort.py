"""Sorting (spec: sort)."""

from . import op  # noqa: F401
