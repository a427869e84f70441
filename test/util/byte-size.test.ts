import { describe, expect, it } from "vitest";
import { formatBytes, parseByteSize } from "../../src/util/byte-size.js";

describe("byte sizes", () => {
  it("parses byte sizes with decimal and binary units", () => {
    expect(parseByteSize("4GiB")).toBe(4 * 2 ** 30);
    expect(parseByteSize("512MiB")).toBe(512 * 2 ** 20);
    expect(parseByteSize("1.5GB")).toBe(1.5e9);
    expect(parseByteSize(" 2 kib ")).toBe(2048);
    expect(parseByteSize("1073741824")).toBe(2 ** 30);
    expect(parseByteSize("100B")).toBe(100);
  });

  it("rejects bad sizes, naming the value", () => {
    for (const bad of ["", "GiB", "4 GiBs", "-1GiB", "4,5GB", "1e9", "0", "0.1B"]) {
      expect(() => parseByteSize(bad)).toThrow(`"${bad}"`);
    }
  });

  it("formats bytes in binary units with one decimal", () => {
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1280)).toBe("1.3 KiB");
    expect(formatBytes(1.5 * 2 ** 40)).toBe("1.5 TiB");
  });
});
