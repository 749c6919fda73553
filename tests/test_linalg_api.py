"""jnp.linalg and jax.scipy.linalg on pyrt against the CPU backend.

Decompositions that are unique (singular values, Hermitian eigenvalues, solve, inv, det, pinv,
lstsq, expm, sqrtm, ...) are compared value for value; for the others (Q, R, eigenvectors, Schur
and Hessenberg forms) we check the defining invariants on pyrt's result (reconstruction,
orthogonality, eigen-equation residual, triangular structure) and compare the unique parts
(|R|, eigenvalues, pivots) with CPU. See jax_integration/linalg.py and ops/lapack.py.
"""

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import pytest
from jax import lax

from conftest import run_on

FLOATS = [np.float32, np.float64, np.complex64, np.complex128]


def tol(dtype):
    return 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10


def matrix(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def hermitian(shape, dtype, seed=0):
    x = matrix(shape, dtype, seed)
    return (x + np.conj(np.swapaxes(x, -1, -2))) / 2


def well_conditioned(shape, dtype, seed=0):
    n = shape[-1]
    return (matrix(shape, dtype, seed) + 3 * n ** 0.5 * np.eye(n)).astype(dtype)


@pytest.fixture
def both(pyrt_device, cpu_device):
    """both(fn, *args) -> (pyrt result, CPU result), as NumPy trees."""
    return lambda fn, *args: (run_on(pyrt_device, fn, *args), run_on(cpu_device, fn, *args))


def H(x):
    return np.conj(np.swapaxes(x, -1, -2))


def close(a, b, dtype, scale=1.0):
    t = tol(dtype) * scale
    np.testing.assert_allclose(np.asarray(a, np.complex128), np.asarray(b, np.complex128),
                               rtol=t, atol=t)


def assert_unitary(q, dtype):
    k = q.shape[-1]
    close(H(q) @ q, np.broadcast_to(np.eye(k), q.shape[:-2] + (k, k)), dtype)


# QR (custom calls @Qr / @ProductOfElementaryHouseholderReflectors) ----------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 5)])
@pytest.mark.parametrize("mode", ["reduced", "complete"])
def test_qr(both, dtype, shape, mode):
    a = matrix(shape, dtype)
    got, want = both(lambda x: jnp.linalg.qr(x, mode=mode), a)
    if mode == "r":
        r, r_cpu = got, want
    else:
        (q, r), (q_cpu, r_cpu) = got, want
        assert q.dtype == q_cpu.dtype and q.shape == q_cpu.shape
        assert_unitary(q, dtype)
        close(q @ r, a, dtype)
    assert r.dtype == r_cpu.dtype and r.shape == r_cpu.shape
    np.testing.assert_array_equal(np.tril(r, -1), 0)
    close(np.abs(r), np.abs(r_cpu), dtype)  # R is unique up to a unit phase per row


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_qr_r_noncontiguous_and_empty(both, dtype):
    a = matrix((2, 6, 4), dtype)
    ((q, r), r_only), ((_, r_cpu), r_only_cpu) = both(
        lambda x: (jnp.linalg.qr(jnp.swapaxes(x, -1, -2)), jnp.linalg.qr(x, mode="r")), a)
    close(q @ r, np.swapaxes(a, -1, -2), dtype)
    close(np.abs(r), np.abs(r_cpu), dtype)
    close(np.abs(r_only), np.abs(r_only_cpu), dtype)
    for shape in [(0, 3), (3, 0), (0, 2, 2)]:
        got, want = both(jnp.linalg.qr, np.zeros(shape, dtype))
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype, shape", [(np.float32, (5, 3)), (np.float64, (3, 5)),
                                          (np.complex64, (4, 4)), (np.complex128, (2, 3, 5))])
def test_qr_pivoting(both, dtype, shape):
    a = matrix(shape, dtype)
    fn = jax.vmap(lambda x: jsl.qr(x, pivoting=True, mode="economic")) if len(shape) == 3 else \
        (lambda x: jsl.qr(x, pivoting=True, mode="economic"))
    (q, r, p), (_, r_cpu, p_cpu) = both(fn, a)
    np.testing.assert_array_equal(p, p_cpu)
    close(q @ r, np.take_along_axis(a, p[..., None, :], axis=-1), dtype)
    close(np.abs(r), np.abs(r_cpu), dtype)


# Hermitian eigendecomposition, SVD and what is built on them ----------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape, uplo", [((3, 4, 4), "L"), ((5, 5), "U")])
def test_eigh(both, dtype, shape, uplo):
    a = hermitian(shape, dtype)
    # only the `uplo` triangle is read: garbage in the other one must not matter
    junk = a + (np.triu(matrix(shape, dtype, 1), 1) if uplo == "L" else
                np.tril(matrix(shape, dtype, 1), -1))
    fn = lambda x: jnp.linalg.eigh(x, UPLO=uplo, symmetrize_input=False)
    (w, v), (w_cpu, _) = both(fn, junk)
    assert w.dtype == w_cpu.dtype and v.dtype == np.dtype(dtype)
    close(w, w_cpu, dtype)
    assert_unitary(v, dtype)
    close(a @ v, v * w[..., None, :], dtype, scale=10)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_eigvalsh_and_nan(both, dtype):
    a = hermitian((2, 4, 4), dtype)
    got, want = both(jnp.linalg.eigvalsh, a)
    close(got, want, dtype)
    a[1, 0, 0] = np.nan
    (w, v), (w_cpu, _) = both(jnp.linalg.eigh, a)
    assert np.isnan(w[1]).all() and np.isnan(v[1]).all() and np.isnan(w_cpu[1]).any()
    close(w[0], w_cpu[0], dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape, full_matrices", [((2, 5, 3), True), ((2, 1, 3, 5), False),
                                                  ((4, 4), True)])
def test_svd(both, dtype, shape, full_matrices):
    a = matrix(shape, dtype)
    (u, s, vt), (u_cpu, s_cpu, vt_cpu) = both(
        lambda x: jnp.linalg.svd(x, full_matrices=full_matrices), a)
    assert (u.shape, s.shape, vt.shape) == (u_cpu.shape, s_cpu.shape, vt_cpu.shape)
    assert (u.dtype, s.dtype, vt.dtype) == (u_cpu.dtype, s_cpu.dtype, vt_cpu.dtype)
    close(s, s_cpu, dtype)
    assert_unitary(u, dtype)
    assert_unitary(H(vt), dtype)
    k = s.shape[-1]
    close((u[..., :, :k] * s[..., None, :]) @ vt[..., :k, :], a, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_svd_values_pinv_lstsq_norms(check, dtype):
    a = matrix((2, 5, 3), dtype)
    t = tol(dtype) * 10
    check(lambda x: jnp.linalg.svd(x, compute_uv=False), a, rtol=t, atol=t)
    check(jnp.linalg.pinv, a, rtol=t, atol=t)
    check(lambda x: jnp.linalg.matrix_norm(x, ord=2), a, rtol=t, atol=t)
    check(jnp.linalg.matrix_rank, a)
    check(jnp.linalg.cond, a, rtol=t, atol=t)
    b = matrix((5, 2), dtype, seed=3)
    check(lambda x, y: jnp.linalg.lstsq(x, y), a[0], b, rtol=t, atol=t)


def test_svd_empty_and_nan(both):
    for shape in [(0, 3), (3, 0)]:
        got, want = both(jnp.linalg.svd, np.zeros(shape, np.float32))
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    a = matrix((2, 3, 3), np.float64)
    a[0, 1, 2] = np.inf
    s, s_cpu = both(lambda x: jnp.linalg.svd(x, compute_uv=False), a)
    assert np.isnan(s[0]).all() and np.isnan(s_cpu[0]).all()
    close(s[1], s_cpu[1], np.float64)


# General eigendecomposition -------------------------------------------------------------------

def sorted_eigenvalues(w):
    return np.sort_complex(np.round(np.asarray(w, np.complex128), 6))


@pytest.mark.parametrize("dtype, shape", [(np.float32, (3, 4, 4)), (np.float64, (1, 1)),
                                          (np.complex64, (5, 5)), (np.complex128, (2, 4, 4))])
def test_eig(both, dtype, shape):
    a = matrix(shape, dtype)
    (w, v), (w_cpu, _) = both(jnp.linalg.eig, a)
    assert w.dtype == w_cpu.dtype and v.dtype == w_cpu.dtype
    close(np.sort_complex(w.astype(np.complex128)), np.sort_complex(w_cpu.astype(np.complex128)),
          dtype, scale=10)
    close(a @ v, v * w[..., None, :], dtype, scale=10)
    close(np.linalg.norm(v, axis=-2), np.ones(w.shape), dtype)
    w2, w2_cpu = both(jnp.linalg.eigvals, a)
    close(np.sort_complex(w2.astype(np.complex128)),
          np.sort_complex(w2_cpu.astype(np.complex128)), dtype, scale=10)


@pytest.mark.parametrize("dtype, right", [(np.float32, True), (np.float64, False),
                                          (np.complex128, True)])
def test_eig_left(both, dtype, right):
    a = matrix((2, 4, 4), dtype)
    fn = lambda x: lax.linalg.eig(x, compute_left_eigenvectors=True,
                                  compute_right_eigenvectors=right)
    got, want = both(fn, a)
    assert len(got) == len(want) == (3 if right else 2)
    w, vl = got[0], got[1]
    close(H(vl) @ a, w[..., :, None] * H(vl), dtype, scale=10)
    if right:
        close(a @ got[2], got[2] * w[..., None, :], dtype, scale=10)


# Generic lowerings (LU, solve, inv, det, expm, tridiagonal solve): identical programs ----------

@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_lu_solve_inv_det(check, dtype):
    a = well_conditioned((2, 4, 4), dtype)
    b = matrix((2, 4, 3), dtype, seed=1)
    t = tol(dtype) * 10
    if dtype == np.float32:  # (split over the dtypes to keep compile time down)
        check(lambda x, y: jsl.lu_solve(jsl.lu_factor(x), y), a, b, rtol=t, atol=t)
        check(jnp.linalg.solve, a, b, rtol=t, atol=t)
        check(jnp.linalg.det, a, rtol=t, atol=t)
    else:
        check(jax.vmap(jsl.lu), a, rtol=t, atol=t)
        check(jnp.linalg.inv, a, rtol=t, atol=t)
        check(jnp.linalg.slogdet, a, rtol=t, atol=t)
        check(jsl.expm, a / 4, rtol=t, atol=t)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(5, 5), (2, 3, 6, 6), (6, 4), (3, 7), (0, 3, 3)])
def test_lu_is_lapack_getrf(check, dtype, shape):
    """lu runs CPU's lowering (LAPACK getrf, the same LAPACK): the factors, pivots and
    permutation, and inv, are bit for bit XLA:CPU's; on a singular matrix too."""
    a = matrix(shape, dtype).astype(dtype)
    check(lax.linalg.lu, a, exact=True)
    if shape[-1] == shape[-2]:
        check(jnp.linalg.inv, a, exact=True)
        check(lax.linalg.lu, np.array([[1, 2], [2, 4]], dtype), exact=True)


def test_lu_in_shard_map(pyrt_device, cpu_device):
    """JAX's generic LU (a loop in JAX) lost shard_map's varying axes: jnp.linalg.solve in a
    shard_map body failed to trace on pyrt (JAX's test_custom_linear_solve_rep_rules)."""
    from jax.sharding import Mesh, PartitionSpec as P

    a, b = matrix((3, 3), np.float32) + 3 * np.eye(3, dtype=np.float32), matrix((3,), np.float32)
    results = []
    for device in (pyrt_device, cpu_device):
        mesh = Mesh(np.array([device]), ("i",))
        solve = jax.shard_map(jnp.linalg.solve, mesh=mesh, in_specs=P(), out_specs=P())
        results.append(np.asarray(jax.jit(solve)(a, b)))
    np.testing.assert_array_equal(*results)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_tridiagonal_solve(check, dtype):
    d = (matrix((6,), dtype) + 5).astype(dtype)
    dl, du = matrix((6,), dtype, 1), matrix((6,), dtype, 2)
    dl[0] = du[-1] = 0
    b = matrix((6, 2), dtype, 3)
    t = tol(dtype) * 10
    check(lax.linalg.tridiagonal_solve, dl, d, du, b, rtol=t, atol=t)


# Schur, Hessenberg, tridiagonal reduction and what is built on them ---------------------------

@pytest.mark.parametrize("dtype, shape", [(np.float32, (2, 4, 4)), (np.float64, (5, 5)),
                                          (np.complex64, (5, 5)), (np.complex128, (2, 4, 4))])
def test_schur(both, dtype, shape):
    a = matrix(shape, dtype)
    fn = jax.vmap(jsl.schur) if len(shape) == 3 else jsl.schur
    (t, z), (t_cpu, _) = both(fn, a)
    assert t.dtype == t_cpu.dtype == z.dtype
    assert_unitary(z, dtype)
    close(z @ t @ H(z), a, dtype, scale=10)
    below = np.tril(t, -2 if np.isrealobj(t) else -1)  # real Schur: 2x2 blocks on the diagonal
    np.testing.assert_allclose(below, 0, atol=tol(dtype))
    close(np.sort(np.abs(np.linalg.eigvals(t))), np.sort(np.abs(np.linalg.eigvals(t_cpu))), dtype,
          scale=10)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_sqrtm(check, dtype):
    a = well_conditioned((4, 4), dtype)
    t = tol(dtype) * 100
    check(jsl.sqrtm, a @ H(a), rtol=t, atol=t)


@pytest.mark.parametrize("dtype, shape", [(np.float32, (2, 4, 4)), (np.float64, (1, 1)),
                                          (np.complex64, (5, 5)), (np.complex128, (2, 4, 4))])
def test_hessenberg(both, dtype, shape):
    a = matrix(shape, dtype)
    fn = lambda x: jsl.hessenberg(x, calc_q=True)
    fn = jax.vmap(fn) if len(shape) == 3 else fn
    (h, q), (h_cpu, q_cpu) = both(fn, a)
    assert h.dtype == h_cpu.dtype and q.dtype == q_cpu.dtype
    assert_unitary(q, dtype)
    close(q @ h @ H(q), a, dtype, scale=10)
    np.testing.assert_array_equal(np.tril(h, -2), 0)
    close(np.abs(h), np.abs(h_cpu), dtype, scale=10)


@pytest.mark.parametrize("dtype, lower", [(np.float32, True), (np.float64, False),
                                          (np.complex64, False), (np.complex128, True)])
def test_tridiagonal(both, dtype, lower):
    a = hermitian((2, 5, 5), dtype)
    got, want = both(lambda x: lax.linalg.tridiagonal(x, lower=lower), a)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
    _, d, e, _ = got
    _, d_cpu, e_cpu, _ = want
    close(d, d_cpu, dtype)
    close(np.abs(e), np.abs(e_cpu), dtype)
    # the tridiagonal matrix has a's eigenvalues
    tri = np.zeros(a.shape)
    idx = np.arange(5)
    tri[..., idx, idx] = d
    tri[..., idx[1:], idx[:-1]] = tri[..., idx[:-1], idx[1:]] = np.abs(e)
    close(np.linalg.eigvalsh(tri), np.linalg.eigvalsh(a), dtype, scale=10)


def test_eigh_tridiagonal(check):
    dtype = np.float64
    d, e = matrix((6,), dtype), matrix((5,), dtype, 1)
    t = tol(dtype) * 10
    check(lambda x, y: jsl.eigh_tridiagonal(x, y, eigvals_only=True), d, e, rtol=t, atol=t)


@pytest.mark.parametrize("fn", [jnp.linalg.qr, jnp.linalg.eigh, jnp.linalg.svd, jnp.linalg.eig],
                         ids=lambda f: f.__name__)
def test_unsupported_dtype_is_worded_as_on_cpu(pyrt_device, cpu_device, fn):
    """LAPACK has no float16: CPU refuses while lowering ("Unsupported dtype float16"); pyrt
    refuses with the same words, from its lowering rules (eigh, svd, eig) or at compile time
    (@Qr, which JAX's generic qr lowering emits); JAX's linalg_test testQrInvalidDtypeCPU."""
    x = np.eye(3, dtype=np.float16)
    for device in (cpu_device, pyrt_device):
        with pytest.raises(Exception, match="Unsupported dtype float16"):
            run_on(device, fn, x)
