// Storage: the bytes behind a device array, and the per-device counters that account for them.
//
// A Storage is shared (std::shared_ptr) by every PJRT_Buffer and in-flight job that reads it, and
// by the Python views the runtime makes of it; it is freed when the last holder lets go. Its
// memory is one of: an allocation we own, the caller's host memory (zero-copy device_put), or a
// NumPy array produced by the runtime (zero-copy execute outputs). Thread-safe.
#ifndef PYRT_PJRT_PLUGIN_STORAGE_H_
#define PYRT_PJRT_PLUGIN_STORAGE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

namespace pyrt {

// Live and cumulative allocation counters of one device (PJRT_Device_MemoryStats).
struct DeviceStats {
  std::atomic<int64_t> live_arrays{0};
  std::atomic<int64_t> bytes_in_use{0};
  std::atomic<int64_t> peak_bytes_in_use{0};
  std::atomic<int64_t> num_allocs{0};
  std::atomic<int64_t> largest_alloc_size{0};

  void Add(int64_t bytes);
  void Remove(int64_t bytes);
};

class Storage {
 public:
  // A new 64-byte aligned allocation of `size` bytes (contents undefined).
  static std::shared_ptr<Storage> Allocate(size_t size, DeviceStats* stats);
  // Memory owned elsewhere; `release` runs when the last holder drops it.
  static std::shared_ptr<Storage> Borrow(void* data, size_t size, DeviceStats* stats,
                                         std::function<void()> release);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  // Whether a program may write into this memory when its buffer is donated: true for our own
  // allocations and for fresh runtime outputs; false for borrowed caller memory (zero-copy
  // device_put) and for arrays the runtime still references (e.g. program constants).
  bool writable() const { return writable_; }
  void set_writable(bool w) { writable_ = w; }

 private:
  Storage(void* data, size_t size, DeviceStats* stats, std::function<void()> release);

  void* data_;
  size_t size_;
  DeviceStats* stats_;
  std::function<void()> release_;
  std::atomic<bool> writable_{false};
};

}  // namespace pyrt

#endif  // PYRT_PJRT_PLUGIN_STORAGE_H_
