// A persistent pool: `run(numChunks, f)` calls f(chunk, thread) once for every chunk in [0, numChunks) and
// returns when all are done. The calling thread works too (as thread 0); the pool has nThreads − 1 workers.
// No allocation per call.
//
// Thread t owns the t-th of nThreads contiguous runs of chunks, [t·numChunks/nThreads, (t+1)·numChunks/nThreads),
// and claims them in order, then helps the others with theirs, front first. So a caller that numbers its chunks
// by address gives each thread one long stream (a decode matmul's row bands, which the prefetchers follow from
// one band into the next), and a worker the OS has descheduled (2 vCPUs shared with Node's own thread and other
// processes) delays nobody: the others take what it left. Each run's generation, end and next chunk live in one
// atomic word, so a late worker can never claim a chunk of a finished call. Workers spin briefly between calls
// (a forward pass makes a few hundred calls back to back), then sleep, so an idle pool never competes with the
// JS thread for a core.
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
  // Claims and runs chunks of the call `generation`, its own run's first, until none is left.
  void work(uint64_t generation, int thread);
  void workerLoop(int thread);

  int nThreads_;
  std::vector<std::thread> workers_;
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  // One thread's run of chunks: generation (bits 40–63) | end (bits 20–39) | next chunk (bits 0–19).
  struct alignas(64) Run {
    std::atomic<uint64_t> state{0};
  };
  std::vector<Run> runs_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace vellum::backend
