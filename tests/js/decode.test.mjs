// specviz/assets/live/decode.js with deterministic fake models (fakes.mjs): greedy decoding is exactly the
// target alone's, with rejections and rollbacks on the way; sampling runs, reproducibly, and is lossless.
import assert from "node:assert/strict";
import { test } from "node:test";

import { decodeSpeculative, decodeTargetAlone, recordSpeculative } from "../../specviz/assets/live/decode.js";
import { EOS, TOKEN_MAP, decodeToken, draftLogits, fakeDraft, fakeTarget, greedyReference, targetLogits } from "./fakes.mjs";

const PROMPTS = [[2, 3, 4], [7], [2, 5, 9, 12, 3, 8]];

function run(opts = {}) {
  const target = opts.target ?? fakeTarget();
  const draft = opts.draft ?? fakeDraft();
  return decodeSpeculative({
    target, draft, tokenMap: TOKEN_MAP, promptIds: PROMPTS[0], gamma: 4, rule: "greedy", temperature: 0,
    maxNewTokens: 40, eosIds: [EOS], seed: 0, decodeToken, ...opts,
  });
}

test("greedy speculative decoding gives exactly the target alone's greedy tokens", async () => {
  let rejections = 0;
  let acceptances = 0;
  for (const promptIds of PROMPTS) {
    const want = greedyReference(promptIds, 40);
    const alone = await decodeTargetAlone({ target: fakeTarget(), promptIds, temperature: 0, maxNewTokens: 40, eosIds: [EOS] });
    assert.deepEqual(alone.tokenIds, want);
    for (const gamma of [1, 2, 4, 7]) {
      for (const rule of ["greedy", "sampling"]) {
        // at temperature 0 the sampling rule compares one-hot p and q: lossless means equal here too
        const target = fakeTarget();
        const res = await run({ target, promptIds, gamma, rule });
        assert.deepEqual(res.tokenIds, want, `prompt ${promptIds}, gamma ${gamma}, ${rule}`);
        assert.equal(res.stopReason, "max_new_tokens");
        for (const s of res.steps) {
          if (s.n_accepted < s.draft.length) rejections++;
          acceptances += s.n_accepted;
        }
        assert.ok(target.rollbacks > 0, "the target cache was never rolled back");
      }
    }
  }
  assert.ok(rejections > 20 && acceptances > 20, `${rejections} rejections, ${acceptances} accepted drafts`);
});

test("steps chain up: context lengths, gamma within the budget, the last steps drafting less", async () => {
  const res = await run({ maxNewTokens: 13, gamma: 5 });
  let ctx = PROMPTS[0].length;
  let made = 0;
  for (const [k, s] of res.steps.entries()) {
    assert.equal(s.index, k);
    assert.equal(s.context_length, ctx);
    assert.ok(s.draft.length <= Math.min(5, 13 - made - 1));
    assert.equal(s.verify.length, s.draft.length);
    assert.ok(s.timing_ms.draft >= 0 && s.timing_ms.verify >= 0);
    ctx += s.n_accepted + 1;
    made += s.n_accepted + 1;
  }
  assert.equal(res.tokenIds.length, 13);
  // a budget of one token: nothing drafted, and the record says why
  const one = await run({ maxNewTokens: 1 });
  assert.equal(one.steps.length, 1);
  assert.deepEqual([one.steps[0].draft, one.steps[0].no_draft, one.steps[0].next.kind], [[], "budget", "bonus"]);
});

test("the draft drafts from the context as it stands: its cache is rolled back past what was rejected", async () => {
  const draft = fakeDraft();
  const res = await run({ draft, promptIds: PROMPTS[2] });
  const unk = TOKEN_MAP.length;
  const toDraft = (t) => (TOKEN_MAP.includes(t) ? TOKEN_MAP.indexOf(t) : unk);
  for (const s of res.steps) {
    const ctx = [...PROMPTS[2], ...res.tokenIds.slice(0, s.context_length - PROMPTS[2].length)].map(toDraft);
    for (const d of s.draft) {
      const row = draftLogits(ctx).subarray(0, unk); // greedy: the argmax of a fresh pass over the context
      assert.equal(d.token_id, TOKEN_MAP[row.indexOf(Math.max(...row))], `step ${s.index}`);
      assert.equal(d.q, 1);
      ctx.push(toDraft(d.token_id));
    }
  }
  assert.ok(draft.rollbacks > 0);
});

test("the draft never proposes a token outside its map, nor its unk; q there is 0", async () => {
  const res = await run({ rule: "sampling", temperature: 1, promptIds: PROMPTS[2], maxNewTokens: 60, eosIds: [] });
  const outside = [5, 9, 12];
  assert.ok(res.tokenIds.some((t) => outside.includes(t)), "the target never chose an id outside the map");
  for (const s of res.steps) {
    for (const d of s.draft) {
      assert.ok(TOKEN_MAP.includes(d.token_id));
      assert.ok(d.top.every((e) => TOKEN_MAP.includes(e.token_id)));
    }
  }
});

test("EOS ends the run, also when it is an accepted draft (next is then null)", async () => {
  const eosAt = 9; // both models put almost all mass on EOS once the context is 9 long
  const target = fakeTarget({ eosAt });
  const draft = fakeDraft({ eosAt, noise: 0 });
  const res = await run({ target, draft, gamma: 6, rule: "sampling", temperature: 1, seed: 3 });
  assert.equal(res.tokenIds.at(-1), EOS);
  assert.equal(res.stopReason, "eos");
  const last = res.steps.at(-1);
  assert.equal(last.next, null, "the EOS was drafted and accepted inside the last step");
  assert.equal(last.draft[last.n_accepted - 1].token_id, EOS);
});

test("sampling runs with every rule and warping, reproducibly from its seed", async () => {
  const settings = [
    { rule: "sampling", temperature: 0.8, topK: 5, topP: 0.9 },
    { rule: "threshold", ruleParams: { tau: 0.5 }, temperature: 1.2 },
    { rule: "typical", temperature: 1, topP: 0.7 },
    { rule: "greedy", temperature: 0.6 },
  ];
  for (const s of settings) {
    const a = await run({ ...s, seed: 11, eosIds: [] });
    const b = await run({ ...s, seed: 11, eosIds: [] });
    const c = await run({ ...s, seed: 12, eosIds: [] });
    assert.equal(a.tokenIds.length, 40);
    assert.deepEqual(a.tokenIds, b.tokenIds, `${s.rule}: the same seed, the same run`);
    const noTime = (steps) => JSON.stringify(steps, (k, v) => (k === "timing_ms" ? undefined : v));
    assert.equal(noTime(a.steps), noTime(b.steps));
    if (s.rule !== "greedy") assert.notDeepEqual(a.tokenIds, c.tokenIds, `${s.rule}: another seed, another run`);
    // warped runs log the models' own distributions beside the warped ones
    assert.ok(a.steps.every((st) => st.draft.every((d) => "q_raw" in d && "top_raw" in d)));
  }
  await assert.rejects(run({ rule: "nucleus" }), /unknown rule/);
  await assert.rejects(run({ gamma: 0 }), /gamma/);
  await assert.rejects(run({ promptIds: [] }), /prompt is empty/);
});

test("speculative sampling is lossless end to end: the first token follows the target's p", async () => {
  const prompt = PROMPTS[0];
  const row = targetLogits(prompt);
  const exp = row.map((v) => Math.exp(v));
  const p = exp.map((v) => v / exp.reduce((a, b) => a + b, 0));
  const runs = 3000;
  const counts = new Array(p.length).fill(0);
  let rejected = 0;
  for (let seed = 0; seed < runs; seed++) {
    const res = await run({ rule: "sampling", temperature: 1, maxNewTokens: 2, gamma: 1, seed, eosIds: [] });
    counts[res.tokenIds[0]]++;
    if (res.steps[0].n_accepted === 0) rejected++;
  }
  const tv = counts.reduce((a, c, i) => a + Math.abs(c / runs - p[i]) / 2, 0);
  assert.ok(rejected > 100, `only ${rejected} rejections`);
  assert.ok(tv < 0.04, `total variation ${tv} between the first tokens and p`);
});

test("Stop ends a run between steps; recordSpeculative keeps the trace of a run that fails midway", async () => {
  let steps = 0;
  const res = await run({ eosIds: [], shouldStop: () => steps >= 3, onStep: () => void steps++ });
  assert.equal(res.steps.length, 3);
  assert.equal(res.stopReason, "stopped");
  const opts = {
    draft: fakeDraft(), tokenMap: TOKEN_MAP, promptIds: PROMPTS[0], promptText: " the cat sat", gamma: 3,
    rule: "sampling", temperature: 0.9, maxNewTokens: 20, eosIds: [EOS], seed: 5, decodeToken,
    targetName: "fake-target", draftName: "fake-draft", dtype: "float32", quant: "none", device: "node",
  };
  const { trace, baseline, error } = await recordSpeculative({ ...opts, target: fakeTarget(), baseline: true });
  assert.equal(error, null);
  assert.equal(trace.meta.engine, "browser");
  assert.deepEqual([trace.meta.quant, trace.meta.seed, trace.meta.rule.lossless], ["none", 5, true]);
  assert.equal(trace.meta.timing.baseline.tokens, baseline.tokens);
  assert.ok(trace.output.token_ids.length > 0);
  // a model that fails midway: the finished steps stay, the run ends "stopped"
  const target = fakeTarget();
  const forward = target.forward;
  let calls = 0;
  target.forward = (ids, cache) => (++calls > 4 ? Promise.reject(new Error("lost the GPU")) : forward(ids, cache));
  const broken = await recordSpeculative({ ...opts, draft: fakeDraft(), target, rule: "greedy", temperature: 0 });
  assert.match(String(broken.error), /lost the GPU/);
  assert.equal(broken.trace.output.stop_reason, "stopped");
  assert.equal(broken.trace.steps.length, 3); // the prefill, then three steps' passes
  // settings it cannot take are refused before anything runs
  await assert.rejects(recordSpeculative({ ...opts, target, gamma: 0 }), /gamma/);
  await assert.rejects(recordSpeculative({ ...opts, target, seed: -1 }), /seed/);
});
