// Memory that reads as zeros without a pass that writes them: anonymous pages the kernel maps, zeroed, on first
// touch. A KV cache of gigabytes is allocated at once this way. A first touch costs a page fault (on a virtual
// machine, one the host serves too: ~10 µs a page here), which a forward pass writing new blocks would pay by the
// hundred per step; so a thread of its own has the kernel fill every page in the background (MADV_POPULATE_WRITE,
// which never changes what a page holds, so the forward pass may write meanwhile).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

namespace vellum::backend {

class ZeroedPages {
 public:
  ZeroedPages() = default;
  // Throws std::bad_alloc when the system refuses the mapping.
  explicit ZeroedPages(size_t bytes);
  ~ZeroedPages();
  ZeroedPages(ZeroedPages&& other) noexcept;
  ZeroedPages& operator=(ZeroedPages&& other) noexcept;
  ZeroedPages(const ZeroedPages&) = delete;
  ZeroedPages& operator=(const ZeroedPages&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  // Stops the filling thread, then unmaps.
  void release();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<std::atomic<bool>> stop_;
  std::thread fill_;
};

}  // namespace vellum::backend
