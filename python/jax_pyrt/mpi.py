"""Collectives across processes, on MPI (mpi4py): the transport between the processes of a job.

Connecting (`connect`). Under `mpirun -n N`, MPI.COMM_WORLD holds the N processes; pyrt uses it,
its ranks renumbered to jax.distributed's process indices. Processes started on their own (each
its own COMM_WORLD of one, as JAX's multi-process tests start them) join through an MPI port:
process 0 opens one and publishes its name in jax.distributed's key-value store, and the others
connect to it in index order, each merged into the communicator of those before it.

Messages (`Transport`). In one exchange of a collective, every process with members in the
group sends each other such process the values its own devices brought: one pickle (protocol 5)
whose arrays travel out of band, as MPI messages read from and written into NumPy memory without
a copy. One receiving thread per process takes every message and files it under its exchange,
where the thread that needs it finds it. A process whose run fails tells the others, whose
exchanges of that run then fail at once; a process that neither sends nor fails within
`processes.timeout()` seconds is taken for dead, and the exchange fails naming it.
"""

import atexit
import pickle
import threading
import time

from .errors import ExecutionError, ProcessError

_HEADER, _DATA = 1, 2
_NOTICE_SECONDS = 2.0  # a live process takes a message at once: its receiving thread waits
# How often the receiving thread looks for messages: often while an exchange waits, then less
# and less. (A blocking MPI receive would spin on a core for as long as it waits.)
_BUSY_PAUSE, _IDLE_PAUSE = 2e-4, 5e-3
_INSTALL = ("pyrt needs MPI to run JAX over several processes: install it with "
            "`pip install 'jax-pyrt[mpi]'` (mpi4py and MPICH's wheel); see docs/multi-process.md")


def _mpi():
    try:
        import mpi4py
    except ImportError:
        raise ProcessError(f"pyrt: mpi4py is not installed. {_INSTALL}") from None
    # pyrt finalizes MPI itself at exit, and not at all once a peer has failed (MPI_Finalize
    # would wait for it forever).
    mpi4py.rc.finalize = False
    mpi4py.rc.thread_level = "multiple"  # device threads and the receiving thread call MPI
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as e:  # no MPI library found
        raise ProcessError(f"pyrt: mpi4py cannot load an MPI library ({e}). {_INSTALL}") from None
    if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
        raise ProcessError("pyrt: the MPI library does not support MPI_THREAD_MULTIPLE, which "
                           f"pyrt's device threads need. {_INSTALL}")
    return MPI


def connect(index, count, kv_get, kv_put, wait_ms):
    """The transport of process `index` of `count`, over COMM_WORLD or joined through a port."""
    MPI = _mpi()
    world = MPI.COMM_WORLD
    if world.Get_size() == count:
        comm = world
    elif world.Get_size() == 1:
        comm = _join_through_port(MPI, index, count, kv_get, kv_put, wait_ms)
    else:
        raise ProcessError(f"pyrt: MPI's COMM_WORLD has {world.Get_size()} processes, but "
                           f"jax.distributed has {count}; launch as many of each")
    return Transport(MPI, comm.Split(0, index))  # ranks are jax.distributed's process indices


def _join_through_port(MPI, index, count, kv_get, kv_put, wait_ms):
    try:
        if index == 0:
            port = MPI.Open_port()
            kv_put("pyrt/mpi/port", port.encode())
            comm = MPI.COMM_SELF
        else:
            port = kv_get("pyrt/mpi/port", wait_ms).decode()
            if index > 1:  # one at a time, in index order
                kv_get(f"pyrt/mpi/joined/{index - 1}", wait_ms)
            comm = MPI.COMM_SELF.Connect(port, root=0).Merge(high=True)
            kv_put(f"pyrt/mpi/joined/{index}", b"1")
        while comm.Get_size() < count:  # everyone joined so far takes in the next one
            comm = comm.Accept(port, root=0).Merge(high=False)
        if index == 0:
            MPI.Close_port(port)
        return comm
    except TimeoutError as e:
        raise ProcessError(f"pyrt: process {index} could not join the MPI communicator of the "
                           f"job's {count} processes: {e}") from None


class Transport:
    """Sends and receives the values of exchanges between this process and the others."""

    def __init__(self, MPI, comm):
        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self._send_lock = threading.Lock()  # one message's header and arrays go out together
        self._cond = threading.Condition()
        self._inbox = {}  # (run, key, process) -> (pickle, out-of-band buffers)
        self._failed = {}  # run -> (process, message): that process's part of the run failed
        self._abandoned = set()  # runs that failed here or elsewhere: their values are dropped
        self._gone = {}  # process -> why, as jax.distributed reports it
        self._silent = set()  # processes that let an exchange time out
        self._broken = None  # why the receiving thread stopped (an MPI error), if it did
        self._healthy = True
        self._waiting = 0  # exchanges waiting for values
        self._wake = threading.Event()  # set when an exchange starts waiting
        self._receiver = threading.Thread(target=self._receive, name="pyrt-mpi-receiver",
                                          daemon=True)
        self._receiver.start()
        atexit.register(self.close)

    def exchange(self, run, key, peers, mine, deadline):
        """Sends `mine` to every process in `peers` and returns {process: its value} from each,
        for exchange `key` of run `run`."""
        for peer in peers:
            self._send(peer, ("value", run, key), mine, deadline)
        with self._cond:
            self._waiting += 1
            self._wake.set()
            try:
                return {peer: self._take(run, key, peer, deadline) for peer in peers}
            finally:
                self._waiting -= 1

    def _take(self, run, key, peer, deadline):
        """`peer`'s value of an exchange, once it is in; under self._cond."""
        while (run, key, peer) not in self._inbox:
            if run in self._failed:
                process, message = self._failed[run]
                raise ExecutionError(f"process {process} failed, so the collective cannot "
                                     f"complete: {message}")
            if peer in self._gone:
                self._healthy = False
                raise ExecutionError(f"process {peer} {self._gone[peer]} (reported by "
                                     "jax.distributed), so the collective cannot complete")
            if self._broken is not None:
                raise ExecutionError(f"pyrt cannot receive from other processes any more: "
                                     f"{self._broken}")
            left = deadline - time.monotonic()
            if left <= 0:
                self._healthy = False
                self._silent.add(peer)
                raise ExecutionError(f"process {peer} did not send its values within the time "
                                     "allowed (PYRT_PROCESS_TIMEOUT); it may have died or be "
                                     "stuck")
            self._cond.wait(min(left, 1.0))
        data, buffers = self._inbox.pop((run, key, peer))
        return pickle.loads(data, buffers=buffers)

    def fail(self, run, peers, message):
        """Tells `peers` that this process's part of `run` failed. Returns once each has the
        message (or did not take it within a few seconds: it is gone), so that it arrives even
        if this process exits next."""
        self._abandon(run)
        deadline = time.monotonic() + _NOTICE_SECONDS
        for peer in peers:
            if peer in self._silent or peer in self._gone:
                continue  # it would not listen
            try:
                self._send(peer, ("failed", run, message), None, deadline, synchronous=True)
            except ExecutionError:
                pass  # that peer is gone too

    def _abandon(self, run):
        """Drops the values of failed run `run`, now and when more come."""
        with self._cond:
            self._abandoned.add(run)
            for entry in [entry for entry in self._inbox if entry[0] == run]:
                del self._inbox[entry]

    def process_failed(self, process, why):
        """jax.distributed reports `process` gone: exchanges waiting for it fail now."""
        with self._cond:
            self._gone.setdefault(process, why)
            self._cond.notify_all()

    def _send(self, peer, header, value, deadline, synchronous=False):
        """Sends `value` to `peer`; returns when MPI is done with it (when `peer` has it, if
        `synchronous`)."""
        MPI = self._MPI
        buffers = []
        data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        raws = [b.raw() for b in buffers]
        send = self.comm.issend if synchronous else self.comm.isend
        with self._send_lock:
            requests = [send((header, data, [r.nbytes for r in raws]), peer, _HEADER)]
            requests += [self.comm.Isend([r, MPI.BYTE], peer, _DATA) for r in raws]
        pause = 1e-5
        while not MPI.Request.Testall(requests):
            if time.monotonic() > deadline or peer in self._gone:
                self._healthy = False
                self._silent.add(peer)
                raise ExecutionError(f"process {peer} did not take the values sent to it within "
                                     "the time allowed (PYRT_PROCESS_TIMEOUT); it may have died "
                                     "or be stuck")
            time.sleep(pause)
            pause = min(pause * 2, _BUSY_PAUSE)

    def _receive(self):
        try:
            self._receive_messages()
        except Exception as e:  # MPI failed: the exchanges waiting must not wait for nothing
            with self._cond:
                self._healthy = False
                self._broken = f"{type(e).__name__}: {e}"
                self._cond.notify_all()

    def _receive_messages(self):
        MPI = self._MPI
        status = MPI.Status()
        pause = _BUSY_PAUSE
        while True:
            message = self.comm.improbe(MPI.ANY_SOURCE, _HEADER, status)
            if message is None:
                pause = _BUSY_PAUSE if self._waiting else min(pause * 2, _IDLE_PAUSE)
                if self._wake.wait(pause):
                    self._wake.clear()
                    pause = _BUSY_PAUSE
                continue
            header, data, sizes = message.recv()
            source = status.Get_source()
            buffers = [bytearray(n) for n in sizes]
            # All at once: each blocking call would wait for the GIL again when it returns.
            MPI.Request.Waitall([self.comm.Irecv([buffer, MPI.BYTE], source, _DATA)
                                 for buffer in buffers])
            kind, run, rest = header
            with self._cond:
                if kind == "stop":
                    return
                if kind == "failed":
                    self._failed.setdefault(run, (source, rest))
                    self._abandon(run)
                elif run not in self._abandoned:
                    self._inbox[(run, rest, source)] = (data, buffers)
                self._cond.notify_all()

    def close(self):
        """At exit: stops the receiving thread, then finalizes MPI unless a peer failed."""
        try:
            self._send(self.rank, ("stop", None, None), None, time.monotonic() + 5)
            self._receiver.join(5)
        except Exception:
            self._healthy = False
        if self._healthy and not self._failed and not self._receiver.is_alive():
            self._MPI.Finalize()
