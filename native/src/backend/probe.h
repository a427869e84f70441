// Measures what this machine allows, on `threads` threads: DRAM read bandwidth as a curve over the number of
// concurrent streams each thread reads, and the peak rate of each compute instruction the kernel paths this CPU
// runs are built on. The benchmarks divide by the best figures of the same run to print roofline fractions.
#pragma once

#include <string>
#include <vector>

namespace vellum::backend {

struct ReadPoint {
  int streams;  // concurrent regions each thread reads in one loop
  double medianBytesPerSecond;
  double bestBytesPerSecond;
};

struct ComputePeak {
  std::string path;         // the kernel path that runs this instruction, as selectKernels names it
  std::string instruction;  // e.g. "int8 vpdpbusd zmm"
  double opsPerSecond;      // a multiply-add counts as 2 ops
};

struct ProbeResult {
  // All 0, and the lists empty, when the CPU has no AVX2+FMA.
  double readBytesPerSecond;  // the best of readCurve's best figures
  std::vector<ReadPoint> readCurve;
  double fmaFlopsPerSecond;   // the best f32 FMA peak
  double int8OpsPerSecond;    // the best int8 multiply-add peak
  double bf16FlopsPerSecond;  // 0 without AVX512_BF16
  std::vector<ComputePeak> peaks;
};

ProbeResult probeMachine(int threads, double bufferBytes);

}  // namespace vellum::backend
