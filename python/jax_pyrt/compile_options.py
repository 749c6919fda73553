"""Compile options: parsing the serialized xla.CompileOptionsProto and checking its overrides.

`jax.jit(f, compiler_options={...})` reaches a backend as `env_option_overrides` (name, value)
pairs inside the options. XLA:CPU applies each one to its DebugOptions and rejects what it cannot
apply, at compile time: an unknown name is "No such compile option: 'name'", a value of the wrong
type "While setting option name, 'value' is not a valid int32 value." pyrt has no use for
DebugOptions, but accepts and rejects exactly the same overrides, with the same messages: the
names and types come from the DebugOptions descriptor compiled into jaxlib itself, so they are
the ones XLA:CPU knows in this very jaxlib.
"""

import functools
import math
import mmap
import os
import re

import jaxlib
from jaxlib import _jax

from . import protobuf
from .errors import InvalidProgramError


def parse(options):
    """A serialized CompileOptionsProto -> jaxlib's CompileOptions, with its overrides checked."""
    if not options:
        return _jax.CompileOptions()
    try:
        # jaxlib's parser returns defaults on malformed bytes: validate the wire format first.
        for _ in protobuf.fields(options):
            pass
        parsed = _jax.CompileOptions.ParseFromString(options)
    except Exception as e:
        raise InvalidProgramError(f"pyrt could not parse the compile options "
                                  f"(expected a serialized xla.CompileOptionsProto): {e}") from None
    for name, value in parsed.env_option_overrides:
        check_override(name, value)
    return parsed


# FieldDescriptorProto.type -> protobuf's type name (FieldDescriptor::TypeName).
_TYPE_NAMES = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64",
               7: "fixed32", 8: "bool", 9: "string", 10: "group", 11: "message", 12: "bytes",
               13: "uint32", 14: "enum", 15: "sfixed32", 16: "sfixed64", 17: "sint32",
               18: "sint64"}
_INT32 = {"int32", "sfixed32", "sint32"}
_INT64 = {"int64", "sfixed64", "sint64"}
_FLOAT32_MAX = 3.4028234663852886e38
_INT_TEXT = re.compile(r"\s*[-+]?\d+\s*")  # absl::SimpleAtoi: decimal, surrounding space allowed


class Field:
    def __init__(self, name, type_name, repeated, enum_values):
        self.name = name
        self.type = type_name
        self.repeated = repeated
        self.enum_values = enum_values  # {name: number} for enums


def check_override(name, value):
    """Raises InvalidProgramError, worded as XLA:CPU, unless XLA:CPU accepts `name = value`."""
    field = debug_option_fields().get(name)
    if field is None:
        raise InvalidProgramError(f"No such compile option: '{name}'")
    bad = _rejected(field, value)
    if bad is not None:
        raise InvalidProgramError(f"While setting option {name}, '{_str_cat(bad)}' is not a "
                                  f"valid {field.type} value.")


def _rejected(field, value):
    """The part of `value` XLA:CPU does not accept for `field`, or None."""
    if isinstance(value, str) and field.repeated:
        # A list is comma-separated text; XLA names its first element that does not parse.
        items = value.split(",") if value else []
        return next((item for item in items if not _accepts_text(field, item)), None)
    return None if _accepts(field, value) else value


def _accepts(field, value):
    if isinstance(value, bool):
        return field.type == "bool"
    if isinstance(value, str):
        return _accepts_text(field, value)
    if isinstance(value, int):
        if field.type in _INT32:
            return _fits(value, 32)
        return field.type in _INT64 or field.type == "enum"  # any number for an (open) enum
    if isinstance(value, float):  # a finite number that the field's type can hold
        limit = _FLOAT32_MAX if field.type == "float" else math.inf
        return field.type in ("float", "double") and abs(value) <= limit
    return False


def _accepts_text(field, text):
    if field.type in ("string", "bytes"):
        return True
    if field.type == "bool":
        return text in ("True", "False")
    if field.type in _INT32 | _INT64:
        return bool(_INT_TEXT.fullmatch(text)) and _fits(int(text), 64 if field.type in _INT64
                                                          else 32)
    if field.type in ("float", "double"):
        hexadecimal = re.match(r"\s*[-+]?0[xX]", text)  # absl::SimpleAtof reads 0x1p3 too
        try:
            (float.fromhex if hexadecimal else float)(text)
            return True
        except ValueError:
            return False
    if field.type == "enum":
        return text in field.enum_values or (bool(_INT_TEXT.fullmatch(text))
                                             and _fits(int(text), 32))
    return False


def _fits(value, bits):
    return -2 ** (bits - 1) <= value < 2 ** (bits - 1)


def _str_cat(value):
    """absl::StrCat of an override value: bools as 1/0, doubles with six significant digits."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


@functools.lru_cache(maxsize=None)
def debug_option_fields():
    """{name: Field} of xla.DebugOptions, read from the descriptor of xla/xla.proto that protobuf
    compiled into jaxlib (the serialized FileDescriptorProto in libjax_common.so)."""
    path = os.path.join(os.path.dirname(jaxlib.__file__), "libjax_common.so")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as image:
        start = image.find(b"\n\rxla/xla.proto")  # field 1 (name) opens the FileDescriptorProto
        if start < 0:
            raise InvalidProgramError(f"pyrt could not find xla.DebugOptions in {path}")
        data = memoryview(image)[start:]
        try:
            for number, _, message in protobuf.fields(data):  # stops at DebugOptions
                if number == 4 and _name(message) == "DebugOptions":
                    return _message_fields(message)
        except ValueError:
            pass
        finally:
            data.release()
    raise InvalidProgramError(f"pyrt could not read xla.DebugOptions from {path}")


def _name(message):
    for number, _, value in protobuf.fields(message):
        if number == 1:
            return value.decode()
    return ""


def _message_fields(message):
    """The fields of a DescriptorProto, with the values of its nested enums."""
    enums, raw = {}, []
    for number, _, value in protobuf.fields(message):
        if number == 2:  # FieldDescriptorProto
            raw.append({n: v for n, _, v in protobuf.fields(value)})
        elif number == 4:  # EnumDescriptorProto
            values = {}
            for n, _, v in protobuf.fields(value):
                if n == 2:
                    entry = {k: x for k, _, x in protobuf.fields(v)}
                    values[entry[1].decode()] = _signed(entry.get(2, 0))
            enums[_name(value)] = values
    fields = {}
    for f in raw:
        type_name = _TYPE_NAMES.get(f.get(5), "message")
        enum = f.get(6, b"").decode().rsplit(".", 1)[-1]
        fields[f[1].decode()] = Field(f[1].decode(), type_name, f.get(4) == 3,
                                      enums.get(enum, {}))
    return fields


def _signed(varint):
    return varint - (1 << 64) if varint >= 1 << 63 else varint
