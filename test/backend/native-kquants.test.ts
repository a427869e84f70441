import { describe, expect, test } from "vitest";
import { dequantize, dtypeOfGgmlType, tensorBytes } from "../../src/model/dtype.js";
import { f32ToF16 } from "../../src/model/float-formats.js";

function setF16(data: Uint8Array, at: number, x: number) {
  const h = f32ToF16(x);
  data[at] = h & 0xff;
  data[at + 1] = h >>> 8;
}

describe("K-quant dequantization (src/model/dtype.ts), hand-built blocks", () => {
  test("GGUF type ids 12 and 14 are q4_k and q6_k", () => {
    expect(dtypeOfGgmlType(12)).toBe("q4_k");
    expect(dtypeOfGgmlType(14)).toBe("q6_k");
    expect(tensorBytes("q4_k", [3, 512])).toBe(3 * 2 * 144);
    expect(tensorBytes("q6_k", [512])).toBe(2 * 210);
  });

  test("q4_k: value = d·sc·q − dmin·m with 6-bit scales and mins unpacked from 12 bytes", () => {
    const b = new Uint8Array(144);
    setF16(b, 0, 1); // d
    setF16(b, 2, 0.5); // dmin
    // sc(0..3) = 1, 2, 3, 4 and m(0..3) = 5, 6, 7, 8; the top 2 bits of bytes 3 and 7 extend sc(7) by 16, m(7) by 32;
    // bytes 8..11 hold sc(4..7) = 1, 3, 5, 7 (+16) in their low and m(4..7) = 2, 4, 6, 8 (+32) in their high nibbles.
    b.set([1, 2, 3, 0x44, 5, 6, 7, 0x88, 0x21, 0x43, 0x65, 0x87], 4);
    // Pair p (values 64p..64p+63): byte l holds value 64p + l (low nibble: l & 15) and 64p + 32 + l ((l + p) & 15).
    for (let p = 0; p < 4; p++)
      for (let l = 0; l < 32; l++) b[16 + p * 32 + l] = (l & 15) | (((l + p) & 15) << 4);
    const v = dequantize({ dtype: "q4_k", shape: [256], data: b });
    expect(v[0]).toBe(1 * 1 * 0 - 0.5 * 5);
    expect(v[5]).toBe(1 * 1 * 5 - 0.5 * 5);
    expect(v[35]).toBe(1 * 2 * 3 - 0.5 * 6); // sub-block 1, high nibble of byte 3
    expect(v[135]).toBe(1 * 1 * 7 - 0.5 * 2); // sub-block 4: sc(4) = 1, m(4) = 2
    expect(v[234]).toBe(1 * 23 * 13 - 0.5 * 40); // sub-block 7: sc(7) = 7 + 16, m(7) = 8 + 32
  });

  test("q6_k: value = d·scale·(q − 32), q = 4 bits of ql + 2 bits of qh, a signed scale per 16 values", () => {
    const b = new Uint8Array(210);
    for (let i = 0; i < 128; i++) b[i] = i; // ql
    b.fill(0b11100100, 128, 192); // qh: bits 2k..2k+1 = k for quarter k
    for (let i = 0; i < 16; i++) b[192 + i] = (i - 8) & 0xff; // scales −8..7
    setF16(b, 208, 0.5);
    const v = dequantize({ dtype: "q6_k", shape: [256], data: b });
    expect(v[0]).toBe(0.5 * -8 * (0 - 32)); // quarter 0: low nibble of ql[0]
    expect(v[40]).toBe(0.5 * -6 * (8 + 16 - 32)); // quarter 1, l = 8: low nibble of ql[40], qh bits 1
    expect(v[84]).toBe(0.5 * -3 * (1 + 32 - 32)); // quarter 2, l = 20: high nibble of ql[20], scale 5
    expect(v[255]).toBe(0.5 * 7 * (7 + 48 - 32)); // half 1, quarter 3, l = 31: high nibble of ql[127], scale 15
  });
});
