"""Linear algebra (spec: dot_general, dot, triangular_solve, cholesky; and the einsum ops XLA
still accepts)."""

import numpy as np
import scipy.linalg.blas
import scipy.linalg.lapack
from jaxlib.mlir import ir
from jaxlib.mlir.dialects import stablehlo

from .. import dtypes
from .base import op
from .precision import accumulator_dtype, matmul_dtype


def matmul_kernel(lhs_batch, lhs_contract, rhs_batch, rhs_contract, lhs_type, rhs_type, out_type,
                  transposed=False):
    """out = dot_general(lhs, rhs) as one np.matmul over (batch..., free, contracting). The
    batch dimensions stay as they are (np.matmul loops over them), so that the matrices of a
    view (attention heads sliced and transposed out of one array) go to BLAS without a copy.
    `transposed`: the result is transposed next; with one free dimension on each side, out is
    then computed as matmul(rhs^T, lhs^T) and returned as a view swapping its last two axes
    (the transpose then gives a C-contiguous array)."""
    lhs_free = [d for d in range(lhs_type.rank) if d not in lhs_batch and d not in lhs_contract]
    rhs_free = [d for d in range(rhs_type.rank) if d not in rhs_batch and d not in rhs_contract]
    lhs_perm = list(lhs_batch) + lhs_free + list(lhs_contract)
    rhs_perm = list(rhs_batch) + list(rhs_contract) + rhs_free
    size = lambda t, dims: int(np.prod([t.shape[d] for d in dims], dtype=np.int64))
    m, k = size(lhs_type, lhs_free), size(lhs_type, lhs_contract)
    n = size(rhs_type, rhs_free)
    batch = tuple(lhs_type.shape[d] for d in lhs_batch)
    lhs_shape, rhs_shape = batch + (m, k), batch + (k, n)
    out_dtype = out_type.dtype
    compute = matmul_dtype(lhs_type.dtype, rhs_type.dtype, out_dtype, k)
    integral = dtypes.is_integer(out_dtype) and compute.kind == "f"
    to_bool = dtypes.is_bool(out_dtype)
    out_shape = out_type.shape
    lhs_identity = lhs_perm == list(range(lhs_type.rank))
    rhs_identity = rhs_perm == list(range(rhs_type.rank))
    transposed = transposed and len(lhs_free) == len(rhs_free) == 1

    def kernel(lhs, rhs):
        if not lhs_identity:
            lhs = lhs.transpose(lhs_perm)
        if not rhs_identity:
            rhs = rhs.transpose(rhs_perm)
        lhs = _blas_ready(lhs.reshape(lhs_shape).astype(compute, copy=False))
        rhs = _blas_ready(rhs.reshape(rhs_shape).astype(compute, copy=False))
        if transposed:
            out = np.swapaxes(np.matmul(np.swapaxes(rhs, -1, -2), np.swapaxes(lhs, -1, -2)),
                              -1, -2)
        else:
            out = np.matmul(lhs, rhs)
        if to_bool:
            out = out != 0
        elif integral:
            out = out.astype(np.int64)  # exact; the cast below wraps like integer accumulation
        return out.reshape(out_shape).astype(out_dtype, copy=False)

    return kernel


def _blas_ready(x):
    """x, or a C-contiguous copy where its matrices (last two axes) are not in a layout BLAS
    takes (one axis of unit stride, the other at least a row apart): np.matmul would run its
    own slow loop on them."""
    if x.ndim < 2 or x.dtype.char not in "fdFD":
        return x
    (rows, columns), (row_stride, column_stride) = x.shape[-2:], x.strides[-2:]
    item = x.itemsize
    if (column_stride == item and row_stride % item == 0 and row_stride >= columns * item) or \
            (row_stride == item and column_stride % item == 0 and column_stride >= rows * item):
        return x
    return np.ascontiguousarray(x)


def dot_flops(operation, operands, results):
    """2 * M * N * K (times batch), as XLA's HloCostAnalysis."""
    dims = stablehlo.DotDimensionNumbers(operation.attributes["dot_dimension_numbers"])
    k = int(np.prod([operands[0].shape[d] for d in dims.lhs_contracting_dimensions]))
    return 2 * results[0].size * k


@op("stablehlo.dot_general", cost=dot_flops)
def dot_general(op_):
    """Spec: dot_general. One batched np.matmul over (batch, free, contracting) layouts; narrow
    floats accumulate in float32 and round once; integers wrap (small ones go through exact
    floating-point BLAS); bool is or-of-and; preferred element types are honoured.

    dtypes: all element types (i1, integers, floats, complex), operands and result of one type
    or mixed (e.g. i8 x i8 -> i32, bf16 x bf16 -> f32)."""
    dims = stablehlo.DotDimensionNumbers(op_.attr("dot_dimension_numbers"))
    lhs, rhs = op_.operand_types
    return matmul_kernel(dims.lhs_batching_dimensions, dims.lhs_contracting_dimensions,
                         dims.rhs_batching_dimensions, dims.rhs_contracting_dimensions,
                         lhs, rhs, op_.result, transposed=_transposed_next(op_.operation))


def _transposed_next(operation):
    """Whether the op's result is only read by a transpose swapping its last two axes (JAX's
    gradient of x @ w: dot_general, then transpose). Computing the product transposed, as
    XLA's layout assignment does, lets the transpose give a C-contiguous array: the
    elementwise ops after it (an optimizer's update) then read memory in order (on the MLP
    step's 784x512 gradient, 0.25 ms instead of 0.75 ms for p - lr * g)."""
    uses = list(operation.results[0].uses)
    if len(uses) != 1 or uses[0].owner.name != "stablehlo.transpose":
        return False
    rank = len(operation.results[0].type.shape)
    perm = list(ir.DenseI64ArrayAttr(uses[0].owner.attributes["permutation"]))
    return rank >= 2 and perm == list(range(rank - 2)) + [rank - 1, rank - 2]


@op("stablehlo.dot")
def dot(op_):
    """Spec: dot (deprecated form): vector/matrix products contracting lhs's last dimension.

    dtypes: as dot_general."""
    lhs, rhs = op_.operand_types
    return matmul_kernel((), (lhs.rank - 1,), (), (0,), lhs, rhs, op_.result)


# -- einsum (removed from the spec, still in the dialect and accepted by XLA)

def _einsum_kernel(config, out):
    dtype = out.dtype
    compute = accumulator_dtype(dtype)  # one rounding (narrow floats), one wrap (int4) at the end

    def kernel(*xs):
        xs = [np.asarray(x).astype(compute, copy=False) for x in xs]
        result = np.einsum(config, *xs, dtype=compute, optimize=len(xs) > 1)
        return np.asarray(result).astype(dtype, copy=False)

    return kernel


@op("stablehlo.einsum")
def einsum(op_):
    """XLA: einsum (dropped from the spec, still in the dialect). np.einsum on the einsum_config,
    computed in the result element type (narrow floats in float32, rounded once)."""
    return _einsum_kernel(op_.value("einsum_config"), op_.result)


@op("stablehlo.unary_einsum")
def unary_einsum(op_):
    """XLA: unary_einsum (dropped from the spec; XLA:CPU rejects it). np.einsum on the
    einsum_config (e.g. sums, diagonals, transposes), in the result element type."""
    return _einsum_kernel(op_.value("einsum_config"), op_.result)


# -- triangular_solve and cholesky --------------------------------------------------------------

def _solve_dtype(dtype):
    """Narrow floats solve in float32 and round once; the BLAS types run as they are."""
    return np.dtype(np.float32) if dtypes.is_float(dtype) and dtype.itemsize < 4 else dtype


def _swap(x):
    return np.swapaxes(x, -1, -2)


# XLA's TriangularSolveExpander: diagonal blocks of this size are inverted; batches of more than
# _BLOCK // 16 matrices smaller than _BLOCK // 4 are solved by substitution instead.
_BLOCK = 128


def _divide(x, d):
    """x / d for d broadcast along x's last axis, as XLA computes it after its simplifier turns
    a division by a broadcast into a multiplication by the reciprocal."""
    return x * (1 / d) if x.shape[-1] > 1 else x / d


def _substitute(a, b, lower, unit):
    """Solves a @ x = b for x by substitution, one row at a time, vectorised over the batch
    (XLA's SolveDirectly). `a` holds the triangle to use; the other one is not read."""
    k = a.shape[-1]
    x = b.copy()
    for j in (range(k) if lower else range(k - 1, -1, -1)):
        if lower and j:
            x[..., j, :] -= (a[..., j:j + 1, :j] @ x[..., :j, :])[..., 0, :]
        elif not lower and j < k - 1:
            x[..., j, :] -= (a[..., j:j + 1, j + 1:] @ x[..., j + 1:, :])[..., 0, :]
        if not unit:
            x[..., j, :] = _divide(x[..., j, :], a[..., j, j][..., None])
    return x


def _trsm_each(a, b, lower, trans, unit):
    """Solves op(a) @ x = b with BLAS trsm, one matrix of the batch at a time (it reads only
    the named triangle of a); op is a (trans 0), a^T (1) or a^H (2). trans None: conj(a)."""
    if trans is None:  # conj(a) @ x = b  <=>  a @ conj(x) = conj(b)
        return _trsm_each(a, b.conj(), lower, 0, unit).conj()
    trsm = scipy.linalg.blas.get_blas_funcs("trsm", dtype=a.dtype)
    k = a.shape[-1]
    flat_a = a.reshape(-1, k, k)
    flat_b = b.reshape((-1,) + b.shape[-2:])
    out = np.empty(flat_b.shape, a.dtype)
    for i in range(flat_a.shape[0]):
        out[i] = trsm(1.0, flat_a[i], flat_b[i], lower=lower, trans_a=trans, diag=unit)
    return out.reshape(b.shape)


def _invert_blocks(blocks, lower):
    """Inverses of triangular (n, s, s) blocks as XLA computes them: scale the columns to a unit
    diagonal, build the inverse one row at a time, undo the scaling."""
    s = blocks.shape[-1]
    diags = np.diagonal(blocks, axis1=-2, axis2=-1)
    scale = 1 / diags
    scaled = blocks * scale[:, None, :]
    out = np.broadcast_to(-np.eye(s, dtype=blocks.dtype), blocks.shape).copy()
    first = 0 if lower else s - 1
    out[:, first, first] = 1
    for i in range(1, s):
        j = i if lower else s - 1 - i
        out[:, j, :] = -(scaled[:, j:j + 1, :] @ out)[:, 0, :]
    out *= scale[:, :, None]
    return out


def _solve_blocked(a, b, lower, transpose, conj):
    """Solves op(a) @ x = b, op(a) = a, a^T, conj(a) or a^H, by inverting the diagonal blocks of
    `a` (triangular, its other triangle zero) and eliminating block by block with matrix
    products (XLA's SolveByInvertingDiagonalBlocks)."""
    k = a.shape[-1]
    s = min(_BLOCK, k)
    n_blocks = -(-k // s)
    batch = a.shape[:-2]
    blocks = np.broadcast_to(np.eye(s, dtype=a.dtype), batch + (n_blocks, s, s)).copy()
    for j in range(n_blocks):
        r = slice(j * s, min((j + 1) * s, k))
        size = r.stop - r.start
        blocks[..., j, :size, :size] = a[..., r, r]
    inverses = _invert_blocks(blocks.reshape(-1, s, s), lower).reshape(blocks.shape)

    def op(m):
        m = _swap(m) if transpose else m
        return m.conj() if conj else m

    x = np.empty(b.shape, np.result_type(a, b))
    forward = lower != transpose
    for j in (range(n_blocks) if forward else range(n_blocks - 1, -1, -1)):
        r = slice(j * s, min((j + 1) * s, k))
        size = r.stop - r.start
        rest = b[..., r, :]
        done = slice(0, r.start) if forward else slice(r.stop, k)
        if done.stop > done.start:  # op(a)[r, done] @ x[done]
            part = a[..., done, r] if transpose else a[..., r, done]
            rest = rest - op(part) @ x[..., done, :]
        x[..., r, :] = op(inverses[..., j, :size, :size]) @ rest
    return x


@op("stablehlo.triangular_solve")
def triangular_solve(op_):
    """Spec: triangular_solve. Left or right side, lower or upper, unit diagonal,
    NO_TRANSPOSE/TRANSPOSE/ADJOINT, leading batch dimensions. As XLA:CPU: batches of more than 8
    matrices smaller than 32 by substitution row by row (vectorised over the batch); otherwise
    BLAS trsm per matrix, and should that give infinities or NaNs, XLA's algorithm (inverting
    128x128 diagonal blocks, eliminating with matrix products), so that singular matrices give
    XLA's infinities and NaNs.

    dtypes: f16, bf16 (in float32), f32, f64, c64, c128."""
    left = bool(op_.value("left_side"))
    lower = bool(op_.value("lower"))
    unit = bool(op_.value("unit_diagonal"))
    transpose = op_.enum("transpose_a", "NO_TRANSPOSE")
    a_type, b_type = op_.operand_types
    out_dtype = op_.result.dtype
    if not (dtypes.is_float(out_dtype) or dtypes.is_complex(out_dtype)):
        raise op_.unsupported(f"element type {out_dtype}")
    if transpose not in ("NO_TRANSPOSE", "TRANSPOSE", "ADJOINT"):
        raise op_.unsupported(f"transpose_a {transpose}")
    compute = _solve_dtype(out_dtype)
    k = a_type.shape[-1]
    batch = int(np.prod(a_type.shape[:-2], dtype=np.int64))
    conj = transpose == "ADJOINT" and dtypes.is_complex(out_dtype)
    transposed = transpose != "NO_TRANSPOSE"
    direct = batch > _BLOCK // 16 and k < _BLOCK // 4
    # From the right, x @ op(a) = b is op(a)^T @ x^T = b^T: solve from the left with the other
    # transposition (a^T <-> a, a^H <-> conj(a)).
    transposed_ = transposed == left
    # Substitution runs on the explicit matrix op(a) (lower or upper).
    swap = transposed_
    lower_ = lower != swap
    # trsm solves op(a) @ x = b from the left: op is transposed_ (conjugated for ADJOINT).
    trans_code = (2 if conj else 1) if transposed_ else 0
    lower_blas = lower
    if conj and not transposed_:  # conj(a) @ x = b: no such trsm; use conj(a^H) = a^T
        trans_code = None

    def kernel(a, b):
        if b.size == 0:
            return np.zeros(b.shape, out_dtype)
        a = a.astype(compute, copy=False)
        b = b.astype(compute, copy=False)
        if not left:
            b = _swap(b)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if k == 1:
                x = b if unit else _divide(b, a.conj() if conj else a)
            elif direct:
                m = a.conj() if conj else a
                x = _substitute(_swap(m) if swap else m, b, lower_, unit)
            else:
                x = _trsm_each(a, b, lower_blas, trans_code, unit)
                if not np.isfinite(x).all():
                    t = np.tril(a) if lower else np.triu(a)
                    if unit:
                        idx = np.arange(k)
                        t[..., idx, idx] = 1
                    x = _solve_blocked(t, b, lower, transposed_, conj)
        if not left:
            x = _swap(x)
        return np.ascontiguousarray(x).astype(out_dtype, copy=False)

    return kernel


# From this size on, LAPACK's potrf per matrix beats NumPy's batched cholesky (4x at 512).
_POTRF_SIZE = 32


def _cholesky_potrf(a, lower):
    """Cholesky factors with LAPACK's potrf, one matrix at a time (it reads only the named
    triangle and zeroes the other one); failed factorisations are NaN."""
    potrf = scipy.linalg.lapack.get_lapack_funcs("potrf", dtype=a.dtype)
    n = a.shape[-1]
    flat = a.reshape(-1, n, n)
    out = np.empty(flat.shape, a.dtype)
    for i, m in enumerate(flat):
        factor, info = potrf(m, lower=lower, clean=1)
        out[i] = factor if info == 0 else np.nan
    return out.reshape(a.shape)


def _cholesky_numpy(a, lower):
    """Cholesky factors with NumPy's batched cholesky of the Hermitian matrix the named triangle
    defines; failed factorisations are NaN."""
    if lower:
        h = np.tril(a)
        h += _swap(np.tril(a, -1)).conj()
    else:
        h = np.tril(_swap(a).conj())  # the upper triangle, mirrored
        h += np.triu(a, 1)
    try:
        factor = np.linalg.cholesky(h)
    except np.linalg.LinAlgError:
        flat = h.reshape((-1,) + h.shape[-2:])
        factor = np.empty_like(flat)
        for i, m in enumerate(flat):  # only after a failure: find the bad matrices
            try:
                factor[i] = np.linalg.cholesky(m)
            except np.linalg.LinAlgError:
                factor[i] = np.nan
        factor = factor.reshape(h.shape)
    return factor if lower else _swap(factor).conj()


@op("stablehlo.cholesky")
def cholesky(op_):
    """Spec: cholesky. Batched, with LAPACK (potrf per matrix from size 32, NumPy's batched
    cholesky below). Only the `lower` (or upper)
    triangle of the operand is read; the result's other triangle is zero; a matrix that is not
    positive definite (or has a NaN in the triangle read) gives all NaNs, as XLA:CPU does.

    dtypes: f16, bf16 (in float32), f32, f64, c64, c128."""
    lower = bool(op_.value("lower", False))
    out_dtype = op_.result.dtype
    if not (dtypes.is_float(out_dtype) or dtypes.is_complex(out_dtype)):
        raise op_.unsupported(f"element type {out_dtype}")
    compute = _solve_dtype(out_dtype)

    def kernel(a):
        if a.size == 0:
            return np.zeros(a.shape, out_dtype)
        a = a.astype(compute, copy=False)
        with np.errstate(invalid="ignore", over="ignore"):
            if a.shape[-1] >= _POTRF_SIZE:
                factor = _cholesky_potrf(a, lower)
            else:
                factor = _cholesky_numpy(a, lower)
        # LAPACK may not notice a NaN; XLA fails the whole matrix.
        bad = np.isnan(factor).any(axis=(-2, -1))
        if bad.any():
            factor[bad] = np.nan
        return np.ascontiguousarray(factor).astype(out_dtype, copy=False)

    return kernel
