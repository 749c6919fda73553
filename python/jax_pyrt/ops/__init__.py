"""The op registry: one handler per StableHLO op, named after the op (the handler API is in
ops/base.py).

Handlers live in modules grouped as the StableHLO spec groups ops; importing this package
registers them all. The op coverage table (docs/ops.md) is generated from the registry by
`python -m jax_pyrt.ops`.
"""

from .base import (  # noqa: F401
    TERMINATORS, CompileContext, Constant, InContext, Op, cost_of, lookup, op, registry)

# Importing a module registers its handlers.
from . import (  # noqa: E402,F401
    control_flow, convolution, custom_call, distribution, dynamic, elementwise, fft,
    host_callback, indexing, lapack, linalg, normalization, quantization, random, reduction,
    shape, sharding, sort, windows)
