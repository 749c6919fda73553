"""Buffer donation (jax.jit(..., donate_argnums=...)) on pyrt.

JAX emits `tf.aliasing_output = N` argument attributes (and stops warning "Some donated buffers
were not usable") only for platforms listed in `jax._src.interpreters.mlir._platforms_with_donation`
(cpu, cuda, rocm, tpu, neuron in jax 0.10.2). We add ours; the runtime reads the aliases
(jax_pyrt.analysis.aliases) and Execute reuses the donated input's memory. Checked against jax 0.10.2.
"""


def install(platform):
    """Adds `platform` to the platforms JAX lowers donation for (idempotent)."""
    from jax._src.interpreters import mlir

    platforms = mlir._platforms_with_donation
    if platform in platforms:
        return
    if isinstance(platforms, (set, frozenset)):
        mlir._platforms_with_donation = set(platforms) | {platform}
    else:
        platforms.append(platform)
