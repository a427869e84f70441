/**
 * GPT-2's reversible byte ↔ character map used by byte-level BPE: every byte gets a printable character
 * so BPE can work on strings. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves;
 * the other 68 bytes map, in byte order, to U+0100, U+0101, … (so a space is 'Ġ' U+0120, '\n' is 'Ċ').
 */
function buildByteToChar(): string[] {
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars.push(String.fromCharCode(printable ? b : next++));
  }
  return chars;
}

export const byteToChar: readonly string[] = buildByteToChar();
export const charToByte: ReadonlyMap<string, number> = new Map(byteToChar.map((c, b) => [c, b]));
