"""Differential tests of pyrt against jaxlib's StableHLO reference interpreter (run them with
pytest: see test_differential.py).

Layout:
  elements.py       element types (grouped as the spec groups them) and input values: edge
                    values (NaN, +-inf, -0.0, subnormals, INT_MIN/INT_MAX, ...) and random ones
  mlir.py           a builder of StableHLO modules in generic op syntax (regions, private funcs)
  specs.py          the op specs: elementwise, shape, reduce, dot_general, control flow; the
                    documented exceptions, element-type rules and KNOWN_PYRT_BUGS
  specs_more.py     the op specs of the rest of the opset (indexing, sort, windows, convolution,
                    fft, linear algebra, normalization, dynamic shapes, collectives,
                    quantization, random numbers, deprecated ops)
  harness.py        running a case on pyrt and on the interpreter, comparing, summarizing
  interp_worker.py  the interpreter's subprocess (self-contained)
  selection.py      the full sweep and the deterministic sample
  test_differential.py  the pytest entry point

Adding an op: one entry in specs.py / specs_more.py, either a family helper call

    unary("stablehlo.sqrt", el.FLOATS + el.COMPLEX, by_type(complex=ulp(4)))

or a generator of cases:

    @spec("stablehlo.my_op")
    def my_op_cases():
        for t in ("f32", "i32"):
            x = el.fill(t, (2, 3), rng_for("my_op" + t))
            f = single("stablehlo.my_op", [((2, 3), t)], [((2, 3), t)], {"attr": i64(1)})
            yield case("stablehlo.my_op", t, f, [x], dtype=t)
"""
