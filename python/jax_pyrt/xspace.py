"""A profiler trace as jax.profiler stores it: a serialized tensorflow.profiler.XSpace
(tsl/profiler/protobuf/xplane.proto), written field by field (protobuf.py).

An XSpace holds planes (one per device here); a plane holds lines (rows of the trace viewer),
and a line holds events that name an entry of the plane's event metadata and carry stats, each
naming an entry of the plane's stat metadata.
"""

from . import protobuf as pb


class Plane:
    """One plane: `line(name)` gives a line to `add` events to."""

    def __init__(self, id, name):
        self.id, self.name = id, name
        self.lines = {}  # name -> [events: (name, start_ns, end_ns, {stat: value})]
        self.event_ids, self.stat_ids = {}, {}

    def line(self, name):
        return self.lines.setdefault(name, [])

    def encode(self):
        lines = []
        for line_id, (name, events) in enumerate(self.lines.items(), 1):
            if not events:
                continue
            start = min(e[1] for e in events)
            body = [pb.int_field(1, line_id), pb.bytes_field(2, name),
                    pb.int_field(3, start), pb.int_field(10, line_id)]
            body += [pb.bytes_field(4, self._event(e, start)) for e in events]
            lines.append(pb.bytes_field(3, b"".join(body)))
        metadata = [pb.bytes_field(4, pb.int_field(1, i) + pb.bytes_field(
                        2, pb.int_field(1, i) + pb.bytes_field(2, name)))
                    for name, i in self.event_ids.items()]
        metadata += [pb.bytes_field(5, pb.int_field(1, i) + pb.bytes_field(
                         2, pb.int_field(1, i) + pb.bytes_field(2, name)))
                     for name, i in self.stat_ids.items()]
        return b"".join([pb.int_field(1, self.id), pb.bytes_field(2, self.name)] + lines +
                        metadata)

    def _event(self, event, line_start):
        name, start, end, stats = event
        metadata = self.event_ids.setdefault(name, len(self.event_ids) + 1)
        body = [pb.int_field(1, metadata), pb.int_field(2, (start - line_start) * 1000),
                pb.int_field(3, max(end - start, 0) * 1000)]
        for key, value in stats.items():
            stat = pb.int_field(1, self.stat_ids.setdefault(key, len(self.stat_ids) + 1))
            if isinstance(value, str):
                stat += pb.bytes_field(5, value)
            elif isinstance(value, float):
                stat += pb.double_field(2, value)
            else:
                stat += pb.int_field(4, int(value))
            body.append(pb.bytes_field(4, stat))
        return b"".join(body)


def encode(planes):
    """The serialized XSpace of `planes`."""
    return b"".join(pb.bytes_field(1, plane.encode()) for plane in planes)
