"""The processes of a multi-process job (jax.distributed): which process holds which device, and
how this process reaches the others.

`jax.distributed.initialize()` makes jaxlib create pyrt's client with this process's index, the
number of processes and jax.distributed's key-value store. Then `join` publishes how many devices
this process has (and on which machine), reads every other process's, numbers all devices of the
job (process 0's first, then process 1's, ...), splits the machine's cores between the job's
processes on it (threads.share_cores), and connects the MPI communicator that collectives cross
processes through (jax_pyrt.mpi). jaxlib trusts this topology: jax.devices() lists every device
of the job, jax.local_devices() this process's.
"""

import json
import socket

from . import settings, threads
from .errors import ProcessError


def timeout():
    """Seconds this process waits for another before it takes it for dead or stuck
    (PYRT_PROCESS_TIMEOUT): at joining, and for the values of a collective once this process's
    own devices are all there."""
    return settings.seconds("PYRT_PROCESS_TIMEOUT", 30.0)


class Job:
    """This process's place in the job: its index, the number of processes, the process of each
    device (by id), and the transport to the others."""

    def __init__(self, index, count, device_processes, transport):
        self.index = index
        self.count = count
        self.device_processes = device_processes
        self.transport = transport


job = None  # set once by join(); None in a single-process run


def join(index, count, local_devices, kv_get, kv_put):
    """Called from PJRT_Client_Create (through _bridge). Returns every device of the job as
    (id, process index, index among its process's devices), in id order."""
    global job
    from . import mpi  # only multi-process runs need MPI

    wait_ms = int(timeout() * 1000)
    host = socket.gethostname()
    kv_put(f"pyrt/devices/{index}",
           json.dumps({"devices": local_devices, "host": host}).encode())
    counts, hosts = [], []
    for process in range(count):
        try:
            entry = json.loads(kv_get(f"pyrt/devices/{process}", wait_ms))
            counts.append(entry["devices"])
            hosts.append(entry["host"])
        except TimeoutError:
            raise ProcessError(
                f"pyrt: process {process} of {count} did not publish its devices within "
                f"{timeout():g} s (PYRT_PROCESS_TIMEOUT); is it running pyrt too?") from None
    threads.share_cores(hosts.count(host))
    places = []
    for process, n in enumerate(counts):
        places += [(len(places) + i, process, i) for i in range(n)]
    try:
        transport = mpi.connect(index, count, kv_get, kv_put, wait_ms)
    except ProcessError:
        raise
    except Exception as e:  # MPI's own errors
        raise ProcessError(f"pyrt: process {index} could not connect to the job's other "
                           f"processes over MPI: {type(e).__name__}: {e}") from e
    job = Job(index, count, {device: process for device, process, _ in places}, transport)
    return places
