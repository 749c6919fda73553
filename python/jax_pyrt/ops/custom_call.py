"""Custom calls (spec: custom_call): dispatched through a registry of targets."""

from . import op  # noqa: F401
