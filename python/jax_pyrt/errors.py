"""Exceptions the runtime raises, each carrying the PJRT error code jaxlib will see.

The C++ layer reads `pjrt_code` from the exception and hands `str(exception)` to the user
unchanged, so every message here should name the thing that went wrong and, where possible,
the fix.
"""

# PJRT_Error_Code values (absl status codes).
INVALID_ARGUMENT = 3
NOT_FOUND = 5
FAILED_PRECONDITION = 9
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14


class PyrtError(Exception):
    """Base class: an error with a PJRT code."""

    pjrt_code = INTERNAL


class UnsupportedError(PyrtError):
    """The program uses an op, type or feature pyrt does not implement (raised at compile time)."""

    pjrt_code = UNIMPLEMENTED


class InvalidProgramError(PyrtError):
    """The program or its options are malformed."""

    pjrt_code = INVALID_ARGUMENT


class ExecutionError(PyrtError):
    """An op failed while the program ran."""

    pjrt_code = INVALID_ARGUMENT


class InternalError(PyrtError):
    """A bug in pyrt: an unexpected exception while compiling or running a program."""

    pjrt_code = INTERNAL


class ProcessError(PyrtError):
    """This process could not join or reach the other processes of a multi-process job."""

    pjrt_code = UNAVAILABLE
