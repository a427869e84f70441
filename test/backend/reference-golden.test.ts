import { readFileSync } from "node:fs";
import { beforeAll, expect, test } from "vitest";
import { ReferenceBackend } from "../../src/backend/reference/reference-backend.js";
import { loadModel } from "../../src/model/load.js";
import type { LoadedModel } from "../../src/model/model.js";
import { greedyIds, logitsAt } from "../helpers.js";
import { describeShared, needs, stories260K } from "../shared-models.js";

interface PositionLogits {
  pos: number;
  input_token: number;
  top10: [number, number][];
}
interface GoldenCase {
  name: string;
  prompt_text: string;
  prompt_tokens: number[];
  steps: number;
  generated_tokens?: number[];
  generated_tokens_after_prompt?: number[];
  first_positions_logits?: PositionLogits[];
  prompt_positions_logits?: PositionLogits[];
}

describeShared("reference backend on stories260K against golden outputs", needs.golden, () => {
  let model: LoadedModel;
  let cases: GoldenCase[];
  beforeAll(() => {
    model = loadModel(stories260K.model, { tokenizer: stories260K.tokenizer });
    cases = JSON.parse(readFileSync(stories260K.golden, "utf8")).cases;
  });

  test("the three golden cases: prompt ids, greedy ids, top-10 logits within 1e-4", async () => {
    expect(cases).toHaveLength(3);
    for (const c of cases) {
      const promptIds = model.tokenizer.encode(c.prompt_text);
      expect(promptIds, c.name).toEqual(c.prompt_tokens);

      // llama2.c counts `steps` as positions, the prompt's included.
      const expected = c.generated_tokens ?? c.generated_tokens_after_prompt ?? [];
      const maxTokens = c.steps - promptIds.length + 1;
      const backend = new ReferenceBackend(model);
      const ids = await greedyIds(
        backend,
        promptIds,
        maxTokens,
        model.tokenizer.stopIds,
        model.config.maxSeqLen,
      );
      expect(ids, c.name).toEqual(expected);

      const recorded = c.first_positions_logits ?? c.prompt_positions_logits ?? [];
      const sequence = [...promptIds, ...ids];
      const logits = await logitsAt(backend, sequence.slice(0, recorded.length), model.config.vocabSize);
      for (const r of recorded) {
        expect(sequence[r.pos], `${c.name} input at ${r.pos}`).toBe(r.input_token);
        for (const [id, value] of r.top10)
          expect(Math.abs(logits[r.pos][id] - value), `${c.name} pos ${r.pos} id ${id}`).toBeLessThan(1e-4);
        const top = [...logits[r.pos].keys()]
          .sort((a, b) => logits[r.pos][b] - logits[r.pos][a])
          .slice(0, 10);
        expect(top, `${c.name} top-10 order at ${r.pos}`).toEqual(r.top10.map(([id]) => id));
      }
    }
  });
});
