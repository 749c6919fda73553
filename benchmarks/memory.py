"""Peak memory of a train step, pyrt vs XLA:CPU, as ratios.

    python benchmarks/memory.py            # MLP step, batch 4096
    python benchmarks/memory.py --quick    # batch 512 (CI smoke)

XLA:CPU reports no memory_stats, so both backends are measured the same way: each in a fresh
process, after a warm-up step (compilation excluded) and after handing freed memory back to
the system (malloc_trim), the process's peak resident memory is reset (/proc/self/clear_refs)
and read back (VmHWM) after a few steps. The number is that peak above the resident memory
before the steps: what the steps themselves need at most.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = """
import ctypes, json, sys
sys.path.insert(0, {here!r})
import jax
from run import mlp

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))

params, x, y, step = mlp({batch})
device = jax.devices({platform!r})[0]
params, x, y = jax.device_put((params, x, y), device)
params = jax.block_until_ready(step(params, x, y))  # compile and warm up
ctypes.CDLL("libc.so.6").malloc_trim(0)  # memory freed so far goes back to the system
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
except OSError:  # not allowed here: the peak then includes compiling
    print("warning: cannot reset the peak (/proc/self/clear_refs)", file=sys.stderr)
before = status("VmRSS")
for _ in range(3):
    params = jax.block_until_ready(step(params, x, y))
print(json.dumps(status("VmHWM") - before))
"""


def peak(platform, batch, environment=None):
    env = dict(os.environ, **(environment or {}))
    env["JAX_PLATFORMS"] = "pyrt,cpu" if platform == "pyrt" else "cpu"
    code = CHILD.format(here=HERE, batch=batch, platform=platform)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    batch = 512 if args.quick else 4096
    cpu = peak("cpu", batch)
    pyrt = peak("pyrt", batch)
    unfused = peak("pyrt", batch, {"PYRT_FUSION": "0"})
    print(f"MLP train step (batch {batch}, 784-512-512-10), peak memory above the steps' start:")
    print(f"  XLA:CPU {cpu / 2**20:8.1f} MiB")
    print(f"  pyrt    {pyrt / 2**20:8.1f} MiB   {pyrt / max(cpu, 1):5.2f}x")
    print(f"  pyrt without fusion {unfused / 2**20:8.1f} MiB   {unfused / max(cpu, 1):5.2f}x")


if __name__ == "__main__":
    main()
