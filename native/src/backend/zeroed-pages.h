// Memory that reads as zeros without a pass that writes them: anonymous pages the kernel maps, zeroed, on first
// touch. A KV cache of gigabytes is allocated at once this way. A first write to a page costs a fault, which a
// forward pass writing new blocks would pay by the hundred per step. So a thread of its own makes every page
// resident in the background, in two passes per 64 MiB:
// - MADV_POPULATE_WRITE has the kernel map them all;
// - on a virtual machine the host may still back each page only at its first real write (measured on this
//   project's VMs: 5.4 µs a page after the madvise alone, ~1.4 s per GiB paid inside forward passes), so the
//   thread then writes one word of each page, atomically OR-ing in 0.
// Neither changes what a page holds, so the forward pass may write meanwhile.
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
  // Whether the thread has made every page resident (true for an empty mapping).
  bool resident() const { return data_ == nullptr || fill_->resident.load(); }

 private:
  // Stops the filling thread, then unmaps.
  void release();

  // The filling thread and its flags; on the heap, so that a move leaves the thread's pointer to them valid.
  struct Fill {
    std::atomic<bool> stop{false};
    std::atomic<bool> resident{false};
    std::thread thread;
  };

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::unique_ptr<Fill> fill_;
};

}  // namespace vellum::backend
