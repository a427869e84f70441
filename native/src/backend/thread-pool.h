// A persistent pool: `run(numChunks, f)` calls f(chunk, thread) once for every chunk in [0, numChunks) and
// returns when all are done. The calling thread works too (as thread 0); the pool has nThreads − 1 workers.
// No allocation per call.
//
// Chunks are claimed one at a time from a shared counter, so a worker the OS has descheduled (2 vCPUs shared
// with Node's own thread and other processes) delays nobody: the others take its share. Generation, chunk
// count and next chunk live in one atomic word, so a late worker can never claim a chunk of a finished call.
// Workers spin briefly between calls (a forward pass makes a few hundred calls back to back), then sleep,
// so an idle pool never competes with the JS thread for a core.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace vellum::backend {

class ThreadPool {
 public:
  explicit ThreadPool(int nThreads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return nThreads_; }

  template <class F>
  void run(int numChunks, F& f) {
    dispatch([](void* ctx, int chunk, int thread) { (*static_cast<F*>(ctx))(chunk, thread); }, &f, numChunks);
  }

 private:
  using Task = void (*)(void* ctx, int chunk, int thread);
  void dispatch(Task task, void* ctx, int numChunks);
  // Claims and runs chunks of the call `generation` until none is left.
  void work(uint64_t generation, int thread);
  void workerLoop(int thread);

  int nThreads_;
  std::vector<std::thread> workers_;
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  // state_: generation (bits 40–63) | numChunks (bits 20–39) | next chunk (bits 0–19).
  std::atomic<uint64_t> state_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace vellum::backend
