"""Just enough of the protobuf wire format to read the two xla protos pyrt inspects, and to
write the one it produces (the XSpace of a profiler trace, xspace.py).

jaxlib parses CompileOptionsProto for us, but its parser silently returns defaults on malformed
bytes, and DeviceAssignment exposes no accessor for its device ids; hence this reader.
"""

import struct


def varint(data, i):
    """The varint at data[i:], and the index after it."""
    shift = value = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def fields(data):
    """Yields (field number, wire type, value) for each field; raises ValueError if malformed.
    Values are ints (varint and fixed) or bytes (length-delimited)."""
    i, n = 0, len(data)
    while i < n:
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, i = varint(data, i)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = int.from_bytes(data[i:i + size], "little"), i + size
        elif wire == 2:
            length, i = varint(data, i)
            value, i = bytes(data[i:i + length]), i + length
        else:
            raise ValueError(f"invalid wire type {wire}")
        if i > n:
            raise ValueError("truncated field")
        yield number, wire, value


def packed_varints(value):
    """The ints of a packed repeated varint field."""
    out, i = [], 0
    while i < len(value):
        x, i = varint(value, i)
        out.append(x)
    return out


def device_assignment_ids(proto):
    """Device ids of a serialized xla.DeviceAssignmentProto, replica-major."""
    replicas = computations = 0
    columns = []  # per computation: the device of each replica
    for number, _, value in fields(proto):
        if number == 1:
            replicas = value
        elif number == 2:
            computations = value
        elif number == 3:
            ids = []
            for _, wire, v in fields(value):
                ids.extend([v] if wire == 0 else packed_varints(v))
            columns.append(ids)
    return [columns[p][r] for r in range(replicas) for p in range(computations)]


# -- writing

def _varint_bytes(value):
    value &= (1 << 64) - 1  # negative int64s are ten-byte varints
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def int_field(number, value):
    """A varint field (int64, uint64, bool, enum)."""
    return _varint_bytes(number << 3) + _varint_bytes(value)


def double_field(number, value):
    return _varint_bytes(number << 3 | 1) + struct.pack("<d", value)


def bytes_field(number, value):
    """A length-delimited field: bytes, a string (UTF-8) or an encoded message."""
    if isinstance(value, str):
        value = value.encode()
    return _varint_bytes(number << 3 | 2) + _varint_bytes(len(value)) + value
