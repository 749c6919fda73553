"""Where the devices of one run of a program meet: collectives, and the gathering of shards.

A run of a program over N devices is N device runs, one per device, each on its own device's
worker thread. They share one `Communicator` (found by the run's id in `runs`), through which
every collective is an `exchange`: each member of a process group brings its value and, once all
have, each gets everyone's values in group order and computes its own result from them (as
XLA:CPU's collectives meet at a rendezvous keyed by the run and the replica group). Waiting
releases the GIL, so NumPy work of other devices goes on meanwhile.

When the program's devices span several processes (jax.distributed), each process runs its own
devices' part, and the run's `Crossing` reaches the others: once this process's members of a
group have all arrived, the last one to arrive trades their values for the other processes'
(jax_pyrt.mpi) and hands everyone the whole group's. Exchanges are matched across processes by
the run's devices, the run's place among the runs over those devices, and the exchange's key,
all of which every process of the job computes alike.

A device whose run fails `fail`s the communicator: every device waiting at, or later reaching, an
exchange raises an error naming the collective and the device that failed, instead of waiting
forever; the other processes of the run are told too. An exchange that waits longer than
`timeout()` seconds for this process's devices fails too (and `processes.timeout()` for another
process's).
"""

import collections
import threading
import time

from . import processes, settings
from .errors import ExecutionError


def timeout():
    """Seconds a device waits at a collective for the others (PYRT_COLLECTIVE_TIMEOUT)."""
    return settings.seconds("PYRT_COLLECTIVE_TIMEOUT", 600.0)


class _Slot:
    __slots__ = ("values", "arrived", "taken", "done", "error")

    def __init__(self, size):
        self.values = [None] * size
        self.arrived = 0
        self.taken = 0
        self.done = False  # every member's value is in
        self.error = None  # why the other processes' values could not be had


class Crossing:
    """How the exchanges of one run reach the group members in other processes: the job, the
    run's id shared by all processes, and the process of each member (replica, partition)."""

    def __init__(self, job, run, member_processes):
        self.job = job
        self.run = run
        self.member_processes = member_processes
        self.peers = sorted(set(member_processes.values()) - {job.index})


class Communicator:
    """The meeting point of the `size` devices of one run in this process (and, through
    `crossing`, of the run's devices in other processes)."""

    def __init__(self, size, crossing=None):
        self.size = size
        self.crossing = crossing
        self._cond = threading.Condition()
        self._slots = {}  # exchange key -> _Slot
        self._failure = None  # (device, message) of the first device that failed

    def exchange(self, key, group, index, value, device):
        """Brings `value` as member `index` of `group` (the members' (replica, partition), in
        group order) meeting under `key` (unique per group and per execution of the
        collective) from device `device`; returns all members' values in group order. (The
        caller's errors name the collective.)"""
        crossing = self.crossing
        if crossing is None:
            mine = range(len(group))
        else:
            me = crossing.job.index
            mine = [i for i, member in enumerate(group)
                    if crossing.member_processes[member] == me]
        with self._cond:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot(len(group))
            slot.values[index] = value
            slot.arrived += 1
            fetch = False
            if slot.arrived == len(mine):
                fetch = len(mine) < len(group)
                slot.done = not fetch
                self._cond.notify_all()
        if fetch:
            self._fetch(key, group, mine, slot, device)
        with self._cond:
            limit = timeout()
            deadline = time.monotonic() + limit
            while not (slot.done or slot.error or self._failure):
                left = deadline - time.monotonic()
                if slot.arrived < len(mine) and left <= 0:
                    raise ExecutionError(f"on device {device}: the other devices of the group "
                                         f"did not arrive within {limit:g} s "
                                         "(PYRT_COLLECTIVE_TIMEOUT)")
                self._cond.wait(max(min(left, 1.0), 0.01))
            if not slot.done:
                if slot.error is not None:
                    raise ExecutionError(f"on device {device}: {slot.error}")
                failed, message = self._failure
                raise ExecutionError(f"on device {device}: device {failed} failed, so the "
                                     f"collective cannot complete: {message}")
            slot.taken += 1
            if slot.taken == len(mine):
                del self._slots[key]
            return slot.values

    def _fetch(self, key, group, mine, slot, device):
        """Trades this process's members' values for those of the group's other processes."""
        crossing = self.crossing
        member_processes = crossing.member_processes
        peers = sorted({member_processes[m] for m in group} - {crossing.job.index})
        deadline = time.monotonic() + processes.timeout()
        try:
            theirs = crossing.job.transport.exchange(
                crossing.run, key, peers, {i: slot.values[i] for i in mine}, deadline)
        except ExecutionError as e:
            with self._cond:
                slot.error = str(e)
                self._cond.notify_all()
            return
        with self._cond:
            for values in theirs.values():
                for i, value in values.items():
                    slot.values[i] = value
            slot.done = True
            self._cond.notify_all()

    def fail(self, device, error):
        """Device `device`'s run failed with `error`: wakes everyone waiting, and tells the
        other processes of the run."""
        with self._cond:
            first = self._failure is None
            if first:
                self._failure = (device, f"{type(error).__name__}: {error}")
            self._cond.notify_all()
        if first and self.crossing is not None:
            crossing = self.crossing
            crossing.job.transport.fail(crossing.run, crossing.peers,
                                        f"device {device}: {self._failure[1]}")


class _Runs:
    """The communicators of the runs under way, by run id: made by the first device of a run
    that arrives, dropped when the last one leaves."""

    def __init__(self):
        self._lock = threading.Lock()
        self._runs = {}  # run id -> [communicator, devices still in the run]
        # Runs over each set of devices that spans processes: the nth here is the nth in every
        # process, since all processes of a job launch its programs in the same order, and runs
        # over the same devices reach this registry in launch order (each takes all of them
        # here, and their queues keep that order). Not by program: a program's text differs
        # between processes (a host callback's is the address of a Python object).
        self._placement_runs = collections.Counter()

    def join(self, run_id, size, program):
        with self._lock:
            entry = self._runs.get(run_id)
            if entry is None:
                entry = self._runs[run_id] = [Communicator(size, self._crossing(program)), size]
            return entry[0]

    def _crossing(self, program):
        job = processes.job
        if job is None:
            return None
        members = {divmod(i, program.num_partitions): job.device_processes[device]
                   for i, device in enumerate(program.device_ids)}
        if set(members.values()) == {job.index}:
            return None
        placement = (program.num_partitions, tuple(program.device_ids))
        self._placement_runs[placement] += 1
        return Crossing(job, (placement, self._placement_runs[placement]), members)

    def leave(self, run_id):
        with self._lock:
            entry = self._runs.get(run_id)
            if entry is not None:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._runs[run_id]

    def __len__(self):
        with self._lock:
            return len(self._runs)


runs = _Runs()
