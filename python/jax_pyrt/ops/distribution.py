"""Distribution and effects (spec: replica_id, partition_id, collectives, after_all, create_token, infeed, outfeed, send, recv)."""

from . import op  # noqa: F401
