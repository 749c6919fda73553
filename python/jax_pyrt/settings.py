"""pyrt's settings from the environment (README, "Using pyrt"), read each time they are used,
so that they may change while a process runs."""

import os


def seconds(name, default):
    """The duration in seconds `name` sets; `default` if it is unset or not a number."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def flag(name):
    """Whether `name` is set to something other than "", "0", "false" or "False"."""
    return os.environ.get(name, "0") not in ("", "0", "false", "False")
