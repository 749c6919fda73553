#include "pjrt_plugin/python_bridge.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <mutex>

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
    if (c && PyLong_Check(c.get())) {
      code = static_cast<PJRT_Error_Code>(PyLong_AsLong(c.get()));
    }
    PyErr_Clear();
    Ref s(PyObject_Str(v.get()));
    const char* text = s ? PyUnicode_AsUTF8(s.get()) : nullptr;
    if (text != nullptr) {
      if (code == PJRT_Error_Code_INTERNAL) {
        Ref name(PyObject_GetAttrString(reinterpret_cast<PyObject*>(Py_TYPE(v.get())), "__name__"));
        const char* n = name ? PyUnicode_AsUTF8(name.get()) : nullptr;
        message += std::string(": ") + (n ? n : "Exception") + ": " + text;
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

// ---------------------------------------------------------------- reading Program metadata

bool GetString(PyObject* obj, const char* attr, std::string* out) {
  Ref v(PyObject_GetAttrString(obj, attr));
  if (!v) return false;
  if (PyBytes_Check(v.get())) {
    out->assign(PyBytes_AS_STRING(v.get()), PyBytes_GET_SIZE(v.get()));
    return true;
  }
  Py_ssize_t size;
  const char* s = PyUnicode_AsUTF8AndSize(v.get(), &size);
  if (s == nullptr) return false;
  out->assign(s, size);
  return true;
}

bool GetInt(PyObject* obj, const char* attr, int64_t* out) {
  Ref v(PyObject_GetAttrString(obj, attr));
  if (!v) return false;
  *out = PyLong_AsLongLong(v.get());
  return !PyErr_Occurred();
}

bool GetIntList(PyObject* seq, std::vector<int64_t>* out) {
  Ref fast(PySequence_Fast(seq, "expected a sequence of ints"));
  if (!fast) return false;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast.get());
  out->resize(n);
  for (Py_ssize_t i = 0; i < n; ++i) {
    (*out)[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast.get(), i));
    if (PyErr_Occurred()) return false;
  }
  return true;
}

bool GetStringList(PyObject* obj, const char* attr, std::vector<std::string>* out) {
  Ref v(PyObject_GetAttrString(obj, attr));
  if (!v) return false;
  Ref fast(PySequence_Fast(v.get(), "expected a sequence of str"));
  if (!fast) return false;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast.get());
  out->clear();
  for (Py_ssize_t i = 0; i < n; ++i) {
    const char* s = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(fast.get(), i));
    if (s == nullptr) return false;
    out->emplace_back(s);
  }
  return true;
}

// `attr` is a sequence of (pjrt_type, dims) pairs.
bool GetSpecs(PyObject* obj, const char* attr, std::vector<ArraySpec>* out) {
  Ref v(PyObject_GetAttrString(obj, attr));
  if (!v) return false;
  Ref fast(PySequence_Fast(v.get(), "expected a sequence of (type, dims)"));
  if (!fast) return false;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast.get());
  out->resize(n);
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* pair = PySequence_Fast_GET_ITEM(fast.get(), i);
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
      PyErr_SetString(PyExc_TypeError, "array specs must be (type, dims) tuples");
      return false;
    }
    ArraySpec& spec = (*out)[i];
    spec.type = static_cast<PJRT_Buffer_Type>(PyLong_AsLong(PyTuple_GET_ITEM(pair, 0)));
    if (PyErr_Occurred() || !GetIntList(PyTuple_GET_ITEM(pair, 1), &spec.dims)) return false;
    size_t count = 0;
    if (!ElementCount(spec.dims, &count)) {
      PyErr_SetString(PyExc_ValueError, "array spec has an invalid shape");
      return false;
    }
    spec.nbytes = count * ElementSize(spec.type);
  }
  return true;
}

bool GetCosts(PyObject* obj, std::vector<std::pair<std::string, double>>* out) {
  Ref v(PyObject_GetAttrString(obj, "cost_analysis"));
  if (!v) return false;
  if (!PyDict_Check(v.get())) {
    PyErr_SetString(PyExc_TypeError, "cost_analysis must be a dict");
    return false;
  }
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(v.get(), &pos, &key, &value)) {
    const char* k = PyUnicode_AsUTF8(key);
    double d = PyFloat_AsDouble(value);
    if (k == nullptr || PyErr_Occurred()) return false;
    out->emplace_back(k, d);
  }
  return true;
}

bool GetAliases(PyObject* obj, std::vector<std::pair<int64_t, int64_t>>* out) {
  Ref v(PyObject_GetAttrString(obj, "input_output_aliases"));
  if (!v) return false;
  Ref fast(PySequence_Fast(v.get(), "input_output_aliases must be a sequence of pairs"));
  if (!fast) return false;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast.get()); ++i) {
    std::vector<int64_t> pair;
    if (!GetIntList(PySequence_Fast_GET_ITEM(fast.get(), i), &pair)) return false;
    if (pair.size() != 2) {
      PyErr_SetString(PyExc_ValueError, "input_output_aliases entries must be pairs");
      return false;
    }
    out->emplace_back(pair[0], pair[1]);
  }
  return true;
}

// Copies everything C++ needs out of a jax_pyrt Executable. GIL held.
Status ReadProgram(PyObject* exe, std::shared_ptr<Program>* program) {
  auto p = std::make_shared<Program>();
  std::vector<int64_t> device_ids;
  int64_t run_inline = 0, synchronous = 0;
  Ref ids(PyObject_GetAttrString(exe, "device_ids"));
  bool ok = ids && GetIntList(ids.get(), &device_ids) && GetString(exe, "name", &p->name) &&
            GetString(exe, "fingerprint", &p->fingerprint) && GetString(exe, "text", &p->text) &&
            GetString(exe, "compile_options", &p->compile_options) &&
            GetString(exe, "device_assignment", &p->device_assignment) &&
            GetInt(exe, "num_replicas", &p->num_replicas) &&
            GetInt(exe, "num_partitions", &p->num_partitions) &&
            GetInt(exe, "code_size_in_bytes", &p->code_size_in_bytes) &&
            GetInt(exe, "run_inline", &run_inline) && GetInt(exe, "synchronous", &synchronous) &&
            GetSpecs(exe, "input_specs", &p->inputs) && GetSpecs(exe, "output_specs", &p->outputs) &&
            GetStringList(exe, "output_memory_kinds", &p->output_memory_kinds) &&
            GetStringList(exe, "input_memory_kinds", &p->input_memory_kinds) &&
            GetCosts(exe, &p->cost_analysis) && GetAliases(exe, &p->input_output_aliases) &&
            GetInt(exe, "argument_size_in_bytes", &p->argument_size_in_bytes) &&
            GetInt(exe, "output_size_in_bytes", &p->output_size_in_bytes) &&
            GetInt(exe, "alias_size_in_bytes", &p->alias_size_in_bytes) &&
            GetInt(exe, "temp_size_in_bytes", &p->temp_size_in_bytes);
  for (const auto& [in, out] : p->input_output_aliases) {
    if (ok && (in < 0 || out < 0 || static_cast<size_t>(in) >= p->inputs.size() ||
               static_cast<size_t>(out) >= p->outputs.size())) {
      PyErr_SetString(PyExc_ValueError, "input_output_aliases names a missing input or output");
      ok = false;
    }
  }
  if (!ok) return FetchError("reading compiled program metadata");
  p->device_ids.assign(device_ids.begin(), device_ids.end());
  p->run_inline = run_inline != 0;
  p->synchronous = synchronous != 0;
  Py_INCREF(exe);
  p->handle = exe;
  *program = std::move(p);
  return Status::Ok();
}

Status CallForProgram(const char* function, PyObject* args, std::shared_ptr<Program>* program) {
  Status status;
  PyObject* module = BridgeModule(&status);
  if (module == nullptr) return status;
  Ref fn(PyObject_GetAttrString(module, function));
  if (!fn) return FetchError(function);
  Ref exe(PyObject_CallObject(fn.get(), args));
  if (!exe) return FetchError(function);
  return ReadProgram(exe.get(), program);
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

Status Compile(const std::string& code, const std::string& format, const std::string& options,
               std::shared_ptr<Program>* program) {
  if (!PythonAlive()) return FailedPrecondition("pyrt: the Python interpreter is shutting down");
  IeeeFloats ieee;
  Gil gil;
  DrainReleased();
  Ref args(Py_BuildValue("(y#s#y#)", code.data(), (Py_ssize_t)code.size(), format.data(),
                         (Py_ssize_t)format.size(), options.data(), (Py_ssize_t)options.size()));
  if (!args) return FetchError("compile");
  return CallForProgram("compile", args.get(), program);
}

Status Deserialize(const std::string& serialized, const std::string& override_options,
                   std::shared_ptr<Program>* program) {
  if (!PythonAlive()) return FailedPrecondition("pyrt: the Python interpreter is shutting down");
  IeeeFloats ieee;
  Gil gil;
  DrainReleased();
  Ref args(Py_BuildValue("(y#y#)", serialized.data(), (Py_ssize_t)serialized.size(),
                         override_options.data(), (Py_ssize_t)override_options.size()));
  if (!args) return FetchError("deserialize");
  return CallForProgram("deserialize", args.get(), program);
}

Status Serialize(const Program& program, std::string* serialized) {
  if (!PythonAlive()) return FailedPrecondition("pyrt: the Python interpreter is shutting down");
  Gil gil;
  Ref bytes(PyObject_CallMethod(program.handle, "serialize", nullptr));
  if (!bytes || !PyBytes_Check(bytes.get())) return FetchError("serialize");
  serialized->assign(PyBytes_AS_STRING(bytes.get()), PyBytes_GET_SIZE(bytes.get()));
  return Status::Ok();
}

Status Run(const Program& program, const std::vector<std::shared_ptr<Storage>>& inputs,
           const std::vector<int64_t>& donated, DeviceStats* stats,
           std::vector<std::shared_ptr<Storage>>* outputs) {
  if (!PythonAlive()) return FailedPrecondition("pyrt: the Python interpreter is shutting down");
  IeeeFloats ieee;
  Gil gil;
  DrainReleased();
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
  // execute() returns, per output, a donated input's index or a new flat uint8 array.
  Ref results(PyObject_CallMethod(program.handle, "execute", "(OO)", views.get(),
                                  donated_list.get()));
  if (!results) return FetchError("execute");
  Ref fast(PySequence_Fast(results.get(), "execute() must return a sequence"));
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
