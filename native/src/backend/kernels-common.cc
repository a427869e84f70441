// The parts every kernel path shares: f16 conversions, activation quantization and row dequantization.
#include <cmath>
#include <cstring>

#include "kernels.h"

namespace vellum::backend {

float f16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  float out;
  if (exp == 0) {
    out = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal
    return sign ? -out : out;
  }
  const uint32_t bits = exp == 0x1f ? sign | 0x7f800000 | (mant << 13) : sign | ((exp + 112) << 23) | (mant << 13);
  std::memcpy(&out, &bits, 4);
  return out;
}

uint16_t f32ToF16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint32_t sign = (bits >> 16) & 0x8000;
  const uint32_t exp = (bits >> 23) & 0xff;
  const uint32_t mant = bits & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >> 13) : 0));
  if (exp > 112) {
    // Normal in f16 range (or overflowing): drop 13 mantissa bits, rounding to even. A carry out of the mantissa
    // bumps the exponent, and past the largest finite value lands exactly on inf (0x7c00).
    const uint32_t h = ((exp - 112) << 10) | (mant >> 13);
    const uint32_t rest = mant & 0x1fff;
    const uint32_t rounded = rest > 0x1000 || (rest == 0x1000 && (h & 1)) ? h + 1 : h;
    return static_cast<uint16_t>(sign | (rounded < 0x7c00 ? rounded : 0x7c00));
  }
  // f16 subnormal: value = m · 2^-24, and x = (1.mant) · 2^(exp−127) = full · 2^(exp−150),
  // so m = full >> (126 − exp).
  const uint32_t shift = 126 - exp;
  if (shift > 24) return static_cast<uint16_t>(sign);  // below half the smallest subnormal (f32 subnormals too)
  const uint32_t full = mant | 0x800000;
  const uint32_t m = full >> shift;
  const uint32_t rest = full & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return static_cast<uint16_t>(sign | (rest > half || (rest == half && (m & 1)) ? m + 1 : m));
}

void quantizeActs(const float* x, int n, BlockQ8Act* out) {
  for (int b = 0; b < n / kBlock; b++) {
    const float* xb = x + b * kBlock;
    float amax = 0;
    for (int j = 0; j < kBlock; j++) amax = std::fabs(xb[j]) > amax ? std::fabs(xb[j]) : amax;
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = d;
    int sums[2] = {0, 0};
    for (int j = 0; j < kBlock; j++) {
      out[b].q[j] = static_cast<int8_t>(std::lrintf(xb[j] * id));
      sums[j / 16] += out[b].q[j];
    }
    out[b].halfSums[0] = static_cast<int16_t>(sums[0]);
    out[b].halfSums[1] = static_cast<int16_t>(sums[1]);
  }
}

namespace {

// Row 8g+r's 4 quant bytes at `from` go to 32c + 4r of `to`, for c < chunks.
void interleave4(const uint8_t* from, uint8_t* to, int r, int chunks) {
  for (int c = 0; c < chunks; c++) std::memcpy(to + 32 * c + 4 * r, from + 4 * c, 4);
}

}  // namespace

bool interleavesRows(const Kernels& k, const Weight& w) { return k.interleaves(w.dtype) && w.rows % 8 == 0; }

InterleavedRows interleaveRows(const Kernels& k, Weight* w, ThreadPool& pool) {
  if (!interleavesRows(k, *w)) return nullptr;
  const int nb = w->cols / blockValues(w->dtype);
  const size_t stride = rowBytes(w->dtype, w->cols);
  const size_t blockBytes = stride / nb;
  const size_t groupBlock = interleavedGroupBlockBytes(w->dtype);
  InterleavedRows store = allocateHugePages(groupBlock * nb * (w->rows / 8));  // every byte is written below
  auto group = [&](int g, int) {
    for (int b = 0; b < nb; b++) {
      uint8_t* out = store.get() + (static_cast<size_t>(g) * nb + b) * groupBlock;
      for (int r = 0; r < 8; r++) {
        const uint8_t* block = w->data + stride * (8 * g + r) + b * blockBytes;
        if (w->dtype == DType::Q4_K || w->dtype == DType::Q5_K) {
          std::memcpy(out + 2 * r, block, 2);  // d
          std::memcpy(out + 16 + 2 * r, block + 2, 2);  // dmin
          for (int j = 0; j < 8; j++) {
            int sc, m;
            scaleMinK4(block + 4, j, &sc, &m);
            out[32 + 8 * j + r] = static_cast<uint8_t>(sc);
            out[96 + 8 * j + r] = static_cast<uint8_t>(m);
          }
          const bool fifth = w->dtype == DType::Q5_K;
          if (fifth) interleave4(block + 16, out + 160, r, 8);  // qh
          const uint8_t* qs = block + (fifth ? 48 : 16);
          uint8_t* qsOut = out + (fifth ? 416 : 160);
          for (int pair = 0; pair < 4; pair++) interleave4(qs + 32 * pair, qsOut + 256 * pair, r, 8);
        } else if (w->dtype == DType::IQ4_XS) {
          std::memcpy(out + 2 * r, block, 2);  // d
          for (int j = 0; j < 8; j++) out[16 + 8 * j + r] = static_cast<uint8_t>(scaleIQ4XS(block, j) - 32);
          for (int j = 0; j < 8; j++) interleave4(block + 8 + 16 * j, out + 80 + 128 * j, r, 4);
        } else if (w->dtype == DType::Q6_K) {
          std::memcpy(out + 2 * r, block + 208, 2);  // d
          for (int s = 0; s < 16; s++) out[16 + 8 * s + r] = block[192 + s];
          for (int run = 0; run < 4; run++) interleave4(block + 32 * run, out + 144 + 256 * run, r, 8);  // ql
          for (int run = 0; run < 2; run++) interleave4(block + 128 + 32 * run, out + 1168 + 256 * run, r, 8);  // qh
        } else {  // 32-value blocks: [d][m?][qh?][quants]
          const DType t = w->dtype;
          const bool hasMin = t == DType::Q4_1 || t == DType::Q5_1;
          const bool fifth = t == DType::Q5_0 || t == DType::Q5_1;
          std::memcpy(out + 2 * r, block, 2);  // d
          if (hasMin) std::memcpy(out + 16 + 2 * r, block + 2, 2);  // m
          int from = hasMin ? 4 : 2, to = hasMin ? 32 : 16;
          if (fifth) {
            // qh bit v is value v's fifth bit; byte i of the row's 4 gets those of values 16h + 4c + i at bit 2c + h,
            // beside chunk c's nibbles (low: h = 0, high: h = 1).
            uint32_t qh;
            std::memcpy(&qh, block + from, 4);
            for (int i = 0; i < 4; i++) {
              uint8_t bits = 0;
              for (int c = 0; c < 4; c++)
                for (int h = 0; h < 2; h++) bits |= ((qh >> (16 * h + 4 * c + i)) & 1) << (2 * c + h);
              out[to + 4 * r + i] = bits;
            }
            from += 4;
            to += 32;
          }
          interleave4(block + from, out + to, r, static_cast<int>(blockBytes - from) / 4);
        }
      }
      if (w->dtype == DType::Q8_0 && k.unsignedQ8)
        for (int i = 16; i < 16 + 256; i++) out[i] ^= 0x80;  // q + 128
    }
  };
  pool.run(w->rows / 8, group);
  w->interleaved = store.get();
  return store;
}

namespace {

// Element j (0..31) of a 32-value block's 16 nibble bytes: the low nibble of byte j, or byte j − 16's high one.
inline int nibbleAt(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4; }

inline float halfAt(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16ToF32(h);
}

inline uint32_t u32At(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;  // little-endian, as GGUF
}

// 32 values of one scale d and min from 16 nibble bytes (plus fifth bits qh when `qh` is set), minus `offset`.
void nibbleChunk(const uint8_t* qs, const uint8_t* qh, int offset, float d, float min, Chunk* out) {
  const uint32_t fifth = qh ? u32At(qh) : 0;
  for (int j = 0; j < kBlock; j++) out->q[j] = static_cast<int8_t>(nibbleAt(qs, j) + ((fifth >> j) & 1) * 16 - offset);
  out->scale[0] = out->scale[1] = d;
  out->min[0] = out->min[1] = min;
}

}  // namespace

void decodeChunk(DType t, const uint8_t* row, int c, Chunk* out) {
  const uint8_t* p = row + c / (blockValues(t) / kBlock) * rowBytes(t, blockValues(t));  // c's block
  const int j = c % (blockValues(t) / kBlock);  // c's 32-value sub-block (256-value types)
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return;
    case DType::Q8_0:
      std::memcpy(out->q, p + 2, kBlock);
      out->scale[0] = out->scale[1] = halfAt(p);
      out->min[0] = out->min[1] = 0;
      return;
    case DType::Q4_0:
      return nibbleChunk(p + 2, nullptr, 8, halfAt(p), 0, out);
    case DType::Q4_1:
      return nibbleChunk(p + 4, nullptr, 0, halfAt(p), -halfAt(p + 2), out);
    case DType::Q5_0:
      return nibbleChunk(p + 6, p + 2, 16, halfAt(p), 0, out);
    case DType::Q5_1:
      return nibbleChunk(p + 8, p + 4, 0, halfAt(p), -halfAt(p + 2), out);
    case DType::IQ4_NL:
      nibbleChunk(p + 2, nullptr, 0, halfAt(p), 0, out);
      for (int l = 0; l < kBlock; l++) out->q[l] = kIq4Levels[out->q[l]];
      return;
    case DType::IQ4_XS:
      nibbleChunk(p + 8 + 16 * j, nullptr, 0, halfAt(p) * (scaleIQ4XS(p, j) - 32), 0, out);
      for (int l = 0; l < kBlock; l++) out->q[l] = kIq4Levels[out->q[l]];
      return;
    case DType::Q2_K: {
      // Quarter k of half n: bits 2k of qs bytes 32n..; sub-blocks 2j, 2j + 1 of 16 (scale bytes j · 2..).
      const int n = j / 4, k = j % 4;
      for (int l = 0; l < kBlock; l++) out->q[l] = static_cast<int8_t>((p[16 + 32 * n + l] >> (2 * k)) & 3);
      for (int h = 0; h < 2; h++) {
        const uint8_t s = p[2 * j + h];
        out->scale[h] = halfAt(p + 80) * (s & 0x0f);
        out->min[h] = halfAt(p + 82) * (s >> 4);
      }
      return;
    }
    case DType::Q3_K: {
      const int n = j / 4, k = j % 4;
      for (int l = 0; l < kBlock; l++) {
        const int low = (p[32 + 32 * n + l] >> (2 * k)) & 3;
        const int high = (p[l] >> (4 * n + k)) & 1;
        out->q[l] = static_cast<int8_t>((low | high << 2) - 4);
      }
      for (int h = 0; h < 2; h++) {
        out->scale[h] = halfAt(p + 108) * (scaleQ3K(p + 96, 2 * j + h) - 32);
        out->min[h] = 0;
      }
      return;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      // Sub-block j: run j / 2 of 32 qs bytes, low nibbles for even j; q5_k's fifth bit is bit j of qh[l].
      const bool five = t == DType::Q5_K;
      const uint8_t* qs = p + (five ? 48 : 16) + j / 2 * 32;
      for (int l = 0; l < kBlock; l++) {
        const int fifth = five ? ((p[16 + l] >> j) & 1) << 4 : 0;
        out->q[l] = static_cast<int8_t>(((qs[l] >> (j % 2 * 4)) & 0x0f) | fifth);
      }
      int sc, m;
      scaleMinK4(p + 4, j, &sc, &m);
      out->scale[0] = out->scale[1] = halfAt(p) * sc;
      out->min[0] = out->min[1] = halfAt(p + 2) * m;
      return;
    }
    case DType::Q6_K: {
      // Chunk k of half n: low 4 bits from ql (bytes k&1 · 32.., high nibble when k ≥ 2), 2 bits of qh at 2k.
      const int n = j / 4, k = j % 4;
      const uint8_t* ql = p + n * 64 + (k & 1) * 32;
      const uint8_t* qh = p + 128 + n * 32;
      for (int l = 0; l < kBlock; l++) {
        const int low = (ql[l] >> (k / 2 * 4)) & 0x0f;
        const int high = (qh[l] >> (2 * k)) & 3;
        out->q[l] = static_cast<int8_t>((low | (high << 4)) - 32);
      }
      const float d = halfAt(p + 208);
      const int8_t* scales = reinterpret_cast<const int8_t*>(p + 192 + n * 8 + 2 * k);
      out->scale[0] = d * scales[0];
      out->scale[1] = d * scales[1];
      out->min[0] = out->min[1] = 0;
      return;
    }
  }
}

void dequantizeRow(const Weight& w, int row, float* out) {
  const uint8_t* p = w.data + rowBytes(w.dtype, w.cols) * row;
  const int n = w.cols;
  switch (w.dtype) {
    case DType::F32:
      std::memcpy(out, p, n * 4);
      return;
    case DType::F16:
      for (int i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = f16ToF32(h);
      }
      return;
    case DType::BF16:
      for (int i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(out + i, &bits, 4);
      }
      return;
    default:
      for (int c = 0; c < n / kBlock; c++) {
        Chunk chunk;
        decodeChunk(w.dtype, p, c, &chunk);
        for (int j = 0; j < kBlock; j++) out[c * kBlock + j] = chunk.q[j] * chunk.scale[j / 16] - chunk.min[j / 16];
      }
      return;
  }
}

}  // namespace vellum::backend
