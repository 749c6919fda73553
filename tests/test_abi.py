"""The PJRT C API of libpjrt_pyrt.so, driven directly through ctypes (no jaxlib in between).

The plugin runs in a subprocess (this file, run as a script), so that a crash fails the tests
that needed it instead of killing pytest. The subprocess runs every scenario below in turn and
prints one `RESULT {json}` line per scenario; the tests then assert on that data. If the
subprocess dies, the scenarios it did not finish are retried one per process, so one crash only
fails the tests that depend on the crashing scenario.

The library resolves its Py* symbols from the host process, so it is loaded with ctypes.CDLL
from a Python process in which jax_pyrt is importable (the installed package).
"""

import ctypes as C
import json
import os
import re
import subprocess
import sys
import traceback

import numpy as np
import pytest

# ------------------------------------------------------------------ the ABI (just what we use)

SLOTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "pjrt_plugin",
                          "api_slots.inc")


def read_slots():
    """[(index, name, kind)] from pjrt_plugin/api_slots.inc."""
    with open(SLOTS_FILE) as f:
        text = f.read()
    return [(int(i), n, k) for i, n, k in
            re.findall(r"^PYRT_SLOT\((\d+),\s*(\w+),\s*(\w+)\)", text, re.M)]


SLOTS = read_slots()
SLOT = {name: index for index, name, _ in SLOTS}

OK, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, UNIMPLEMENTED = 0, 3, 5, 9, 12
F32, S32, PRED = 11, 4, 1
kImmutableOnlyDuringCall, kImmutableZeroCopy = 0, 2
kString, kInt64 = 0, 1

P, SZ = C.c_void_p, C.c_size_t
HEADER = [("struct_size", SZ), ("extension_start", P)]


def args_struct(name, *fields):
    return type(name, (C.Structure,), {"_fields_": HEADER + list(fields)})


class Api(C.Structure):
    _fields_ = HEADER + [("version_struct_size", SZ), ("version_extension_start", P),
                         ("major", C.c_int), ("minor", C.c_int), ("slots", P * 138)]


class NamedValueUnion(C.Union):
    _fields_ = [("string_value", C.c_char_p), ("int64_value", C.c_int64)]


NamedValue = args_struct("NamedValue", ("name", C.c_char_p), ("name_size", SZ),
                         ("type", C.c_int), ("value", NamedValueUnion), ("value_size", SZ))

ErrorMessage = args_struct("ErrorMessage", ("error", P), ("message", P), ("message_size", SZ))
ErrorGetCode = args_struct("ErrorGetCode", ("error", P), ("code", C.c_int))
ErrorDestroy = args_struct("ErrorDestroy", ("error", P))
ErrorForEachPayload = args_struct("ErrorForEachPayload", ("error", P), ("visitor", P),
                                  ("user_arg", P))
PluginAttributes = args_struct("PluginAttributes", ("attributes", P), ("num_attributes", SZ))
EventArgs = args_struct("EventArgs", ("event", P))  # Destroy, Error, Await, Create
EventIsReady = args_struct("EventIsReady", ("event", P), ("is_ready", C.c_bool))
EventSet = args_struct("EventSet", ("event", P), ("error_code", C.c_int),
                       ("error_message", C.c_char_p), ("error_message_size", SZ))
ClientCreate = args_struct("ClientCreate", ("create_options", P), ("num_options", SZ),
                           ("kv_get_callback", P), ("kv_get_user_arg", P),
                           ("kv_put_callback", P), ("kv_put_user_arg", P), ("client", P),
                           ("kv_try_get_callback", P), ("kv_try_get_user_arg", P))
ClientArgs = args_struct("ClientArgs", ("client", P))  # Destroy
ClientString = args_struct("ClientString", ("client", P), ("string", P), ("string_size", SZ))
ClientList = args_struct("ClientList", ("client", P), ("items", P), ("num_items", SZ))
ClientLookupDevice = args_struct("ClientLookupDevice", ("client", P), ("id", C.c_int),
                                 ("device", P))
ClientDefaultDeviceAssignment = args_struct(
    "ClientDefaultDeviceAssignment", ("client", P), ("num_replicas", C.c_int),
    ("num_partitions", C.c_int), ("default_assignment_size", SZ), ("default_assignment", P))
Program = args_struct("Program", ("code", P), ("code_size", SZ), ("format", C.c_char_p),
                      ("format_size", SZ))
ClientCompile = args_struct("ClientCompile", ("client", P), ("program", P),
                            ("compile_options", P), ("compile_options_size", SZ),
                            ("executable", P))
BufferFromHostBuffer = args_struct(
    "BufferFromHostBuffer", ("client", P), ("data", P), ("type", C.c_int), ("dims", P),
    ("num_dims", SZ), ("byte_strides", P), ("num_byte_strides", SZ),
    ("host_buffer_semantics", C.c_int), ("device", P), ("memory", P), ("device_layout", P),
    ("done_with_host_buffer", P), ("buffer", P))
CreateViewOfDeviceBuffer = args_struct(
    "CreateViewOfDeviceBuffer", ("client", P), ("device_buffer_ptr", P), ("dims", P),
    ("num_dims", SZ), ("element_type", C.c_int), ("layout", P), ("device", P),
    ("on_delete_callback", P), ("on_delete_callback_arg", P), ("stream", C.c_ssize_t),
    ("buffer", P), ("memory", P))
CreateErrorBuffer = args_struct(
    "CreateErrorBuffer", ("client", P), ("error_code", C.c_int), ("error_message", C.c_char_p),
    ("error_message_size", SZ), ("shape_dims", P), ("shape_num_dims", SZ),
    ("shape_element_type", C.c_int), ("shape_layout", P), ("memory", P), ("buffer", P))
DescriptionId = args_struct("DescriptionId", ("device_description", P), ("id", C.c_int))
DescriptionString = args_struct("DescriptionString", ("device_description", P), ("string", P),
                                ("string_size", SZ))
DeviceGetDescription = args_struct("DeviceGetDescription", ("device", P), ("description", P))
DeviceDefaultMemory = args_struct("DeviceDefaultMemory", ("device", P), ("memory", P))
_stat_fields = []
for _name in ["peak_bytes_in_use", "num_allocs", "largest_alloc_size", "bytes_limit",
              "bytes_reserved", "peak_bytes_reserved", "bytes_reservable_limit",
              "largest_free_block_bytes", "pool_bytes", "peak_pool_bytes"]:
    _stat_fields += [(_name, C.c_int64), (_name + "_is_set", C.c_bool)]
DeviceMemoryStats = args_struct("DeviceMemoryStats", ("device", P), ("bytes_in_use", C.c_int64),
                                *_stat_fields)
ExecutableArgs = args_struct("ExecutableArgs", ("executable", P))  # Destroy, Delete
ExecutableCount = args_struct("ExecutableCount", ("executable", P), ("count", SZ))
ExecutableString = args_struct("ExecutableString", ("executable", P), ("string", P),
                               ("string_size", SZ))
ExecutableOutputElementTypes = args_struct("ExecutableOutputElementTypes", ("executable", P),
                                           ("output_types", P), ("num_output_types", SZ))
ExecutableOutputDimensions = args_struct("ExecutableOutputDimensions", ("executable", P),
                                         ("num_outputs", SZ), ("dims", P), ("dim_sizes", P))
ExecutableSerialize = args_struct("ExecutableSerialize", ("executable", P),
                                  ("serialized_bytes", P), ("serialized_bytes_size", SZ),
                                  ("serialized_executable", P), ("deleter", P))
DeserializeAndLoad = args_struct("DeserializeAndLoad", ("client", P), ("serialized", P),
                                 ("serialized_size", SZ), ("loaded_executable", P),
                                 ("overridden_options", P), ("overridden_options_size", SZ))
LoadedGetExecutable = args_struct("LoadedGetExecutable", ("loaded_executable", P),
                                  ("executable", P))
ExecuteOptions = args_struct(
    "ExecuteOptions", ("send_callbacks", P), ("recv_callbacks", P), ("num_send_ops", SZ),
    ("num_recv_ops", SZ), ("launch_id", C.c_int), ("non_donatable_input_indices", P),
    ("num_non_donatable_input_indices", SZ), ("context", P), ("call_location", C.c_char_p),
    ("num_tasks", SZ), ("task_ids", P), ("incarnation_ids", P), ("multi_slice_config", P),
    ("unknown_0112", C.c_int64 * 3))  # 0.112 is 144 bytes; jaxlib leaves these 3 words zero
Execute = args_struct("Execute", ("executable", P), ("options", P), ("argument_lists", P),
                      ("num_devices", SZ), ("num_args", SZ), ("output_lists", P),
                      ("device_complete_events", P), ("execute_device", P))
BufferArgs = args_struct("BufferArgs", ("buffer", P))  # Destroy, Delete
BufferPtrOut = args_struct("BufferPtrOut", ("buffer", P), ("out", P))  # Device, Memory, ReadyEvent
BufferIntOut = args_struct("BufferIntOut", ("buffer", P), ("out", C.c_int))  # ElementType
BufferBoolOut = args_struct("BufferBoolOut", ("buffer", P), ("out", C.c_bool))  # IsDeleted
BufferSizeOut = args_struct("BufferSizeOut", ("buffer", P), ("out", SZ))  # OnDeviceSize
BufferDimensions = args_struct("BufferDimensions", ("buffer", P), ("dims", P), ("num_dims", SZ))
Tiled = args_struct("Tiled", ("minor_to_major", P), ("minor_to_major_size", SZ),
                    ("tile_dims", P), ("tile_dim_sizes", P), ("num_tiles", SZ))
Strides = args_struct("Strides", ("byte_strides", P), ("num_byte_strides", SZ))


class LayoutUnion(C.Union):
    _fields_ = [("tiled", Tiled), ("strides", Strides)]


MemoryLayout = args_struct("MemoryLayout", ("u", LayoutUnion), ("type", C.c_int))
ToHostBuffer = args_struct("ToHostBuffer", ("src", P), ("host_layout", P), ("dst", P),
                           ("dst_size", SZ), ("event", P))
CopyToDevice = args_struct("CopyToDevice", ("buffer", P), ("dst_device", P), ("dst_buffer", P))
CopyRawToHost = args_struct("CopyRawToHost", ("buffer", P), ("dst", P), ("offset", C.c_int64),
                            ("transfer_size", C.c_int64), ("event", P))
CreateUninitializedBuffer = args_struct(
    "CreateUninitializedBuffer", ("client", P), ("shape_dims", P), ("shape_num_dims", SZ),
    ("shape_element_type", C.c_int), ("shape_layout", P), ("device", P), ("memory", P),
    ("buffer", P))
MemoryString = args_struct("MemoryString", ("memory", P), ("string", P), ("string_size", SZ))
MemoryDevices = args_struct("MemoryDevices", ("memory", P), ("devices", P), ("num_devices", SZ))
DeviceMemories = args_struct("DeviceMemories", ("device", P), ("memories", P), ("num_memories", SZ))
ExecutableMemoryKinds = args_struct("ExecutableMemoryKinds", ("executable", P),
                                    ("num_outputs", SZ), ("memory_kinds", P),
                                    ("memory_kind_sizes", P))
OptimizedProgram = args_struct("OptimizedProgram", ("executable", P), ("program", P))
SerializedOut = args_struct("SerializedOut", ("executable", P), ("serialized_bytes", P),
                            ("serialized_bytes_size", SZ), ("handle", P), ("deleter", P))
LoadedDevices = args_struct("LoadedDevices", ("executable", P), ("devices", P),
                            ("num_devices", SZ))

ABI_SIZES = {  # the sizes jaxlib 0.10.2 passes (docs/pjrt-c-api-notes.md)
    NamedValue: 56, ClientCreate: 88, ClientCompile: 56, BufferFromHostBuffer: 120,
    ExecuteOptions: 144, Execute: 80, ToHostBuffer: 56, MemoryLayout: 80,
    CreateViewOfDeviceBuffer: 112,
}

FN = C.CFUNCTYPE(P, P)
VOID_FN = C.CFUNCTYPE(None, P)


class PjrtError(Exception):
    def __init__(self, code, message):
        super().__init__(f"[{code}] {message}")
        self.code, self.message = code, message


class Plugin:
    """Calls entry points by name; `call` turns a returned PJRT_Error into (code, message)."""

    def __init__(self, path):
        self.lib = C.CDLL(path)
        self.lib.GetPjrtApi.restype = P
        self.api_address = self.lib.GetPjrtApi()
        self.api = Api.from_address(self.api_address)

    def fn(self, name, void=False):
        return (VOID_FN if void else FN)(self.api.slots[SLOT[name]])

    def raw(self, name, args):
        """Calls with args (a Structure, or None for NULL); returns the PJRT_Error* address."""
        return self.fn(name)(None if args is None else C.addressof(args))

    def error_info(self, error):
        """(code, message) of a PJRT_Error, which is then destroyed."""
        m = ErrorMessage(C.sizeof(ErrorMessage), None, error)
        self.fn("Error_Message", void=True)(C.addressof(m))
        message = C.string_at(m.message, m.message_size).decode()
        g = ErrorGetCode(C.sizeof(ErrorGetCode), None, error)
        if self.raw("Error_GetCode", g):
            raise AssertionError("Error_GetCode failed on a valid error")
        d = ErrorDestroy(C.sizeof(ErrorDestroy), None, error)  # kept alive across the call
        self.fn("Error_Destroy", void=True)(C.addressof(d))
        return g.code, message

    def status(self, name, args):
        """None on success, else (code, message)."""
        error = self.raw(name, args)
        return None if not error else self.error_info(error)

    def call(self, name, args):
        s = self.status(name, args)
        if s is not None:
            raise PjrtError(*s)
        return args

    def new(self, struct, **fields):
        return struct(struct_size=C.sizeof(struct), **fields)

    # -- conveniences
    def create_client(self, **options):
        values = (NamedValue * max(1, len(options)))()
        keep = []
        for v, (name, value) in zip(values, options.items()):
            v.struct_size = C.sizeof(NamedValue)
            v.name, v.name_size = name.encode(), len(name)
            if isinstance(value, str):
                keep.append(value.encode())
                v.type, v.value.string_value, v.value_size = kString, keep[-1], len(value)
            else:
                v.type, v.value.int64_value, v.value_size = kInt64, value, 1
        args = self.new(ClientCreate, create_options=C.addressof(values), num_options=len(options))
        return self.call("Client_Create", args).client

    def devices(self, client):
        a = self.call("Client_Devices", self.new(ClientList, client=client))
        return [C.cast(a.items, C.POINTER(P))[i] for i in range(a.num_items)]

    def await_event(self, event):
        """Awaits and destroys an event; None or (code, message)."""
        s = self.status("Event_Await", self.new(EventArgs, event=event))
        self.call("Event_Destroy", self.new(EventArgs, event=event))
        return s

    def put(self, client, array, device=None, semantics=kImmutableOnlyDuringCall, strides=None):
        """BufferFromHostBuffer of a NumPy array (strides honoured); returns (buffer, done_event)."""
        types = {np.dtype(np.float32): F32, np.dtype(np.int32): S32, np.dtype(np.bool_): PRED}
        dims = (C.c_int64 * max(1, array.ndim))(*array.shape)
        byte_strides = (C.c_int64 * max(1, array.ndim))(*(strides or array.strides))
        if device is None:
            device = self.devices(client)[0]
        a = self.new(BufferFromHostBuffer, client=client, data=array.ctypes.data,
                     type=types[array.dtype], dims=C.addressof(dims), num_dims=array.ndim,
                     byte_strides=C.addressof(byte_strides), num_byte_strides=array.ndim,
                     host_buffer_semantics=semantics, device=device)
        self.call("Client_BufferFromHostBuffer", a)
        return a.buffer, a.done_with_host_buffer

    def get(self, buffer, shape, dtype, layout=None):
        """ToHostBuffer into a fresh array of `shape`; returns the array or (code, message)."""
        out = np.zeros(shape, dtype)
        a = self.new(ToHostBuffer, src=buffer, dst=out.ctypes.data, dst_size=out.nbytes,
                     host_layout=None if layout is None else C.addressof(layout))
        s = self.status("Buffer_ToHostBuffer", a)
        if s is not None:
            return s
        if not a.event:
            raise AssertionError("ToHostBuffer returned a NULL event")
        s = self.await_event(a.event)
        return s if s is not None else out

    def destroy_buffer(self, buffer):
        self.call("Buffer_Destroy", self.new(BufferArgs, buffer=buffer))

    def memory_stats(self, device):
        a = self.call("Device_MemoryStats", self.new(DeviceMemoryStats, device=device))
        return {"bytes_in_use": a.bytes_in_use, "live_arrays": a.pool_bytes}


# ------------------------------------------------------------------ scenarios (run in the child)

SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
def api_table(pl):
    api = pl.api
    return {"struct_size": api.struct_size, "version": [api.major, api.minor],
            "version_struct_size": api.version_struct_size,
            "null_slots": [i for i in range(138) if not api.slots[i]],
            "num_slots_file": len(SLOTS),
            "abi_sizes": {s.__name__: [C.sizeof(s), n] for s, n in ABI_SIZES.items()}}


# Entry points that succeed on NULL args by design: Destroy functions (NULL is a no-op),
# Plugin_Initialize (nothing to read) and Error_ForEachPayload (must always succeed).
NULL_OK = {"Error_Destroy", "Error_Message", "Plugin_Initialize", "Error_ForEachPayload"}


@scenario
def null_args(pl):
    """Every entry point called with args=NULL."""
    out = {}
    for index, name, kind in SLOTS:
        if name in ("Error_Destroy", "Error_Message"):  # void return
            pl.fn(name, void=True)(None)
            out[name] = None
            continue
        out[name] = pl.status(name, None)
    return out


@scenario
def small_struct_size(pl):
    client = pl.create_client()
    out = {}
    for name, struct, fields in [("Client_PlatformName", ClientString, {"client": client}),
                                 ("Client_Devices", ClientList, {"client": client}),
                                 ("Client_Compile", ClientCompile, {"client": client})]:
        a = struct(struct_size=16, **fields)  # header only
        out[name] = pl.status(name, a)
    a = ClientCreate(struct_size=64)  # pyrt reads through `client`, which ends at 72
    out["Client_Create"] = pl.status("Client_Create", a)
    pl.call("Client_Destroy", pl.new(ClientArgs, client=client))
    return out


@scenario
def errors_and_events(pl):
    out = {}
    # Error_ForEachPayload succeeds and visits nothing.
    err = pl.raw("Client_Devices", None)
    visits = []
    visitor = C.CFUNCTYPE(None, P, SZ, P, SZ, P)(lambda *a: visits.append(1))
    out["for_each_payload"] = pl.status(
        "Error_ForEachPayload", pl.new(ErrorForEachPayload, error=err, visitor=C.cast(visitor, P)))
    out["for_each_payload_visits"] = len(visits)
    out["error"] = pl.error_info(err)  # Message, GetCode, Destroy
    out["get_code_null_error"] = pl.status("Error_GetCode", pl.new(ErrorGetCode, error=None))
    # User events: not ready -> Error is FAILED_PRECONDITION; Set(error) -> Await returns it.
    e = pl.call("Event_Create", pl.new(EventArgs)).event
    out["is_ready_before"] = pl.call("Event_IsReady", pl.new(EventIsReady, event=e)).is_ready
    out["error_before"] = pl.status("Event_Error", pl.new(EventArgs, event=e))
    msg = b"boom from the test"
    out["set"] = pl.status("Event_Set", pl.new(EventSet, event=e, error_code=FAILED_PRECONDITION,
                                               error_message=msg, error_message_size=len(msg)))
    out["is_ready_after"] = pl.call("Event_IsReady", pl.new(EventIsReady, event=e)).is_ready
    out["error_after"] = pl.status("Event_Error", pl.new(EventArgs, event=e))
    out["await"] = pl.await_event(e)
    # OnReady on a ready event calls back at once, handing over the error.
    e = pl.call("Event_Create", pl.new(EventArgs)).event
    pl.call("Event_Set", pl.new(EventSet, event=e, error_code=OK))
    seen = []

    @C.CFUNCTYPE(None, P, P)
    def on_ready(error, user_arg):
        seen.append(None if not error else pl.error_info(error))

    OnReady = args_struct("OnReady", ("event", P), ("callback", P), ("user_arg", P))
    pl.call("Event_OnReady", pl.new(OnReady, event=e, callback=C.cast(on_ready, P)))
    out["on_ready_seen"] = seen
    pl.call("Event_Destroy", pl.new(EventArgs, event=e))
    # Plugin attributes: StableHLO versions as int64 lists.
    a = pl.call("Plugin_Attributes", pl.new(PluginAttributes))
    values = (NamedValue * a.num_attributes).from_address(a.attributes)
    attrs = {}
    for v in values:
        name = C.string_at(v.name, v.name_size).decode()
        if v.type == 2:  # kInt64List
            ptr = C.cast(C.c_void_p(v.value.int64_value), C.POINTER(C.c_int64))
            attrs[name] = [ptr[i] for i in range(v.value_size)]
        else:
            attrs[name] = v.value.int64_value
    out["plugin_attributes"] = attrs
    return out


@scenario
def unimplemented_stubs(pl):
    out = {}
    for index, name, kind in SLOTS:
        if kind == "STUB":
            blank = (C.c_char * 512)()
            C.c_size_t.from_buffer(blank).value = 512
            out[name] = pl.status(name, blank)
    return out


@scenario
def clients(pl):
    out = {}
    out["unknown_option"] = None
    try:
        pl.create_client(no_such_option=1)
    except PjrtError as e:
        out["unknown_option"] = [e.code, e.message]
    for bad in (0, 100000):
        try:
            pl.create_client(device_count=bad)
            out[f"device_count_{bad}"] = None
        except PjrtError as e:
            out[f"device_count_{bad}"] = [e.code, e.message]
    client = pl.create_client(device_count=3, platform_version="abi-test")
    devices = pl.devices(client)
    out["num_devices"] = len(devices)
    a = pl.call("Client_AddressableDevices", pl.new(ClientList, client=client))
    out["num_addressable"] = a.num_items
    ids, strings = [], []
    for d in devices:
        desc = pl.call("Device_GetDescription", pl.new(DeviceGetDescription, device=d)).description
        ids.append(pl.call("DeviceDescription_Id", pl.new(DescriptionId,
                                                          device_description=desc)).id)
        s = pl.call("DeviceDescription_ToString", pl.new(DescriptionString,
                                                         device_description=desc))
        strings.append(C.string_at(s.string, s.string_size).decode())
    out["ids"], out["to_strings"] = ids, strings
    look = pl.call("Client_LookupDevice", pl.new(ClientLookupDevice, client=client, id=2))
    out["lookup_2_is_device_2"] = look.device == devices[2]
    out["lookup_7"] = pl.status("Client_LookupDevice",
                                pl.new(ClientLookupDevice, client=client, id=7))
    name = pl.call("Client_PlatformName", pl.new(ClientString, client=client))
    out["platform_name"] = C.string_at(name.string, name.string_size).decode()
    version = pl.call("Client_PlatformVersion", pl.new(ClientString, client=client))
    out["platform_version"] = C.string_at(version.string, version.string_size).decode()
    assignment = (C.c_int * 4)()
    pl.call("Client_DefaultDeviceAssignment",
            pl.new(ClientDefaultDeviceAssignment, client=client, num_replicas=1, num_partitions=3,
                   default_assignment_size=4, default_assignment=C.addressof(assignment)))
    out["default_assignment"] = list(assignment)[:3]
    out["default_assignment_too_many"] = pl.status(
        "Client_DefaultDeviceAssignment",
        pl.new(ClientDefaultDeviceAssignment, client=client, num_replicas=2, num_partitions=2,
               default_assignment_size=4, default_assignment=C.addressof(assignment)))
    # Memories: one "device" memory per device, addressed by that device, used by its buffers.
    kinds, addressed_by_own_device, buffer_in_default_memory = [], [], []
    for d in devices:
        mems = pl.call("Device_AddressableMemories", pl.new(DeviceMemories, device=d))
        default = pl.call("Device_DefaultMemory", pl.new(DeviceDefaultMemory, device=d)).memory
        memory_list = [C.cast(mems.memories, C.POINTER(P))[i] for i in range(mems.num_memories)]
        k = pl.call("Memory_Kind", pl.new(MemoryString, memory=default))
        kinds.append(C.string_at(k.string, k.string_size).decode())
        by = pl.call("Memory_AddressableByDevices", pl.new(MemoryDevices, memory=default))
        addressed_by_own_device.append(
            default in memory_list and
            [C.cast(by.devices, C.POINTER(P))[i] for i in range(by.num_devices)] == [d])
        dims = (C.c_int64 * 2)(2, 2)
        u = pl.call("Client_CreateUninitializedBuffer", pl.new(
            CreateUninitializedBuffer, client=client, shape_dims=C.addressof(dims),
            shape_num_dims=2, shape_element_type=S32, device=d)).buffer
        buffer_in_default_memory.append(
            pl.call("Buffer_Memory", pl.new(BufferPtrOut, buffer=u)).out == default and
            pl.call("Buffer_Device", pl.new(BufferPtrOut, buffer=u)).out == d)
        pl.destroy_buffer(u)
    out["memory_kinds"] = kinds
    out["memories_addressed_by_own_device"] = addressed_by_own_device
    out["buffers_in_default_memory"] = buffer_in_default_memory
    # NULL handles.
    out["null_client"] = {
        "Client_Devices": pl.status("Client_Devices", pl.new(ClientList, client=None)),
        "Client_PlatformName": pl.status("Client_PlatformName", pl.new(ClientString, client=None)),
        "Client_Compile": pl.status("Client_Compile", pl.new(ClientCompile, client=None)),
        "Client_BufferFromHostBuffer": pl.status(
            "Client_BufferFromHostBuffer", pl.new(BufferFromHostBuffer, client=None)),
        "Buffer_Dimensions": pl.status("Buffer_Dimensions", pl.new(BufferDimensions, buffer=None)),
        "Device_GetDescription": pl.status("Device_GetDescription",
                                           pl.new(DeviceGetDescription, device=None)),
        "Executable_NumOutputs": pl.status("Executable_NumOutputs",
                                           pl.new(ExecutableCount, executable=None)),
        "Event_Await": pl.status("Event_Await", pl.new(EventArgs, event=None)),
    }
    pl.call("Client_Destroy", pl.new(ClientArgs, client=client))
    return out


@scenario
def destroy_null(pl):
    """Destroy functions given NULL args or a NULL handle succeed and do nothing."""
    out = {}
    for name, struct in [("Client_Destroy", ClientArgs), ("Buffer_Destroy", BufferArgs),
                         ("Event_Destroy", EventArgs), ("Executable_Destroy", ExecutableArgs),
                         ("LoadedExecutable_Destroy", ExecutableArgs)]:
        out[name] = [pl.status(name, None), pl.status(name, pl.new(struct))]
    null_error = pl.new(ErrorDestroy)
    pl.fn("Error_Destroy", void=True)(C.addressof(null_error))
    out["Error_Destroy"] = [None, None]
    return out


@scenario
def transfers(pl):
    out = {}
    client = pl.create_client(device_count=2)
    d0, d1 = pl.devices(client)
    base = pl.memory_stats(d0)
    host = np.arange(48, dtype=np.float32).reshape(6, 8) * 1.5 - 7
    view = host[::2, 1::3]  # non-contiguous: strides (64, 12)
    buf, done = pl.put(client, view)
    out["done_event"] = pl.await_event(done)
    out["after_put"] = pl.memory_stats(d0)
    dims = pl.call("Buffer_Dimensions", pl.new(BufferDimensions, buffer=buf))
    out["dims"] = [C.cast(dims.dims, C.POINTER(C.c_int64))[i] for i in range(dims.num_dims)]
    out["type"] = pl.call("Buffer_ElementType", pl.new(BufferIntOut, buffer=buf)).out
    out["nbytes"] = pl.call("Buffer_OnDeviceSizeInBytes", pl.new(BufferSizeOut, buffer=buf)).out
    out["device_is_d0"] = pl.call("Buffer_Device", pl.new(BufferPtrOut, buffer=buf)).out == d0
    # The copy was made during the call: changing the host array now changes nothing.
    expected = view.copy()
    host[:] = -1
    got = pl.get(buf, view.shape, np.float32)
    out["roundtrip_equal"] = isinstance(got, np.ndarray) and got.tobytes() == expected.tobytes()
    # Size query (dst NULL) and a too-small dst.
    q = pl.call("Buffer_ToHostBuffer", pl.new(ToHostBuffer, src=buf, dst=None))
    out["size_query"] = q.dst_size
    pl.await_event(q.event)
    small = np.zeros(2, np.float32)
    out["dst_too_small"] = pl.status("Buffer_ToHostBuffer",
                                     pl.new(ToHostBuffer, src=buf, dst=small.ctypes.data,
                                            dst_size=small.nbytes))
    # Host layouts: column-major via a Tiled minor_to_major, and explicit byte strides.
    m2m = (C.c_int64 * 2)(0, 1)
    layout = pl.new(MemoryLayout, type=0)
    layout.u.tiled = pl.new(Tiled, minor_to_major=C.addressof(m2m), minor_to_major_size=2)
    col = np.zeros(expected.size, np.float32)
    a = pl.call("Buffer_ToHostBuffer", pl.new(ToHostBuffer, src=buf, dst=col.ctypes.data,
                                               dst_size=col.nbytes,
                                               host_layout=C.addressof(layout)))
    out["column_major_event"] = pl.await_event(a.event)
    out["column_major_equal"] = col.tobytes() == np.asfortranarray(expected).tobytes(order="A")
    wide = np.zeros((expected.shape[0], expected.shape[1] * 2), np.float32)
    strides = (C.c_int64 * 2)(wide.strides[0], wide.strides[1] * 2)
    layout = pl.new(MemoryLayout, type=1)
    layout.u.strides = pl.new(Strides, byte_strides=C.addressof(strides), num_byte_strides=2)
    a = pl.call("Buffer_ToHostBuffer", pl.new(ToHostBuffer, src=buf, dst=wide.ctypes.data,
                                               dst_size=wide.nbytes,
                                               host_layout=C.addressof(layout)))
    out["strided_event"] = pl.await_event(a.event)
    out["strided_equal"] = (np.array_equal(wide[:, ::2], expected)
                            and not wide[:, 1::2].any())
    # Copy to the other device.
    c = pl.call("Buffer_CopyToDevice", pl.new(CopyToDevice, buffer=buf, dst_device=d1))
    out["copy_device_is_d1"] = pl.call("Buffer_Device",
                                       pl.new(BufferPtrOut, buffer=c.dst_buffer)).out == d1
    got = pl.get(c.dst_buffer, view.shape, np.float32)
    out["copy_equal"] = isinstance(got, np.ndarray) and np.array_equal(got, expected)
    out["d1_stats_with_copy"] = pl.memory_stats(d1)
    pl.destroy_buffer(c.dst_buffer)
    out["d1_stats_after_destroy"] = pl.memory_stats(d1)
    # Raw byte ranges.
    raw = np.zeros(8, np.uint8)
    a = pl.call("Buffer_CopyRawToHost", pl.new(CopyRawToHost, buffer=buf, dst=raw.ctypes.data,
                                                offset=4, transfer_size=8))
    out["raw_event"] = pl.await_event(a.event)
    out["raw_equal"] = raw.tobytes() == expected.tobytes()[4:12]
    out["raw_out_of_range"] = pl.status("Buffer_CopyRawToHost", pl.new(
        CopyRawToHost, buffer=buf, dst=raw.ctypes.data, offset=expected.nbytes - 4,
        transfer_size=8))
    # Delete: the handle stays, the data goes; reads are errors, not crashes.
    pl.call("Buffer_Delete", pl.new(BufferArgs, buffer=buf))
    out["is_deleted"] = pl.call("Buffer_IsDeleted", pl.new(BufferBoolOut, buffer=buf)).out
    out["after_delete"] = pl.memory_stats(d0)
    out["to_host_deleted"] = pl.get(buf, view.shape, np.float32)
    out["copy_deleted"] = pl.status("Buffer_CopyToDevice",
                                    pl.new(CopyToDevice, buffer=buf, dst_device=d1))
    ready = pl.call("Buffer_ReadyEvent", pl.new(BufferPtrOut, buffer=buf)).out
    out["ready_event_deleted"] = pl.await_event(ready)
    out["delete_twice"] = pl.status("Buffer_Delete", pl.new(BufferArgs, buffer=buf))
    pl.destroy_buffer(buf)
    # Zero-copy: the buffer aliases the host data until destroyed; done_with_host fires then.
    aligned = np.zeros(64 + 64, np.uint8)
    off = (-aligned.ctypes.data) % 64  # pyrt (like XLA:CPU) aliases 64-byte aligned dense data
    zc = aligned[off:off + 64].view(np.float32).reshape(4, 4)
    zc[:] = np.arange(16, dtype=np.float32).reshape(4, 4)
    buf, done = pl.put(client, zc, semantics=kImmutableZeroCopy)
    out["zero_copy_done_before_destroy"] = pl.call(
        "Event_IsReady", pl.new(EventIsReady, event=done)).is_ready
    got = pl.get(buf, (4, 4), np.float32)
    out["zero_copy_equal"] = isinstance(got, np.ndarray) and np.array_equal(got, zc)
    pl.destroy_buffer(buf)
    out["zero_copy_done_after_destroy"] = pl.call(
        "Event_IsReady", pl.new(EventIsReady, event=done)).is_ready
    out["zero_copy_done_status"] = pl.await_event(done)
    # 0-d and zero-size arrays.
    scalar = np.array(3.25, np.float32)
    buf, done = pl.put(client, scalar)
    pl.await_event(done)
    got = pl.get(buf, (), np.float32)
    out["scalar_equal"] = isinstance(got, np.ndarray) and float(got) == 3.25
    pl.destroy_buffer(buf)
    empty = np.zeros((0, 5), np.float32)
    buf, done = pl.put(client, empty)
    pl.await_event(done)
    got = pl.get(buf, (0, 5), np.float32)
    out["empty_ok"] = isinstance(got, np.ndarray) and got.shape == (0, 5)
    pl.destroy_buffer(buf)
    out["base"], out["end"] = base, pl.memory_stats(d0)
    pl.call("Client_Destroy", pl.new(ClientArgs, client=client))
    return out


@scenario
def views(pl):
    """Client_CreateViewOfDeviceBuffer: a buffer over memory the caller owns."""
    out = {}
    client = pl.create_client()
    (d0,) = pl.devices(client)
    base = pl.memory_stats(d0)
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    deleted = []
    on_delete = C.CFUNCTYPE(None, P, P)(lambda ptr, arg: deleted.append((ptr, arg)))
    dims = (C.c_int64 * 2)(3, 4)

    def view(**fields):
        args = dict(client=client, device_buffer_ptr=host.ctypes.data, dims=C.addressof(dims),
                    num_dims=2, element_type=F32, device=d0,
                    on_delete_callback=C.cast(on_delete, P), on_delete_callback_arg=1234)
        args.update(fields)
        a = pl.new(CreateViewOfDeviceBuffer, **args)
        return pl.status("Client_CreateViewOfDeviceBuffer", a), a.buffer

    s, buf = view()
    out["create"] = s
    out["stats"] = {k: v - base[k] for k, v in pl.memory_stats(d0).items()}
    out["contents"] = pl.get(buf, (3, 4), np.float32).tolist()
    host[0, 0] = 100.0  # the buffer is a view: no copy was made
    out["sees_write"] = bool(pl.get(buf, (3, 4), np.float32)[0, 0] == 100.0)
    out["deleted_before_destroy"] = len(deleted)
    pl.destroy_buffer(buf)
    out["deleted"] = [(ptr == host.ctypes.data, arg) for ptr, arg in deleted]
    out["end_stats"] = {k: v - base[k] for k, v in pl.memory_stats(d0).items()}
    s, buf = view(on_delete_callback=None, memory=pl.call("Device_DefaultMemory", pl.new(
        DeviceDefaultMemory, device=d0)).memory, device=None)  # by memory, no callback
    out["by_memory"] = s
    if s is None:
        out["by_memory_contents"] = pl.get(buf, (3, 4), np.float32).tolist()
        pl.destroy_buffer(buf)
    out["null_ptr"] = view(device_buffer_ptr=None)[0]
    minor_to_major = (C.c_int64 * 2)(0, 1)  # column-major
    bad_layout = pl.new(MemoryLayout, type=0)
    bad_layout.u.tiled = pl.new(Tiled, minor_to_major=C.addressof(minor_to_major),
                                minor_to_major_size=2)
    out["column_major"] = view(layout=C.addressof(bad_layout))[0]
    out["no_device"] = view(device=None)[0]
    out["bad_type"] = view(element_type=0)[0]
    short = CreateViewOfDeviceBuffer(struct_size=64, client=client)
    out["short"] = pl.status("Client_CreateViewOfDeviceBuffer", short)
    out["deleted_after_errors"] = len(deleted)  # failed calls never call back
    pl.call("Client_Destroy", pl.new(ClientArgs, client=client))
    return out


def _artifacts():
    """(portable artifact of f(x, y) = (x + y, x) on f32[2,3], serialized CompileOptions)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    from jaxlib import _jax
    from jaxlib.mlir._mlir_libs import _stablehlo

    x = jnp.zeros((2, 3), jnp.float32)
    module = jax.jit(lambda x, y: (x + y, x)).lower(x, x).compiler_ir("stablehlo")
    artifact = _stablehlo.serialize_portable_artifact(module, "1.17.0")
    return bytes(artifact), _jax.CompileOptions().SerializeAsString()


def _compile(pl, client, code, fmt, options):
    code_buf = C.create_string_buffer(code, len(code))
    opts_buf = C.create_string_buffer(options, max(1, len(options)))
    program = pl.new(Program, code=C.addressof(code_buf), code_size=len(code), format=fmt,
                     format_size=len(fmt))
    a = pl.new(ClientCompile, client=client, program=C.addressof(program),
               compile_options=C.addressof(opts_buf), compile_options_size=len(options))
    s = pl.status("Client_Compile", a)
    return (None, s) if s is not None else (a.executable, None)


def _execute(pl, exe, buffers, num_outputs, num_devices=1, options=True):
    """Runs `exe` on one device; returns (status, outputs, event status); on an error status the
    outputs are what Execute left in the output list."""
    args = (P * max(1, len(buffers)))(*buffers)
    arg_lists = (P * 1)(C.addressof(args))
    outs = (P * max(1, num_outputs))()
    out_lists = (P * 1)(C.addressof(outs))
    events = (P * 1)()
    opts = pl.new(ExecuteOptions, launch_id=7, call_location=b"")
    a = pl.new(Execute, executable=exe, options=C.addressof(opts) if options else None,
               argument_lists=C.addressof(arg_lists), num_devices=num_devices,
               num_args=len(buffers), output_lists=C.addressof(out_lists),
               device_complete_events=C.addressof(events))
    s = pl.status("LoadedExecutable_Execute", a)
    if s is not None:
        return s, list(outs)[:num_outputs], None
    return None, list(outs)[:num_outputs], pl.await_event(events[0])


@scenario
def compile_and_execute(pl):
    out = {}
    artifact, options = _artifacts()
    client = pl.create_client()
    (d0,) = pl.devices(client)
    out["hlo"] = _compile(pl, client, artifact, b"hlo", options)[1]
    out["malformed"] = _compile(pl, client, b"this is not a StableHLO program", b"mlir",
                                options)[1]
    out["bad_options"] = _compile(pl, client, artifact, b"mlir", b"\xff\xfe not a proto")[1]
    exe, s = _compile(pl, client, artifact, b"mlir", options)
    out["compile"] = s
    if exe is None:
        return out
    ge = pl.call("LoadedExecutable_GetExecutable", pl.new(LoadedGetExecutable,
                                                          loaded_executable=exe)).executable
    out["num_outputs"] = pl.call("Executable_NumOutputs", pl.new(ExecutableCount,
                                                                 executable=ge)).count
    out["num_replicas"] = pl.call("Executable_NumReplicas", pl.new(ExecutableCount,
                                                                   executable=ge)).count
    name = pl.call("Executable_Name", pl.new(ExecutableString, executable=ge))
    out["name"] = C.string_at(name.string, name.string_size).decode()
    t = pl.call("Executable_OutputElementTypes", pl.new(ExecutableOutputElementTypes,
                                                        executable=ge))
    out["output_types"] = [C.cast(t.output_types, C.POINTER(C.c_int))[i]
                           for i in range(t.num_output_types)]
    d = pl.call("Executable_OutputDimensions", pl.new(ExecutableOutputDimensions, executable=ge))
    ranks = [C.cast(d.dim_sizes, C.POINTER(SZ))[i] for i in range(d.num_outputs)]
    flat = [C.cast(d.dims, C.POINTER(C.c_int64))[i] for i in range(sum(ranks))]
    out["output_ranks"], out["output_dims"] = ranks, flat

    k = pl.call("Executable_OutputMemoryKinds", pl.new(ExecutableMemoryKinds, executable=ge))
    out["output_memory_kinds"] = [
        C.string_at(C.cast(k.memory_kinds, C.POINTER(P))[i],
                    C.cast(k.memory_kind_sizes, C.POINTER(SZ))[i]).decode()
        for i in range(k.num_outputs)]
    code = pl.new(Program)  # two-call protocol: size first, then the text
    pl.call("Executable_OptimizedProgram", pl.new(OptimizedProgram, executable=ge,
                                                  program=C.addressof(code)))
    text = C.create_string_buffer(code.code_size)
    code.code, code.code_size = C.addressof(text), len(text)
    pl.call("Executable_OptimizedProgram", pl.new(OptimizedProgram, executable=ge,
                                                  program=C.addressof(code)))
    out["optimized_program"] = [code.format.decode(), text.raw[:code.code_size].decode()]
    o = pl.call("Executable_GetCompileOptions", pl.new(SerializedOut, executable=ge))
    out["compile_options_round_trip"] = C.string_at(o.serialized_bytes,
                                                    o.serialized_bytes_size) == options
    C.CFUNCTYPE(None, P)(o.deleter)(o.handle)
    a = pl.call("LoadedExecutable_GetDeviceAssignment", pl.new(SerializedOut, executable=exe))
    proto = C.string_at(a.serialized_bytes, a.serialized_bytes_size)
    out["device_assignment_has_deleter"] = bool(a.deleter)
    C.CFUNCTYPE(None, P)(a.deleter)(a.handle)
    out["device_assignment_size"] = len(proto)
    ad = pl.call("LoadedExecutable_AddressableDevices", pl.new(LoadedDevices, executable=exe))
    out["addressable_devices"] = [C.cast(ad.devices, C.POINTER(P))[i]
                                  for i in range(ad.num_devices)] == [d0]

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.full((2, 3), 0.5, np.float32)
    bx, _ = pl.put(client, x)
    by, _ = pl.put(client, y)
    s, outputs, event = _execute(pl, exe, [bx, by], 2)
    out["execute"], out["execute_event"] = s, event
    if s is None:
        out["sum_equal"] = np.array_equal(pl.get(outputs[0], (2, 3), np.float32), x + y)
        out["identity_equal"] = np.array_equal(pl.get(outputs[1], (2, 3), np.float32), x)
        for b in outputs:
            pl.destroy_buffer(b)
    s, outputs, event = _execute(pl, exe, [bx, by], 2, options=False)  # options are optional
    out["execute_no_options"] = s
    for b in outputs:
        pl.destroy_buffer(b)
    out["wrong_arg_count"] = _execute(pl, exe, [bx], 2)[0]
    out["wrong_num_devices"] = _execute(pl, exe, [bx, by], 2, num_devices=2)[0]
    bi, _ = pl.put(client, np.zeros((2, 3), np.int32))
    out["wrong_dtype"] = _execute(pl, exe, [bx, bi], 2)[0]
    bs, _ = pl.put(client, np.zeros((3, 2), np.float32))
    out["wrong_shape"] = _execute(pl, exe, [bx, bs], 2)[0]
    out["null_arg"] = _execute(pl, exe, [bx, None], 2)[0]
    # An argument that carries an error: the run (inline: its inputs are ready) fails inside
    # Execute, which returns the error and hands out no outputs.
    dims = (C.c_int64 * 2)(2, 3)
    message = b"upstream failure for the test"
    eb = pl.call("Client_CreateErrorBuffer", pl.new(
        CreateErrorBuffer, client=client, error_code=INVALID_ARGUMENT, error_message=message,
        error_message_size=len(message), shape_dims=C.addressof(dims), shape_num_dims=2,
        shape_element_type=F32, memory=pl.call("Device_DefaultMemory", pl.new(
            DeviceDefaultMemory, device=d0)).memory)).buffer
    s, outputs, event = _execute(pl, exe, [bx, eb], 2)
    out["error_arg_execute"], out["error_arg_outputs"] = s, [bool(b) for b in outputs]
    # Serialize, deserialize, run again.
    ser = pl.call("Executable_Serialize", pl.new(ExecutableSerialize, executable=ge))
    blob = C.string_at(ser.serialized_bytes, ser.serialized_bytes_size)
    C.CFUNCTYPE(None, P)(ser.deleter)(ser.serialized_executable)
    blob_buf = C.create_string_buffer(blob, len(blob))
    loaded = pl.call("Executable_DeserializeAndLoad", pl.new(
        DeserializeAndLoad, client=client, serialized=C.addressof(blob_buf),
        serialized_size=len(blob))).loaded_executable
    s, outputs, event = _execute(pl, loaded, [bx, by], 2)
    out["deserialized_execute"] = [s, event]
    if s is None:
        out["deserialized_equal"] = np.array_equal(pl.get(outputs[0], (2, 3), np.float32), x + y)
        for b in outputs:
            pl.destroy_buffer(b)
    garbage = C.create_string_buffer(b"garbage", 7)
    out["deserialize_garbage"] = pl.status("Executable_DeserializeAndLoad", pl.new(
        DeserializeAndLoad, client=client, serialized=C.addressof(garbage), serialized_size=7))
    # A deleted argument.
    pl.call("Buffer_Delete", pl.new(BufferArgs, buffer=by))
    out["deleted_arg"] = _execute(pl, exe, [bx, by], 2)[0]
    # A deleted executable.
    pl.call("LoadedExecutable_Delete", pl.new(ExecutableArgs, executable=loaded))
    out["deleted_executable"] = _execute(pl, loaded, [bx, bx], 2)[0]
    for b in (bx, by, bi, bs, eb):
        pl.destroy_buffer(b)
    pl.call("Executable_Destroy", pl.new(ExecutableArgs, executable=ge))
    pl.call("LoadedExecutable_Destroy", pl.new(ExecutableArgs, executable=exe))
    pl.call("LoadedExecutable_Destroy", pl.new(ExecutableArgs, executable=loaded))
    out["end_stats"] = pl.memory_stats(d0)
    pl.call("Client_Destroy", pl.new(ClientArgs, client=client))
    return out


@scenario
def threads(pl):
    """8 threads drive one client at once through the raw API (ctypes drops the GIL, so the
    calls really overlap): put, execute, read back, delete, destroy; some threads also race
    Buffer_Delete of a shared argument against Execute/ToHostBuffer using it."""
    import threading

    artifact, options = _artifacts()
    client = pl.create_client(device_count=2)
    devices = pl.devices(client)
    exe, s = _compile(pl, client, artifact, b"mlir", options)
    if exe is None:
        return {"compile": s}
    failures, counts = [], [0] * 8
    shared_host = np.ones((2, 3), np.float32)

    def worker(t):
        rng = np.random.default_rng(t)
        try:
            for i in range(60):
                shared, _ = pl.put(client, shared_host)
                x = rng.standard_normal((2, 3)).astype(np.float32)
                bx, _ = pl.put(client, x)
                st, outs, event = _execute(pl, exe, [bx, shared], 2)
                if i % 2:
                    pl.call("Buffer_Delete", pl.new(BufferArgs, buffer=shared))  # races the run
                if st is not None or event is not None:
                    raise AssertionError(f"execute: {st} {event}")
                got = pl.get(outs[0], (2, 3), np.float32)
                if not (isinstance(got, np.ndarray) and np.array_equal(got, x + 1)):
                    raise AssertionError(f"wrong result {got}")
                late, late_outs, _ = _execute(pl, exe, [bx, shared], 2)  # never a crash
                if i % 2 and (late is None or "deleted" not in late[1]):
                    raise AssertionError(f"execute on a deleted argument: {late}")
                for b in outs + late_outs + [bx, shared]:
                    pl.destroy_buffer(b)
                counts[t] += 1
        except Exception as e:
            failures.append(f"thread {t}: {e}")

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    out = {"alive": sum(t.is_alive() for t in threads), "failures": failures[:5],
           "counts": counts, "stats": [pl.memory_stats(d) for d in devices]}
    pl.call("LoadedExecutable_Destroy", pl.new(ExecutableArgs, executable=exe))
    pl.call("Client_Destroy", pl.new(ClientArgs, client=client))
    return out


def driver_main(names):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import jax_pyrt

    pl = Plugin(jax_pyrt.library_path())
    for name in names:
        print("START " + name, flush=True)
        try:
            result = {"ok": SCENARIOS[name](pl)}
        except Exception:
            result = {"exception": traceback.format_exc()}
        print("RESULT " + json.dumps({name: result}), flush=True)


# ------------------------------------------------------------------ the tests (in pytest)

def run_driver(names, timeout=120):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--driver", *names],
                          capture_output=True, text=True, timeout=timeout, env=env)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line[len("RESULT "):]))
    return proc, results


@pytest.fixture(scope="module")
def driver():
    proc, results = run_driver(list(SCENARIOS))
    crashes = {}
    for name in SCENARIOS:  # anything not reported: retry alone to tell which one crashed
        if name not in results:
            p, r = run_driver([name])
            results.update(r)
            if name not in r:
                crashes[name] = f"exit {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"

    def get(name):
        if name in crashes:
            pytest.fail(f"the plugin process crashed in scenario {name}: {crashes[name]}")
        r = results[name]
        if "exception" in r:
            pytest.fail(f"scenario {name} raised in the driver:\n{r['exception']}")
        return r["ok"]

    return get


def assert_error(status, code, *fragments):
    assert status is not None, "expected an error, got success"
    got_code, message = status
    assert got_code == code, f"code {got_code} != {code}: {message}"
    for f in fragments:
        assert f in message, f"{f!r} not in {message!r}"


def test_api_table(driver):
    r = driver("api_table")
    assert r["struct_size"] == 1144
    assert r["version"] == [0, 112]
    assert r["version_struct_size"] == 24
    assert r["null_slots"] == []
    assert r["num_slots_file"] == 138
    for name, (ours, jaxlib) in r["abi_sizes"].items():  # our ctypes mirror matches jaxlib
        assert ours == jaxlib, name


def test_null_args_name_the_entry_point(driver):
    r = driver("null_args")
    assert len(r) == 138
    for _, name, kind in SLOTS:
        status = r[name]
        if name in NULL_OK or name.endswith("_Destroy"):
            assert status is None, f"{name}(NULL) failed: {status}"
        elif kind == "STUB":
            assert_error(status, UNIMPLEMENTED, "PJRT_" + name)
        else:
            assert_error(status, INVALID_ARGUMENT, "PJRT_" + name, "NULL")


def test_struct_size_too_small(driver):
    r = driver("small_struct_size")
    for name, status in r.items():
        assert_error(status, INVALID_ARGUMENT, "PJRT_" + name, "struct_size")


def test_errors_and_events(driver):
    r = driver("errors_and_events")
    assert r["for_each_payload"] is None and r["for_each_payload_visits"] == 0
    assert_error(r["error"], INVALID_ARGUMENT, "PJRT_Client_Devices")
    assert_error(r["get_code_null_error"], INVALID_ARGUMENT, "error")
    assert r["is_ready_before"] is False
    assert_error(r["error_before"], FAILED_PRECONDITION, "not ready")
    assert r["set"] is None and r["is_ready_after"] is True
    assert_error(r["error_after"], FAILED_PRECONDITION, "boom from the test")
    assert_error(r["await"], FAILED_PRECONDITION, "boom from the test")
    assert r["on_ready_seen"] == [None]
    attrs = r["plugin_attributes"]
    assert attrs["stablehlo_current_version"] == [1, 17, 0]
    assert attrs["stablehlo_minimum_version"] == [0, 9, 0]


def test_unimplemented_stubs_name_themselves(driver):
    r = driver("unimplemented_stubs")
    assert "TopologyDescription_Create" in r
    for name, status in r.items():
        if name.endswith("_Destroy"):  # nothing to destroy: pyrt never creates these objects
            assert status is None, f"{name} failed: {status}"
        else:
            assert_error(status, UNIMPLEMENTED, "PJRT_" + name)


def test_client_create_options_and_devices(driver):
    r = driver("clients")
    assert_error(r["unknown_option"], INVALID_ARGUMENT, "no_such_option")
    assert_error(r["device_count_0"], INVALID_ARGUMENT, "device_count")
    assert_error(r["device_count_100000"], INVALID_ARGUMENT, "device_count")
    assert r["num_devices"] == 3 and r["num_addressable"] == 3
    assert r["ids"] == [0, 1, 2]
    assert r["to_strings"] == [f"PyrtDevice(id={i})" for i in range(3)]
    assert r["lookup_2_is_device_2"]
    assert_error(r["lookup_7"], NOT_FOUND, "7")
    assert r["memory_kinds"] == ["device"] * 3
    assert r["memories_addressed_by_own_device"] == [True] * 3
    assert r["buffers_in_default_memory"] == [True] * 3
    assert r["platform_name"] == "pyrt"
    assert r["platform_version"] == "abi-test"
    assert r["default_assignment"] == [0, 1, 2]
    assert_error(r["default_assignment_too_many"], INVALID_ARGUMENT, "4 devices")


def test_null_handles_are_invalid_argument(driver):
    r = driver("clients")
    for name, status in r["null_client"].items():
        assert_error(status, INVALID_ARGUMENT, "PJRT_" + name, "is NULL")


def test_destroy_null_is_a_no_op(driver):
    r = driver("destroy_null")
    for name, statuses in r.items():
        assert statuses == [None, None], name


def test_host_transfers(driver):
    r = driver("transfers")
    host = np.arange(48, dtype=np.float32).reshape(6, 8) * 1.5 - 7
    view = host[::2, 1::3]
    assert r["done_event"] is None
    assert r["dims"] == list(view.shape) and r["type"] == F32
    assert r["nbytes"] == view.size * 4 and r["size_query"] == view.size * 4
    assert r["device_is_d0"]
    assert r["after_put"]["live_arrays"] == r["base"]["live_arrays"] + 1
    assert r["after_put"]["bytes_in_use"] == r["base"]["bytes_in_use"] + view.size * 4
    assert r["roundtrip_equal"]
    assert_error(r["dst_too_small"], INVALID_ARGUMENT, "dst_size")
    assert r["column_major_event"] is None and r["column_major_equal"]
    assert r["strided_event"] is None and r["strided_equal"]
    assert r["copy_device_is_d1"] and r["copy_equal"]
    assert r["d1_stats_with_copy"]["bytes_in_use"] == view.size * 4
    assert r["d1_stats_after_destroy"] == {"bytes_in_use": 0, "live_arrays": 0}
    assert r["raw_event"] is None and r["raw_equal"]
    assert_error(r["raw_out_of_range"], INVALID_ARGUMENT, "outside the buffer")
    assert r["is_deleted"] is True
    assert r["after_delete"] == r["base"]
    assert_error(r["to_host_deleted"], INVALID_ARGUMENT, "PJRT_Buffer_ToHostBuffer", "deleted")
    assert_error(r["copy_deleted"], INVALID_ARGUMENT, "deleted")
    assert_error(r["ready_event_deleted"], INVALID_ARGUMENT, "deleted")
    assert r["delete_twice"] is None  # deleting again is harmless
    assert r["zero_copy_done_before_destroy"] is False  # aliased, not copied
    assert r["zero_copy_equal"]
    assert r["zero_copy_done_after_destroy"] is True and r["zero_copy_done_status"] is None
    assert r["scalar_equal"] and r["empty_ok"]
    assert r["end"] == r["base"]


def test_threads_through_the_raw_api(driver):
    r = driver("threads")
    assert r.get("compile") is None
    assert r["alive"] == 0 and r["failures"] == []
    assert r["counts"] == [60] * 8
    assert r["stats"] == [{"bytes_in_use": 0, "live_arrays": 0}] * 2  # everything freed


def test_view_of_device_buffer(driver):
    r = driver("views")
    assert r["create"] is None
    assert r["stats"] == {"bytes_in_use": 48, "live_arrays": 1}
    assert r["contents"] == np.arange(12, dtype=np.float32).reshape(3, 4).tolist()
    assert r["sees_write"] and r["deleted_before_destroy"] == 0
    assert r["deleted"] == [[True, 1234]]  # once, with the pointer and the caller's argument
    assert r["end_stats"] == {"bytes_in_use": 0, "live_arrays": 0}
    assert r["by_memory"] is None and r["by_memory_contents"][0][0] == 100.0
    assert_error(r["null_ptr"], INVALID_ARGUMENT, "device_buffer_ptr is NULL")
    assert_error(r["column_major"], UNIMPLEMENTED, "row-major")
    assert_error(r["no_device"], INVALID_ARGUMENT, "neither a device nor a memory")
    assert_error(r["bad_type"], INVALID_ARGUMENT, "element type")
    assert_error(r["short"], INVALID_ARGUMENT, "struct_size")
    assert r["deleted_after_errors"] == 1


def test_compile_and_execute(driver):
    r = driver("compile_and_execute")
    assert_error(r["hlo"], UNIMPLEMENTED, "hlo")
    assert_error(r["malformed"], INVALID_ARGUMENT, "could not read the program")
    assert_error(r["bad_options"], INVALID_ARGUMENT, "compile options")
    assert r["compile"] is None
    assert r["num_outputs"] == 2 and r["num_replicas"] == 1
    assert r["name"].startswith("jit_")
    assert r["output_types"] == [F32, F32]
    assert r["output_ranks"] == [2, 2] and r["output_dims"] == [2, 3, 2, 3]
    assert r["output_memory_kinds"] == ["device", "device"]  # one per output, as jaxlib needs
    fmt, text = r["optimized_program"]
    assert fmt == "mlir" and "stablehlo.add" in text and "func.func" in text
    assert r["compile_options_round_trip"]
    assert r["device_assignment_has_deleter"] and r["device_assignment_size"] > 0
    assert r["addressable_devices"]
    assert r["execute"] is None and r["execute_event"] is None
    assert r["sum_equal"] and r["identity_equal"]
    assert r["execute_no_options"] is None
    assert_error(r["wrong_arg_count"], INVALID_ARGUMENT, "takes 2 arguments, got 1")
    assert_error(r["wrong_num_devices"], INVALID_ARGUMENT, "argument lists")
    assert_error(r["wrong_dtype"], INVALID_ARGUMENT, "argument 1", "is s32[2,3]",
                 "expects f32[2,3]")
    assert_error(r["wrong_shape"], INVALID_ARGUMENT, "argument 1", "is f32[3,2]")
    assert_error(r["null_arg"], INVALID_ARGUMENT, "argument 1", "NULL")
    assert_error(r["error_arg_execute"], INVALID_ARGUMENT, "upstream failure for the test")
    assert r["error_arg_outputs"] == [False, False]  # NULL: nothing handed out
    assert r["deserialized_execute"] == [None, None] and r["deserialized_equal"]
    assert_error(r["deserialize_garbage"], INVALID_ARGUMENT, "not a serialized pyrt executable")
    assert_error(r["deleted_arg"], INVALID_ARGUMENT, "deleted")
    assert_error(r["deleted_executable"], FAILED_PRECONDITION, "deleted")
    assert r["end_stats"] == {"bytes_in_use": 0, "live_arrays": 0}


if __name__ == "__main__" and sys.argv[1:2] == ["--driver"]:
    driver_main(sys.argv[2:])
