// Write browser-run traces from fake-model decodes into a folder, one per setting:
//   node tests/js/write_trace.mjs OUT_DIR
// tests/assets/test_live_js.py checks each with specviz.trace.validate, strictly.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { recordSpeculative } from "../../specviz/assets/live/decode.js";
import { EOS, TOKEN_MAP, decodeToken, fakeDraft, fakeTarget } from "./fakes.mjs";

const SETTINGS = {
  "sampling": { rule: "sampling", temperature: 1 },
  "sampling-warped": { rule: "sampling", temperature: 0.7, topK: 6, topP: 0.9 },
  "greedy": { rule: "greedy", temperature: 0 },
  "greedy-sampled": { rule: "greedy", temperature: 0.8 },
  "threshold": { rule: "threshold", ruleParams: { tau: 0.6 }, temperature: 1.1 },
  "typical": { rule: "typical", temperature: 1, topP: 0.8 },
  "eos": { rule: "sampling", temperature: 1, eosAt: 9, noise: 0, gamma: 6, seed: 3 },
  "budget": { rule: "sampling", temperature: 1, maxNewTokens: 7, gamma: 5 },
  "stopped": { rule: "sampling", temperature: 1, stopAfter: 2 },
  // the others copy from earlier text where the draft is unsure (the fallback, on by default); this one never
  "no-lookup": { rule: "sampling", temperature: 0.9, lookupBelow: 0 },
  // the others stop drafting after a model draft below q 0.4 (on by default); this one higher, this one never
  "confidence": { rule: "sampling", temperature: 0.8, confidence: 0.6, gamma: 6 },
  "no-stop": { rule: "sampling", temperature: 0.9, confidence: 0 },
};

const out = process.argv[2];
mkdirSync(out, { recursive: true });
for (const [name, s] of Object.entries(SETTINGS)) {
  let steps = 0;
  const { trace, error } = await recordSpeculative({
    target: fakeTarget({ eosAt: s.eosAt }),
    draft: fakeDraft({ eosAt: s.eosAt, noise: s.noise }),
    tokenMap: TOKEN_MAP,
    promptIds: [2, 3, 4],
    promptText: " the cat sat",
    gamma: 4,
    maxNewTokens: 30,
    eosIds: [EOS],
    seed: 7,
    decodeToken,
    decodeText: (ids) => ids.map(decodeToken).join(""),
    targetName: "fake-target",
    draftName: "fake-draft",
    dtype: "float32",
    quant: "none",
    device: "node",
    versions: { node: process.versions.node },
    baseline: true,
    onStep: () => void steps++,
    shouldStop: () => s.stopAfter !== undefined && steps >= s.stopAfter,
    ...s,
  });
  if (error) throw error;
  writeFileSync(join(out, `${name}.json`), JSON.stringify(trace, null, 1));
}
