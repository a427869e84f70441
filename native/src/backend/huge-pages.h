// Memory for the weight copies the addon makes at load (interleaveRows): anonymous memory 2 MiB-aligned and
// marked MADV_HUGEPAGE, so that the kernel backs it with 2 MiB pages where THP is "madvise" (the default of
// many distributions, and of this project's VMs) as well as "always". Decode streams every weight once a
// token: with 4 KiB pages that is a TLB miss every 64 cache lines, each a two-level walk on a VM with nested
// paging, and the hardware prefetchers stop at every 4 KiB boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace vellum::backend {

struct HugePagesDeleter {
  size_t bytes = 0;  // the mapping's length
  void operator()(uint8_t* p) const;
};
using HugePages = std::unique_ptr<uint8_t[], HugePagesDeleter>;

// `bytes` of uninitialised memory (null for 0); throws std::bad_alloc when the system refuses the mapping.
HugePages allocateHugePages(size_t bytes);

}  // namespace vellum::backend
