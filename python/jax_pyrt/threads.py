"""The one thread pool of pyrt's large kernels, and the kernels it splits by rows.

NumPy releases the GIL inside its loops, so a kernel run on disjoint parts of its operands in
several threads uses several cores. One pool, sized to the machine (PYRT_THREADS, default
every core), serves every device, so N devices running at once do not oversubscribe the cores.
The calling thread takes a share itself and waits for the rest without the GIL. Processes of one
job on the same machine split its cores (`share_cores`), BLAS's threads included.
"""

import concurrent.futures
import functools
import os
import threading

import numpy as np

# Kernels whose split operands hold fewer elements run whole: threads would not pay.
SPLIT_ELEMENTS = 1 << 18


_sharing = 1  # processes of the job on this machine (share_cores)


def threads():
    """How many threads large kernels use (PYRT_THREADS, default: every core this process may
    run on, which in a container can be fewer than the machine has, split between the
    processes of a job on this machine)."""
    return _threads(os.environ.get("PYRT_THREADS", ""), _sharing)


@functools.lru_cache(maxsize=8)  # asked on every fused call: no system call each time
def _threads(setting, sharing):
    if setting.isdigit():
        return max(1, int(setting))
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0)) or 1
    else:
        cores = os.cpu_count() or 1
    return max(1, cores // sharing)


def share_cores(processes):
    """This process shares the machine with `processes - 1` other processes of its job: large
    kernels and BLAS (through threadpoolctl, when installed) use its part of the cores. BLAS
    threads that spin waiting for work on cores another process computes on made a 2-process
    step on 2 cores several times slower."""
    global _sharing
    _sharing = max(1, processes)
    if "PYRT_THREADS" not in os.environ and "OPENBLAS_NUM_THREADS" not in os.environ:
        try:
            import threadpoolctl
        except ImportError:
            return
        threadpoolctl.threadpool_limits(limits=threads(), user_api="blas")


_pool = None
_pool_lock = threading.Lock()
_NAME = "pyrt-pool"


def pool():
    """The thread pool every device shares (made on first use)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max(1, threads() - 1),
                                                          thread_name_prefix=_NAME)
    return _pool


def run_shares(work, shares):
    """work(share) for each share, the first on this thread and the others on the pool, each
    under NumPy's "ignore" error state (it is per thread: overflow and x / 0 are defined
    results); [results] in order. The first failure raises once every share has ended."""
    def guarded(share):
        with np.errstate(all="ignore"):
            return work(share)

    if threading.current_thread().name.startswith(_NAME):  # a share never waits on the pool
        return [guarded(share) for share in shares]
    futures = [pool().submit(guarded, share) for share in shares[1:]]
    try:
        first = guarded(shares[0])
    except BaseException:
        concurrent.futures.wait(futures)  # no share may outlive the call (waits without the GIL)
        raise
    return [first] + [f.result() for f in futures]


def by_rows(make, rows, split, elements):
    """A kernel `kernel(regions, *args)` that runs kernels made by `make(row_count)` on ranges
    of the first axis of the first `split` operands (the others are passed whole) and stacks
    their results along the first axis; `make(rows)` itself where splitting does not pay. Only
    for ops whose results' rows depend on the same rows of those operands alone, so each row's
    value is the one the whole kernel gives (the same NumPy calls on the same row data)."""
    count = min(threads(), rows // 2)
    if count < 2 or elements < SPLIT_ELEMENTS:
        return make(rows)
    bounds = [rows * k // count for k in range(count + 1)]
    shares = list(zip(bounds[:-1], bounds[1:]))
    kernels = {stop - start: None for start, stop in shares}
    for extent in kernels:
        kernels[extent] = make(extent)

    def kernel(regions, *args):
        def work(share):
            start, stop = share
            part = [a[start:stop] for a in args[:split]] + list(args[split:])
            return kernels[stop - start](regions, *part)

        parts = run_shares(work, shares)
        return tuple(np.concatenate(pieces) for pieces in zip(*parts))

    return kernel
