"""Windowed reductions (spec: reduce_window, select_and_scatter)."""

from . import op  # noqa: F401
