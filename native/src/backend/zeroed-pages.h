// Memory that reads as zeros without a pass that writes them: anonymous pages the kernel maps, zeroed, on first
// touch. A KV cache of gigabytes is allocated at once this way, and its pages are filled as attention writes them
// (by the threads of the forward pass, off the JS thread).
#pragma once

#include <cstddef>
#include <cstdint>

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
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace vellum::backend
