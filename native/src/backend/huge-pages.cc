#include "huge-pages.h"

#include <sys/mman.h>

#include <new>

namespace vellum::backend {
namespace {
constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t{2} << 20;
}  // namespace

void HugePagesDeleter::operator()(uint8_t* p) const {
  if (p) munmap(p, bytes);
}

HugePages allocateHugePages(size_t bytes) {
  if (bytes == 0) return HugePages(nullptr, HugePagesDeleter{0});
  // Whole 4 KiB pages, not 2 MiB: the kernel backs only the 2 MiB pages wholly inside the mapping with huge pages,
  // so a small matrix's tail (tinyllama's K and V projections: 288 KiB of q4_0) is never padded to 2 MiB of RSS.
  const size_t length = (bytes + kPage - 1) / kPage * kPage;
  // Mapped one huge page longer, then trimmed to a 2 MiB-aligned start: mmap aligns to 4 KiB only.
  void* raw = mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) munmap(raw, aligned - start);
  munmap(reinterpret_cast<void*>(aligned + length), start + kHugePage - aligned);  // > 0: aligned < start + 2 MiB
  uint8_t* p = reinterpret_cast<uint8_t*>(aligned);
  // Advice only: where THP is off the memory stays in 4 KiB pages and works the same.
  madvise(p, length, MADV_HUGEPAGE);
  return HugePages(p, HugePagesDeleter{length});
}

}  // namespace vellum::backend
