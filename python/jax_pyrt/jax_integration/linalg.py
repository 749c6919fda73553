"""Linear algebra primitives whose JAX lowerings exist only for named platforms (eigh, svd, ...).

jax 0.10.2 registers lowering rules for `eigh`, `svd`, `eig`, `schur`, `hessenberg` and
`tridiagonal`, `geqp3` only on cpu/cuda/rocm(/tpu): on any other platform, `jnp.linalg.eigh`, `svd`,
`pinv`, `lstsq`, `eig`, `jax.scipy.linalg.schur`, `sqrtm`, `hessenberg`, `qr(pivoting=True)`, ... fail with "MLIR
translation rule for primitive 'eigh' not found for platform pyrt". We register rules for pyrt
that emit `stablehlo.custom_call @pyrt_<primitive>` with the primitive's own operands and results
(no LAPACK workspace / info outputs) and the primitive's static parameters as a JSON
backend_config; the runtime implements those targets in ops/lapack.py with NumPy / SciPy.
(`qr`'s `@Qr` / `@ProductOfElementaryHouseholderReflectors`, which JAX emits on every platform
that has no rule of its own, are implemented there too.) `lu` gets CPU's own rule (LAPACK
getrf through `lapack_*getrf_ffi`). Checked against jax 0.10.2.
"""

import functools
import json

import numpy as np

from ..ops.lapack import LAPACK_DTYPES

PRIMITIVES = ("eigh", "svd", "eig", "schur", "hessenberg", "tridiagonal", "geqp3")


def _params(name, params):
    """The static parameters a target needs, as plain JSON values."""
    if name == "eigh":
        return {"lower": bool(params["lower"]),
                "subset_by_index": (None if params["subset_by_index"] is None
                                    else list(params["subset_by_index"]))}
    if name == "svd":
        return {"full_matrices": bool(params["full_matrices"]),
                "compute_uv": bool(params["compute_uv"])}
    if name == "eig":
        return {"compute_left": bool(params["compute_left_eigenvectors"]),
                "compute_right": bool(params["compute_right_eigenvectors"])}
    if name == "schur":
        return {"compute_schur_vectors": bool(params["compute_schur_vectors"])}
    if name == "tridiagonal":
        return {"lower": bool(params["lower"])}
    return {}


def _rule(name):
    from jax._src.interpreters import mlir

    def rule(ctx, *operands, **params):
        dtype = np.dtype(ctx.avals_in[0].dtype)
        if dtype not in LAPACK_DTYPES:  # CPU's LAPACK rules refuse these while lowering, thus
            raise NotImplementedError(f"Unsupported dtype {dtype}")
        if name == "svd":
            from jax._src.lax import linalg as lax_linalg
            m, n = ctx.avals_in[0].shape[-2:]
            subset = params.get("subset_by_index")
            if not (subset is None or tuple(subset) == (0, min(m, n))):
                raise NotImplementedError("subset_by_index is not implemented for svd on pyrt")
            if m == 0 or n == 0:  # as the CPU rule does
                return mlir.lower_fun(lax_linalg._empty_svd, multiple_results=True)(
                    ctx, *operands, full_matrices=params["full_matrices"],
                    compute_uv=params["compute_uv"])
        if name == "schur" and params.get("sort_eig_vals"):
            raise NotImplementedError("schur with sort_eig_vals is not implemented (nor on CPU)")
        if name == "eig" and params.get("implementation") not in (None,) and \
                getattr(params["implementation"], "name", "LAPACK") != "LAPACK":
            raise ValueError("Only the lapack implementation of eig is supported on pyrt.")
        result_types = [mlir.aval_to_ir_type(ctx.module_context, aval) for aval in ctx.avals_out]
        call = mlir.custom_call(
            f"pyrt_{name}", result_types=result_types, operands=list(operands),
            backend_config=json.dumps(_params(name, params)), api_version=1)
        return list(call.results)

    return rule


def install(platform):
    """Registers a pyrt lowering rule for each linalg primitive that has none on `platform`."""
    from jax._src import xla_bridge
    from jax._src.interpreters import mlir
    from jax._src.lax import linalg as lax_linalg

    if not xla_bridge.is_known_platform(platform):
        return  # the plugin was not registered (e.g. a test that stubs register_plugin)
    for name in PRIMITIVES:
        mlir.register_lowering(getattr(lax_linalg, f"{name}_p"), _rule(name), platform=platform)
    # lu: JAX's generic lowering is a blocked loop in JAX (slow, and its carry loses shard_map's
    # varying axes); CPU's rule calls LAPACK getrf, which the runtime implements (ops/lapack.py)
    # with the same LAPACK, so jnp.linalg.solve / inv / det match XLA:CPU bit for bit.
    mlir.register_lowering(lax_linalg.lu_p, functools.partial(
        lax_linalg._lu_cpu_gpu_lowering, target_name_prefix="cpu"), platform=platform)
