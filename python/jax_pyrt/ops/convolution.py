"""Convolution (spec: convolution, dynamic_conv).

Every convolution runs in one canonical form. The input goes to (batch, spatial..., feature) and
is written once, cast to the compute dtype, into a zero buffer holding its lhs dilation (zeros
between elements) and edge padding (negative padding crops). Feature groups and batch groups both
become a leading group axis G of a view of that buffer, (G, batch, padded spatial..., features),
and of the kernel, (G, window..., in features, out features). A strided view of the padded input
gives every window, (G, batch, out spatial..., window..., features), with no copy; the
contraction with the kernel is then im2col: blocks of window rows are copied into a buffer of a
few MB (so it stays in cache) and multiplied by the kernel matrix with one BLAS call per
block (one call when everything fits). Convolutions with one input feature per group (depthwise)
instead accumulate one broadcast multiply per window element. The result is a transposed view in
the output layout.
"""

import ml_dtypes
import numpy as np
from numpy.lib.stride_tricks import as_strided
from jaxlib.mlir.dialects import stablehlo

from .. import dtypes
from ..errors import ExecutionError, InvalidProgramError
from .base import op
from .precision import matmul_dtype

# Elements of im2col buffer per BLAS call: large enough that a call amortises its overhead,
# small enough to stay in the L2 cache. But at least MIN_ROWS rows per call: every call reads
# the whole kernel matrix, which is large when the contraction is long (weight gradients).
CHUNK_ELEMENTS = 1 << 21
MIN_ROWS = 256


class _Conv:
    """Everything static about one convolution; `run(lhs, rhs, padding)` computes it."""

    def __init__(self, op_, lhs_t, rhs_t, out_t):
        dims = stablehlo.ConvDimensionNumbers(op_.attr("dimension_numbers"))
        spatial_in = list(dims.input_spatial_dimensions)
        spatial_k = list(dims.kernel_spatial_dimensions)
        spatial_out = list(dims.output_spatial_dimensions)
        d = self.d = len(spatial_in)
        self.strides = tuple(op_.ints("window_strides", (1,) * d))
        self.lhs_dilation = tuple(op_.ints("lhs_dilation", (1,) * d))
        self.rhs_dilation = tuple(op_.ints("rhs_dilation", (1,) * d))
        reversal = tuple(bool(r) for r in op_.ints("window_reversal", (False,) * d))
        feature_groups = op_.int("feature_group_count", 1)
        batch_groups = op_.int("batch_group_count", 1)
        for name, values in (("window_strides", self.strides), ("lhs_dilation", self.lhs_dilation),
                             ("rhs_dilation", self.rhs_dilation)):
            if len(values) != d or min(values, default=1) < 1:
                raise op_.unsupported(f"{name} = {values}")
        if feature_groups < 1 or batch_groups < 1 or (feature_groups > 1 and batch_groups > 1):
            raise op_.unsupported(f"feature_group_count = {feature_groups} and "
                                  f"batch_group_count = {batch_groups}")

        # Canonical layouts: input (N, S..., C), kernel (K..., Cg, F), output (Nb, O..., F).
        self.lhs_perm = [dims.input_batch_dimension] + spatial_in + [dims.input_feature_dimension]
        self.rhs_perm = spatial_k + [dims.kernel_input_feature_dimension,
                                     dims.kernel_output_feature_dimension]
        out_perm = [dims.output_batch_dimension] + spatial_out + [dims.output_feature_dimension]
        self.out_inverse = list(np.argsort(out_perm))
        self.lhs_identity = self.lhs_perm == list(range(d + 2))
        self.rhs_identity = self.rhs_perm == list(range(d + 2))
        self.out_identity = out_perm == list(range(d + 2))

        lhs_shape = [lhs_t.shape[i] for i in self.lhs_perm]
        rhs_shape = [rhs_t.shape[i] for i in self.rhs_perm]
        self.in_spatial = tuple(lhs_shape[1:-1])
        self.window = tuple(rhs_shape[:-2])
        self.out_spatial = tuple(out_t.shape[i] for i in spatial_out)
        n, c = lhs_shape[0], lhs_shape[-1]
        cg, f = rhs_shape[-2], rhs_shape[-1]
        g = self.groups = feature_groups * batch_groups
        self.batch_groups = batch_groups
        if (f % g or (batch_groups > 1 and n % g) or (feature_groups > 1 and c % g)
                or c != cg * feature_groups):
            raise op_.unsupported(f"inconsistent feature/batch groups ({lhs_t} * {rhs_t})")
        self.n, self.c, self.cg, self.f = n, c, cg, f
        self.nb = n // batch_groups
        self.fg = f // g  # output features per group
        self.canonical_out = (self.nb,) + self.out_spatial + (f,)
        self.out_shape = out_t.shape
        self.out_dtype = out_t.dtype
        self.window_size = int(np.prod(self.window, dtype=np.int64))
        self.cols = self.window_size * cg  # contraction length
        self.rows = int(np.prod((self.nb,) + self.out_spatial, dtype=np.int64))
        self.compute = matmul_dtype(lhs_t.dtype, rhs_t.dtype, out_t.dtype, self.cols)
        self.operand_round, self.result_round = _xla_rounding(lhs_t.dtype, rhs_t.dtype, out_t.dtype)
        self.integral = dtypes.is_integer(out_t.dtype) and self.compute.kind == "f"
        self.to_bool = dtypes.is_bool(out_t.dtype)
        self.empty = self.rows * f == 0 or self.cols == 0
        # Kernel flips for window reversal, on the canonical kernel.
        self.flip = tuple(i for i in range(d) if reversal[i] and self.window[i] > 1)
        # Depthwise: one input feature per group, few outputs; broadcast multiplies beat BLAS.
        self.depthwise = cg == 1 and g > 1 and self.fg <= 4

    # -- run time
    def padded(self, lhs, padding):
        """The canonical input (N, P..., C) in the compute dtype, dilated and padded."""
        if not self.lhs_identity:
            lhs = lhs.transpose(self.lhs_perm)
        if self.operand_round is not None:
            lhs = lhs.astype(self.operand_round, copy=False)
        if not any(padding) and all(x == 1 for x in self.lhs_dilation):
            return lhs.astype(self.compute, copy=False)
        sizes, source, target = [], [slice(None)], [slice(None)]
        for i in range(self.d):
            s, ld = self.in_spatial[i], self.lhs_dilation[i]
            lo, hi = padding[2 * i], padding[2 * i + 1]
            dilated = (s - 1) * ld + 1 if s else 0
            p = max(lo + dilated + hi, 0)
            sizes.append(p)
            # Element j of the input lands at lo + j * ld; keep those inside [0, p).
            first = 0 if lo >= 0 else (ld - 1 - lo) // ld
            last = min(s - 1, (p - 1 - lo) // ld) if p else -1
            if last < first:
                source.append(slice(0, 0))
                target.append(slice(0, 0))
            else:
                source.append(slice(first, last + 1))
                start = lo + first * ld
                target.append(slice(start, start + (last - first) * ld + 1, ld))
        buffer = np.zeros((self.n, *sizes, self.c), self.compute)
        buffer[tuple(target)] = lhs[tuple(source)]
        return buffer

    def kernel_matrix(self, rhs):
        """The kernel as (G, window... , Cg, Fg) in the compute dtype."""
        if not self.rhs_identity:
            rhs = rhs.transpose(self.rhs_perm)
        if self.flip:
            rhs = np.flip(rhs, self.flip)
        if self.operand_round is not None:
            rhs = rhs.astype(self.operand_round, copy=False)
        g, d = self.groups, self.d
        rhs = rhs.reshape(self.window + (self.cg, g, self.fg))
        rhs = rhs.transpose((d + 1,) + tuple(range(d + 1)) + (d + 2,))
        return rhs.astype(self.compute, copy=False)

    def windows(self, x):
        """(G, Nb, O..., K..., Cg): every input window, a strided view of x (N, P..., C)."""
        d, g, nb, cg = self.d, self.groups, self.nb, self.cg
        sn, sc = x.strides[0], x.strides[-1]
        ss = x.strides[1:-1]
        if self.batch_groups > 1:  # batch n = group * nb + b
            group_stride, batch_stride, feature_stride = nb * sn, sn, sc
        else:  # feature c = group * cg + j
            group_stride, batch_stride, feature_stride = cg * sc, sn, sc
        shape = (g, nb) + self.out_spatial + self.window + (cg,)
        strides = ((group_stride, batch_stride)
                   + tuple(ss[i] * self.strides[i] for i in range(d))
                   + tuple(ss[i] * self.rhs_dilation[i] for i in range(d)) + (feature_stride,))
        return as_strided(x, shape, strides, writeable=False)

    def run(self, lhs, rhs, padding):
        if self.empty:
            return np.zeros(self.out_shape, self.out_dtype)
        windows = self.windows(self.padded(lhs, padding))
        w = self.kernel_matrix(rhs)
        if self.depthwise:
            out = self.run_depthwise(windows, w)
        else:
            out = self.run_im2col(windows, w.reshape(self.groups, self.cols, self.fg))
        if self.to_bool:
            out = out != 0
        elif self.integral:
            out = out.astype(np.int64)  # exact; the cast below wraps like integer accumulation
        elif self.result_round is not None:
            out = out.astype(self.result_round)
        out = out.astype(self.out_dtype, copy=False)
        return out if self.out_identity else out.transpose(self.out_inverse)

    def check_padding(self, padding):
        """Raises unless `padding` gives the result type's spatial sizes."""
        for i in range(self.d):
            s, ld = self.in_spatial[i], self.lhs_dilation[i]
            p = max(padding[2 * i] + ((s - 1) * ld + 1 if s else 0) + padding[2 * i + 1], 0)
            extent = (self.window[i] - 1) * self.rhs_dilation[i] + 1
            o = (p - extent) // self.strides[i] + 1 if p >= extent else 0
            if o != self.out_spatial[i]:
                raise ExecutionError(
                    f"pyrt: convolution padding gives {o} outputs in spatial dimension {i}, "
                    f"but the result type has {self.out_spatial[i]}")

    def run_im2col(self, windows, w):
        """Blocks of window rows copied into a cache-sized buffer, one batched matmul each."""
        g, fg, cols = self.groups, self.fg, self.cols
        out = np.empty(self.canonical_out, self.compute)
        row_dims = (self.nb,) + self.out_spatial
        total = g * self.rows * cols
        if total <= CHUNK_ELEMENTS:
            a = windows.reshape(g, self.rows, cols)
            np.matmul(a, w, out=out.reshape(self.rows, g, fg).transpose(1, 0, 2))
            return out
        rows = max(CHUNK_ELEMENTS // (g * cols), min(MIN_ROWS, self.rows), 1)
        # Split the row axes (Nb, O...) at axis j, the first whose trailing rows fit a block.
        per = [int(np.prod(row_dims[j + 1:], dtype=np.int64)) for j in range(len(row_dims))]
        j = next(j for j, p in enumerate(per) if p <= rows or j == len(per) - 1)
        step = max(1, rows // per[j])
        inner_rows = per[j]
        buffer = np.empty(g * min(step, row_dims[j]) * inner_rows * cols, self.compute)
        for prefix in np.ndindex(*row_dims[:j]):
            for start in range(0, row_dims[j], step):
                stop = min(start + step, row_dims[j])
                block = windows[(slice(None),) + prefix + (slice(start, stop),)]
                nrows = (stop - start) * inner_rows
                a = buffer[:g * nrows * cols].reshape(block.shape)
                np.copyto(a, block)
                target = out[prefix + (slice(start, stop),)].reshape(nrows, g, fg)
                np.matmul(a.reshape(g, nrows, cols), w, out=target.transpose(1, 0, 2))
        return out

    def run_depthwise(self, windows, w):
        """One input feature per group: out[..., g, f] += x[..., g] * w[k, g, f] per window k."""
        d, g, fg = self.d, self.groups, self.fg
        # windows (G, Nb, O..., K..., 1) -> (Nb, O..., K..., G); w (G, K..., 1, Fg) -> (K..., G, Fg)
        x = np.moveaxis(windows[..., 0], 0, -1)
        w = np.moveaxis(w[..., 0, :], 0, -2)
        out = np.zeros((self.nb,) + self.out_spatial + (g, fg), self.compute)
        tmp = np.empty_like(out)
        lead = (slice(None),) * (d + 1)
        for k in np.ndindex(*self.window):
            np.multiply(x[lead + k][..., None], w[k], out=tmp)
            out += tmp
        return out.reshape(self.canonical_out)


_F16 = np.dtype(np.float16)
_BF16 = np.dtype(ml_dtypes.bfloat16)
_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)


def _xla_rounding(lhs_dtype, rhs_dtype, out_dtype):
    """(operand, result) dtypes XLA:CPU rounds through besides the float32 accumulation, or None.

    XLA:CPU runs 8-bit float convolutions in float16, so their result rounds to float16 before
    the 8-bit type; and it runs a float16 <-> bfloat16 convolution in bfloat16, rounding its
    float16 operands or its result to bfloat16 first."""
    if dtypes.is_float(out_dtype) and out_dtype.itemsize == 1 and out_dtype != _E8M0:
        return None, _F16
    if {lhs_dtype, rhs_dtype, out_dtype} == {_F16, _BF16} and lhs_dtype == rhs_dtype:
        return _BF16, _BF16
    return None, None


def _static_padding(op_, d):
    if not op_.has("padding"):
        return (0,) * (2 * d)
    padding = op_.ints("padding")
    if len(padding) != 2 * d:
        raise op_.unsupported(f"padding of {len(padding)} values for {d} spatial dimensions")
    return padding


def convolution_flops(operation, operands, results):
    """2 * output elements * kernel elements per output feature, as XLA's HloCostAnalysis."""
    kernel = operands[1]
    dn = stablehlo.ConvDimensionNumbers(operation.attributes["dimension_numbers"])
    out_features = max(1, kernel.shape[dn.kernel_output_feature_dimension])
    return 2 * results[0].size * (kernel.size // out_features)


@op("stablehlo.convolution", cost=convolution_flops)
def convolution(op_):
    """Spec: convolution. Any dimension numbers and number of spatial dimensions, strides,
    padding (negative crops), lhs/rhs dilation, window reversal, feature and batch groups:
    im2col over a strided view of the padded input, one BLAS matmul per cache-sized block of
    windows (depthwise: broadcast multiply-adds). Bool, all integer, float and complex types:
    narrow floats accumulate in float32 and round as XLA:CPU does (8-bit floats via float16),
    integers wrap (small ones exactly through floating-point BLAS), preferred result types are
    honoured; precision_config is ignored."""
    lhs_t, rhs_t = op_.operand_types
    conv = _Conv(op_, lhs_t, rhs_t, op_.result)
    padding = _static_padding(op_, conv.d)
    try:
        conv.check_padding(padding)  # a malformed program fails at compile time
    except ExecutionError as e:
        raise InvalidProgramError(f"{e} (at {op_.location})") from None

    def kernel(lhs, rhs):
        return conv.run(lhs, rhs, padding)

    return kernel


@op("stablehlo.dynamic_conv")
def dynamic_conv(op_):
    """Spec: dynamic_conv. As convolution, with the (spatial dims x 2) padding an operand read
    at run time; padding inconsistent with the static result shape is an execution error."""
    lhs_t, rhs_t, padding_t = op_.operand_types
    conv = _Conv(op_, lhs_t, rhs_t, op_.result)
    if padding_t.shape != (conv.d, 2):
        raise op_.unsupported(f"padding of type {padding_t}")

    def kernel(lhs, rhs, padding):
        padding = tuple(int(p) for p in np.asarray(padding).reshape(-1))
        conv.check_padding(padding)
        return conv.run(lhs, rhs, padding)

    return kernel
