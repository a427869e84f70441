// Measures what this machine allows: DRAM read bandwidth and peak f32 FMA rate, on `threads` threads.
// The benchmarks divide by these to print roofline fractions.
#pragma once

namespace vellum::backend {

struct ProbeResult {
  // Both 0 when the CPU has no AVX2+FMA.
  double readBytesPerSecond;
  double fmaFlopsPerSecond;
};

ProbeResult probeMachine(int threads, double bufferBytes);

}  // namespace vellum::backend
