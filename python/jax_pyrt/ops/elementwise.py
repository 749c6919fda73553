"""Elementwise ops (spec: add, sine, ...): NumPy ufuncs over whole arrays."""

import numpy as np

from . import op


@op("stablehlo.add")
def add(op_):
    """Spec: add. Integers wrap around; bool is logical or."""
    return np.logical_or if op_.result.dtype == np.bool_ else np.add


@op("stablehlo.sine")
def sine(op_):
    """Spec: sine."""
    return np.sin
