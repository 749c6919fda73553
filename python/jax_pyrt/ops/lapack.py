"""LAPACK-backed custom-call targets (QR, eigh, SVD, ...) that pyrt's own lowering rules emit
(see jax_integration/linalg.py), plus the `@Qr` / `@ProductOfElementaryHouseholderReflectors`
calls JAX emits for `qr` on a platform without LAPACK rules.

Each target takes the JAX primitive's operands and returns its results (no workspace or info
outputs), batched over leading dimensions, in the operand's precision (f32/c64 stay single
precision, as LAPACK's s/c routines on CPU). NumPy's batched linalg is used where it computes
the same factorisation (geqrf, syevd/heevd, gesdd, geev); SciPy's LAPACK wrappers, one matrix at
a time, where NumPy has no equivalent (orgqr, gehrd, sytrd, gees, left eigenvectors). A
failed factorisation gives NaNs, as JAX's CPU rules do when LAPACK reports info != 0.
"""

import json

import numpy as np

from .. import dtypes
from ..errors import ExecutionError
from .custom_call import target

LAPACK_DTYPES = (np.dtype(np.float32), np.dtype(np.float64),
                  np.dtype(np.complex64), np.dtype(np.complex128))


def _config(op_):
    raw = op_.value("backend_config", "")
    if isinstance(raw, bytes):
        raw = raw.decode()
    return json.loads(raw) if raw else {}


def _check_dtype(op_, what):
    dtype = op_.operand_types[0].dtype
    if dtype not in LAPACK_DTYPES:
        raise op_.unsupported(f"{what} of {dtype}: Unsupported dtype {dtype} (as on CPU, "
                              f"LAPACK types only: float32, float64, complex64, complex128)")
    return dtype


def _lapack(name, dtype):
    import scipy.linalg.lapack as lapack
    return lapack.get_lapack_funcs(name, dtype=dtype)


def _per_matrix(a, fn, out_specs):
    """Calls fn(matrix) -> tuple for each matrix of a [..., m, n]; stacks each output into an
    array of shape batch + spec shape and dtype."""
    batch = a.shape[:-2]
    outs = [np.empty(batch + shape, dtype) for shape, dtype in out_specs]
    for index in np.ndindex(*batch):
        for out, value in zip(outs, fn(a[index])):
            out[index] = value
    return outs


def _nan_if(failed, *arrays):
    """NaN-fills the matrices whose factorisation failed (info != 0), as JAX's CPU rules do."""
    if not np.any(failed):
        return arrays
    result = []
    for x in arrays:
        x = np.array(x, copy=True)
        x[failed] = np.nan
        result.append(x)
    return result


def _finite(a):
    """(failed mask over the batch, a with those matrices zeroed): LAPACK's info != 0 (or
    NumPy's LinAlgError) on non-finite input becomes NaN output, as on CPU."""
    failed = ~np.isfinite(a).all(axis=(-2, -1))
    if not failed.any():
        return None, a
    return failed, np.where(failed[..., None, None], np.zeros((), a.dtype), a)


def _guard(what, fn):
    def kernel(*args):
        try:
            return fn(*args)
        except np.linalg.LinAlgError as e:
            raise ExecutionError(f"{what}: {e}") from e
    return kernel


# LU (JAX's CPU lowering, which pyrt registers for itself: jax_integration/linalg.py) ---------

@target("lapack_sgetrf_ffi", "lapack_dgetrf_ffi", "lapack_cgetrf_ffi", "lapack_zgetrf_ffi")
def getrf(op_):
    """LU factorisation with partial pivoting (LAPACK getrf, through SciPy's wrapper: the
    LAPACK jaxlib's CPU kernels call): a [..., m, n] -> (lu, 1-based pivots [..., min(m, n)],
    info [...]), as the CPU target returns them (JAX's rule then makes the pivots 0-based and
    the permutation, and NaN-fills matrices with info < 0)."""
    dtype = _check_dtype(op_, "lu")
    lu_type, pivot_type, info_type = op_.result_types
    factor = _lapack("getrf", dtype)

    def kernel(a):
        lu = np.zeros(lu_type.shape, dtype)
        pivots = np.zeros(pivot_type.shape, np.int32)
        info = np.zeros(info_type.shape, np.int32)
        if a.size == 0:
            return lu, pivots, info
        for index in np.ndindex(*a.shape[:-2]):
            lu[index], p, info[index] = factor(a[index])
            pivots[index] = p + 1  # SciPy hands out LAPACK's pivots 0-based
        return lu, pivots, info

    return kernel


# QR (JAX's generic geqrf / householder_product lowerings) ------------------------------------

@target("Qr")
def qr(op_):
    """Householder QR (LAPACK geqrf): [..., m, n] -> (R above the diagonal with the reflectors
    below it, taus [..., min(m, n)])."""
    dtype = _check_dtype(op_, "custom_call @Qr")
    m, n = op_.operand_types[0].shape[-2:]
    k = min(m, n)

    def kernel(a):
        if a.size == 0 or k == 0:
            return np.array(a, dtype=dtype, copy=True), np.zeros(a.shape[:-2] + (k,), dtype)
        h, taus = np.linalg.qr(a, mode="raw")
        return np.ascontiguousarray(np.swapaxes(h, -1, -2)).astype(dtype, copy=False), \
            taus.astype(dtype, copy=False)

    return _guard("QR", kernel)


@target("ProductOfElementaryHouseholderReflectors")
def householder_product(op_):
    """Q of a geqrf factorisation (LAPACK orgqr / ungqr): (reflectors [..., m, n], taus
    [..., k]) -> the first n columns of H_1 ... H_k."""
    dtype = _check_dtype(op_, "custom_call @ProductOfElementaryHouseholderReflectors")
    m, n = op_.operand_types[0].shape[-2:]
    k = op_.operand_types[1].shape[-1]
    orgqr = _lapack("ungqr" if dtypes.is_complex(dtype) else "orgqr", dtype)

    def one(a, taus):
        if m == 0 or n == 0:
            return np.zeros((m, n), dtype)
        if k == 0:
            return np.eye(m, n, dtype=dtype)
        q, _, info = orgqr(a, taus)
        return q if info == 0 else np.full((m, n), np.nan, dtype)

    def kernel(a, taus):
        batch = a.shape[:-2]
        out = np.empty(batch + (m, n), dtype)
        for index in np.ndindex(*batch):
            out[index] = one(a[index], taus[index])
        return out

    return kernel


@target("pyrt_geqp3")
def geqp3(op_):
    """Column-pivoted Householder QR (jax geqp3_p; LAPACK geqp3): (a [..., m, n], jpvt [..., n])
    -> (R above the diagonal with the reflectors below it, 1-based pivots, taus [..., min(m,
    n)]). Only all-free columns (jpvt == 0, what jax's qr passes) are supported."""
    dtype = _check_dtype(op_, "geqp3")
    m, n = op_.operand_types[0].shape[-2:]
    k = min(m, n)
    jdtype = op_.result_types[1].dtype
    geqp3_ = _lapack("geqp3", dtype)

    def one(a):
        if a.size == 0:
            return a, np.arange(1, n + 1), np.zeros((k,), dtype)
        qr_, jpvt, tau, _, info = geqp3_(a)
        if info != 0:
            return np.full((m, n), np.nan, dtype), np.arange(1, n + 1), np.full((k,), np.nan, dtype)
        return qr_, jpvt, tau

    def kernel(a, jpvt):
        if np.any(jpvt != 0):
            raise ExecutionError("geqp3 with preset pivot columns (jpvt != 0) is not supported "
                                 "by pyrt")
        return tuple(_per_matrix(a, one, [((m, n), dtype), ((n,), jdtype), ((k,), dtype)]))

    return kernel


# Eigen- and singular value decompositions ----------------------------------------------------

@target("pyrt_eigh")
def eigh(op_):
    """Hermitian eigendecomposition (jax eigh_p; LAPACK syevd/heevd via numpy.linalg.eigh):
    a [..., n, n] (one triangle read) -> (v [..., n, d], w [..., d] real, ascending)."""
    dtype = _check_dtype(op_, "eigh")
    config = _config(op_)
    uplo = "L" if config.get("lower", True) else "U"
    subset = config.get("subset_by_index")
    v_type, w_type = op_.result_types
    n = op_.operand_types[0].shape[-1]

    def kernel(a):
        if n == 0 or a.size == 0:
            return np.zeros(v_type.shape, dtype), np.zeros(w_type.shape, w_type.dtype)
        failed, a = _finite(a)
        w, v = np.linalg.eigh(a, UPLO=uplo)
        if subset is not None:
            lo, hi = subset
            w, v = w[..., lo:hi], v[..., :, lo:hi]
        v, w = v.astype(dtype, copy=False), w.astype(w_type.dtype, copy=False)
        return (v, w) if failed is None else tuple(_nan_if(failed, v, w))

    return _guard("eigh", kernel)


@target("pyrt_svd")
def svd(op_):
    """Singular value decomposition (jax svd_p; LAPACK gesdd via numpy.linalg.svd): a [..., m, n]
    -> s [..., min(m, n)] real descending, and with compute_uv (u, vt), full or reduced."""
    dtype = _check_dtype(op_, "svd")
    config = _config(op_)
    full, compute_uv = config.get("full_matrices", True), config.get("compute_uv", True)
    s_dtype = op_.result_types[0].dtype

    def kernel(a):
        failed, a = _finite(a)
        if not compute_uv:
            s = np.linalg.svd(a, compute_uv=False).astype(s_dtype, copy=False)
            return s if failed is None else _nan_if(failed, s)[0]
        u, s, vt = np.linalg.svd(a, full_matrices=full)
        outs = (s.astype(s_dtype, copy=False), u.astype(dtype, copy=False),
                vt.astype(dtype, copy=False))
        return outs if failed is None else tuple(_nan_if(failed, *outs))

    return _guard("svd", kernel)


@target("pyrt_eig")
def eig(op_):
    """General eigendecomposition (jax eig_p; LAPACK geev): a [..., n, n] -> w [..., n] complex,
    then optionally left and right eigenvectors [..., n, n] complex (unit 2-norm)."""
    _check_dtype(op_, "eig")
    config = _config(op_)
    left, right = config.get("compute_left", False), config.get("compute_right", True)
    n = op_.operand_types[0].shape[-1]
    cdtype = op_.result_types[0].dtype
    empty_results = [(t.shape, t.dtype) for t in op_.result_types]  # bound now: no MLIR at run time

    def one(a):
        import scipy.linalg
        w, vl, vr = scipy.linalg.eig(a, left=True, right=True, check_finite=False)
        return w, vl, vr

    def kernel(a):
        if n == 0 or a.size == 0:
            return tuple(np.zeros(shape, dtype) for shape, dtype in empty_results)
        failed, safe = _finite(a)
        if not left:
            w, vr = np.linalg.eig(safe)
            outs = [w.astype(cdtype), vr.astype(cdtype)] if right else [w.astype(cdtype)]
        else:
            w, vl, vr = _per_matrix(safe, one, [((n,), cdtype), ((n, n), cdtype),
                                                ((n, n), cdtype)])
            outs = [w, vl, vr] if right else [w, vl]
        if failed is not None:
            outs = _nan_if(failed, *outs)
        return tuple(outs)

    return _guard("eig", kernel)


# Reductions to condensed forms -----------------------------------------------------------------

@target("pyrt_schur")
def schur(op_):
    """Schur decomposition (jax schur_p; LAPACK gees via scipy.linalg.schur, unsorted): a
    [..., n, n] -> T (quasi-triangular for real input), and optionally the Schur vectors Z."""
    dtype = _check_dtype(op_, "schur")
    vectors = _config(op_).get("compute_schur_vectors", True)
    n = op_.operand_types[0].shape[-1]
    output = "complex" if dtypes.is_complex(dtype) else "real"

    def one(a):
        import scipy.linalg
        if not np.all(np.isfinite(a)):
            return np.full((n, n), np.nan, dtype), np.full((n, n), np.nan, dtype)
        t, z = scipy.linalg.schur(a, output=output, check_finite=False)
        return t, z

    def kernel(a):
        t, z = _per_matrix(a, one, [((n, n), dtype), ((n, n), dtype)])
        return (t, z) if vectors else (t,)

    return _guard("schur", kernel)


@target("pyrt_hessenberg")
def hessenberg(op_):
    """Hessenberg reduction (jax hessenberg_p; LAPACK gehrd): a [..., n, n] -> (H above the
    first subdiagonal with the reflectors below it, taus [..., n - 1])."""
    dtype = _check_dtype(op_, "hessenberg")
    n = op_.operand_types[0].shape[-1]
    gehrd = _lapack("gehrd", dtype)

    def one(a):
        if n <= 1:
            return a, np.zeros((max(n - 1, 0),), dtype)
        h, tau, info = gehrd(a)
        if info != 0:
            return np.full((n, n), np.nan, dtype), np.full((n - 1,), np.nan, dtype)
        return h, tau[:n - 1]

    def kernel(a):
        return tuple(_per_matrix(a, one, [((n, n), dtype), ((max(n - 1, 0),), dtype)]))

    return _guard("hessenberg", kernel)


@target("pyrt_tridiagonal")
def tridiagonal(op_):
    """Hermitian tridiagonal reduction (jax tridiagonal_p; LAPACK sytrd/hetrd): a [..., n, n]
    -> (packed reflectors and tridiagonal, d [..., n] real, e [..., n - 1] real, taus
    [..., n - 1])."""
    dtype = _check_dtype(op_, "tridiagonal")
    lower = _config(op_).get("lower", True)
    n = op_.operand_types[0].shape[-1]
    real = op_.result_types[1].dtype
    sytrd = _lapack("hetrd" if dtypes.is_complex(dtype) else "sytrd", dtype)

    def one(a):
        c, d, e, tau, info = sytrd(a, lower=int(lower))
        if info != 0:
            nan = np.nan
            return (np.full((n, n), nan, dtype), np.full((n,), nan, real),
                    np.full((n - 1,), nan, real), np.full((n - 1,), nan, dtype))
        return c, d, e, tau

    def kernel(a):
        return tuple(_per_matrix(a, one, [((n, n), dtype), ((n,), real), ((n - 1,), real),
                                          ((n - 1,), dtype)]))

    return _guard("tridiagonal", kernel)
