// decode.js's confidence stop against drafters/model.py ModelDrafter.propose: the chain ends right after
// the first draft of the model's own whose own q (before warping) is below the bar, never after a copy,
// never with the bar at 0; one uniform is drawn per draft made, and the rule's r per draft made (Python's
// order on a shorter chain); the trace records the policy as specviz/run/record.py does (meta.gamma_policy).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  DEFAULT_CONFIDENCE, confidenceSettings, decodeSpeculative, decodeTargetAlone, lookupSettings, modelDrafter,
  recordSpeculative,
} from "../../specviz/assets/live/decode.js";
import { makeRng } from "../../specviz/assets/live/rng.js";
import { gammaPolicyMeta } from "../../specviz/assets/live/trace.js";
import { sampling } from "../../specviz/assets/live/warp.js";
import { EOS, TOKEN_MAP, decodeToken, fakeDraft, fakeModel, fakeTarget, greedyReference } from "./fakes.mjs";

const fixtures = JSON.parse(readFileSync(new URL("./fixtures/confidence.json", import.meta.url)));

/** A counting generator: rng() gives next(i) for its i-th call, rng.calls how many it gave. */
function counted(next) {
  const rng = () => next(rng.calls++);
  rng.calls = 0;
  return rng;
}

/** A draft over a shared vocabulary whose logits after the prompt and k drafts are rows[k], whatever the ids. */
function rowsModel(rows, nPrompt) {
  const vocab = rows[0].length;
  return fakeModel(vocab, (ctx) => (ctx.length < nPrompt ? new Float32Array(vocab) : Float32Array.from(rows[ctx.length - nPrompt])));
}

/** A row of logits over `vocab` ids whose softmax gives `best` to id `at` and shares the rest evenly. */
function rowWith(vocab, at, best) {
  const rest = (1 - best) / (vocab - 1);
  return Array.from({ length: vocab }, (_, i) => Math.log(i === at ? best : rest));
}

test("the defaults are Python's: 0.4 on the page; 0 and null are off; out of range is refused", () => {
  assert.equal(DEFAULT_CONFIDENCE, fixtures.default);
  assert.equal(confidenceSettings(undefined), DEFAULT_CONFIDENCE);
  assert.equal(confidenceSettings(0.25), 0.25);
  assert.equal(confidenceSettings(1), 1);
  assert.equal(confidenceSettings(0), null);
  assert.equal(confidenceSettings(null), null);
  for (const bad of [-0.1, 1.01, NaN, "0.4"]) assert.throws(() => confidenceSettings(bad), RangeError);
  assert.deepEqual(gammaPolicyMeta(4, DEFAULT_CONFIDENCE), fixtures.gamma_policy); // GammaPolicy.meta, key for key
  assert.equal(gammaPolicyMeta(4, null), null);
  assert.equal(gammaPolicyMeta(4, 0), null);
});

test("the drafter drafts what ModelDrafter.propose drafts, stops where it stops, draws what it draws", async () => {
  // fixtures/confidence.json: Python's drafter on hand-made rows, handed the seed's uniforms
  const seen = { stopped: 0, full: 0, copies: 0, copiesGoneOn: 0 };
  for (const [i, c] of fixtures.cases.entries()) {
    const drafter = modelDrafter(rowsModel(c.rows, c.prompt.length), null, c.rows[0].length, lookupSettings(c.lookup_below ?? 0));
    const rng = counted((k) => c.uniforms[k]);
    const s = sampling({ temperature: c.temperature, topK: c.top_k, topP: c.top_p });
    const got = await drafter.propose(c.prompt, c.gamma, s, rng, confidenceSettings(c.confidence ?? 0));
    const what = `case ${i}: ${JSON.stringify({ ...c, rows: undefined, uniforms: undefined })}`;
    assert.deepEqual(got.draft, c.token_ids, what);
    assert.deepEqual(got.copied, c.copied, what);
    assert.equal(rng.calls, c.draws, `${what}: uniforms drawn`);
    assert.equal(got.q.length, got.draft.length, what);
    if (got.draft.length < c.gamma) seen.stopped++;
    else seen.full++;
    seen.copies += c.copied.filter(Boolean).length;
    if (c.confidence && c.copied.slice(0, -1).some(Boolean)) seen.copiesGoneOn++;
  }
  assert.ok(seen.stopped > 50 && seen.full > 30 && seen.copies > 30 && seen.copiesGoneOn > 5, JSON.stringify(seen));
});

test("the chain stops right after the first model draft whose own q is below the bar (greedy reads the unwarped q)", async () => {
  // own q of the drafted (best) token at each position; greedy drafts the best token, its warped q 1
  const own = [0.9, 0.6, 0.35, 0.8, 0.2, 0.95, 0.3, 0.9];
  const rows = own.map((b, k) => rowWith(8, (k * 3) % 8, b));
  const lengthFor = async (c, s, gamma = 8) => {
    const drafter = modelDrafter(rowsModel(rows, 3), null, 8, null);
    const rng = counted(makeRng(0));
    const got = await drafter.propose([1, 2, 3], gamma, sampling(s), rng, confidenceSettings(c));
    assert.equal(rng.calls, got.draft.length, "one uniform per draft made");
    assert.deepEqual(got.draft, rows.slice(0, got.draft.length).map((_, k) => (k * 3) % 8));
    assert.ok(got.q.every((row, k) => row[got.draft[k]] === 1), "the warped q is one-hot: the stop reads the raw q");
    return got.draft.length;
  };
  // greedy, and sampling from a top-1 nucleus: both draft the best token with a warped q of 1
  for (const s of [{ temperature: 0 }, { temperature: 1, topK: 1 }]) {
    const at = async (c, gamma) => lengthFor(c, s, gamma);
    assert.equal(await at(0.4), 3); // 0.9 and 0.6 go on, 0.35 is drafted and ends the chain
    assert.equal(await at(0.61), 2);
    assert.equal(await at(0.3), 5); // 0.2
    assert.equal(await at(0.1), 8); // nothing below: gamma
    assert.equal(await at(0.4, 2), 2); // gamma comes first
    assert.equal(await at(0), 8); // off
    assert.equal(await at(null), 8);
    assert.equal(await at(1), 1); // every model draft is below 1
  }
  // the bar is strict: q(x) equal to it goes on (a tie of two at 0.5: exact in float32)
  const tie = Array.from({ length: 4 }, () => [0, 0, -Infinity, -Infinity]);
  for (const [c, n] of [[0.5, 4], [0.5000001, 1]]) {
    const got = await modelDrafter(rowsModel(tie, 2), null, 4, null).propose([3, 1], 4, sampling({ temperature: 0 }), makeRng(0), c);
    assert.equal(got.draft.length, n, `bar ${c}`);
  }
});

test("a copied draft never stops the chain, however unlikely the model found the copied token", async () => {
  // the model's own q is flat (1/8 each): below 1 everywhere, so every draft of its own stops the chain,
  // and below the fallback's bar, so where the text repeats the draft is copied instead
  const flat = Array.from({ length: 6 }, () => new Array(8).fill(0));
  const propose = (prompt, c) =>
    modelDrafter(rowsModel(flat, prompt.length), null, 8, lookupSettings(1)).propose(prompt, 6, sampling({ temperature: 0 }), makeRng(0), c);
  // "2 3 4 2 3": copies 4, 2, 3, 4, ... all the way to gamma
  const all = await propose([2, 3, 4, 2, 3], 1);
  assert.deepEqual([all.draft, all.copied], [[4, 2, 3, 4, 2, 3], [2, 3, 3, 3, 3, 3]]);
  // "2 3 7 9 2 3": copies 7 after "2 3"; "2 3 7" and "3 7" were followed by 9, outside the vocabulary of
  // 8: nothing to copy, so the model drafts, and stops
  const some = await propose([2, 3, 7, 9, 2, 3], 1);
  assert.deepEqual([some.draft, some.copied], [[7, 0], [2, 0]]);
  // nothing repeats: the first draft is the model's, and ends the chain
  const none = await propose([1, 2, 3, 4], 1);
  assert.deepEqual(none.copied, [0]);
});

/**
 * A decode's steps, checked step by step against the rule: each chain is gamma long (or the budget) unless
 * its last draft is the model's own with own q below c, and no earlier draft is one; with c the logged r
 * are the seed's uniforms in Python's order (one per draft made, one r per draft made, one for the token).
 * Returns how many steps stopped early.
 */
function checkChains(res, o) {
  const rng = makeRng(o.seed);
  let made = 0;
  let stopped = 0;
  for (const s of res.steps) {
    const want = Math.min(o.gamma, o.maxNewTokens - made - 1);
    const ownQ = (d) => d.q_raw ?? d.q; // a copy's q is one-hot: never read
    const unsure = (d) => o.confidence > 0 && !d.copied && ownQ(d) < o.confidence;
    const what = `${JSON.stringify(o)}, step ${s.index}`;
    s.draft.slice(0, -1).forEach((d, j) => assert.ok(!unsure(d), `${what}: drafted on after unsure draft ${j}`));
    if (s.draft.length < want) {
      assert.ok(unsure(s.draft.at(-1)), `${what}: ${s.draft.length} of ${want} drafts, the last not unsure`);
      stopped++;
    } else {
      assert.equal(s.draft.length, want, what);
    }
    s.draft.forEach(() => rng());
    for (const v of s.verify) {
      const r = rng();
      if (v.r !== null) assert.equal(v.r, r, `${what}: r`);
    }
    rng(); // the evaluation model's token
    made += s.n_accepted + 1;
  }
  return stopped;
}

test("whole decodes: shorter chains where the draft is unsure, Python's random order, nothing else changed", async () => {
  let stopped = 0;
  for (const [rule, temperature] of [["sampling", 1], ["sampling", 0.7], ["threshold", 1.1], ["greedy", 0], ["typical", 0.9]]) {
    for (const [confidence, lookupBelow] of [[0.4, 0.7], [0.8, 0], [1, 1], [0, 0.7]]) {
      const o = { rule, temperature, confidence, lookupBelow, gamma: 5, maxNewTokens: 40, seed: 3 };
      const res = await decodeSpeculative({
        target: fakeTarget(), draft: fakeDraft(), tokenMap: TOKEN_MAP, promptIds: [2, 5, 9, 12, 3, 8], eosIds: [], decodeToken, ...o,
      });
      const n = checkChains(res, o);
      if (confidence === 0) assert.equal(n, 0, `${rule}: the stop is off`);
      stopped += n;
    }
  }
  assert.ok(stopped > 50, `${stopped} steps stopped early`);
});

test("greedy with the stop (the page's default) is still exactly the evaluation model alone", async () => {
  let short = 0;
  for (const promptIds of [[2, 3, 4], [7], [2, 5, 9, 12, 3, 8]]) {
    const want = greedyReference(promptIds, 40);
    const alone = await decodeTargetAlone({ target: fakeTarget(), promptIds, temperature: 0, maxNewTokens: 40, eosIds: [EOS] });
    assert.deepEqual(alone.tokenIds, want);
    for (const gamma of [2, 4, 7]) {
      for (const confidence of [undefined, 0.7, 1]) {
        for (const lookupBelow of [undefined, 0]) {
          const res = await decodeSpeculative({
            target: fakeTarget(), draft: fakeDraft(), tokenMap: TOKEN_MAP, promptIds, gamma, rule: "greedy", temperature: 0,
            maxNewTokens: 40, eosIds: [EOS], seed: 0, decodeToken, confidence, lookupBelow,
          });
          const what = `prompt ${promptIds}, gamma ${gamma}, confidence ${confidence}, lookup ${lookupBelow}`;
          assert.deepEqual(res.tokenIds, want, what);
          short += checkChains(res, { seed: 0, gamma, maxNewTokens: 40, confidence: confidence ?? DEFAULT_CONFIDENCE });
        }
      }
    }
  }
  assert.ok(short > 30, `${short} steps stopped early`);
});

test("the trace records the stop as Python does: meta.gamma_policy, absent when off", async () => {
  const opts = {
    draft: fakeDraft(), tokenMap: TOKEN_MAP, promptIds: [2, 3, 4], gamma: 5, rule: "sampling", temperature: 0.8,
    maxNewTokens: 30, eosIds: [], seed: 2, decodeToken,
  };
  const on = await recordSpeculative({ ...opts, target: fakeTarget() }); // the default: 0.4
  assert.deepEqual(on.trace.meta.gamma_policy, { name: "constant", start: 5, increase: 2, decrease: 1, min: 1, max: 5, confidence: 0.4 });
  assert.equal(on.trace.meta.gamma, 5);
  assert.ok(on.trace.steps.some((s) => s.draft.length < 5 && s.draft.length > 0), "no step stopped early");
  const bar = await recordSpeculative({ ...opts, draft: fakeDraft(), target: fakeTarget(), confidence: 0.65 });
  assert.equal(bar.trace.meta.gamma_policy.confidence, 0.65);
  for (const confidence of [0, null]) {
    const off = await recordSpeculative({ ...opts, draft: fakeDraft(), target: fakeTarget(), confidence });
    assert.ok(!("gamma_policy" in off.trace.meta), `confidence ${confidence}`);
    assert.equal(checkChains({ steps: off.trace.steps }, { ...opts, confidence: 0 }), 0); // gamma, or the budget
  }
  await assert.rejects(recordSpeculative({ ...opts, target: fakeTarget(), confidence: 1.5 }), /confidence/);
  // the verify entries follow the shorter chain: one per draft made
  for (const s of on.trace.steps) assert.equal(s.verify.length, s.draft.length);
});
