"""DLPack in both directions for pyrt arrays, zero-copy where the layouts allow.

Export (np.from_dlpack(x), torch.from_dlpack(x), ...): jax's ArrayImpl.__dlpack__ and
__dlpack_device__ accept only the cpu and gpu platforms, and jaxlib's exporter only maps its own
platform ids to DLPack devices ("cannot be used as a DLPack device"). pyrt's device memory is
host memory, so a pyrt array is exported as a kDLCPU tensor: through the zero-copy, read-only
NumPy view jaxlib already gives (np.asarray holds an external reference on the buffer, which
keeps the memory alive while the capsule lives).

Import (jax.dlpack.from_dlpack / jnp.from_dlpack of a host tensor with device=<pyrt device>):
jax maps a kDLCPU tensor to the cpu backend, imports it there and then copies it to the target
device. For a pyrt target the wrapper instead hands the capsule to jaxlib's importer with the
pyrt device, which wraps the tensor's memory with PJRT_Client_CreateViewOfDeviceBuffer (no
copy; the tensor's owner is released when the last pyrt buffer using it goes). A tensor pyrt
cannot view (not dense row-major, e.g. a transpose) is copied, unless copy=False. A pyrt array
with device=None stays on its pyrt device (jax would move it to cpu, since it says kDLCPU); a
host tensor with device=None goes to the default device when there is no cpu backend.
Checked against jax 0.10.2.
"""

import numpy as np

_KDLCPU = 1


def install(platform):
    """Installs export and import for `platform` (idempotent)."""
    _install_export(platform)
    _install_import(platform)


def _ours(x, platform):
    """True for a single-device jax.Array on `platform`."""
    try:
        return len(x._arrays) == 1 and x.platform() == platform
    except Exception:
        return False


def _install_export(platform):
    """Wraps ArrayImpl.__dlpack__ / __dlpack_device__ for arrays on `platform`."""
    from jax._src import array

    cls = array.ArrayImpl
    if getattr(cls.__dlpack__, "_pyrt_platform", None) == platform:
        return
    original, original_device = cls.__dlpack__, cls.__dlpack_device__

    def ours(x):
        return _ours(x, platform)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if not ours(self):
            return original(self, stream=stream, max_version=max_version, dl_device=dl_device,
                            copy=copy)
        if dl_device is not None and int(dl_device[0]) != _KDLCPU:
            raise BufferError(f"pyrt arrays live in host memory (kDLCPU); cannot export to {dl_device}")
        host = np.asarray(self)  # zero-copy, read-only
        if copy:
            host = host.copy()
        kwargs = {} if max_version is None else {"max_version": max_version}
        return host.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        if not ours(self):
            return original_device(self)
        from jax._src.dlpack import DLDeviceType
        return DLDeviceType.kDLCPU, 0

    __dlpack__._pyrt_platform = platform
    __dlpack__.__doc__ = original.__doc__
    cls.__dlpack__ = __dlpack__
    cls.__dlpack_device__ = __dlpack_device__


def _install_import(platform):
    """Wraps jax.dlpack.from_dlpack (which jnp.from_dlpack calls) for pyrt targets and sources."""
    import jax
    import jax.dlpack
    from jax._src import dlpack as jax_dlpack

    from .backends import have_backend

    original = jax_dlpack.from_dlpack
    if getattr(original, "_pyrt_platform", None) == platform:
        return

    def target_device(device):
        device_set = getattr(device, "device_set", {device})  # a Device or a one-device Sharding
        if device is None or len(device_set) != 1:
            return None
        (d,) = device_set
        return d if getattr(d, "platform", None) == platform else None

    def from_dlpack(external_array, device=None, copy=None):
        import jax.numpy as jnp

        if _ours(external_array, platform):
            # jax would export it as a read-only kDLCPU tensor (which old-style DLPack, as jax
            # asks for it, cannot carry) and import that onto cpu. It is a jax.Array already.
            x = external_array
            if device is not None and getattr(device, "device_set", {device}) != x.devices():
                if copy is False:
                    raise ValueError(f"from_dlpack onto {device} needs a copy (the array is on "
                                     f"{x.devices()}), but copy=False")
                x = jax.device_put(x, device)
            return jnp.array(x, copy=True) if copy else x
        target = target_device(device)
        if device is None and not have_backend("cpu"):
            # jax would import a kDLCPU tensor onto the cpu backend; without one (e.g. under
            # JAX_PLATFORMS=pyrt) the default device takes its place.
            target = target_device(jax.devices()[0])
        if (target is None or not hasattr(external_array, "__dlpack_device__")
                or int(external_array.__dlpack_device__()[0]) != _KDLCPU):
            return original(external_array, device=device, copy=copy)
        if not copy:
            from jax._src import dtypes
            from jax._src.lib import _jax

            try:
                array = _jax.dlpack_managed_tensor_to_buffer(
                    external_array.__dlpack__(), target, None, copy, _KDLCPU)
                # As jax's own from_dlpack: canonicalize the dtype (f64 -> f32 without x64).
                return jnp.asarray(array, dtype=dtypes.canonicalize_dtype(array.dtype))
            except _jax.JaxRuntimeError as e:
                if "UNIMPLEMENTED" not in str(e):
                    raise
                if copy is False:
                    raise ValueError(
                        f"from_dlpack onto {target} needs a copy: pyrt views only dense "
                        f"row-major tensors ({e}). Pass copy=None or copy=True.") from None
        # A copy of our own (jax's cpu import may alias the tensor even with copy=True).
        return jax.device_put(np.array(np.from_dlpack(external_array)), target)

    from_dlpack._pyrt_platform = platform
    from_dlpack.__doc__ = original.__doc__
    jax_dlpack.from_dlpack = from_dlpack
    jax.dlpack.from_dlpack = from_dlpack
