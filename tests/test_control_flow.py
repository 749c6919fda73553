"""Control flow (while, if, case, func.call, optimization_barrier) against the CPU backend."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax


def lowered(f, *args):
    return jax.jit(f).lower(*args).as_text()


# -- while

def test_while_loop_counts(check):
    def f(n):
        return lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 2), (jnp.int32(0), jnp.int64(1)))

    assert "stablehlo.while" in lowered(f, np.int32(5))
    for n in (0, 1, 5, 40):
        check(f, np.int32(n))


def test_while_loop_zero_iterations_returns_initial_values(check):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    check(lambda x: lax.while_loop(lambda c: c[0] > 10, lambda c: (c[0] + 1, c[1] + 1.0), (0, x)), x)


@pytest.mark.parametrize("dtype", [np.int8, np.uint32, np.float16, np.float32, np.complex128], ids=str)
def test_fori_loop(check, dtype):
    x = (np.arange(6).reshape(2, 3) % 3).astype(dtype)

    def f(x):
        return lax.fori_loop(0, 7, lambda i, acc: acc * 2 + x + i.astype(x.dtype), x)

    check(f, x, rtol=1e-3)


def test_fori_loop_dynamic_bounds(check):
    def f(lo, hi, x):
        return lax.fori_loop(lo, hi, lambda i, acc: acc + i * x, jnp.zeros_like(x))

    x = np.arange(4, dtype=np.int64)
    for lo, hi in [(0, 5), (3, 3), (5, 2), (-2, 4)]:
        check(f, np.int64(lo), np.int64(hi), x)


def test_loop_carrying_pytrees(check):
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)

    def f(x):
        def body(i, carry):
            a, (b, c) = carry["a"], carry["bc"]
            return {"a": a + b.sum(), "bc": (b * 0.5 + c, jnp.where(i % 2 == 0, c, -c))}
        return lax.fori_loop(0, 5, body, {"a": jnp.float64(0), "bc": (x, x.T @ x)[0:1] + (x[:, :1],)})

    check(f, x, rtol=1e-5)


def test_nested_loops(check):
    def f(x):
        def outer(i, acc):
            def inner(j, acc2):
                return acc2 + x[j] * i
            return lax.fori_loop(0, x.shape[0], inner, acc) + lax.while_loop(
                lambda c: c < i, lambda c: c + 1, 0).astype(acc.dtype)
        return lax.fori_loop(0, 4, outer, jnp.zeros(x.shape[1:], x.dtype))

    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    text = lowered(f, x)
    assert text.count("stablehlo.while") >= 3
    check(f, x)


def test_closure_captures_outer_values(check):
    x = np.arange(5, dtype=np.float32)
    y = np.float32(0.5)

    def f(x, y):
        scale = jnp.sum(x)  # computed outside, used inside every region

        def body(c):
            i, acc = c
            return i + 1, lax.cond(acc.sum() > scale, lambda: acc * y, lambda: acc + x * scale)

        return lax.while_loop(lambda c: c[0] < 6, body, (0, x))

    check(f, x, y, rtol=1e-5)


# -- scan

def test_scan_cumsum_and_outputs(check):
    x = np.arange(10, dtype=np.float32).reshape(5, 2)

    def f(x):
        def step(carry, xs):
            carry = carry + xs
            return carry, (carry * 2, xs.sum())
        return lax.scan(step, jnp.zeros(2, jnp.float32), x)

    check(f, x)
    check(lambda x: lax.scan(lambda c, xs: (c * xs, c), jnp.ones(2, jnp.float32), x, reverse=True), x)
    check(lambda x: lax.scan(lambda c, _: (c + 1, c), x, None, length=4), x[0])


def test_scan_zero_length(check):
    x = np.zeros((0, 3), np.float32)
    check(lambda x: lax.scan(lambda c, xs: (c + xs, c), jnp.ones(3, jnp.float32), x), x)


def test_scan_rnn(check):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4)).astype(np.float32) * 0.5
    xs = rng.standard_normal((7, 4)).astype(np.float32)

    def f(w, xs):
        return lax.scan(lambda h, x: ((jnp.maximum(h @ w + x, 0),) * 2), jnp.zeros(4, jnp.float32), xs)

    check(f, w, xs, rtol=1e-5)


# -- if / case

@pytest.mark.parametrize("pred", [True, False])
def test_cond(check, pred):
    x = np.arange(6, dtype=np.int32)

    def f(p, x):
        return lax.cond(p, lambda a: (a * 2, a.min()), lambda a: (a - 1, a.max()), x)

    assert "stablehlo.if" in lowered(f, np.bool_(pred), x) or "stablehlo.case" in lowered(f, np.bool_(pred), x)
    check(f, np.bool_(pred), x)


def test_cond_with_integer_predicate_and_nested(check):
    x = np.linspace(-2, 2, 5)

    def f(n, x):
        return lax.cond(n, lambda: lax.cond(x[0] > 0, lambda: x, lambda: -x) + n,
                        lambda: x * 0)

    for n in (0, 3, -1):
        check(f, np.int32(n), x)


@pytest.mark.parametrize("index", [-5, -1, 0, 1, 2, 3, 100])
def test_switch(check, index):
    x = np.arange(4, dtype=np.float32)
    branches = [lambda a: a + 1, lambda a: a * 3, lambda a: -a, lambda a: a ** 2]

    def f(i, x):
        return lax.switch(i, branches, x)

    assert "stablehlo.case" in lowered(f, np.int32(index), x)
    check(f, np.int32(index), x)  # lax.switch clamps out-of-range indices into range


def test_switch_in_loop_returns_tuples(check):
    x = np.arange(3, dtype=np.int64)

    def f(x):
        def body(i, c):
            return lax.switch(i % 3, [lambda c: (c[0] + 1, c[1]), lambda c: (c[0], c[1] * 2),
                                      lambda c: (c[1], c[0])], c)
        return lax.fori_loop(0, 8, body, (x, x + 1))

    check(f, x)


# -- func.call, optimization_barrier

def test_nested_jit_becomes_call(check):
    @jax.jit
    def inner(a, b):
        return a * b + 1, a - b

    @functools.partial(jax.jit, inline=False)
    def helper(a):
        return jnp.sin(a) * 2

    def f(x):
        p, q = inner(x, x + 1)
        r, s = inner(p, q)  # the same private function called twice
        return r + s + helper(x) + helper(r)

    x = np.linspace(0, 1, 6, dtype=np.float32)
    text = lowered(f, x)
    assert "call @" in text and "func.func private" in text
    check(f, x, rtol=1e-5)


def test_call_inside_loop(check):
    @jax.jit
    def step(a):
        return a * 0.5 + 1

    x = np.float64(3)
    f = lambda x: lax.fori_loop(0, 5, lambda i, a: step(a), x)
    assert "call @" in lowered(f, x)
    check(f, x)


def test_optimization_barrier(check):
    x = np.arange(4, dtype=np.float32)
    f = lambda x: lax.optimization_barrier((x + 1, x * 2))
    assert "stablehlo.optimization_barrier" in lowered(f, x)
    check(f, x)


def test_checkpointed_grad_loop(check):
    # jax.checkpoint + while: remat emits optimization_barrier inside the backward program.
    def loss(x):
        body = jax.checkpoint(lambda c, _: (jnp.sin(c) * c, None))
        return lax.scan(body, x, None, length=3)[0].sum()

    x = np.linspace(0.1, 1, 5)
    check(jax.grad(loss), x, rtol=1e-6)


# -- hand-written StableHLO (forms JAX does not emit: stablehlo.if, unclamped case indices,
#    regions capturing values from the enclosing scope). Compiled through each backend's PJRT
#    client directly (a jaxlib-internal API), the CPU result again being the oracle.

IF_MODULE = """
module @m {
  func.func public @main(%p: tensor<i1>, %x: tensor<3xf32>) -> (tensor<3xf32>, tensor<i32>) {
    %k = stablehlo.constant dense<7> : tensor<i32>
    %r:2 = "stablehlo.if"(%p) ({
      %a = stablehlo.add %x, %x : tensor<3xf32>
      stablehlo.return %a, %k : tensor<3xf32>, tensor<i32>
    }, {
      %c = stablehlo.constant dense<-1> : tensor<i32>
      %s = stablehlo.sine %x : tensor<3xf32>
      stablehlo.return %s, %c : tensor<3xf32>, tensor<i32>
    }) : (tensor<i1>) -> (tensor<3xf32>, tensor<i32>)
    return %r#0, %r#1 : tensor<3xf32>, tensor<i32>
  }
}
"""


@pytest.mark.parametrize("pred", [True, False])
def test_stablehlo_if(check_mlir, pred):
    check_mlir(IF_MODULE, np.bool_(pred), np.linspace(0, 1, 3, dtype=np.float32), rtol=1e-6)


CASE_MODULE = """
module @m {
  func.func public @main(%i: tensor<i32>, %x: tensor<3xf32>) -> (tensor<3xf32>, tensor<f32>) {
    %r:2 = "stablehlo.case"(%i) ({
      %a = stablehlo.add %x, %x : tensor<3xf32>
      %c = stablehlo.constant dense<1.0> : tensor<f32>
      stablehlo.return %a, %c : tensor<3xf32>, tensor<f32>
    }, {
      %c = stablehlo.constant dense<2.0> : tensor<f32>
      stablehlo.return %x, %c : tensor<3xf32>, tensor<f32>
    }, {
      %c = stablehlo.constant dense<3.0> : tensor<f32>
      %a = stablehlo.sine %x : tensor<3xf32>
      stablehlo.return %a, %c : tensor<3xf32>, tensor<f32>
    }) : (tensor<i32>) -> (tensor<3xf32>, tensor<f32>)
    return %r#0, %r#1 : tensor<3xf32>, tensor<f32>
  }
}
"""


@pytest.mark.parametrize("index", [-2147483648, -1, 0, 1, 2, 3, 100])
def test_stablehlo_case_out_of_range_runs_last_branch(check_mlir, index):
    check_mlir(CASE_MODULE, np.int32(index), np.linspace(0, 1, 3, dtype=np.float32), rtol=1e-6)


WHILE_CAPTURE_MODULE = """
module @m {
  func.func public @main(%n: tensor<i64>, %x: tensor<2xf64>) -> (tensor<i64>, tensor<2xf64>) {
    %zero = stablehlo.constant dense<0> : tensor<i64>
    %one = stablehlo.constant dense<1> : tensor<i64>
    %r:2 = stablehlo.while(%i = %zero, %acc = %x) : tensor<i64>, tensor<2xf64>
      cond {
        %c = stablehlo.compare LT, %i, %n, SIGNED : (tensor<i64>, tensor<i64>) -> tensor<i1>
        stablehlo.return %c : tensor<i1>
      } do {
        %j = stablehlo.add %i, %one : tensor<i64>
        %a = stablehlo.add %acc, %x : tensor<2xf64>
        stablehlo.return %j, %a : tensor<i64>, tensor<2xf64>
      }
    return %r#0, %r#1 : tensor<i64>, tensor<2xf64>
  }
}
"""


@pytest.mark.parametrize("n", [-3, 0, 1, 10])
def test_stablehlo_while_captures_outer_values(check_mlir, n):
    check_mlir(WHILE_CAPTURE_MODULE, np.int64(n), np.array([0.5, -2.0]))


ASYNC_MODULE = """
module @m {
  func.func public @main(%x: tensor<4xf32>) -> tensor<2xf32> {
    %f = "stablehlo.async_start"(%x) ({
    ^bb0(%a: tensor<4xf32>):
      %s = stablehlo.slice %a [1:3] : (tensor<4xf32>) -> tensor<2xf32>
      stablehlo.return %s : tensor<2xf32>
    }) : (tensor<4xf32>) -> !stablehlo.future<tensor<2xf32>>
    %r = "stablehlo.async_done"(%f) : (!stablehlo.future<tensor<2xf32>>) -> tensor<2xf32>
    return %r : tensor<2xf32>
  }
}
"""

PLAIN_MODULE = """
module @m {
  func.func public @main(%x: tensor<4xf32>) -> tensor<2xf32> {
    %s = stablehlo.slice %x [1:3] : (tensor<4xf32>) -> tensor<2xf32>
    return %s : tensor<2xf32>
  }
}
"""


def test_async_start_and_done(pyrt_device, cpu_device):
    """async_start/async_done equal their region run inline (the oracle: CPU on the plain form)."""
    from conftest import assert_same, run_mlir

    x = np.linspace(-1, 1, 4, dtype=np.float32)
    assert_same(run_mlir(pyrt_device, ASYNC_MODULE, x), run_mlir(cpu_device, PLAIN_MODULE, x))
