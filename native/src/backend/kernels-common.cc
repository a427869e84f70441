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

size_t interleavedGroupBlockBytes(DType t) {
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

InterleavedRows interleaveRows(const Kernels& k, Weight* w, ThreadPool& pool) {
  if (!k.interleaves(w->dtype) || w->rows % 8 != 0) return nullptr;
  const int nb = w->cols / blockValues(w->dtype);
  const size_t stride = rowBytes(w->dtype, w->cols);
  const size_t blockBytes = stride / nb;
  const size_t groupBlock = interleavedGroupBlockBytes(w->dtype);
  InterleavedRows store(new uint8_t[groupBlock * nb * (w->rows / 8)]);  // every byte is written below
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
          for (int pair = 0; pair < 4; pair++) interleave4(qs + 32 * pair, out + (fifth ? 416 : 160) + 256 * pair, r, 8);
        } else if (w->dtype == DType::IQ4_XS) {
          BlockIQ4_XS blk;
          std::memcpy(&blk, block, sizeof blk);
          std::memcpy(out + 2 * r, block, 2);  // d
          for (int j = 0; j < 8; j++) out[16 + 8 * j + r] = static_cast<uint8_t>(scaleIq4Xs(blk, j) - 32);
          for (int j = 0; j < 8; j++) interleave4(blk.qs + 16 * j, out + 80 + 128 * j, r, 4);
        } else if (w->dtype == DType::Q6_K) {
          std::memcpy(out + 2 * r, block + 208, 2);  // d
          for (int s = 0; s < 16; s++) out[16 + 8 * s + r] = block[192 + s];
          for (int run = 0; run < 4; run++) interleave4(block + 32 * run, out + 144 + 256 * run, r, 8);  // ql
          for (int run = 0; run < 2; run++) interleave4(block + 128 + 32 * run, out + 1168 + 256 * run, r, 8);  // qh
        } else {
          std::memcpy(out + 2 * r, block, 2);
          interleave4(block + 2, out + 16, r, static_cast<int>(blockBytes - 2) / 4);
        }
      }
    }
  };
  pool.run(w->rows / 8, group);
  w->interleaved = store.get();
  return store;
}

void decodeChunk(DType t, const uint8_t* row, int c, Chunk* out) {
  out->min = 0;
  switch (t) {
    case DType::Q8_0: {
      BlockQ8_0 blk;
      std::memcpy(&blk, row + c * sizeof blk, sizeof blk);
      out->scale[0] = out->scale[1] = f16ToF32(blk.d);
      std::memcpy(out->q, blk.q, kBlock);
      return;
    }
    case DType::Q4_0: {
      BlockQ4_0 blk;
      std::memcpy(&blk, row + c * sizeof blk, sizeof blk);
      out->scale[0] = out->scale[1] = f16ToF32(blk.d);
      for (int j = 0; j < kBlock / 2; j++) {
        out->q[j] = static_cast<int8_t>((blk.q[j] & 0x0f) - 8);
        out->q[j + 16] = static_cast<int8_t>((blk.q[j] >> 4) - 8);
      }
      return;
    }
    case DType::Q4_K: {
      BlockQ4_K blk;
      std::memcpy(&blk, row + c / 8 * sizeof blk, sizeof blk);
      const int j = c % 8;  // sub-block: pair j / 2 of 32 bytes, low nibbles for even j
      int sc, m;
      scaleMinK4(blk.scales, j, &sc, &m);
      out->scale[0] = out->scale[1] = f16ToF32(blk.d) * sc;
      out->min = f16ToF32(blk.dmin) * m;
      const uint8_t* qs = blk.qs + j / 2 * 32;
      for (int l = 0; l < kBlock; l++) out->q[l] = static_cast<int8_t>((qs[l] >> (j % 2 * 4)) & 0x0f);
      return;
    }
    case DType::Q6_K: {
      BlockQ6_K blk;
      std::memcpy(&blk, row + c / 8 * sizeof blk, sizeof blk);
      // Chunk k of half n: low 4 bits from ql (bytes k&1 · 32.., high nibble when k ≥ 2), 2 bits of qh at 2k.
      const int n = c % 8 / 4;
      const int k = c % 4;
      const uint8_t* ql = blk.ql + n * 64 + (k & 1) * 32;
      const uint8_t* qh = blk.qh + n * 32;
      for (int l = 0; l < kBlock; l++) {
        const int low = (ql[l] >> (k / 2 * 4)) & 0x0f;
        const int high = (qh[l] >> (2 * k)) & 3;
        out->q[l] = static_cast<int8_t>((low | (high << 4)) - 32);
      }
      const float d = f16ToF32(blk.d);
      out->scale[0] = d * blk.scales[n * 8 + 2 * k];
      out->scale[1] = d * blk.scales[n * 8 + 2 * k + 1];
      return;
    }
    default:
      return;
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
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K:
      for (int c = 0; c < n / kBlock; c++) {
        Chunk chunk;
        decodeChunk(w.dtype, p, c, &chunk);
        for (int j = 0; j < kBlock; j++) out[c * kBlock + j] = chunk.q[j] * chunk.scale[j / 16] - chunk.min;
      }
      return;
  }
}

}  // namespace vellum::backend
