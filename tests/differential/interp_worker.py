"""Runs test cases on jaxlib's StableHLO reference interpreter; started by harness.py.

    python interp_worker.py CASES RESULTS

CASES is a pickle of [(key, portable artifact bytes, [(input attribute text), ...]), ...]. For
each case, in order, one pickled record is appended to RESULTS and flushed before the next case
starts: (key, "ok", [(dtype name, shape, raw bytes), ...]) or (key, "error", message). The
interpreter aborts the whole process on ops it does not implement ("LLVM ERROR: Unsupported op"),
so the parent reads how far we got and pins the culprit. Self-contained: only numpy and jaxlib.
"""

import pickle
import sys


def main(cases_path, results_path):
    import numpy as np
    from jaxlib.mlir import ir
    from jaxlib.mlir._mlir_libs import _stablehlo

    with open(cases_path, "rb") as f:
        cases = pickle.load(f)
    ctx = ir.Context()
    with open(results_path, "ab") as out:
        for key, artifact, inputs in cases:
            try:
                with ctx, ir.Location.unknown():
                    module = _stablehlo.deserialize_portable_artifact(ctx, artifact)
                    attrs = [ir.Attribute.parse(text) for text in inputs]
                    results = _stablehlo.eval_module(module, attrs)
                    arrays = [np.array(r) for r in results]
                record = (key, "ok", [(a.dtype.str, a.shape, a.tobytes()) for a in arrays])
            except Exception as e:  # the interpreter's "interpreter failed", a binding error...
                record = (key, "error", f"{type(e).__name__}: {e}"[:2000])
            pickle.dump(record, out)
            out.flush()


if __name__ == "__main__":
    main(*sys.argv[1:3])
