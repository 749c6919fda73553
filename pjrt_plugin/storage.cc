#include "pjrt_plugin/storage.h"

#include <cstdlib>
#include <new>

namespace pyrt {
namespace {
constexpr size_t kAlignment = 64;
// Zero-size arrays still get a unique, non-null, aligned address.
alignas(kAlignment) char kEmpty[kAlignment];
}  // namespace

void DeviceStats::Add(int64_t bytes) {
  ++live_arrays;
  ++num_allocs;
  int64_t now = bytes_in_use += bytes;
  int64_t peak = peak_bytes_in_use.load();
  while (now > peak && !peak_bytes_in_use.compare_exchange_weak(peak, now)) {
  }
  int64_t largest = largest_alloc_size.load();
  while (bytes > largest && !largest_alloc_size.compare_exchange_weak(largest, bytes)) {
  }
}

void DeviceStats::Remove(int64_t bytes) {
  --live_arrays;
  bytes_in_use -= bytes;
}

std::shared_ptr<Storage> Storage::Allocate(size_t size, DeviceStats* stats) {
  if (size == 0) return std::shared_ptr<Storage>(new Storage(kEmpty, 0, stats, nullptr));
  size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
  void* data = std::aligned_alloc(kAlignment, rounded);
  if (data == nullptr) throw std::bad_alloc();
  auto storage =
      std::shared_ptr<Storage>(new Storage(data, size, stats, [data] { std::free(data); }));
  storage->set_writable(true);
  return storage;
}

std::shared_ptr<Storage> Storage::Borrow(void* data, size_t size, DeviceStats* stats,
                                         std::function<void()> release) {
  return std::shared_ptr<Storage>(
      new Storage(size == 0 ? kEmpty : data, size, stats, std::move(release)));
}

Storage::Storage(void* data, size_t size, DeviceStats* stats, std::function<void()> release)
    : data_(data), size_(size), stats_(stats), release_(std::move(release)) {
  if (stats_) stats_->Add(static_cast<int64_t>(size_));
}

Storage::~Storage() {
  if (release_) release_();
  if (stats_) stats_->Remove(static_cast<int64_t>(size_));
}

}  // namespace pyrt
