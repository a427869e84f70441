#include "zeroed-pages.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <utility>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels refuse it, and the writes below fault the pages in
#endif

namespace vellum::backend {
namespace {
constexpr size_t kPageBytes = 4096;
}  // namespace

ZeroedPages::ZeroedPages(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<uint8_t*>(p);
  fill_ = std::make_unique<Fill>();
  // In 64 MiB steps, so that a cache freed before it is filled stops the thread soon.
  fill_->thread = std::thread([data = data_, bytes, fill = fill_.get()] {
    constexpr size_t step = size_t{64} << 20;
    for (size_t at = 0; at < bytes && !fill->stop.load(); at += step) {
      const size_t end = std::min(at + step, bytes);
      madvise(data + at, end - at, MADV_POPULATE_WRITE);
      for (size_t page = at; page < end; page += kPageBytes)
        __atomic_fetch_or(reinterpret_cast<uint32_t*>(data + page), 0u, __ATOMIC_RELAXED);
    }
    fill->resident.store(!fill->stop.load());
  });
}

void ZeroedPages::release() {
  if (fill_) {
    fill_->stop.store(true);
    fill_->thread.join();
    fill_.reset();
  }
  if (data_) munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

ZeroedPages::~ZeroedPages() { release(); }

ZeroedPages::ZeroedPages(ZeroedPages&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      fill_(std::move(other.fill_)) {}

ZeroedPages& ZeroedPages::operator=(ZeroedPages&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    fill_ = std::move(other.fill_);
  }
  return *this;
}

}  // namespace vellum::backend
