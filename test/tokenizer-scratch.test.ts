import { test } from "vitest";
import { HfTokenizer, tokenizerJsonFromVocab, tokenizerConfigFromVocab, vocabFromTokenizerJson } from "../src/model/tokenizer/hf-tokenizer.js";
import { loadLlama2cTokenizer } from "../src/model/tokenizer/llama2c-tokenizer.js";
import { createTokenizer } from "../src/model/tokenizer/create.js";
test("q", () => {
  const spec = loadLlama2cTokenizer("../shared/models/stories260K/tok512.bin", 512);
  const sp = createTokenizer(spec);
  const json = tokenizerJsonFromVocab(spec);
  const hf = new HfTokenizer(json, tokenizerConfigFromVocab(spec));
  for (const s of ["Once upon a time", "Lily and Tom went to the park", "", "  hi  there\n\n 😀é <s>x</s>"]) {
    console.log(JSON.stringify(s), sp.encode(s).join(","), "|", hf.encode(s).join(","));
    console.log(JSON.stringify(sp.decode(sp.encode(s))), JSON.stringify(hf.decode(hf.encode(s))), JSON.stringify(hf.decode(hf.encode(s), {skipSpecial:false})));
  }
  console.log(hf.vocabSize, hf.bosId, hf.eosId, hf.stopIds);
  const back = vocabFromTokenizerJson(json, tokenizerConfigFromVocab(spec));
  console.log(back.tokens.length, back.addBos, back.addSpacePrefix, back.scores?.slice(255, 270), back.tokenTypes?.slice(0, 5));
});
