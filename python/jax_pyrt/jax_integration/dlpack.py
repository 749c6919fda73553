"""DLPack export of pyrt arrays (np.from_dlpack(x), torch.from_dlpack(x), ...).

jax's ArrayImpl.__dlpack__/__dlpack_device__ accept only the cpu and gpu platforms, and jaxlib's
exporter only maps its own platform ids to DLPack devices ("cannot be used as a DLPack device").
pyrt's device memory is host memory, so a pyrt array is exported as a kDLCPU tensor: through the
zero-copy, read-only NumPy view jaxlib already gives (np.asarray holds an external reference on
the buffer, which keeps the memory alive while the capsule lives). Import needs nothing:
jax.dlpack.from_dlpack(host_tensor, device=pyrt_device) copies onto the device.
Checked against jax 0.10.2.
"""

import numpy as np

_KDLCPU = 1


def install(platform):
    """Wraps ArrayImpl.__dlpack__ / __dlpack_device__ for arrays on `platform` (idempotent)."""
    from jax._src import array

    cls = array.ArrayImpl
    if getattr(cls.__dlpack__, "_pyrt_platform", None) == platform:
        return
    original, original_device = cls.__dlpack__, cls.__dlpack_device__

    def ours(x):
        try:
            return len(x._arrays) == 1 and x.platform() == platform
        except Exception:
            return False

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
