// Measures what this machine allows: DRAM read bandwidth and peak f32 FMA rate, on `threads` threads.
// The benchmarks divide by these to print roofline fractions.
#pragma once

namespace vellum::backend {

struct ProbeResult {
  double readBytesPerSecond;
  double fmaFlopsPerSecond;  // 0 when the CPU has no AVX2+FMA
};

ProbeResult probeMachine(int threads, double bufferBytes);

}  // namespace vellum::backend
