#include "thread-pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VELLUM_PAUSE() _mm_pause()
#else
#define VELLUM_PAUSE() std::this_thread::yield()
#endif

namespace vellum::backend {
namespace {

// Spinning for about 0.1 ms bridges the gap between two ops of one forward pass, not the gap between steps.
constexpr int kSpinIterations = 4000;
constexpr uint64_t kChunkBits = 20;
constexpr uint64_t kChunkMask = (uint64_t{1} << kChunkBits) - 1;
constexpr uint64_t kGenerationMask = (uint64_t{1} << (64 - 2 * kChunkBits)) - 1;  // what a run's word holds

uint64_t generationOf(uint64_t s) { return s >> (2 * kChunkBits); }
int endOf(uint64_t s) { return static_cast<int>((s >> kChunkBits) & kChunkMask); }
int nextOf(uint64_t s) { return static_cast<int>(s & kChunkMask); }

}  // namespace

ThreadPool::ThreadPool(int nThreads) : nThreads_(nThreads < 1 ? 1 : nThreads), runs_(nThreads_) {
  for (int t = 1; t < nThreads_; t++) workers_.emplace_back([this, t] { workerLoop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.store((generation_.load() + 1) & kGenerationMask);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::work(uint64_t generation, int thread) {
  for (int i = 0; i < nThreads_; i++) {
    std::atomic<uint64_t>& run = runs_[(thread + i) % nThreads_].state;
    uint64_t s = run.load(std::memory_order_acquire);
    for (;;) {
      if (generationOf(s) != generation) return;  // a later call began, so this one is over
      if (nextOf(s) >= endOf(s)) break;
      if (!run.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
      task_(ctx_, nextOf(s), thread);
      done_.fetch_add(1, std::memory_order_release);
      s = run.load(std::memory_order_acquire);
    }
  }
}

void ThreadPool::dispatch(Task task, void* ctx, int numChunks) {
  if (numChunks <= 0) return;
  if (nThreads_ == 1 || numChunks == 1) {
    for (int c = 0; c < numChunks; c++) task(ctx, c, 0);
    return;
  }
  task_ = task;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t generation = (generation_.load() + 1) & kGenerationMask;
  for (int t = 0; t < nThreads_; t++) {
    const uint64_t begin = static_cast<uint64_t>(numChunks) * t / nThreads_;
    const uint64_t end = static_cast<uint64_t>(numChunks) * (t + 1) / nThreads_;
    runs_[t].state.store((generation << (2 * kChunkBits)) | (end << kChunkBits) | begin, std::memory_order_relaxed);
  }
  {
    // Publishing under the mutex: a worker about to sleep either sees the new generation or gets the notify.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.store(generation, std::memory_order_release);
  }
  if (sleepers_.load() > 0) wake_.notify_all();
  work(generation, 0);
  // Chunks claimed by a worker that was then descheduled: wait, yielding the core to it if we share one.
  for (int spins = 0; done_.load(std::memory_order_acquire) != numChunks; spins++) {
    if (spins < kSpinIterations)
      VELLUM_PAUSE();
    else
      std::this_thread::yield();
  }
}

void ThreadPool::workerLoop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      VELLUM_PAUSE();
      spins++;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    work(seen, thread);
  }
}

}  // namespace vellum::backend
