// The compute kernels of the native backend, as one table per instruction set (scalar, AVX2+FMA, AVX-512 VNNI,
// AVX-512 VNNI + BF16), picked once at load by cpu-features.cc.
//
// Weight layouts are GGUF's, byte for byte, a matrix being [rows = outputs, cols = inputs] row-major:
//   f32   4 bytes / value            f16, bf16   2 bytes / value
//   q8_0    32 values / 34 bytes: [d: f16][q: 32 × int8]                value = q · d
//   q4_0    32 values / 18 bytes: [d: f16][16 bytes: element j in the low nibble of byte j,
//                                           element j + 16 in its high nibble]   value = (q − 8) · d
//   q4_1    32 values / 20 bytes: [d: f16][m: f16][16 nibble bytes as q4_0]    value = q · d + m
//   q5_0    32 values / 22 bytes: [d: f16][qh: 4][16 nibble bytes as q4_0]; bit j of qh (little-endian u32) is
//                                 element j's fifth bit                        value = (q − 16) · d
//   q5_1    32 values / 24 bytes: [d: f16][m: f16][qh: 4][16 nibble bytes]      value = q · d + m
//   iq4_nl  32 values / 18 bytes: [d: f16][16 nibble bytes as q4_0]             value = d · level[q] (kIq4Levels)
//   q2_k  256 values / 84 bytes: [scales: 16][qs: 64][d: f16][dmin: f16]; 16 sub-blocks of 16, scale byte
//         s = sc | m << 4; value = d·sc·q − dmin·m, q = 2 bits of qs (halves of 128 values: quarter j of half n
//         is bits 2j of qs bytes 32n..32n+31)
//   q3_k  256 values / 110 bytes: [hmask: 32][qs: 64][scales: 12][d: f16]; 16 sub-blocks of 16 with 6-bit scales
//         (scaleQ3K); q = 2 bits of qs as q2_k's + 4 · bit 4n + j of hmask[l], value = d·(scale − 32)·(q − 4)
//   q4_k  256 values / 144 bytes: [d: f16][dmin: f16][scales: 12][qs: 128]; 8 sub-blocks of 32 with a 6-bit
//         scale sc and min m each (ggml get_scale_min_k4); qs holds 64 values per 32 bytes, low nibbles first;
//         value = d·sc·q − dmin·m
//   q5_k  256 values / 176 bytes: [d: f16][dmin: f16][scales: 12][qh: 32][qs: 128]; as q4_k, with the fifth bit
//         of sub-block j's value l at bit j of qh[l]
//   q6_k  256 values / 210 bytes: [ql: 128][qh: 64][scales: 16 × int8][d: f16]; q = 4 bits of ql + 2 of qh;
//         value = d·scale·(q − 32), one scale per 16 values
//   iq4_xs 256 values / 136 bytes: [d: f16][scales_h: u16][scales_l: 4][qs: 128]; 8 sub-blocks of 32, 6-bit scale
//         ls_j = nibble j of scales_l | bits 2j of scales_h << 4; sub-block j's 16 qs bytes as q4_0's;
//         value = d·(ls − 32)·level[q]
// Kernels see every quantized type as 32-value chunks: int8 values, a scale and a min per 16-value half.
// Rows of GGUF blocks are only 2-byte aligned, so every load is unaligned.
//
// A kernel path may also want a quantized weight's rows interleaved in groups of 8 (Kernels::interleaves), a
// copy made at load (interleaveRows); matmul-groups-x86.h, which reads it, draws that layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "attention.h"
#include "huge-pages.h"
#include "thread-pool.h"

namespace vellum::backend {

// In the order of readDType's names (napi-args.h); every type from Q8_0 on is quantized.
enum class DType : int {
  F32,
  F16,
  BF16,
  Q8_0,
  Q4_0,
  Q4_K,
  Q6_K,
  Q4_1,
  Q5_0,
  Q5_1,
  Q2_K,
  Q3_K,
  Q5_K,
  IQ4_NL,
  IQ4_XS,
};

constexpr int kBlock = 32;

struct BlockQ8_0 {
  uint16_t d;
  int8_t q[kBlock];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t q[kBlock / 2];
};
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t q[kBlock / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t q[kBlock / 2];
};
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t q[kBlock / 2];
};
struct BlockQ2_K {
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d;
  uint16_t dmin;
};
struct BlockQ3_K {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t q[kBlock / 2];
};
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scalesH;
  uint8_t scalesL[4];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_K) == 144 &&
                  sizeof(BlockQ6_K) == 210 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
                  sizeof(BlockQ5_1) == 24 && sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 &&
                  sizeof(BlockQ5_K) == 176 && sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136,
              "GGUF block sizes");

// Sub-block j's 6-bit scale and min of a q4_k block's 12 scale bytes (ggml's get_scale_min_k4).
inline void scaleMinK4(const uint8_t* scales, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// The 6-bit scale i (0..15) of a q3_k block's 12 scale bytes: nibble i of bytes 0..7 (low nibbles first) and
// bits 2·(i / 4) of byte 8 + i % 4 above it.
inline int scaleQ3K(const uint8_t* scales, int i) {
  const int low = i < 8 ? scales[i] & 0x0f : scales[i - 8] >> 4;
  return low | (((scales[8 + i % 4] >> (2 * (i / 4))) & 3) << 4);
}

// Sub-block j's 6-bit scale of an iq4_xs block (p at its start).
inline int scaleIQ4XS(const uint8_t* p, int j) {
  const int high = ((p[2] | p[3] << 8) >> (2 * j)) & 3;
  return ((p[4 + j / 2] >> (4 * (j % 2))) & 0x0f) | (high << 4);
}

// ggml's kvalues_iq4nl: the 16 levels a nibble of iq4_nl and iq4_xs stands for.
constexpr int8_t kIq4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// 32 activations quantized for integer dot products with quantized weights: value = q · d. halfSums = Σ q over
// values 0..15 and 16..31 take a weight offset (q4_0's − 8, q6_k's − 32) or a min off a whole dot
// at once.
struct BlockQ8Act {
  float d;
  int16_t halfSums[2];
  int8_t q[kBlock];
};
inline int32_t blockSum(const BlockQ8Act& b) { return b.halfSums[0] + b.halfSums[1]; }

constexpr bool isQuantized(DType t) { return t >= DType::Q8_0; }

// Values per block: a quantized row is a whole number of blocks.
constexpr int blockValues(DType t) {
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::IQ4_XS:
      return 256;
    default:
      return isQuantized(t) ? kBlock : 1;
  }
}

// Bytes of one row of `cols` values (cols a multiple of blockValues).
constexpr size_t rowBytes(DType t, size_t cols) {
  switch (t) {
    case DType::F32:
      return cols * 4;
    case DType::F16:
    case DType::BF16:
      return cols * 2;
    case DType::Q8_0:
      return cols / kBlock * sizeof(BlockQ8_0);
    case DType::Q4_0:
      return cols / kBlock * sizeof(BlockQ4_0);
    case DType::Q4_K:
      return cols / 256 * sizeof(BlockQ4_K);
    case DType::Q6_K:
      return cols / 256 * sizeof(BlockQ6_K);
    case DType::Q4_1:
      return cols / kBlock * sizeof(BlockQ4_1);
    case DType::Q5_0:
      return cols / kBlock * sizeof(BlockQ5_0);
    case DType::Q5_1:
      return cols / kBlock * sizeof(BlockQ5_1);
    case DType::Q2_K:
      return cols / 256 * sizeof(BlockQ2_K);
    case DType::Q3_K:
      return cols / 256 * sizeof(BlockQ3_K);
    case DType::Q5_K:
      return cols / 256 * sizeof(BlockQ5_K);
    case DType::IQ4_NL:
      return cols / kBlock * sizeof(BlockIQ4_NL);
    case DType::IQ4_XS:
      return cols / 256 * sizeof(BlockIQ4_XS);
  }
  return 0;
}

// A weight matrix used in place: `data` points into the mapped GGUF file or a JS buffer.
struct Weight {
  DType dtype;
  const uint8_t* data;
  int rows;
  int cols;
  const uint8_t* interleaved = nullptr;  // the rows in 8-row groups (interleaveRows), when the kernel path uses them
};

// The activations of a matmul: f32 [T, n] always; q8 [T, n / 32] blocks when the weight is quantized.
struct MatmulInput {
  const float* f32;
  const BlockQ8Act* q8;
  int T;
};

struct Kernels {
  const char* name;
  // y[t · ldy + o] = Σ_i x[t, i] · W[o, i], for rows o in [rowBegin, rowEnd) and every token t.
  // Each tile of weight rows is loaded once and serves all T tokens.
  void (*matmul)(const Weight& w, const MatmulInput& x, float* y, int ldy, int rowBegin, int rowEnd);
  // Attention items [begin, end) (attention.h) over a cache of a.kvDtype; `scratch` is per-thread scratch of
  // attentionScratch floats.
  void (*attention)(const AttentionArgs& a, int64_t begin, int64_t end, float* scratch);
  // n values of a K or V into the cache as `dtype` elements `stride` elements apart (a V row: 1; a K: blockSize,
  // attention.h): f32 copied, f16 rounded to nearest-even.
  void (*storeKv)(const float* x, int n, KvDtype dtype, void* out, int stride);
  // Activations for quantized matmuls: every path gives quantizeActs' integers and scales, bit for bit.
  void (*quantizeActs)(const float* x, int n, BlockQ8Act* out);
  // gate[i] ← act(gate[i]) · up[i] for i in [begin, end), act = silu (swiglu) or gelu's tanh form (geglu): ops.h's
  // within a relative 1e-6.
  void (*swiglu)(float* gate, const float* up, int64_t begin, int64_t end);
  void (*geglu)(float* gate, const float* up, int64_t begin, int64_t end);
  // Whether matmul reads weights of this type from Weight::interleaved when it is set.
  bool (*interleaves)(DType t);
  // Whether the interleaved copy holds q8_0's quants as q + 128 (unsigned bytes), for a dot instruction that takes
  // one unsigned operand at full range (VNNI).
  bool unsignedQ8;
};

const Kernels& scalarKernels();
const Kernels& avx2Kernels();
const Kernels& avx512VnniKernels();
const Kernels& avx512Bf16Kernels();

// The reference activation quantizer (each path's Kernels::quantizeActs matches it bit for bit):
// q = round(x / d), d = max|x| / 127.
void quantizeActs(const float* x, int n, BlockQ8Act* out);

// Bytes of one interleaved block of 8 rows of the types whose layout there is not 8 blocks back to back (their 6-bit
// scales unpacked to bytes): drawn in matmul-groups-x86.h.
constexpr size_t kQ4_Kx8Bytes = 32 + 128 + 1024;
constexpr size_t kQ5_Kx8Bytes = 32 + 128 + 256 + 1024;
constexpr size_t kIQ4_XSx8Bytes = 16 + 64 + 1024;
// Bytes of one interleaved block of 8 rows (a 32-value block, or a 256-value super-block); inline, as the tiles ask
// for it once per tile.
constexpr size_t interleavedGroupBlockBytes(DType t) {
  switch (t) {
    case DType::Q4_K:
      return kQ4_Kx8Bytes;
    case DType::Q5_K:
      return kQ5_Kx8Bytes;
    case DType::IQ4_XS:
      return kIQ4_XSx8Bytes;
    default:
      return 8 * rowBytes(t, blockValues(t));
  }
}

// A copy of w's rows in 8-row groups (drawn in matmul-groups-x86.h) in 2 MiB pages (huge-pages.h), made on the
// pool's threads, and w->interleaved pointing to it; null (w unchanged) when the path does not read w's type so
// or w->rows is not a multiple of 8.
using InterleavedRows = HugePages;
// Whether interleaveRows copies w for the kernel path k.
bool interleavesRows(const Kernels& k, const Weight& w);
InterleavedRows interleaveRows(const Kernels& k, Weight* w, ThreadPool& pool);

// 32-value chunk `c` of a quantized row: value j = q[j] · scale[j / 16] − min[j / 16].
struct Chunk {
  int8_t q[kBlock];
  float scale[2];
  float min[2];
};
void decodeChunk(DType t, const uint8_t* row, int c, Chunk* out);

// Row `row` of a weight, as f32 (embedding lookup, norms and biases).
void dequantizeRow(const Weight& w, int row, float* out);

float f16ToF32(uint16_t h);
// Round-to-nearest-even, subnormals kept, overflow to ±inf, NaN stays NaN (quieted): F16C's vcvtps2ph and
// src/model/dtype.ts f32ToF16, bit for bit.
uint16_t f32ToF16(float x);

}  // namespace vellum::backend
