#include "pjrt_plugin/python_bridge.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <mutex>
#include <optional>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include "pjrt_plugin/element_type.h"

namespace pyrt {
namespace bridge {

// Holds the GIL for its scope; reentrant, usable from threads Python has never seen.
class Gil {
 public:
  Gil() : state_(PyGILState_Ensure()) {}
  // Once the interpreter is finalizing, a thread that tries to retake the GIL (e.g. after NumPy
  // released it) is ended by Python with a forced unwind; this destructor then runs without the
  // GIL, and releasing would abort the process. (Only then can a Gil outlive PythonAlive():
  // finalization starts on a thread holding the GIL, so never while another thread holds it.)
  ~Gil() {
    if (PythonAlive()) PyGILState_Release(state_);
  }
  Gil(const Gil&) = delete;
  Gil& operator=(const Gil&) = delete;

 private:
  PyGILState_STATE state_;
};

namespace {

// IEEE float behaviour for its scope. jaxlib's compile threads run with denormals flushed to
// zero (FTZ/DAZ set in MXCSR); the runtime must not inherit that, or constants parsed at compile
// time and results computed on such a thread would silently lose denormals.
class IeeeFloats {
 public:
#if defined(__x86_64__) || defined(__i386__)
  IeeeFloats() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ & ~(kFlushToZero | kDenormalsAreZero)); }
  ~IeeeFloats() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFlushToZero = 1u << 15, kDenormalsAreZero = 1u << 6;
  unsigned saved_;
#endif
};

// An owned reference; call only with the GIL held.
class Ref {
 public:
  explicit Ref(PyObject* p = nullptr) : p_(p) {}
  ~Ref() {
    if (PythonAlive()) Py_XDECREF(p_);  // see ~Gil: during finalization we may lack the GIL
  }
  Ref(Ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  PyObject* get() const { return p_; }
  PyObject* release() {
    PyObject* p = p_;
    p_ = nullptr;
    return p;
  }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  PyObject* p_;
};

// "\n" and the formatted traceback of an exception, or "" if it cannot be formatted.
std::string FormatTraceback(const Ref& type, const Ref& value, const Ref& traceback) {
  Ref module(PyImport_ImportModule("traceback"));
  Ref lines(module ? PyObject_CallMethod(module.get(), "format_exception", "OOO", type.get(),
                                         value.get(), traceback ? traceback.get() : Py_None)
                   : nullptr);
  Ref empty(PyUnicode_FromString(""));
  Ref text(lines && empty ? PyUnicode_Join(empty.get(), lines.get()) : nullptr);
  const char* s = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
  PyErr_Clear();
  return s != nullptr ? std::string("\n") + s : "";
}

// Turns the pending Python exception into a Status. The runtime raises exceptions carrying a
// `pjrt_code` attribute (jax_pyrt.errors); anything else is INTERNAL.
Status FetchError(const char* what) {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  Ref t(type), v(value), tb(traceback);
  PJRT_Error_Code code = PJRT_Error_Code_INTERNAL;
  std::string message = std::string("pyrt ") + what + " failed";
  if (v) {
    Ref c(PyObject_GetAttrString(v.get(), "pjrt_code"));
    bool ours = c && PyLong_Check(c.get());  // a jax_pyrt.errors.PyrtError: its message as is
    if (ours) code = static_cast<PJRT_Error_Code>(PyLong_AsLong(c.get()));
    PyErr_Clear();
    Ref s(PyObject_Str(v.get()));
    const char* text = s ? PyUnicode_AsUTF8(s.get()) : nullptr;
    if (text != nullptr) {
      if (!ours) {  // not raised on purpose: a bug of ours; keep the type and the traceback
        Ref name(PyObject_GetAttrString(reinterpret_cast<PyObject*>(Py_TYPE(v.get())), "__name__"));
        const char* n = name ? PyUnicode_AsUTF8(name.get()) : nullptr;
        message += std::string(": ") + (n ? n : "Exception") + ": " + text + FormatTraceback(t, v, tb);
      } else {
        message = text;
      }
    }
    PyErr_Clear();
  }
  if (code == PJRT_Error_Code_OK) code = PJRT_Error_Code_INTERNAL;
  return Error(code, message);
}

// jax_pyrt._bridge, imported once.
PyObject* BridgeModule(Status* status) {
  static PyObject* module = nullptr;
  if (module == nullptr) {
    module = PyImport_ImportModule("jax_pyrt._bridge");
    if (module == nullptr) {
      *status = FetchError("import of jax_pyrt._bridge");
      status->message += " (is the jax-pyrt package installed in this Python environment?)";
    }
  }
  return module;
}

// ---------------------------------------------------------------- StorageView: a Python object
// exporting a Storage through the buffer protocol; NumPy views of it keep the Storage alive.

struct StorageView {
  PyObject_HEAD std::shared_ptr<Storage>* storage;
  bool writable;  // only for donated inputs
};

int StorageViewGetBuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* s = reinterpret_cast<StorageView*>(self);
  return PyBuffer_FillInfo(view, self, (*s->storage)->data(),
                           static_cast<Py_ssize_t>((*s->storage)->size()), s->writable ? 0 : 1,
                           flags);
}

void StorageViewDealloc(PyObject* self) {
  auto* s = reinterpret_cast<StorageView*>(self);
  delete s->storage;
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyObject* StorageViewType() {
  static PyObject* type = nullptr;
  if (type == nullptr) {
    static PyType_Slot slots[] = {
        {Py_bf_getbuffer, reinterpret_cast<void*>(StorageViewGetBuffer)},
        {Py_tp_dealloc, reinterpret_cast<void*>(StorageViewDealloc)},
        {Py_tp_doc, const_cast<char*>("Read-only bytes of a pyrt device array.")},
        {0, nullptr},
    };
    static PyType_Spec spec = {"jax_pyrt.StorageView", sizeof(StorageView), 0,
                               Py_TPFLAGS_DEFAULT, slots};
    type = PyType_FromSpec(&spec);
  }
  return type;
}

PyObject* NewStorageView(const std::shared_ptr<Storage>& storage, bool writable = false) {
  PyObject* type = StorageViewType();
  if (type == nullptr) return nullptr;
  PyObject* obj = PyType_GenericAlloc(reinterpret_cast<PyTypeObject*>(type), 0);
  if (obj == nullptr) return nullptr;
  reinterpret_cast<StorageView*>(obj)->storage = new std::shared_ptr<Storage>(storage);
  reinterpret_cast<StorageView*>(obj)->writable = writable;
  return obj;
}

// ---------------------------------------------------------------- reading the Compiled record

bool ReadString(PyObject* v, std::string* out) {
  if (PyBytes_Check(v)) {
    out->assign(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
    return true;
  }
  Py_ssize_t size;
  const char* s = PyUnicode_AsUTF8AndSize(v, &size);
  if (s == nullptr) return false;
  out->assign(s, size);
  return true;
}

bool ReadInt(PyObject* v, int64_t* out) {
  *out = PyLong_AsLongLong(v);
  return !PyErr_Occurred();
}

bool ReadBool(PyObject* v, bool* out) {
  int truth = PyObject_IsTrue(v);
  *out = truth == 1;
  return truth >= 0;
}

// Calls `read(item)` for each item of the sequence `v`.
template <typename F>
bool ForEach(PyObject* v, F read) {
  Ref fast(PySequence_Fast(v, "expected a sequence"));
  if (!fast) return false;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast.get()); ++i) {
    if (!read(PySequence_Fast_GET_ITEM(fast.get(), i))) return false;
  }
  return true;
}

bool ReadInts(PyObject* v, std::vector<int64_t>* out) {
  out->clear();
  return ForEach(v, [out](PyObject* item) {
    int64_t x;
    if (!ReadInt(item, &x)) return false;
    out->push_back(x);
    return true;
  });
}

bool ReadStrings(PyObject* v, std::vector<std::string>* out) {
  out->clear();
  return ForEach(v, [out](PyObject* item) {
    out->emplace_back();
    return ReadString(item, &out->back());
  });
}

// A (key, value) or (a, b) pair of the sequence `item`, read by `first` and `second`.
template <typename A, typename B>
bool ReadPair(PyObject* item, A first, B second) {
  Ref fast(PySequence_Fast(item, "expected a pair"));
  if (!fast || PySequence_Fast_GET_SIZE(fast.get()) != 2) {
    if (fast) PyErr_SetString(PyExc_ValueError, "expected a pair");
    return false;
  }
  return first(PySequence_Fast_GET_ITEM(fast.get(), 0)) &&
         second(PySequence_Fast_GET_ITEM(fast.get(), 1));
}

// ((PJRT_Buffer_Type, dims), ...)
bool ReadSpecs(PyObject* v, std::vector<ArraySpec>* out) {
  out->clear();
  return ForEach(v, [out](PyObject* item) {
    ArraySpec spec;
    int64_t type = 0;
    bool ok = ReadPair(
        item, [&](PyObject* t) { return ReadInt(t, &type); },
        [&](PyObject* d) { return ReadInts(d, &spec.dims); });
    size_t count = 0;
    if (ok && !ElementCount(spec.dims, &count)) {
      PyErr_SetString(PyExc_ValueError, "array spec has an invalid shape");
      ok = false;
    }
    spec.type = static_cast<PJRT_Buffer_Type>(type);
    spec.nbytes = count * ElementSize(spec.type);
    out->push_back(std::move(spec));
    return ok;
  });
}

bool ReadCosts(PyObject* v, std::vector<std::pair<std::string, double>>* out) {
  out->clear();
  return ForEach(v, [out](PyObject* item) {
    std::pair<std::string, double> cost;
    return ReadPair(
               item, [&](PyObject* k) { return ReadString(k, &cost.first); },
               [&](PyObject* x) {
                 cost.second = PyFloat_AsDouble(x);
                 return !PyErr_Occurred();
               }) &&
           (out->push_back(cost), true);
  });
}

bool ReadAliases(PyObject* v, std::vector<std::pair<int64_t, int64_t>>* out) {
  out->clear();
  return ForEach(v, [out](PyObject* item) {
    std::pair<int64_t, int64_t> alias;
    return ReadPair(
               item, [&](PyObject* a) { return ReadInt(a, &alias.first); },
               [&](PyObject* b) { return ReadInt(b, &alias.second); }) &&
           (out->push_back(alias), true);
  });
}

// The fields of jax_pyrt._bridge.Compiled, one reader each.
struct FieldReader {
  const char* name;
  bool (*read)(PyObject* value, Program* p);
};

// Reads the attribute `field` with `reader` into the Program member of the same name.
#define PYRT_FIELD(field, reader) \
  { #field, [](PyObject* v, Program* p) { return reader(v, &p->field); } }

const FieldReader kCompiledFields[] = {
    PYRT_FIELD(name, ReadString),
    PYRT_FIELD(fingerprint, ReadString),
    PYRT_FIELD(text, ReadString),
    PYRT_FIELD(compile_options, ReadString),
    PYRT_FIELD(device_assignment, ReadString),
    PYRT_FIELD(num_replicas, ReadInt),
    PYRT_FIELD(num_partitions, ReadInt),
    {"device_ids",
     [](PyObject* v, Program* p) {
       std::vector<int64_t> ids;
       if (!ReadInts(v, &ids)) return false;
       p->device_ids.assign(ids.begin(), ids.end());
       return true;
     }},
    PYRT_FIELD(inputs, ReadSpecs),
    PYRT_FIELD(outputs, ReadSpecs),
    PYRT_FIELD(input_memory_kinds, ReadStrings),
    PYRT_FIELD(output_memory_kinds, ReadStrings),
    PYRT_FIELD(cost_analysis, ReadCosts),
    PYRT_FIELD(input_output_aliases, ReadAliases),
    PYRT_FIELD(argument_size_in_bytes, ReadInt),
    PYRT_FIELD(output_size_in_bytes, ReadInt),
    PYRT_FIELD(alias_size_in_bytes, ReadInt),
    PYRT_FIELD(temp_size_in_bytes, ReadInt),
    PYRT_FIELD(code_size_in_bytes, ReadInt),
    PYRT_FIELD(run_inline, ReadBool),
    PYRT_FIELD(synchronous, ReadBool),
    PYRT_FIELD(parameter_shardings, ReadStrings),
    PYRT_FIELD(output_shardings, ReadStrings),
};

#undef PYRT_FIELD

// Copies everything C++ needs out of a jax_pyrt._bridge.Compiled record. GIL held.
Status ReadProgram(PyObject* compiled, std::shared_ptr<Program>* program) {
  auto p = std::make_shared<Program>();
  for (const FieldReader& field : kCompiledFields) {
    Ref value(PyObject_GetAttrString(compiled, field.name));
    if (!value || !field.read(value.get(), p.get())) {
      Status s = FetchError("reading the compiled program's record");
      s.message += std::string(" (field ") + field.name + ")";
      return s;
    }
  }
  for (const auto& [in, out] : p->input_output_aliases) {
    if (in < 0 || out < 0 || static_cast<size_t>(in) >= p->inputs.size() ||
        static_cast<size_t>(out) >= p->outputs.size()) {
      return Internal("pyrt runtime: input_output_aliases names a missing input or output");
    }
  }
  PyObject* handle = PyObject_GetAttrString(compiled, "handle");  // new reference, kept
  if (handle == nullptr) return FetchError("reading the compiled program's handle");
  p->handle = handle;
  *program = std::move(p);
  return Status::Ok();
}

// Calls jax_pyrt._bridge.<function>(*args); GIL held.
Ref CallBridge(const char* function, PyObject* args, Status* status) {
  PyObject* module = BridgeModule(status);
  if (module == nullptr) return Ref();
  Ref fn(PyObject_GetAttrString(module, function));
  Ref result(fn ? PyObject_CallObject(fn.get(), args) : nullptr);
  if (!result) *status = FetchError(function);
  return result;
}

}  // namespace

bool PythonAlive() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsInitialized() && !Py_IsFinalizing();
#else
  return Py_IsInitialized() && !_Py_IsFinalizing();
#endif
}


namespace {
// Work handed over by threads without the GIL, waiting for the main thread (see CallWithGil).
std::mutex released_mu;
auto* released = new std::vector<std::function<void()>>;  // guarded; never destroyed
bool drain_scheduled = false;                              // guarded by released_mu

// Runs the handed-over work. Called with the GIL: from a pending call on the main thread, and
// at the start of every call into the runtime.
int DrainReleased(void* = nullptr) {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(released_mu);
    work.swap(*released);
    drain_scheduled = false;
  }
  for (auto& fn : work) fn();
  return 0;
}
}  // namespace

void CallWithGil(std::function<void()> fn) {
  if (!PythonAlive()) return;  // leak rather than touch a dying interpreter
  if (PyGILState_Check()) {
    fn();
    return;
  }
  // This runs in destructors. A thread that waits for the GIL while the interpreter begins to
  // finalize is ended by Python (a forced unwind), which out of a destructor aborts the process;
  // so never wait here: hand the work to the main thread (Py_AddPendingCall needs no GIL).
  std::lock_guard<std::mutex> lock(released_mu);
  released->push_back(std::move(fn));
  if (!drain_scheduled) drain_scheduled = Py_AddPendingCall(&DrainReleased, nullptr) == 0;
}

void DecRef(PyObject* object) {
  CallWithGil([object] { Py_DECREF(object); });
}

namespace {
// The prologue of every call into Python, for its scope: the interpreter must still be alive;
// then IEEE float behaviour, the GIL, and first the work threads without the GIL handed over
// (CallWithGil).
class PythonCall {
 public:
  PythonCall() : alive_(PythonAlive()) {
    if (!alive_) return;
    ieee_.emplace();
    gil_.emplace();
    DrainReleased();
  }
  Status status() const {
    return alive_ ? Status::Ok()
                  : FailedPrecondition("pyrt: the Python interpreter is shutting down");
  }

 private:
  bool alive_;
  std::optional<IeeeFloats> ieee_;
  std::optional<Gil> gil_;  // released before the float mode is restored
};
}  // namespace

namespace {
// ---------------------------------------------------------------- the key-value store, as two
// Python functions (kv_get(key, timeout_ms) -> bytes, kv_put(key, value)) over a capsule that
// holds the callbacks. They work only during JoinProcesses: afterwards the capsule is closed,
// since nothing promises that the callbacks' user args outlive PJRT_Client_Create.

struct KvCapsule {
  KeyValueStore kv;
  bool open = true;  // under the GIL
};

PJRT_Error* NewCallbackError(PJRT_Error_Code code, const char* message, size_t size) {
  return ToPjrtError(Error(code, std::string(message, size)));
}
PJRT_CallbackError callback_error = &NewCallbackError;

const char kKvCapsuleName[] = "pyrt.kv";

KvCapsule* OpenKv(PyObject* self) {
  auto* kv = static_cast<KvCapsule*>(PyCapsule_GetPointer(self, kKvCapsuleName));
  if (kv != nullptr && !kv->open) {
    PyErr_SetString(PyExc_RuntimeError, "pyrt: the key-value store of jax.distributed is "
                                        "usable only while the client is created");
    return nullptr;
  }
  return kv;
}

// Raises the callback's error (and frees it): TimeoutError for a deadline, KeyError for a
// missing key, RuntimeError otherwise.
PyObject* RaiseCallbackError(PJRT_Error* error) {
  Status status = error->status;
  delete error;
  PyObject* type = status.code == PJRT_Error_Code_DEADLINE_EXCEEDED ? PyExc_TimeoutError
                   : status.code == PJRT_Error_Code_NOT_FOUND        ? PyExc_KeyError
                                                                     : PyExc_RuntimeError;
  PyErr_SetString(type, status.message.c_str());
  return nullptr;
}

PyObject* KvGet(PyObject* self, PyObject* args) {
  const char* key;
  Py_ssize_t key_size;
  int timeout_ms;
  if (!PyArg_ParseTuple(args, "s#i", &key, &key_size, &timeout_ms)) return nullptr;
  KvCapsule* kv = OpenKv(self);
  if (kv == nullptr) return nullptr;
  PJRT_KeyValueGetCallback_Args a{};
  a.struct_size = sizeof(a);
  a.key = key;
  a.key_size = static_cast<size_t>(key_size);
  a.timeout_in_ms = timeout_ms;
  a.callback_error = &callback_error;
  a.user_arg = kv->kv.get_arg;
  PJRT_Error* error;
  Py_BEGIN_ALLOW_THREADS  // blocks until a peer puts the key
  error = kv->kv.get(&a);
  Py_END_ALLOW_THREADS
  if (error != nullptr) return RaiseCallbackError(error);
  PyObject* value = PyBytes_FromStringAndSize(a.value, static_cast<Py_ssize_t>(a.value_size));
  if (a.value_deleter_callback != nullptr) a.value_deleter_callback(a.value);
  return value;
}

PyObject* KvPut(PyObject* self, PyObject* args) {
  const char *key, *value;
  Py_ssize_t key_size, value_size;
  if (!PyArg_ParseTuple(args, "s#y#", &key, &key_size, &value, &value_size)) return nullptr;
  KvCapsule* kv = OpenKv(self);
  if (kv == nullptr) return nullptr;
  PJRT_KeyValuePutCallback_Args a{};
  a.struct_size = sizeof(a);
  a.key = key;
  a.key_size = static_cast<size_t>(key_size);
  a.value = value;
  a.value_size = static_cast<size_t>(value_size);
  a.callback_error = &callback_error;
  a.user_arg = kv->kv.put_arg;
  PJRT_Error* error;
  Py_BEGIN_ALLOW_THREADS
  error = kv->kv.put(&a);
  Py_END_ALLOW_THREADS
  if (error != nullptr) return RaiseCallbackError(error);
  Py_RETURN_NONE;
}

PyMethodDef kv_get_def = {"kv_get", KvGet, METH_VARARGS,
                          "kv_get(key, timeout_ms) -> bytes: waits for `key` in the store."};
PyMethodDef kv_put_def = {"kv_put", KvPut, METH_VARARGS, "kv_put(key, value: bytes)"};

void DeleteKvCapsule(PyObject* capsule) {
  delete static_cast<KvCapsule*>(PyCapsule_GetPointer(capsule, kKvCapsuleName));
}
}  // namespace

Status JoinProcesses(int process_index, int num_processes, int local_devices,
                     const KeyValueStore& kv, std::vector<DevicePlace>* devices) {
  if (kv.get == nullptr || kv.put == nullptr) {
    return InvalidArgument("pyrt: a client of " + std::to_string(num_processes) +
                           " processes needs jax.distributed's key-value store (call "
                           "jax.distributed.initialize() before using JAX)");
  }
  PythonCall call;
  if (!call.status().ok()) return call.status();
  auto* state = new KvCapsule{kv};
  Ref capsule(PyCapsule_New(state, kKvCapsuleName, &DeleteKvCapsule));
  if (!capsule) {
    delete state;
    return FetchError("join_processes");
  }
  Ref get(PyCFunction_New(&kv_get_def, capsule.get()));
  Ref put(PyCFunction_New(&kv_put_def, capsule.get()));
  Ref args(get && put ? Py_BuildValue("(iiiOO)", process_index, num_processes, local_devices,
                                      get.get(), put.get())
                      : nullptr);
  Status status = args ? Status::Ok() : FetchError("join_processes");
  Ref result = args ? CallBridge("join_processes", args.get(), &status) : Ref();
  state->open = false;
  if (!result) return status;
  // [(id, process_index, local_hardware_id), ...]
  bool read = ForEach(result.get(), [devices](PyObject* item) {
    std::vector<int64_t> v;
    if (!ReadInts(item, &v)) return false;
    if (v.size() != 3) {
      PyErr_SetString(PyExc_ValueError, "a device place is (id, process_index, local_hardware_id)");
      return false;
    }
    devices->push_back({static_cast<int>(v[0]), static_cast<int>(v[1]), static_cast<int>(v[2])});
    return true;
  });
  if (!read) return FetchError("join_processes");
  return Status::Ok();
}

namespace {
// Calls jax_pyrt._bridge.<function>() and reads its bytes result into `out`, if given.
Status CallWithoutArguments(const char* function, std::string* out) {
  PythonCall call;
  if (!call.status().ok()) return call.status();
  Ref args(PyTuple_New(0));
  Status status = args ? Status::Ok() : FetchError(function);
  Ref result = args ? CallBridge(function, args.get(), &status) : Ref();
  if (!result) return status;
  if (out != nullptr && !ReadString(result.get(), out)) return FetchError(function);
  return Status::Ok();
}
}  // namespace

Status TraceStart() { return CallWithoutArguments("trace_start", nullptr); }
Status TraceStop() { return CallWithoutArguments("trace_stop", nullptr); }
Status TraceCollect(std::string* xspace) { return CallWithoutArguments("trace_collect", xspace); }

Status ProcessFailed(int process_index, const std::string& why) {
  PythonCall call;
  if (!call.status().ok()) return call.status();
  Ref args(Py_BuildValue("(is#)", process_index, why.data(), (Py_ssize_t)why.size()));
  Status status = args ? Status::Ok() : FetchError("process_failed");
  Ref result = args ? CallBridge("process_failed", args.get(), &status) : Ref();
  return status;
}

Status Compile(const std::string& code, const std::string& format, const std::string& options,
               std::shared_ptr<Program>* program) {
  PythonCall call;
  if (!call.status().ok()) return call.status();
  Ref args(Py_BuildValue("(y#s#y#)", code.data(), (Py_ssize_t)code.size(), format.data(),
                         (Py_ssize_t)format.size(), options.data(), (Py_ssize_t)options.size()));
  Status status = args ? Status::Ok() : FetchError("compile");
  Ref compiled = args ? CallBridge("compile", args.get(), &status) : Ref();
  return compiled ? ReadProgram(compiled.get(), program) : status;
}

Status Deserialize(const std::string& serialized, const std::string& override_options,
                   std::shared_ptr<Program>* program) {
  PythonCall call;
  if (!call.status().ok()) return call.status();
  Ref args(Py_BuildValue("(y#y#)", serialized.data(), (Py_ssize_t)serialized.size(),
                         override_options.data(), (Py_ssize_t)override_options.size()));
  Status status = args ? Status::Ok() : FetchError("deserialize");
  Ref compiled = args ? CallBridge("deserialize", args.get(), &status) : Ref();
  return compiled ? ReadProgram(compiled.get(), program) : status;
}

Status Serialize(const Program& program, std::string* serialized) {
  PythonCall call;
  if (!call.status().ok()) return call.status();
  Ref args(Py_BuildValue("(O)", program.handle));
  Status status = args ? Status::Ok() : FetchError("serialize");
  Ref bytes = args ? CallBridge("serialize", args.get(), &status) : Ref();
  if (!bytes) return status;
  if (!ReadString(bytes.get(), serialized)) return FetchError("serialize");
  return Status::Ok();
}

Status Run(const Program& program, const RunPlace& place,
           const std::vector<std::shared_ptr<Storage>>& inputs,
           const std::vector<int64_t>& donated, DeviceStats* stats,
           std::vector<std::shared_ptr<Storage>>* outputs) {
  PythonCall call;
  if (!call.status().ok()) return call.status();
  Ref views(PyList_New(static_cast<Py_ssize_t>(inputs.size())));
  if (!views) return FetchError("execute");
  for (size_t i = 0; i < inputs.size(); ++i) {
    bool writable = std::find(donated.begin(), donated.end(), static_cast<int64_t>(i)) !=
                    donated.end();
    PyObject* view = NewStorageView(inputs[i], writable);
    if (view == nullptr) return FetchError("execute");
    PyList_SET_ITEM(views.get(), i, view);  // steals
  }
  Ref donated_list(PyList_New(static_cast<Py_ssize_t>(donated.size())));
  if (!donated_list) return FetchError("execute");
  for (size_t i = 0; i < donated.size(); ++i) {
    PyList_SET_ITEM(donated_list.get(), i, PyLong_FromLongLong(donated[i]));
  }
  // run() returns, per output, a donated input's index or a new flat uint8 array.
  Ref args(Py_BuildValue("(OOOiiiKi)", program.handle, views.get(), donated_list.get(),
                         place.device, place.replica, place.partition,
                         static_cast<unsigned long long>(place.run), place.devices));
  Status status = args ? Status::Ok() : FetchError("execute");
  Ref results = args ? CallBridge("run", args.get(), &status) : Ref();
  if (!results) return status;
  Ref fast(PySequence_Fast(results.get(), "run() must return a sequence"));
  if (!fast) return FetchError("execute");
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast.get());
  if (static_cast<size_t>(n) != program.outputs.size()) {
    return Internal("pyrt runtime returned " + std::to_string(n) + " outputs, expected " +
                    std::to_string(program.outputs.size()));
  }
  outputs->clear();
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* result = PySequence_Fast_GET_ITEM(fast.get(), i);
    if (PyLong_Check(result)) {  // the output took over a donated input's storage
      int64_t in = PyLong_AsLongLong(result);
      if (std::find(donated.begin(), donated.end(), in) == donated.end()) {
        return Internal("pyrt runtime put output " + std::to_string(i) +
                        " into input " + std::to_string(in) + ", which was not donated");
      }
      outputs->push_back(inputs[in]);
      continue;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(result, &view, PyBUF_C_CONTIGUOUS) != 0) return FetchError("execute");
    void* data = view.buf;
    size_t size = static_cast<size_t>(view.len);
    PyBuffer_Release(&view);
    if (size != program.outputs[i].nbytes) {
      return Internal("pyrt runtime returned " + std::to_string(size) + " bytes for output " +
                      std::to_string(i) + ", expected " +
                      std::to_string(program.outputs[i].nbytes));
    }
    // A new array nothing else references: it becomes the output's storage without a copy,
    // writable so that a later run may reuse it when it is donated.
    Py_INCREF(result);
    outputs->push_back(Storage::Borrow(data, size, stats, [result] { DecRef(result); }));
    outputs->back()->set_writable(true);
  }
  return Status::Ok();
}

namespace {
bool (*exit_wait)(double seconds) = nullptr;  // set once, under the GIL

PyObject* WaitAtExit(PyObject*, PyObject*) {
  for (;;) {
    bool done;
    Py_BEGIN_ALLOW_THREADS
    done = exit_wait(0.1);
    Py_END_ALLOW_THREADS
    if (done) Py_RETURN_NONE;
    if (PyErr_CheckSignals() != 0) return nullptr;  // e.g. Ctrl-C: stop waiting
  }
}

PyMethodDef wait_at_exit_def = {"pyrt_wait_for_devices", WaitAtExit, METH_NOARGS,
                                "Waits until pyrt devices have finished their queued work."};
}  // namespace

void CallAtExit(bool (*wait)(double seconds)) {
  if (!PythonAlive()) return;
  Gil gil;  // also the lock for `registered` (std::call_once could deadlock with the GIL)
  static bool registered = false;
  if (registered) return;
  registered = true;
  exit_wait = wait;
  Ref fn(PyCFunction_New(&wait_at_exit_def, nullptr));
  Ref atexit(PyImport_ImportModule("atexit"));
  Ref result(fn && atexit ? PyObject_CallMethod(atexit.get(), "register", "O", fn.get()) : nullptr);
  if (!result) PyErr_Clear();  // best effort: without it, exiting mid-run may abort
}

ScopedGilRelease::ScopedGilRelease() {
  if (Py_IsInitialized() && PyGILState_Check()) saved_ = PyEval_SaveThread();
}

ScopedGilRelease::~ScopedGilRelease() {
  if (saved_ != nullptr) PyEval_RestoreThread(static_cast<PyThreadState*>(saved_));
}

}  // namespace bridge

Program::~Program() {
  if (handle != nullptr) bridge::DecRef(handle);
}

}  // namespace pyrt
