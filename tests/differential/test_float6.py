"""f6E2M3FN and f6E3M2FN inside programs, against the StableHLO reference interpreter (XLA:CPU
aborts on f6 constants, and PJRT cannot transfer f6 arrays, so they can only live inside a
program): constants, conversions both ways, arithmetic and comparisons, bit-exact."""

import numpy as np
import pytest

from differential.harness import Interpreter, _artifact, dense_literal
from jax_pyrt.errors import UnsupportedError
from jax_pyrt.executable import Executable

# No inf or NaN: f6 has neither, and, as for f4E2M1FN (differential/specs.py), pyrt saturates
# them (ml_dtypes, XLA's rule for f4) where the interpreter maps them to 0.
X = np.array([0.0, -0.0, 0.1, 0.3, 1.0, -1.3, 2.6, 3.3, 7.4, 7.6, 28.0, 29.0, -31.0, 100.0,
              -100.0, 0.5, 0.2, 0.0625, 0.03, 1e-3], np.float32)

PROGRAM = """
func.func @main(%x: tensor<20xf32>) -> (tensor<20xf32>, tensor<20xf32>, tensor<20xi1>,
                                        tensor<4xf32>, tensor<20xi32>) {{
  %a = stablehlo.convert %x : (tensor<20xf32>) -> tensor<20x{t}>
  %b = stablehlo.add %a, %a : tensor<20x{t}>
  %c = stablehlo.multiply %b, %a : tensor<20x{t}>
  %d = stablehlo.negate %c : tensor<20x{t}>
  %lt = stablehlo.compare LT, %a, %d : (tensor<20x{t}>, tensor<20x{t}>) -> tensor<20xi1>
  %k = stablehlo.constant dense<[1.0, -2.5, 0.125, 3.0]> : tensor<4x{t}>
  %back = stablehlo.convert %b : (tensor<20x{t}>) -> tensor<20xf32>
  %neg = stablehlo.convert %d : (tensor<20x{t}>) -> tensor<20xf32>
  %kf = stablehlo.convert %k : (tensor<4x{t}>) -> tensor<4xf32>
  %i = stablehlo.convert %a : (tensor<20x{t}>) -> tensor<20xi32>
  return %back, %neg, %lt, %kf, %i : tensor<20xf32>, tensor<20xf32>, tensor<20xi1>,
                                     tensor<4xf32>, tensor<20xi32>
}}
"""


@pytest.mark.parametrize("element", ["f6E2M3FN", "f6E3M2FN"])
def test_float6_inside_programs(element):
    artifact = _artifact(PROGRAM.format(t=element))
    executable = Executable(artifact, b"")
    outputs = executable.run([X.view(np.uint8)])
    results = Interpreter(workers=1).run([(element, artifact, [dense_literal(X, "f32")])])
    status, expected = results[element]
    assert status == "ok", expected
    assert len(outputs) == len(expected)
    for out, (dtype, shape, raw) in zip(outputs, expected):
        assert np.asarray(out).tobytes() == raw, (dtype, shape, np.frombuffer(raw, dtype),
                                                  np.frombuffer(np.asarray(out).tobytes(), dtype))


def test_float6_at_the_entry_point_is_refused():
    text = "func.func @main(%x: tensor<2xf6E2M3FN>) -> tensor<2xf6E2M3FN> {\n" \
           "  return %x : tensor<2xf6E2M3FN>\n}"
    with pytest.raises(UnsupportedError, match="PJRT cannot transfer"):
        Executable(_artifact(text), b"")
