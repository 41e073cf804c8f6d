// specviz/assets/live/decode.js with deterministic fake models (fakes.mjs): greedy decoding is exactly the
// target alone's, with rejections and rollbacks on the way; sampling runs, reproducibly, and is lossless;
// the prompt-lookup fallback copies as drafters/ngram.py and drafters/model.py do.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DEFAULT_LOOKUP_BELOW, decodeSpeculative, decodeTargetAlone, findCopy, lookupSettings, recordSpeculative, vocabBridge,
} from "../../specviz/assets/live/decode.js";
import { makeRng } from "../../specviz/assets/live/rng.js";
import { sampling, warpWithRaw } from "../../specviz/assets/live/warp.js";
import {
  EOS, TARGET_VOCAB, TOKEN_MAP, decodeToken, draftLogits, fakeDraft, fakeTarget, greedyReference, targetLogits,
} from "./fakes.mjs";

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
  // with the fallback (on by default): where the draft's own best q is below 0.7 and the last 2-3 tokens
  // occurred earlier it copies what followed; the draft model reads every draft next, copied or not
  const bridge = vocabBridge(TOKEN_MAP, TOKEN_MAP.length + 1, TARGET_VOCAB);
  const unk = TOKEN_MAP.length;
  const toDraft = (t) => (TOKEN_MAP.includes(t) ? TOKEN_MAP.indexOf(t) : unk);
  const seen = { copied: 0, unsureNoMatch: 0, sureWithMatch: 0, sure: 0 };
  for (const rule of ["greedy", "sampling"]) {
    const draft = fakeDraft();
    const res = await run({ draft, rule, promptIds: PROMPTS[2], maxNewTokens: 60 });
    for (const s of res.steps) {
      const ctx = [...PROMPTS[2], ...res.tokenIds.slice(0, s.context_length - PROMPTS[2].length)];
      for (const [j, d] of s.draft.entries()) {
        const row = draftLogits(ctx.map(toDraft)).subarray(0, unk); // a fresh pass over the context
        const own = bridge.toTarget(warpWithRaw(row, sampling({ temperature: 0 })).raw);
        const unsure = Math.max(...own) < DEFAULT_LOOKUP_BELOW;
        const found = findCopy(ctx, TARGET_VOCAB);
        const where = `${rule}, step ${s.index}, draft ${j}`;
        if (unsure && found) {
          seen.copied++;
          assert.deepEqual([d.token_id, d.copied, d.q], [found.token, found.n, 1], where);
          assert.deepEqual(d.top.map((e) => [e.token_id, e.prob]), [[found.token, 1]], where); // q one-hot
        } else {
          // greedy: the argmax of the model's row, its q 1 (temperature 0 for either rule)
          assert.equal(d.token_id, TOKEN_MAP[row.indexOf(Math.max(...row))], where);
          assert.ok(!("copied" in d) && d.q === 1, where);
          const why = unsure ? "unsureNoMatch" : found ? "sureWithMatch" : "sure";
          seen[why] = (seen[why] ?? 0) + 1;
        }
        ctx.push(d.token_id);
      }
    }
    assert.ok(draft.rollbacks > 0);
  }
  assert.ok(seen.copied > 20 && seen.unsureNoMatch > 0 && seen.sureWithMatch > 0, JSON.stringify(seen));
});

test("the draft model never proposes a token outside its map, nor its unk; q there is 0; a copy can", async () => {
  const outside = [5, 9, 12];
  // the confidence stop off: whole chains, so more drafts (and copies) to look at
  const opts = { rule: "sampling", temperature: 1, promptIds: PROMPTS[2], maxNewTokens: 60, eosIds: [], confidence: 0 };
  const res = await run({ ...opts, lookupBelow: 0 });
  assert.ok(res.tokenIds.some((t) => outside.includes(t)), "the target never chose an id outside the map");
  for (const s of res.steps) {
    for (const d of s.draft) {
      assert.ok(TOKEN_MAP.includes(d.token_id) && !("copied" in d));
      assert.ok(d.top.every((e) => TOKEN_MAP.includes(e.token_id)));
    }
  }
  // copies skip the map: ids the draft model cannot propose are drafted, and accepted
  const copying = await run({ ...opts, lookupBelow: 1 });
  const drafts = copying.steps.flatMap((s) => s.draft.map((d, j) => ({ ...d, accepted: s.verify[j].accepted })));
  assert.ok(drafts.every((d) => TOKEN_MAP.includes(d.token_id) || d.copied));
  assert.ok(drafts.some((d) => outside.includes(d.token_id) && d.accepted), "no copy outside the map was accepted");
});

test("findCopy copies what followed the latest earlier occurrence of the longest n-gram (drafters/ngram.py)", () => {
  // the cases of tests/drafters/test_model.py test_lookup_fallback_finds_what_followed_the_longest_match (V = 50)
  assert.deepEqual(findCopy([2, 3, 6, 6, 3, 4, 0, 2, 3], 50), { token: 6, n: 2 }); // [2, 3] matched, not just [3]
  assert.equal(findCopy([1, 2, 3, 4], 50), null); // nothing repeats
  assert.equal(findCopy([5, 3, 5], 50), null); // a 1-gram match is below min_ngram 2
  assert.deepEqual(findCopy([5, 3, 5], 50, 1), { token: 3, n: 1 });
  assert.equal(findCopy([1, 2, 60, 1, 2], 50), null); // what followed is outside the target's vocabulary
  // the longest n-gram wins over a later shorter one; the latest occurrence over an earlier one
  assert.deepEqual(findCopy([1, 2, 3, 9, 5, 2, 3, 8, 1, 2, 3], 50), { token: 9, n: 3 });
  assert.deepEqual(findCopy([1, 2, 7, 1, 2, 8, 1, 2], 50), { token: 8, n: 2 });
  // an occurrence followed by an id the target cannot score is passed over for an earlier one
  assert.deepEqual(findCopy([1, 2, 7, 1, 2, 60, 1, 2], 50), { token: 7, n: 2 });
  assert.equal(findCopy([4, 4], 50), null); // too short for a 2-gram with something after it
  assert.deepEqual(findCopy([4, 4, 4], 50), { token: 4, n: 2 });
  assert.deepEqual(lookupSettings(undefined), { below: 0.7, minNgram: 2, maxNgram: 3 });
  assert.equal(lookupSettings(0), null);
  assert.equal(lookupSettings(null), null);
  for (const bad of [-0.1, 1.5, NaN, "0.7"]) assert.throws(() => lookupSettings(bad), RangeError);
});

test("a copy draws its uniform all the same: every run reads the seed's stream at the same places", async () => {
  // per step: one uniform per draft (copied or not), one r per draft, one u; the logged r must be those
  let copies = 0;
  for (const lookupBelow of [0, 0.7, 1]) {
    for (const seed of [0, 4]) {
      const res = await run({ rule: "sampling", temperature: 0.9, promptIds: PROMPTS[2], maxNewTokens: 50, seed, lookupBelow, eosIds: [] });
      const rng = makeRng(seed);
      for (const s of res.steps) {
        s.draft.forEach(() => rng());
        for (const [j, v] of s.verify.entries()) {
          const r = rng();
          if (v.r !== null) assert.equal(v.r, r, `lookup ${lookupBelow}, seed ${seed}, step ${s.index}, r ${j}`);
        }
        rng(); // the evaluation model's token
        copies += s.draft.filter((d) => d.copied).length;
      }
    }
  }
  assert.ok(copies > 20, `${copies} copies`);
});

test("the trace says the fallback was on (meta.draft.lookup) and which drafts it copied", async () => {
  const opts = {
    draft: fakeDraft(), tokenMap: TOKEN_MAP, promptIds: PROMPTS[2], gamma: 4, rule: "sampling", temperature: 0.8,
    maxNewTokens: 40, eosIds: [], seed: 1, decodeToken,
  };
  const on = await recordSpeculative({ ...opts, target: fakeTarget() });
  assert.deepEqual(on.trace.meta.draft, { name: "draft", kind: "model", lookup: { below: 0.7, min_ngram: 2, max_ngram: 3 } });
  const copied = on.trace.steps.flatMap((s) => s.draft.filter((d) => "copied" in d));
  assert.ok(copied.length > 3);
  for (const d of copied) {
    assert.ok([2, 3].includes(d.copied));
    assert.deepEqual([d.q, d.q_raw, d.top.length, d.top_raw.length], [1, 1, 1, 1]); // one-hot, raw too
  }
  const off = await recordSpeculative({ ...opts, draft: fakeDraft(), target: fakeTarget(), lookupBelow: 0 });
  assert.deepEqual(off.trace.meta.draft, { name: "draft", kind: "model" });
  assert.ok(off.trace.steps.every((s) => s.draft.every((d) => !("copied" in d))));
  await assert.rejects(recordSpeculative({ ...opts, target: fakeTarget(), lookupBelow: 2 }), /lookupBelow/);
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

test("a copied draft keeps sampling lossless: accepted with probability p(x), else the residual", async () => {
  const prompt = [2, 3, 4, 2, 3]; // "2 3" was followed by 4: with the bar at 1 the first draft is always 4
  const row = targetLogits(prompt);
  const exp = row.map((v) => Math.exp(v));
  const p = exp.map((v) => v / exp.reduce((a, b) => a + b, 0));
  const runs = 3000;
  const counts = new Array(p.length).fill(0);
  let accepted = 0;
  for (let seed = 0; seed < runs; seed++) {
    const res = await run({ rule: "sampling", temperature: 1, promptIds: prompt, maxNewTokens: 2, gamma: 1, seed, eosIds: [], lookupBelow: 1 });
    assert.deepEqual([res.steps[0].draft[0].token_id, res.steps[0].draft[0].copied], [4, 2]);
    counts[res.tokenIds[0]]++;
    accepted += res.steps[0].n_accepted;
  }
  const tv = counts.reduce((a, c, i) => a + Math.abs(c / runs - p[i]) / 2, 0);
  assert.ok(Math.abs(accepted / runs - p[4]) < 0.04, `accepted ${accepted / runs}, p(4) ${p[4]}`);
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
