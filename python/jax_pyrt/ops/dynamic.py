"""Dynamic-shape ops (spec: dynamic_broadcast_in_dim, dynamic_reshape, dynamic_iota, dynamic_pad, real_dynamic_slice, get_dimension_size, set_dimension_size)."""

from . import op  # noqa: F401
