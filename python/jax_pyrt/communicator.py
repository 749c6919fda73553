"""Where the devices of one run of a program meet: collectives, and the gathering of shards.

A run of a program over N devices is N device runs, one per device, each on its own device's
worker thread. They share one `Communicator` (found by the run's id in `runs`), through which
every collective is an `exchange`: each member of a process group brings its value and, once all
have, each gets everyone's values in group order and computes its own result from them (as
XLA:CPU's collectives meet at a rendezvous keyed by the run and the replica group). Waiting
releases the GIL, so NumPy work of other devices goes on meanwhile.

A device whose run fails `fail`s the communicator: every device waiting at, or later reaching, an
exchange raises an error naming the collective and the device that failed, instead of waiting
forever. An exchange that waits longer than `timeout()` seconds fails too.
"""

import os
import threading

from .errors import ExecutionError

_DEFAULT_TIMEOUT = 600.0


def timeout():
    """Seconds a device waits at a collective for the others (PYRT_COLLECTIVE_TIMEOUT)."""
    try:
        return float(os.environ.get("PYRT_COLLECTIVE_TIMEOUT", _DEFAULT_TIMEOUT))
    except ValueError:
        return _DEFAULT_TIMEOUT


class _Slot:
    __slots__ = ("values", "arrived", "taken")

    def __init__(self, size):
        self.values = [None] * size
        self.arrived = 0
        self.taken = 0


class Communicator:
    """The meeting point of the `size` devices of one run."""

    def __init__(self, size):
        self.size = size
        self._cond = threading.Condition()
        self._slots = {}  # exchange key -> _Slot
        self._failure = None  # (device, message) of the first device that failed

    def exchange(self, key, size, index, value, device):
        """Brings `value` as member `index` of a group of `size` meeting under `key` (unique per
        group and per execution of the collective) from device `device`; returns all members'
        values in group order. (The caller's errors name the collective.)"""
        with self._cond:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot(size)
            slot.values[index] = value
            slot.arrived += 1
            if slot.arrived == size:
                self._cond.notify_all()
            limit = timeout()
            waited = self._cond.wait_for(
                lambda: slot.arrived == size or self._failure is not None, limit)
            if slot.arrived < size:
                if self._failure is not None:
                    failed, message = self._failure
                    raise ExecutionError(f"on device {device}: device {failed} failed, so the "
                                         f"collective cannot complete: {message}")
                assert not waited
                raise ExecutionError(f"on device {device}: the other devices of the group did not "
                                     f"arrive within {limit:g} s (PYRT_COLLECTIVE_TIMEOUT)")
            slot.taken += 1
            if slot.taken == size:
                del self._slots[key]
            return slot.values

    def fail(self, device, error):
        """Device `device`'s run failed with `error`: wakes everyone waiting."""
        with self._cond:
            if self._failure is None:
                self._failure = (device, f"{type(error).__name__}: {error}")
            self._cond.notify_all()


class _Runs:
    """The communicators of the runs under way, by run id: made by the first device of a run
    that arrives, dropped when the last one leaves."""

    def __init__(self):
        self._lock = threading.Lock()
        self._runs = {}  # run id -> [communicator, devices still in the run]

    def join(self, run_id, size):
        with self._lock:
            entry = self._runs.get(run_id)
            if entry is None:
                entry = self._runs[run_id] = [Communicator(size), size]
            return entry[0]

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
