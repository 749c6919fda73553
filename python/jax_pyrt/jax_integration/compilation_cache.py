"""The persistent compilation cache and executable serialization on pyrt.

`jax._src.compilation_cache.is_cache_used(backend)` allows only the platforms in a list local to
the function (tpu, gpu, cpu, neuron), so JAX never reads or writes the cache for pyrt. We wrap
that function: for a pyrt backend it answers "the cache is enabled" exactly as JAX decides it
for the known platforms (and records the same adoption event once), otherwise it defers to JAX's
own function. The only caller (`jax._src.compiler`) looks the function up on the module at call
time, so replacing the module attribute is enough. Checked against jax 0.10.2.

The cache key already distinguishes pyrt versions: `jax._src.cache_key._hash_platform` hashes
`backend.platform_version`, which is PJRT_Client_PlatformVersion ("pyrt <version> ...").
Cached entries are pyrt's serialized executables (executable.py): the StableHLO, the compile
options and the prepared program (generated source + pickled kernels), so a cache hit in a new
process restores the program without running pyrt's compiler.
"""

import functools

from jax._src import compilation_cache as _cc
from jax._src import monitoring


def install(platform):
    current = _cc.is_cache_used
    if getattr(current, "_pyrt_platforms", None) is not None:  # installed already
        current._pyrt_platforms.add(platform)
        return

    @functools.wraps(current)
    def is_cache_used(backend):
        if getattr(backend, "platform", None) not in is_cache_used._pyrt_platforms:
            return current(backend)
        with _cc._cache_initialized_mutex:
            if not _cc._cache_checked:
                _cc._cache_checked = True
                if not _cc._is_cache_enabled():
                    monitoring.record_event("/jax/compilation_cache/task_disabled_cache")
                else:
                    monitoring.record_event("/jax/compilation_cache/tasks_using_cache")
                    _cc._cache_used = True
            return _cc._cache_used

    is_cache_used._pyrt_platforms = {platform}
    is_cache_used._pyrt_original = current
    _cc.is_cache_used = is_cache_used
