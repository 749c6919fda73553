"""Op specs for the rest of the opset: indexing, sorting, windows, convolution, fft, linear
algebra, normalization, dynamic-shape ops, collectives on one device, quantization, map, tokens,
random numbers and the deprecated ops. Cases of ops without a handler are skipped (and listed in
the summary) until their handler lands. Imported by specs.py."""

import numpy as np

from . import elements as el
from .harness import EXACT, Known, close, ulp
from .mlir import Function, Region, bool_array, dense_i64, enum, i64, i64_array
from .specs import body, rng_for, shape_name, single, spec
from .specs import case as _case

INDEX_TYPES = ("i32", "i64", "ui8")

# Ops jaxlib 0.10.2's interpreter cannot run through eval_module (it aborts the process).
_UNSUPPORTED = "the interpreter does not implement {} (it aborts)"
_PARALLEL = ("the interpreter runs {} only through interpreter.run_parallel (a process grid), "
             "not eval_module (it aborts)")
INTERPRETER_CANNOT = {
    **{op: _UNSUPPORTED.format(op) for op in (
        "stablehlo.cholesky", "stablehlo.batch_norm_inference", "stablehlo.batch_norm_training",
        "stablehlo.batch_norm_grad", "stablehlo.rng", "stablehlo.rng_bit_generator",
        "stablehlo.einsum", "stablehlo.unary_einsum", "stablehlo.cross-replica-sum",
        "stablehlo.broadcast", "stablehlo.torch_index_select", "stablehlo.real_dynamic_slice",
        "stablehlo.set_dimension_size", "stablehlo.create_token")},
    **{op: _PARALLEL.format(op) for op in (
        "stablehlo.all_reduce", "stablehlo.all_gather", "stablehlo.reduce_scatter",
        "stablehlo.all_to_all", "stablehlo.collective_permute", "stablehlo.collective_broadcast",
        "stablehlo.replica_id", "stablehlo.partition_id")},
}


def case(op, name, function, inputs, compare=EXACT, known=(), interpreter="", dtype=""):
    """specs.case, marking ops the interpreter cannot run."""
    ops = function.all_ops()
    interpreter = interpreter or next(
        (reason for o, reason in INTERPRETER_CANNOT.items() if o in ops), "")
    return _case(op, name, function, inputs, compare, known, interpreter, dtype)


def _dims(name, values):
    return f"{name} = [{', '.join(map(str, values))}]"


def gather_dims(offset, collapsed, start_map, index_vector_dim, operand_batching=(),
                indices_batching=()):
    parts = [_dims("offset_dims", offset), _dims("collapsed_slice_dims", collapsed)]
    if operand_batching:
        parts += [_dims("operand_batching_dims", operand_batching),
                  _dims("start_indices_batching_dims", indices_batching)]
    parts += [_dims("start_index_map", start_map), f"index_vector_dim = {index_vector_dim}"]
    return f"#stablehlo.gather<{', '.join(parts)}>"


def scatter_dims(window, inserted, to_operand, index_vector_dim, input_batching=(),
                 indices_batching=()):
    parts = [_dims("update_window_dims", window), _dims("inserted_window_dims", inserted)]
    if input_batching:
        parts += [_dims("input_batching_dims", input_batching),
                  _dims("scatter_indices_batching_dims", indices_batching)]
    parts += [_dims("scatter_dims_to_operand_dims", to_operand),
              f"index_vector_dim = {index_vector_dim}"]
    return f"#stablehlo.scatter<{', '.join(parts)}>"


# --------------------------------------------------------------------------------------------
# Indexing

GATHERS = [  # operand shape, indices (values), dimension numbers, slice sizes, result shape
    ((4, 5), [[0], [2], [3]], ([1], [0], [0], 1), [1, 5], (3, 5)),
    ((4, 5), [[3], [7], [-1]], ([1], [0], [0], 1), [1, 5], (3, 5)),  # clamped starts
    ((3, 4, 2), [[[0, 1], [2, 3], [1, 0]], [[3, 1], [0, 0], [9, -4]]], ([2, 3], [0], [1, 0], 2),
     [1, 2, 2], (2, 3, 2, 2)),
    ((4, 5), [1, 3], ([1], [0], [0], 1), [1, 5], (2, 5)),  # index_vector_dim = rank: scalars
    ((4, 5), [[0, 0], [3, 4], [1, 2]], ([], [0, 1], [0, 1], 1), [1, 1], (3,)),
    ((2, 4, 3), [[[1], [3], [0]], [[2], [2], [5]]], ([2], [1], [1], 2, [0], [0]), [1, 1, 3],
     (2, 3, 3)),  # batching dimensions
    ((4, 5), np.zeros((0, 1), int).tolist(), ([1], [0], [0], 1), [1, 5], (0, 5)),
]


@spec("stablehlo.gather")
def gather_cases():
    op = "stablehlo.gather"
    for t in ("f32", "i8", "complex<f32>", "bf16", "i1", "ui64"):
        for it in INDEX_TYPES:
            for k, (shape, idx, dn, sizes, out) in enumerate(GATHERS):
                idx = np.array(idx)
                if it.startswith("u") and (idx < 0).any():
                    continue
                if idx.size == 0:
                    idx = idx.reshape(0, 1)
                name = f"{t}/{it}/{k}"
                x = el.fill(t, shape, rng_for(op + name))
                indices = idx.astype(el.dtype(it))
                f = single(op, [(shape, t), (indices.shape, it)], [(out, t)],
                           {"dimension_numbers": gather_dims(*dn),
                            "slice_sizes": i64_array(sizes), "indices_are_sorted": "false"})
                yield case(op, name, f, [x, indices], dtype=t)


def _replace_body(t):
    def make(parent):
        r = Region(parent, [((), t), ((), t)])
        return r.returns(r.args[1])

    return make


SCATTERS = [  # input shape, indices, updates shape, dimension numbers, unique
    ((4, 5), [[0], [2]], (2, 5), ([1], [0], [0], 1), True),
    ((4, 5), [[1], [1], [3]], (3, 5), ([1], [0], [0], 1), False),  # duplicates
    ((4, 5), [[3], [7], [-1]], (3, 5), ([1], [0], [0], 1), True),  # out of bounds: skipped
    ((4, 5), [[0, 0], [3, 4], [1, 2], [0, 0]], (4,), ([], [0, 1], [0, 1], 1), False),
    ((3, 4, 2), [[[0, 1], [2, 2]], [[1, 0], [0, 3]]], (2, 2, 2, 2), ([2, 3], [0], [1, 0], 2),
     False),
    ((4, 5), [[0], [1]], (2, 2), ([1], [0], [0], 1), True),  # window narrower than the input
    ((2, 4, 3), [[[1], [3]], [[2], [2]]], (2, 2, 3), ([2], [1], [1], 2, [0], [0]), False),
]


@spec("stablehlo.scatter")
def scatter_cases():
    op = "stablehlo.scatter"
    bodies = {"add": lambda t: body("stablehlo.add", t),
              "max": lambda t: body("stablehlo.maximum", t),
              "mul": lambda t: body("stablehlo.multiply", t), "replace": _replace_body}
    for t in ("f32", "i32", "complex<f64>", "bf16", "ui8", "i1"):
        for body_name, make_body in bodies.items():
            for it in ("i32", "i64"):
                for k, (shape, idx, ushape, dn, unique) in enumerate(SCATTERS):
                    if body_name == "replace" and not unique:
                        continue  # which duplicate wins is implementation-defined
                    if t == "i1" and body_name in ("mul",):
                        continue
                    name = f"{body_name}/{t}/{it}/{k}"
                    rng = rng_for(op + name)
                    x = el.fill(t, shape, rng, "small")
                    u = el.fill(t, ushape, rng, "small")
                    indices = np.array(idx).astype(el.dtype(it))
                    f = single(op, [(shape, t), (indices.shape, it), (ushape, t)], [(shape, t)],
                               {"scatter_dimension_numbers": scatter_dims(*dn),
                                "indices_are_sorted": "false",
                                "unique_indices": "true" if unique else "false"},
                               [make_body(t)])
                    cmp = ulp(0) if el.is_complex(t) else EXACT
                    yield case(op, name, f, [x, indices, u], cmp, dtype=t)


# --------------------------------------------------------------------------------------------
# Sorting

def _comparator(t, direction, compare_type=None, nargs=1):
    def make(parent):
        r = Region(parent, [((), t)] * 2 + [((), "i32")] * (2 * (nargs - 1)))
        attrs = {"comparison_direction": enum("comparison_direction", direction)}
        if compare_type:
            attrs["compare_type"] = enum("comparison_type", compare_type)
        lhs, rhs = r.args[0], r.args[1]
        return r.returns(r.op("stablehlo.compare", [lhs, rhs], [((), "i1")], attrs))

    return make


@spec("stablehlo.sort")
def sort_cases():
    op = "stablehlo.sort"
    for t in ("f32", "i32", "ui8", "bf16", "f64", "i64", "f16"):
        for direction in ("LT", "GT"):
            ctype = "TOTALORDER" if t in el.FLOATS else None
            for shape, dim in [((10,), 0), ((4, 6), 1), ((4, 6), 0), ((0, 3), 1), ((2, 3, 5), 1)]:
                for stable in (True, False):
                    stability = "stable" if stable else "unstable"
                    name = f"{t}/{direction}/{shape_name(shape)}/dim{dim}/{stability}"
                    rng = rng_for(op + name)
                    x = el.fill(t, shape, rng)
                    f = single(op, [(shape, t)], [(shape, t)],
                               {"dimension": i64(dim), "is_stable": "true" if stable else "false"},
                               [_comparator(t, direction, ctype)])
                    if ctype:
                        # The interpreter compares TOTALORDER as FLOAT (see compare): only
                        # values without NaNs and -0.0 order the same under both.
                        w = x.astype(np.float64)
                        finite = np.where(np.isnan(w) | (w == 0), 0, x).astype(x.dtype)
                        yield case(op, name + "/no-nan", f, [finite], dtype=t)
                        yield case(op, name, f, [x], interpreter=(
                            "the interpreter sorts TOTALORDER comparators as FLOAT (NaNs, -0.0)"),
                            dtype=t)
                    else:
                        yield case(op, name, f, [x], dtype=t)
    # Keys and values (stable: equal keys keep their order).
    for t in ("f32", "i32"):
        for shape, dim in [((12,), 0), ((3, 8), 1)]:
            name = f"keys-values/{t}/{shape_name(shape)}"
            rng = rng_for(op + name)
            keys = el.fill(t, shape, rng, "small")
            if t in el.FLOATS:  # no NaN or -0.0: the interpreter ignores TOTALORDER
                w = keys.astype(np.float64)
                keys = np.where(np.isnan(w) | (w == 0), 0, keys).astype(keys.dtype)
            values = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)

            def comparator(parent, t=t):
                r = Region(parent, [((), t), ((), t), ((), "i32"), ((), "i32")])
                attrs = {"comparison_direction": enum("comparison_direction", "LT")}
                if t in el.FLOATS:
                    attrs["compare_type"] = enum("comparison_type", "TOTALORDER")
                return r.returns(r.op("stablehlo.compare", [r.args[0], r.args[1]], [((), "i1")],
                                      attrs))

            f = single(op, [(shape, t), (shape, "i32")], [(shape, t), (shape, "i32")],
                       {"dimension": i64(dim), "is_stable": "true"}, [comparator])
            yield case(op, name, f, [keys, values], dtype=t)


# --------------------------------------------------------------------------------------------
# Windows

def _window_out(shape, window, strides, pad, base_dil, win_dil):
    out = []
    for d, w, s, (lo, hi), bd, wd in zip(shape, window, strides, pad, base_dil, win_dil):
        dilated = (d - 1) * bd + 1 if d else 0
        padded = dilated + lo + hi
        span = (w - 1) * wd + 1
        out.append(max(0, (padded - span) // s + 1) if padded >= span else 0)
    return tuple(out)


REDUCE_WINDOWS = [  # shape, window, strides, padding, base dilations, window dilations
    ((4, 5), (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1)),
    ((4, 5), (2, 3), (2, 1), ((1, 0), (1, 1)), (1, 1), (1, 1)),
    ((4, 5), (2, 2), (1, 2), ((0, 0), (0, 0)), (2, 1), (1, 2)),
    ((6,), (3,), (2,), ((2, 1),), (1,), (2,)),
    ((3, 4), (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1)),
    ((3, 4), (4, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1)),  # window larger: empty result
]


@spec("stablehlo.reduce_window")
def reduce_window_cases():
    op = "stablehlo.reduce_window"
    for body_op in ("stablehlo.add", "stablehlo.maximum", "stablehlo.minimum",
                    "stablehlo.multiply"):
        for t in ("f32", "i32", "bf16", "ui8", "f64"):
            for k, (shape, window, strides, pad, bd, wd) in enumerate(REDUCE_WINDOWS):
                name = f"{body_op.split('.')[1]}/{t}/{k}"
                rng = rng_for(op + name)
                x = el.fill(t, shape, rng, "small")
                init = el.fill(t, (), rng, "small")
                out = _window_out(shape, window, strides, pad, bd, wd)
                f = single(op, [(shape, t), ((), t)], [(out, t)],
                           {"window_dimensions": i64_array(window),
                            "window_strides": i64_array(strides),
                            "base_dilations": i64_array(bd), "window_dilations": i64_array(wd),
                            "padding": dense_i64(pad, (len(shape), 2))},
                           [body(body_op, t)])
                yield case(op, name, f, [x, init], dtype=t)


@spec("stablehlo.select_and_scatter")
def select_and_scatter_cases():
    op = "stablehlo.select_and_scatter"
    configs = [((4, 5), (2, 2), (2, 1), ((0, 0), (0, 0))),
               ((4, 6), (3, 2), (1, 2), ((1, 1), (0, 0))), ((6,), (2,), (2,), ((0, 0),))]
    for t in ("f32", "i32", "f64"):
        for direction in ("GE", "LE"):
            for k, (shape, window, strides, pad) in enumerate(configs):
                name = f"{t}/{direction}/{k}"
                rng = rng_for(op + name)
                x = el.fill(t, shape, rng, "small")
                src_shape = _window_out(shape, window, strides, pad, (1,) * len(shape),
                                        (1,) * len(shape))
                src = el.fill(t, src_shape, rng, "small")
                init = np.array(0, el.dtype(t))

                def select(parent, t=t, direction=direction):
                    r = Region(parent, [((), t), ((), t)])
                    return r.returns(r.op("stablehlo.compare", r.args, [((), "i1")], {
                        "comparison_direction": enum("comparison_direction", direction)}))

                f = single(op, [(shape, t), (src_shape, t), ((), t)], [(shape, t)],
                           {"window_dimensions": i64_array(window),
                            "window_strides": i64_array(strides),
                            "padding": dense_i64(pad, (len(shape), 2))},
                           [select, body("stablehlo.add", t)])
                yield case(op, name, f, [x, src, init], dtype=t)


# --------------------------------------------------------------------------------------------
# Convolution

CONVS = [  # lhs NCHW, rhs OIHW, strides, padding, lhs dilation, rhs dilation, feature groups,
           # batch groups
    ((1, 2, 5, 5), (3, 2, 2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1, 1),
    ((2, 2, 5, 6), (4, 2, 3, 2), (2, 1), ((1, 1), (0, 2)), (1, 1), (1, 1), 1, 1),
    ((1, 2, 4, 4), (2, 2, 2, 2), (1, 1), ((0, 0), (0, 0)), (2, 1), (1, 2), 1, 1),
    ((1, 4, 4, 4), (4, 2, 2, 2), (1, 1), ((0, 0), (1, 1)), (1, 1), (1, 1), 2, 1),
    ((2, 2, 4, 4), (4, 2, 2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1, 2),
    ((1, 1, 3, 3), (1, 1, 3, 3), (1, 1), ((-1, 2), (1, -1)), (1, 1), (1, 1), 1, 1),
]


def _conv_out(lhs, rhs, strides, pad, lhs_dil, rhs_dil, fgc, bgc):
    spatial = _window_out(lhs[2:], rhs[2:], strides, pad, lhs_dil, rhs_dil)
    return (lhs[0] // bgc, rhs[0]) + spatial


def conv_attrs(strides, pad, lhs_dil, rhs_dil, fgc, bgc):
    return {"window_strides": i64_array(strides), "padding": dense_i64(pad, (2, 2)),
            "lhs_dilation": i64_array(lhs_dil), "rhs_dilation": i64_array(rhs_dil),
            "window_reversal": bool_array([False, False]),
            "dimension_numbers": "#stablehlo.conv<[b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1]>",
            "feature_group_count": i64(fgc), "batch_group_count": i64(bgc),
            "precision_config": "[#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]"}


@spec("stablehlo.convolution")
def convolution_cases():
    op = "stablehlo.convolution"
    for t in ("f32", "i32", "f64", "bf16", "i8", "complex<f32>", "f16"):
        for k, (lhs, rhs, strides, pad, ld, rd, fgc, bgc) in enumerate(CONVS):
            name = f"{t}/{k}"
            rng = rng_for(op + name)
            # Small integers: every sum exact, any order gives the same bits.
            a = el.fill(t, lhs, rng, "small", edge=False)
            b = el.fill(t, rhs, rng, "small", edge=False)
            out = _conv_out(lhs, rhs, strides, pad, ld, rd, fgc, bgc)
            f = single(op, [(lhs, t), (rhs, t)], [(out, t)],
                       conv_attrs(strides, pad, ld, rd, fgc, bgc))
            yield case(op, name, f, [a, b], ulp(0) if el.is_complex(t) else EXACT, dtype=t)
    for t, rtol in [("f32", 1e-5), ("f64", 1e-12)]:
        lhs, rhs = (2, 3, 8, 8), (4, 3, 3, 3)
        name = f"{t}/unit"
        rng = rng_for(op + name)
        a = el.random_values(t, int(np.prod(lhs)), rng, "unit").reshape(lhs)
        b = el.random_values(t, int(np.prod(rhs)), rng, "unit").reshape(rhs)
        out = _conv_out(lhs, rhs, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1, 1)
        f = single(op, [(lhs, t), (rhs, t)], [(out, t)],
                   conv_attrs((1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1, 1))
        yield case(op, name, f, [a, b], close(rtol, 27 * rtol), dtype=t)


@spec("stablehlo.dynamic_conv")
def dynamic_conv_cases():
    op = "stablehlo.dynamic_conv"
    for k, (lhs, rhs, strides, pad, ld, rd, fgc, bgc) in enumerate(CONVS[:3]):
        name = f"f32/{k}"
        rng = rng_for(op + name)
        a = el.fill("f32", lhs, rng, "small", edge=False)
        b = el.fill("f32", rhs, rng, "small", edge=False)
        out = _conv_out(lhs, rhs, strides, pad, ld, rd, fgc, bgc)
        attrs = conv_attrs(strides, pad, ld, rd, fgc, bgc)
        del attrs["padding"]
        padding = np.array(pad, np.int64)
        f = single(op, [(lhs, "f32"), (rhs, "f32"), ((2, 2), "i64")], [(out, "f32")], attrs)
        yield case(op, name, f, [a, b, padding], dtype="f32")


# --------------------------------------------------------------------------------------------
# Fourier transforms

@spec("stablehlo.fft")
def fft_cases():
    op = "stablehlo.fft"
    for t, rtol in [("complex<f32>", 1e-5), ("complex<f64>", 1e-12)]:
        part = el.part_type(t)
        for kind in ("FFT", "IFFT", "RFFT", "IRFFT"):
            for batch, lengths in [((3,), [8]), ((2,), [4, 6]), ((), [5]), ((2,), [1]),
                                   ((), [3, 2, 4])]:
                n = tuple(lengths)
                if kind == "RFFT":
                    src, dst = (batch + n, part), (batch + n[:-1] + (n[-1] // 2 + 1,), t)
                elif kind == "IRFFT":
                    src, dst = (batch + n[:-1] + (n[-1] // 2 + 1,), t), (batch + n, part)
                else:
                    src = dst = (batch + n, t)
                name = f"{t}/{kind}/{shape_name(batch)}/{lengths}"
                rng = rng_for(op + name)
                x = el.random_values(src[1], int(np.prod(src[0])), rng, "unit").reshape(src[0])
                if kind == "IRFFT":
                    # An RFFT result's DC (and even-length Nyquist) bins are real; what an
                    # inverse makes of imaginary parts there is implementation-defined.
                    x = x.copy()
                    x[..., 0].imag = 0
                    if n[-1] % 2 == 0:
                        x[..., -1].imag = 0
                size = int(np.prod(n))
                f = single(op, [src], [dst], {"fft_type": enum("fft_type", kind),
                                              "fft_length": i64_array(lengths)})
                interpreter = ""
                if t == "complex<f32>":
                    interpreter = ("the interpreter aborts on complex<f32> FFTs (\"Semantics "
                                   "mismatch between provided type and complex value\")")
                elif kind == "IRFFT" and n[-1] == 1:
                    interpreter = ("the interpreter aborts on IRFFT of length 1 (\"Could not "
                                   "infer SliceOp's return type\")")
                elif kind == "IRFFT" and n[-1] % 2:
                    interpreter = ("the interpreter's IRFFT is wrong for odd lengths (pyrt "
                                   "matches XLA:CPU and np.fft.irfft)")
                yield case(op, name, f, [x], close(rtol, rtol * size), interpreter=interpreter,
                           dtype=t)


# --------------------------------------------------------------------------------------------
# Linear algebra

def _triangular(t, n, batch, rng, unit_range=True):
    a = el.random_values(t, int(np.prod(batch + (n, n))), rng, "unit").reshape(batch + (n, n))
    eye = np.eye(n, dtype=bool)
    a = np.where(eye, a + (np.sign(a.real) if np.iscomplexobj(a) else np.sign(a)) * 2, a * 0.5)
    return a.astype(el.dtype(t))


@spec("stablehlo.triangular_solve")
def triangular_solve_cases():
    op = "stablehlo.triangular_solve"
    for t, rtol in [("f32", 1e-4), ("f64", 1e-10), ("complex<f32>", 1e-4), ("complex<f64>", 1e-10)]:
        for left in (True, False):
            for lower in (True, False):
                for transpose in ("NO_TRANSPOSE", "TRANSPOSE", "ADJOINT"):
                    for unit in (False, True):
                        for batch in [(), (2,)]:
                            name = "/".join([t, "left" if left else "right",
                                             "lower" if lower else "upper", transpose,
                                             "unit" if unit else "diag", shape_name(batch)])
                            rng = rng_for(op + name)
                            a = _triangular(t, 3, batch, rng)
                            bshape = batch + ((3, 2) if left else (2, 3))
                            b = el.random_values(t, int(np.prod(bshape)), rng, "unit")
                            b = b.reshape(bshape)
                            f = single(op, [(a.shape, t), (bshape, t)], [(bshape, t)],
                                       {"left_side": str(left).lower(), "lower": str(lower).lower(),
                                        "unit_diagonal": str(unit).lower(),
                                        "transpose_a": enum("transpose", transpose)})
                            interpreter = ""
                            if transpose == "ADJOINT" and not el.is_complex(t):
                                interpreter = ("the interpreter crashes (SIGSEGV) on ADJOINT "
                                               "with real operands")
                            elif batch and not unit:
                                interpreter = ("the interpreter aborts on batched solves with a "
                                               "non-unit diagonal (\"Incompatible index and shape "
                                               "found while flattening index\")")
                            yield case(op, name, f, [a, b], close(rtol, rtol),
                                       interpreter=interpreter, dtype=t)


def _other_triangle(lower):
    def mask(inputs, actual, expected):
        n = actual[0].shape[-1]
        tri = np.triu(np.ones((n, n), bool), 1) if lower else np.tril(np.ones((n, n), bool), -1)
        return [np.broadcast_to(tri, actual[0].shape)]

    return Known("cholesky: the triangle not asked for is implementation-defined", mask,
                 on="results")


@spec("stablehlo.cholesky")
def cholesky_cases():
    op = "stablehlo.cholesky"
    for t, rtol in [("f32", 1e-4), ("f64", 1e-10), ("complex<f32>", 1e-4), ("complex<f64>", 1e-10)]:
        for lower in (True, False):
            for batch, n in [((), 3), ((2,), 4), ((), 1), ((0,), 2)]:
                name = f"{t}/{'lower' if lower else 'upper'}/{shape_name(batch)}/{n}"
                rng = rng_for(op + name)
                m = el.random_values(t, int(np.prod(batch + (n, n))), rng, "unit")
                m = m.reshape(batch + (n, n))
                spd = m @ np.conj(np.swapaxes(m, -1, -2)) + n * np.eye(n)
                spd = spd.astype(el.dtype(t))
                f = single(op, [(spd.shape, t)], [(spd.shape, t)], {"lower": str(lower).lower()})
                yield case(op, name, f, [spd], close(rtol, rtol), [_other_triangle(lower)], dtype=t)


# --------------------------------------------------------------------------------------------
# Normalization

def _bn_inputs(t, shape, feature, rng):
    x = el.random_values(t, int(np.prod(shape)), rng, "unit").reshape(shape)
    c = shape[feature]
    scale = el.random_values(t, c, rng, "unit")
    offset = el.random_values(t, c, rng, "unit")
    mean = el.random_values(t, c, rng, "unit")
    var = np.abs(el.random_values(t, c, rng, "unit")).astype(el.dtype(t)) + el.dtype(t).type(0.5)
    return x, scale, offset, mean, var


@spec("stablehlo.batch_norm_inference")
def batch_norm_inference_cases():
    op = "stablehlo.batch_norm_inference"
    for t, rtol in [("f32", 1e-5), ("f64", 1e-12), ("bf16", 2e-2), ("f16", 5e-3)]:
        for shape, feature in [((2, 3, 4), 1), ((4, 2), 1), ((3, 2, 2, 2), 0)]:
            name = f"{t}/{shape_name(shape)}/f{feature}"
            x, scale, offset, mean, var = _bn_inputs(t, shape, feature, rng_for(op + name))
            c = (shape[feature],)
            f = single(op, [(shape, t)] + [(c, t)] * 4, [(shape, t)],
                       {"epsilon": "1.0e-03 : f32", "feature_index": i64(feature)})
            yield case(op, name, f, [x, scale, offset, mean, var], close(rtol, rtol), dtype=t)


@spec("stablehlo.batch_norm_training")
def batch_norm_training_cases():
    op = "stablehlo.batch_norm_training"
    for t, rtol in [("f32", 1e-5), ("f64", 1e-12)]:
        for shape, feature in [((2, 3, 4), 1), ((4, 2), 1), ((3, 2, 2, 2), 0)]:
            name = f"{t}/{shape_name(shape)}/f{feature}"
            x, scale, offset, _, _ = _bn_inputs(t, shape, feature, rng_for(op + name))
            c = (shape[feature],)
            f = single(op, [(shape, t), (c, t), (c, t)], [(shape, t), (c, t), (c, t)],
                       {"epsilon": "1.0e-03 : f32", "feature_index": i64(feature)})
            yield case(op, name, f, [x, scale, offset], close(rtol, rtol), dtype=t)


@spec("stablehlo.batch_norm_grad")
def batch_norm_grad_cases():
    op = "stablehlo.batch_norm_grad"
    for t, rtol in [("f32", 1e-4), ("f64", 1e-10)]:
        for shape, feature in [((2, 3, 4), 1), ((4, 2), 1)]:
            name = f"{t}/{shape_name(shape)}/f{feature}"
            rng = rng_for(op + name)
            x, scale, _, mean, var = _bn_inputs(t, shape, feature, rng)
            grad = el.random_values(t, int(np.prod(shape)), rng, "unit").reshape(shape)
            c = (shape[feature],)
            f = single(op, [(shape, t), (c, t), (c, t), (c, t), (shape, t)],
                       [(shape, t), (c, t), (c, t)],
                       {"epsilon": "1.0e-03 : f32", "feature_index": i64(feature)})
            yield case(op, name, f, [x, scale, mean, var, grad], close(rtol, rtol), dtype=t)


# --------------------------------------------------------------------------------------------
# Dynamic-shape ops (with static result types, as StableHLO programs from JAX use them)

@spec("stablehlo.dynamic_broadcast_in_dim")
def dynamic_broadcast_in_dim_cases():
    op = "stablehlo.dynamic_broadcast_in_dim"
    for t in ("f32", "i8", "i1"):
        for src, dst, dims in [((3,), (2, 3), [1]), ((1, 3), (4, 3), [0, 1]), ((), (2, 2), [])]:
            name = f"{t}/{shape_name(src)}->{shape_name(dst)}"
            x = el.fill(t, src, rng_for(op + name))
            f = single(op, [(src, t), ((len(dst),), "i64")], [(dst, t)],
                       {"broadcast_dimensions": i64_array(dims)})
            yield case(op, name, f, [x, np.array(dst, np.int64)], dtype=t)


@spec("stablehlo.dynamic_reshape")
def dynamic_reshape_cases():
    op = "stablehlo.dynamic_reshape"
    for t in ("f32", "i32"):
        for src, dst in [((2, 3), (3, 2)), ((6,), (1, 2, 3)), ((0, 2), (2, 0))]:
            name = f"{t}/{shape_name(src)}->{shape_name(dst)}"
            x = el.fill(t, src, rng_for(op + name))
            f = single(op, [(src, t), ((len(dst),), "i64")], [(dst, t)])
            yield case(op, name, f, [x, np.array(dst, np.int64)], dtype=t)


@spec("stablehlo.dynamic_iota")
def dynamic_iota_cases():
    op = "stablehlo.dynamic_iota"
    for t in ("f32", "i32", "ui8"):
        for shape, dim in [((5,), 0), ((2, 3), 1)]:
            name = f"{t}/{shape_name(shape)}/dim{dim}"
            f = single(op, [((len(shape),), "i64")], [(shape, t)], {"iota_dimension": i64(dim)})
            yield case(op, name, f, [np.array(shape, np.int64)], dtype=t)


@spec("stablehlo.dynamic_pad")
def dynamic_pad_cases():
    op = "stablehlo.dynamic_pad"
    for t in ("f32", "i16"):
        for lo, hi, interior in [([1, 0], [0, 2], [0, 1]), ([-1, 1], [1, -1], [1, 0])]:
            name = f"{t}/lo{lo}/hi{hi}/in{interior}"
            rng = rng_for(op + name)
            x, v = el.fill(t, (3, 4), rng), el.fill(t, (), rng)
            out = tuple(lo_ + hi_ + d + max(d - 1, 0) * i
                        for d, lo_, hi_, i in zip((3, 4), lo, hi, interior))
            f = single(op, [((3, 4), t), ((), t)] + [((2,), "i64")] * 3, [(out, t)])
            yield case(op, name, f, [x, v, np.array(lo), np.array(hi), np.array(interior)], dtype=t)


@spec("stablehlo.real_dynamic_slice")
def real_dynamic_slice_cases():
    op = "stablehlo.real_dynamic_slice"
    for t in ("f32", "i32"):
        for start, limit, strides in [([0, 1], [4, 5], [2, 2]), ([1, 0], [3, 5], [1, 1])]:
            name = f"{t}/{start}:{limit}:{strides}"
            x = el.fill(t, (4, 5), rng_for(op + name))
            out = tuple(-(-(lim - s) // st) for s, lim, st in zip(start, limit, strides))
            f = single(op, [((4, 5), t)] + [((2,), "i64")] * 3, [(out, t)])
            yield case(op, name, f, [x, np.array(start), np.array(limit), np.array(strides)],
                       dtype=t)


@spec("stablehlo.get_dimension_size")
def get_dimension_size_cases():
    op = "stablehlo.get_dimension_size"
    for shape in [(3, 4), (0, 7), (5,)]:
        for dim in range(len(shape)):
            name = f"{shape_name(shape)}/dim{dim}"
            f = single(op, [(shape, "f32")], [((), "i32")], {"dimension": i64(dim)})
            yield case(op, name, f, [np.zeros(shape, np.float32)], dtype="f32")


@spec("stablehlo.set_dimension_size")
def set_dimension_size_cases():
    op = "stablehlo.set_dimension_size"
    f = single(op, [((3, 4), "f32"), ((), "i32")], [((3, 4), "f32")], {"dimension": i64(1)})
    yield case(op, "f32/3x4/dim1", f, [el.fill("f32", (3, 4), rng_for(op)), np.array(4, np.int32)],
               dtype="f32")


@spec("stablehlo.dynamic_gather")
def dynamic_gather_cases():
    op = "stablehlo.dynamic_gather"
    for k, (shape, idx, dn, sizes, out) in enumerate(GATHERS[:4]):
        name = f"f32/{k}"
        x = el.fill("f32", shape, rng_for(op + name))
        indices = np.array(idx, np.int32)
        f = single(op, [(shape, "f32"), (indices.shape, "i32"), ((len(sizes),), "i64")],
                   [(out, "f32")], {"dimension_numbers": gather_dims(*dn),
                                    "indices_are_sorted": "false"})
        yield case(op, name, f, [x, indices, np.array(sizes, np.int64)], dtype="f32")


# --------------------------------------------------------------------------------------------
# Collectives and ids on one device (one replica, one partition)

ONE_GROUP = "dense<[[0]]> : tensor<1x1xi64>"


@spec("stablehlo.all_reduce")
def all_reduce_cases():
    op = "stablehlo.all_reduce"
    for t in ("f32", "i32"):
        for body_op in ("stablehlo.add", "stablehlo.maximum"):
            name = f"{t}/{body_op.split('.')[1]}"
            x = el.fill(t, (2, 3), rng_for(op + name))
            f = single(op, [((2, 3), t)], [((2, 3), t)],
                       {"replica_groups": ONE_GROUP,
                        "channel_handle": "#stablehlo.channel_handle<handle = 0, type = 0>"},
                       [body(body_op, t)])
            yield case(op, name, f, [x], dtype=t)


@spec("stablehlo.all_gather")
def all_gather_cases():
    op = "stablehlo.all_gather"
    for dim in (0, 1):
        x = el.fill("f32", (2, 3), rng_for(op + str(dim)))
        f = single(op, [((2, 3), "f32")], [((2, 3), "f32")],
                   {"all_gather_dim": i64(dim), "replica_groups": ONE_GROUP})
        yield case(op, f"f32/dim{dim}", f, [x], dtype="f32")


@spec("stablehlo.reduce_scatter")
def reduce_scatter_cases():
    op = "stablehlo.reduce_scatter"
    x = el.fill("f32", (2, 4), rng_for(op))
    f = single(op, [((2, 4), "f32")], [((2, 4), "f32")],
               {"scatter_dimension": i64(1), "replica_groups": ONE_GROUP},
               [body("stablehlo.add", "f32")])
    known = Known("XLA:CPU's reduce_scatter over one device adds the operand to +0.0 (so -0.0 "
                  "becomes +0.0) and flushes denormals; the spec's reduction over a group of one "
                  "is the operand itself, as in pyrt",
                  lambda x: (x == 0) | (np.abs(x) < np.finfo(np.float32).tiny))
    yield case(op, "f32", f, [x], known=[known], dtype="f32")


@spec("stablehlo.all_to_all")
def all_to_all_cases():
    op = "stablehlo.all_to_all"
    x = el.fill("i32", (2, 4), rng_for(op))
    f = single(op, [((2, 4), "i32")], [((2, 4), "i32")],
               {"split_dimension": i64(1), "concat_dimension": i64(0), "split_count": i64(1),
                "replica_groups": ONE_GROUP})
    yield case(op, "i32", f, [x], dtype="i32")


@spec("stablehlo.collective_permute")
def collective_permute_cases():
    op = "stablehlo.collective_permute"
    x = el.fill("f32", (3,), rng_for(op))
    f = single(op, [((3,), "f32")], [((3,), "f32")],
               {"source_target_pairs": "dense<[[0, 0]]> : tensor<1x2xi64>",
                "channel_handle": "#stablehlo.channel_handle<handle = 1, type = 1>"})
    yield case(op, "f32/self", f, [x], dtype="f32")


@spec("stablehlo.collective_broadcast")
def collective_broadcast_cases():
    op = "stablehlo.collective_broadcast"
    x = el.fill("f32", (3,), rng_for(op))
    f = single(op, [((3,), "f32")], [((3,), "f32")], {"replica_groups": ONE_GROUP})
    yield case(op, "f32", f, [x], dtype="f32")


@spec("stablehlo.replica_id")
def replica_id_cases():
    f = single("stablehlo.replica_id", [], [((), "ui32")])
    yield case("stablehlo.replica_id", "ui32", f, [], dtype="ui32")


@spec("stablehlo.partition_id")
def partition_id_cases():
    f = single("stablehlo.partition_id", [], [((), "ui32")])
    yield case("stablehlo.partition_id", "ui32", f, [], dtype="ui32")


@spec("stablehlo.cross-replica-sum")
def cross_replica_sum_cases():
    op = "stablehlo.cross-replica-sum"
    x = el.fill("f32", (3,), rng_for(op))
    f = single(op, [((3,), "f32")], [((3,), "f32")], {"replica_groups": ONE_GROUP})
    yield case(op, "f32", f, [x], dtype="f32")


@spec("stablehlo.after_all")
def after_all_cases():
    """Tokens order side effects; on their own they compute nothing: the array passes through."""
    f = Function([((3,), "f32")])
    t0 = f.op("stablehlo.after_all", [], ["!stablehlo.token"])
    t1 = f.op("stablehlo.after_all", [t0, t0], ["!stablehlo.token"])
    f.op("stablehlo.after_all", [t1], ["!stablehlo.token"])
    f.returns(f.op("stablehlo.negate", f.args, [((3,), "f32")]))
    yield case("stablehlo.after_all", "f32", f, [el.fill("f32", (3,), rng_for("after_all"))],
               dtype="f32")


@spec("stablehlo.create_token")
def create_token_cases():
    f = Function([((3,), "f32")])
    t0 = f.op("stablehlo.create_token", [], ["!stablehlo.token"])
    f.op("stablehlo.after_all", [t0], ["!stablehlo.token"])
    f.returns(f.op("stablehlo.negate", f.args, [((3,), "f32")]))
    yield case("stablehlo.create_token", "f32", f, [el.fill("f32", (3,), rng_for("token"))],
               dtype="f32")


# --------------------------------------------------------------------------------------------
# Quantization: quantize and dequantize (programs cannot return quantized tensors to pyrt's
# caller, so each case goes back to floats or reads the storage with bitcast_convert).

QUANT_TYPES = [
    "!quant.uniform<i8:f32, 5.000000e-01:3>",
    "!quant.uniform<ui8:f32, 2.500000e-01:128>",
    "!quant.uniform<i8<-127:127>:f32, 1.000000e-01>",
    "!quant.uniform<i16:f32, 1.000000e-02:-5>",
]


@spec("stablehlo.uniform_quantize", "stablehlo.uniform_dequantize")
def quantize_cases():
    for k, qt in enumerate(QUANT_TYPES):
        for shape in [(7,), (2, 3)]:
            name = f"{k}/{shape_name(shape)}"
            rng = rng_for("quantize" + name)
            x = (el.random_values("f32", int(np.prod(shape)), rng, "unit") * 40).reshape(shape)
            x[...] = np.where(rng.random(shape) < 0.2, 1e6, x)  # saturation
            f = Function([(shape, "f32")])
            quantized = f"tensor<{''.join(f'{d}x' for d in shape)}{qt}>"
            q = f.op("stablehlo.uniform_quantize", f.args, [quantized])
            d = f.op("stablehlo.uniform_dequantize", [q], [(shape, "f32")])
            f.returns(d)
            yield case("stablehlo.uniform_quantize", name, f, [x], dtype="f32")
    # Per-axis quantization.
    qt = "!quant.uniform<i8:f32:1, {5.000000e-01:1, 2.500000e-01:-2, 1.000000e+00:0}>"
    x = (el.random_values("f32", 6, rng_for("per-axis"), "unit") * 20).reshape(2, 3)
    f = Function([((2, 3), "f32")])
    q = f.op("stablehlo.uniform_quantize", f.args, [f"tensor<2x3x{qt}>"])
    f.returns(f.op("stablehlo.uniform_dequantize", [q], [((2, 3), "f32")]))
    yield case("stablehlo.uniform_quantize", "per-axis/2x3", f, [x], dtype="f32")


# --------------------------------------------------------------------------------------------
# Map, random numbers

@spec("stablehlo.map")
def map_cases():
    op = "stablehlo.map"
    for t in ("f32", "i32"):
        for shape in [(2, 3), (0,), ()]:
            name = f"{t}/{shape_name(shape)}"
            rng = rng_for(op + name)
            a, b = el.fill(t, shape, rng), el.fill(t, shape, rng)

            def fn(parent, t=t):
                r = Region(parent, [((), t), ((), t)])
                s = r.op("stablehlo.multiply", r.args, [((), t)])
                return r.returns(r.op("stablehlo.subtract", [s, r.args[0]], [((), t)]))

            f = single(op, [(shape, t), (shape, t)], [(shape, t)],
                       {"dimensions": i64_array(range(len(shape)))}, [fn])
            yield case(op, name, f, [a, b], dtype=t)


@spec("stablehlo.rng_bit_generator")
def rng_bit_generator_cases():
    op = "stablehlo.rng_bit_generator"
    for algorithm, state in [("THREE_FRY", 2), ("PHILOX", 2), ("PHILOX", 3), ("DEFAULT", 2)]:
        for t, shape in [("ui32", (4, 3)), ("ui64", (5,)), ("ui8", (7,))]:
            name = f"{algorithm}/state{state}/{t}/{shape_name(shape)}"
            f = single(op, [((state,), "ui64")], [((state,), "ui64"), (shape, t)],
                       {"rng_algorithm": enum("rng_algorithm", algorithm)})
            yield case(op, name, f, [np.array([42, 7, 3][:state], np.uint64)], dtype=t)


@spec("stablehlo.rng")
def rng_cases():
    op = "stablehlo.rng"
    for dist, t, (a, b) in [("UNIFORM", "f32", (2.0, float(np.nextafter(np.float32(2), 3)))),
                            ("NORMAL", "f32", (1.5, 0.0)), ("UNIFORM", "i32", (3, 4))]:
        name = f"{dist}/{t}"
        f = single(op, [((), t), ((), t), ((1,), "i64")], [((6,), t)],
                   {"rng_distribution": enum("rng_distribution", dist)})
        # Degenerate distributions, so the values are determined: uniform over [2, next float
        # after 2) or the integers [3, 4), normal with sigma 0.
        known = [Known("XLA:CPU's uniform floats can equal b (a + (b - a) u rounds up); the "
                       "spec's interval is [a, b)", lambda i, a, e, b=b: [e[0] == b],
                       on="results")]
        yield case(op, name, f, [np.array(a, el.dtype(t)), np.array(b, el.dtype(t)),
                                 np.array([6], np.int64)], known=known, dtype=t)


# --------------------------------------------------------------------------------------------
# Deprecated ops (outside the spec, still in the dialect)

@spec("stablehlo.broadcast")
def broadcast_cases():
    op = "stablehlo.broadcast"
    x = el.fill("f32", (3,), rng_for(op))
    f = single(op, [((3,), "f32")], [((2, 4, 3), "f32")], {"broadcast_sizes": i64_array([2, 4])})
    yield case(op, "f32", f, [x], dtype="f32")


@spec("stablehlo.einsum")
def einsum_cases():
    op = "stablehlo.einsum"
    rng = rng_for(op)
    a, b = el.fill("f32", (2, 3), rng, "small"), el.fill("f32", (3, 4), rng, "small")
    f = single(op, [((2, 3), "f32"), ((3, 4), "f32")], [((2, 4), "f32")],
               {"einsum_config": '"ab,bc->ac"'})
    yield case(op, "f32/ab,bc->ac", f, [a, b], dtype="f32")


@spec("stablehlo.unary_einsum")
def unary_einsum_cases():
    op = "stablehlo.unary_einsum"
    x = el.fill("f32", (2, 3), rng_for(op), "small")
    f = single(op, [((2, 3), "f32")], [((2,), "f32")], {"einsum_config": '"ab->a"'})
    yield case(op, "f32/ab->a", f, [x], dtype="f32")


@spec("stablehlo.torch_index_select")
def torch_index_select_cases():
    op = "stablehlo.torch_index_select"
    x = el.fill("f32", (4, 3), rng_for(op))
    idx = np.array([3, 0, 0, 2], np.int32)
    f = single(op, [((4, 3), "f32"), ((4,), "i32")], [((4, 3), "f32")],
               {"dim": i64(0), "batch_dims": i64(0)})
    yield case(op, "f32/dim0", f, [x, idx], dtype="f32")


# --------------------------------------------------------------------------------------------
# custom_call: pyrt implements a registry of targets (the sharding annotations JAX emits)

@spec("stablehlo.custom_call")
def custom_call_cases():
    op = "stablehlo.custom_call"
    for target in ("Sharding", "annotate_device_placement"):
        x = el.fill("f32", (2, 3), rng_for(op + target))
        attrs = {"call_target_name": f'"{target}"'}
        if target == "Sharding":
            attrs["mhlo.sharding"] = '"{replicated}"'
        f = single(op, [((2, 3), "f32")], [((2, 3), "f32")], attrs)
        yield case(op, target, f, [x], interpreter=(
            "the interpreter does not implement custom_call (it aborts)"), dtype="f32")
