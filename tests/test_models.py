"""Real small models trained on pyrt and on CPU side by side: losses must agree step by step.

Each model runs 20 optimiser steps (optax adam) from the same initial parameters on the same
batches, once on pyrt and once on XLA:CPU. Tolerance: both backends compute in float32 but sum in
different orders (XLA:CPU's dot/reduction tiling vs NumPy's pairwise/BLAS sums), so each step
differs by a few float32 ulps (~1e-7 relative); adam divides by sqrt(v), which amplifies tiny
gradient differences a little, and they compound over 20 steps. rtol=2e-4 leaves ample margin
over what we observe (see max_rel printed on failure) while still catching any real bug (a wrong
op changes the loss at the first step by far more).
"""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn

STEPS = 20
RTOL = 2e-4


def _train(device, loss_fn, params, batches, lr=1e-2):
    opt = optax.adam(lr)

    @jax.jit
    def step(params, state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    params = jax.device_put(params, device)
    state = jax.device_put(opt.init(params), device)
    losses = []
    for batch in batches:
        params, state, loss = step(params, state, jax.device_put(batch, device))
        assert loss.devices() == {device}
        losses.append(float(loss))
    return np.array(losses), jax.tree_util.tree_map(np.asarray, params)


def _compare(loss_fn, params, batches, pyrt_device, cpu_device):
    got, got_params = _train(pyrt_device, loss_fn, params, batches)
    want, want_params = _train(cpu_device, loss_fn, params, batches)
    rel = np.abs(got - want) / np.abs(want)
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, want, rtol=RTOL, err_msg=f"max_rel={rel.max():.2e}")
    assert want[-1] < want[0]  # it really trains
    for g, w in zip(jax.tree_util.tree_leaves(got_params), jax.tree_util.tree_leaves(want_params)):
        assert g.dtype == w.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4)
    return rel.max()


def _cross_entropy(model):
    def loss_fn(params, batch):
        x, y = batch
        logits = model.apply(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss_fn


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32)(x))
        x = nn.tanh(nn.Dense(32)(x))
        return nn.Dense(10)(x)


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(16, (3, 3), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), strides=(1, 1))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(10)(x)


def _batches(rng, x_shape, classes=10):
    return [(rng.standard_normal(x_shape).astype(np.float32),
             rng.integers(0, classes, x_shape[0]).astype(np.int32)) for _ in range(STEPS)]


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_flax_model_trains_like_cpu(name, pyrt_device, cpu_device):
    rng = np.random.default_rng(0)
    model, shape = {"mlp": (MLP(), (16, 20)), "cnn": (CNN(), (8, 10, 10, 1))}[name]
    batches = _batches(rng, shape)
    with jax.default_device(cpu_device):
        params = model.init(jax.random.key(0), jnp.asarray(batches[0][0]))
    _compare(_cross_entropy(model), params, batches, pyrt_device, cpu_device)


# A pre-norm transformer block in plain jax.numpy: multi-head causal self-attention + GELU MLP.
D, HEADS, T, B = 16, 2, 8, 4


def _layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps) * g + b


def transformer_block(p, x):
    h = _layer_norm(x, p["ln1_g"], p["ln1_b"])
    q, k, v = jnp.split(h @ p["w_qkv"], 3, axis=-1)
    split = lambda t: t.reshape(t.shape[0], T, HEADS, D // HEADS).transpose(0, 2, 1, 3)
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D // HEADS).astype(np.float32)
    mask = jnp.tril(jnp.ones((T, T), bool))
    scores = jnp.where(mask, scores, -1e9)
    attn = jax.nn.softmax(scores, axis=-1) @ v
    x = x + attn.transpose(0, 2, 1, 3).reshape(x.shape) @ p["w_o"]
    h = _layer_norm(x, p["ln2_g"], p["ln2_b"])
    return x + jax.nn.gelu(h @ p["w_1"] + p["b_1"]) @ p["w_2"]


def _transformer_params(rng):
    n = lambda *s: (rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32)
    return {"ln1_g": np.ones(D, np.float32), "ln1_b": np.zeros(D, np.float32),
            "w_qkv": n(D, 3 * D), "w_o": n(D, D),
            "ln2_g": np.ones(D, np.float32), "ln2_b": np.zeros(D, np.float32),
            "w_1": n(D, 4 * D), "b_1": np.zeros(4 * D, np.float32), "w_2": n(4 * D, D)}


def test_transformer_block_trains_like_cpu(pyrt_device, cpu_device):
    rng = np.random.default_rng(1)
    params = _transformer_params(rng)
    batches = [(rng.standard_normal((B, T, D)).astype(np.float32),
                rng.standard_normal((B, T, D)).astype(np.float32)) for _ in range(STEPS)]

    def loss_fn(p, batch):
        x, y = batch
        return ((transformer_block(p, x) - y) ** 2).mean()

    _compare(loss_fn, params, batches, pyrt_device, cpu_device)


def test_transformer_forward_matches_cpu(check):
    rng = np.random.default_rng(2)
    params = _transformer_params(rng)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    check(transformer_block, params, x, rtol=1e-5, atol=1e-5)
