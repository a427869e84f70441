// A whole file mapped read-only: GGUF weights are used where the page cache holds them, never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vellum::backend {

class MappedFile {
 public:
  // On failure `data()` is nullptr and `error()` says why.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& error() const { return error_; }
  // Drops the pages wholly inside [p, p + n) from this process's memory; they stay in the page cache, and a
  // later read maps them again. For weights the kernels read from a copy, so the process holds them once.
  void release(const uint8_t* p, size_t n) const;

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string error_;
};

}  // namespace vellum::backend
