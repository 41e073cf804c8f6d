// The fast paths of specviz/assets/live (one max pass per row, one exp pass at temperature 0 and 1, scratch
// rows, a sampler without a cdf array, top lists scanned once, the bonus row warped only when read) give
// bit for bit what the straightforward code gives (reference.mjs, the code before them): on random rows with
// ties, -inf, NaN, tiny temperatures, top-k and top-p, and through whole decodes, record field by record field.
import assert from "node:assert/strict";
import { test } from "node:test";

import { decodeSpeculative, vocabBridge } from "../../specviz/assets/live/decode.js";
import { makeRng } from "../../specviz/assets/live/rng.js";
import { KINDS, RULES, acceptTypical, makeRule, nextDistribution, residual, verify } from "../../specviz/assets/live/rules.js";
import { topList, tokenLabels } from "../../specviz/assets/live/trace.js";
import { isIdentity, sample, sampling, warp, warpWithRaw } from "../../specviz/assets/live/warp.js";
import { TARGET_VOCAB, decodeToken, draftLogits, fakeDraft, fakeTarget, targetLogits } from "./fakes.mjs";
import * as ref from "./reference.mjs";

/** Equal lengths and every entry the same double (Object.is: -0 is not 0, NaN is NaN). */
function sameBits(got, want, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: entry ${i} is ${got[i]}, the reference ${want[i]}`);
  }
}

const pick = (rng, xs) => xs[Math.floor(rng() * xs.length)];
const gauss = (rng) => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());

/** A row of logits of one kind: the shapes where a shortcut could part from the reference. */
function logitsRow(rng, n, kind) {
  const row = Array.from({ length: n }, () => 3 * gauss(rng));
  if (kind === "ties") for (let i = 0; i < n; i++) row[i] = Math.floor(rng() * 4); // ties at the max, the k-th, the top-p edge
  if (kind === "-inf") for (let i = 0; i < n; i++) if (rng() < 0.4) row[i] = -Infinity;
  if (kind === "one finite") row.fill(-Infinity)[Math.floor(rng() * n)] = 2;
  if (kind === "all -inf") row.fill(-Infinity);
  if (kind === "+inf") row[Math.floor(rng() * n)] = Infinity;
  if (kind === "nan") row[rng() < 0.5 ? 0 : Math.floor(rng() * n)] = NaN;
  if (kind === "peaked") row[Math.floor(rng() * n)] += 25;
  if (kind === "wide") for (let i = 0; i < n; i++) row[i] *= 40; // exps that underflow
  // a plain array of doubles is rounded to float32 first (two doubles can become a tie); typed rows are not
  return kind === "doubles" || rng() < 0.3 ? row : Float32Array.from(row);
}

const KINDS_OF_ROW = ["normal", "ties", "-inf", "one finite", "all -inf", "+inf", "nan", "peaked", "wide", "doubles"];
const TEMPERATURES = [0, 1e-40, 2e-39, 3e-39, 1e-30, 1e-6, 0.05, 0.7, 1, 1, 1.5, 4];

function randomSettings(rng, n) {
  return sampling({
    temperature: pick(rng, TEMPERATURES),
    topK: rng() < 0.5 ? 0 : pick(rng, [1, 2, 5, n, n + 3]),
    topP: rng() < 0.5 ? 1 : pick(rng, [0.999, 0.9, 0.5, 1e-3]),
  });
}

test("warp and warpWithRaw give the reference's rows, bit for bit", () => {
  const rng = makeRng(101);
  // sizes in a random order: the scratch rows grow and are reused at other lengths
  for (let c = 0; c < 3000; c++) {
    const n = pick(rng, [1, 2, 3, 7, 50, 300, 4096]);
    const kind = pick(rng, KINDS_OF_ROW);
    const row = logitsRow(rng, n, kind);
    const s = randomSettings(rng, n);
    const what = `case ${c}: ${kind} row of ${n}, ${JSON.stringify(s)}`;
    const want = ref.warp(row, s);
    sameBits(warp(row, s), want, what);
    const both = warpWithRaw(row, s);
    sameBits(both.probs, want, what);
    if (isIdentity(s)) assert.equal(both.raw, null, what);
    else sameBits(both.raw, ref.warp(row, ref.UNTEMPERED), `${what}, raw`);
  }
});

test("at the real vocabulary size too (49,152 and 8,191 ids)", () => {
  const rng = makeRng(102);
  for (const n of [49_152, 8_191, 49_152]) {
    for (const kind of ["normal", "peaked", "ties"]) {
      const row = logitsRow(rng, n, kind);
      for (const s of [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.7 }, { temperature: 0.9, topK: 50, topP: 0.9 }, { temperature: 1, topP: 0.95 }]) {
        const what = `${kind} row of ${n}, ${JSON.stringify(s)}`;
        const both = warpWithRaw(row, sampling(s));
        sameBits(both.probs, ref.warp(row, sampling(s)), what);
        if (both.raw) sameBits(both.raw, ref.warp(row, ref.UNTEMPERED), `${what}, raw`);
      }
    }
  }
});

/** Rows of probabilities: warped ones (one-hot, zeros, ties) and unnormalised weights. */
function probsRow(rng, n) {
  if (rng() < 0.6) return warp(logitsRow(rng, n, pick(rng, ["normal", "ties", "-inf", "peaked"])), randomSettings(rng, n));
  return Float32Array.from({ length: n }, () => (rng() < 0.3 ? 0 : pick(rng, [0.25, 0.5, rng()])));
}

test("sample, topList, residual, nextDistribution and the typical test decide as the reference does", () => {
  const rng = makeRng(103);
  const tok = tokenLabels(String);
  for (let c = 0; c < 2000; c++) {
    const n = pick(rng, [1, 2, 5, 40, 1000]);
    const p = probsRow(rng, n);
    const q = rng() < 0.15 ? p.slice() : probsRow(rng, n); // p == q: an empty residual
    const what = `case ${c}, n ${n}`;
    for (const u of [0, 1e-12, rng(), 0.5, 1 - 2 ** -53]) assert.equal(sample(p, u), ref.sample(p, u), `${what}, u ${u}`);
    for (const k of [0, 1, 3, 10, n + 2]) {
      assert.deepEqual(topList(p, k, tok).map((e) => [e.token_id, e.prob]), ref.topList(p, k), `${what}, top ${k}`);
    }
    sameBits(residual(p, q), ref.residual(p, q), `${what}, residual`);
    for (const name of RULES) {
      for (const qRow of [q, null]) {
        const got = nextDistribution(makeRule(name), p, qRow);
        const want = ref.nextDistribution(KINDS[name].correction, p, qRow);
        assert.equal(got.source, want.source, `${what}, ${name}`);
        sameBits(got.probs, want.probs, `${what}, ${name}`);
      }
    }
    const x = Math.floor(rng() * n);
    assert.deepEqual(acceptTypical(p, p[x], 0.09, 0.3), ref.acceptTypical(p, p[x], 0.09, 0.3), `${what}, typical`);
  }
});

test("q over the target's ids through a token map is the reference's scatter and renormalisation", () => {
  const rng = makeRng(104);
  // the real pair's shape: 8,191 draft ids spread over 49,152 in no order, the draft's last id unk
  const ids = Array.from({ length: 49_152 }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const map = ids.slice(0, 8_191);
  const bridge = vocabBridge({ target_ids: map, unk: 8_191 }, 8_192, 49_152);
  for (let c = 0; c < 20; c++) {
    const probs = probsRow(rng, 8_191);
    sameBits(bridge.toTarget(probs), ref.toTarget(probs, map, 49_152), `case ${c}`);
  }
  sameBits(bridge.toTarget(new Float32Array(8_191)), new Float32Array(49_152), "all zero: left as it is");
  // a map naming a target id twice: the later draft id's q lands there, as the scatter leaves it
  const twice = [4, 1, 4, 0];
  const probs = Float32Array.from([0.1, 0.2, 0.3, 0.4]);
  sameBits(vocabBridge(twice, 5, 6).toTarget(probs), ref.toTarget(probs, twice, 6), "a repeated id");
});

// a draft map out of the target's order: q over the target's ids is still summed in the target's order
const MAP = [13, 2, 0, 7, 1, 11, 4, 8, 3, 10, 6];
const PROMPT = [2, 3, 4];

/**
 * Replay a decode with the reference functions, from the fake models' logits and the seed's uniforms in
 * the decoder's order (one per draft made, one r per draft made, one u): every token, decision and recorded
 * number must match. With o.lookupBelow (0: off), a draft whose own best q is below it is the reference
 * findCopy's token, q one-hot: its uniform is drawn all the same. With o.confidence (0: off), the chain
 * ends right after a draft of the model's own whose own q is below it (drafters/model.py), else it is gamma
 * long (or the budget). Returns {copies, stops}: the drafts copied, the steps that stopped early.
 */
function replay(res, o) {
  const below = o.lookupBelow ?? 0;
  const bar = o.confidence ?? 0;
  let copies = 0;
  let stops = 0;
  const s = sampling(o);
  const rule = makeRule(o.rule, o.ruleParams ?? {});
  const rng = makeRng(o.seed);
  const toDraft = (t) => (MAP.includes(t) ? MAP.indexOf(t) : MAP.length);
  const top = (row) => ref.topList(row, 10);
  const listed = (entries) => entries.map((e) => [e.token_id, e.prob]);
  const ctx = [...PROMPT];
  for (const step of res.steps) {
    const what = `${JSON.stringify(o)}, step ${step.index}`;
    assert.equal(step.context_length, ctx.length, what);
    const draft = step.draft.map((d) => d.token_id);
    const budget = o.maxNewTokens - (ctx.length - PROMPT.length) - 1;
    const q = [];
    const qRaw = [];
    let unsure = false; // the last draft was the model's own, its own q below the bar
    draft.forEach((x, j) => {
      assert.ok(!unsure, `${what}: drafted on after an unsure draft ${j - 1}`);
      const row = draftLogits(ctx.concat(draft.slice(0, j)).map(toDraft), { tokenMap: MAP }).subarray(0, MAP.length);
      q.push(ref.toTarget(ref.warp(row, s), MAP, TARGET_VOCAB));
      qRaw.push(ref.toTarget(ref.warp(row, ref.UNTEMPERED), MAP, TARGET_VOCAB));
      const u = rng(); // drawn whether or not the draft is copied
      const own = isIdentity(s) ? q[j] : qRaw[j];
      const found = below > 0 && Math.max(...own) < below ? ref.findCopy(ctx.concat(draft.slice(0, j)), TARGET_VOCAB) : null;
      const d = step.draft[j];
      if (found) {
        copies++;
        q[j] = new Float32Array(TARGET_VOCAB);
        q[j][found.token] = 1;
        qRaw[j] = q[j];
        assert.equal(x, found.token, `${what}: copied draft ${j}`);
        assert.equal(d.copied, found.n, `${what}: copied of draft ${j}`);
      } else {
        assert.equal(x, ref.sample(q[j], u), `${what}: draft ${j}`);
        assert.ok(!("copied" in d), `${what}: draft ${j} is not a copy`);
        unsure = bar > 0 && own[x] < bar;
      }
      assert.equal(d.q, q[j][x], `${what}: q of draft ${j}`);
      assert.deepEqual(listed(d.top), top(q[j]), `${what}: q's top, draft ${j}`);
      if (!isIdentity(s)) {
        assert.equal(d.q_raw, qRaw[j][x], `${what}: q_raw of draft ${j}`);
        assert.deepEqual(listed(d.top_raw), top(qRaw[j]), `${what}: q's top_raw, draft ${j}`);
      }
    });
    if (draft.length < Math.min(o.gamma, budget)) {
      assert.ok(unsure, `${what}: ${draft.length} drafts, and the last one was not unsure`);
      stops++;
    } else {
      assert.equal(draft.length, Math.min(o.gamma, budget), `${what}: drafts`);
    }
    const logits = draft.map((_, j) => targetLogits(ctx.concat(draft.slice(0, j)))).concat([targetLogits(ctx.concat(draft))]);
    const p = logits.map((row) => ref.warp(row, s));
    const pRaw = logits.map((row) => ref.warp(row, ref.UNTEMPERED));
    const r = draft.map(() => rng());
    const u = rng();
    const v = verify(rule, p, q, draft, r);
    const n = v.nAccepted;
    assert.equal(step.n_accepted, n, what);
    draft.forEach((x, j) => {
      const e = step.verify[j];
      assert.equal(e.p, p[j][x], `${what}: p of draft ${j}`);
      assert.equal(e.accepted, j <= n ? v.accepted[j] : null, `${what}: accepted ${j}`);
      assert.equal(e.r, j <= n && rule.usesRandom ? r[j] : null, `${what}: r ${j}`);
      for (const key of ["accept_prob", "ratio", "cutoff"]) assert.equal(e[key], v[key] ? v[key][j] : null, `${what}: ${key} ${j}`);
      assert.deepEqual(listed(e.top), top(p[j]), `${what}: p's top, draft ${j}`);
      if (!isIdentity(s)) {
        assert.equal(e.p_raw, pRaw[j][x], `${what}: p_raw of draft ${j}`);
        assert.deepEqual(listed(e.top_raw), top(pRaw[j]), `${what}: p's top_raw, draft ${j}`);
      }
    });
    const next = ref.nextDistribution(rule.correction, p[n], n < draft.length ? q[n] : null);
    const x = ref.sample(next.probs, u);
    assert.equal(step.next.token_id, x, `${what}: the evaluation model's token`);
    assert.equal(step.next.source, next.source, what);
    assert.equal(step.next.prob, next.probs[x], what);
    assert.deepEqual(listed(step.next.top), top(next.probs), `${what}: next's top`);
    if (!isIdentity(s)) {
      assert.equal(step.next.p_raw, pRaw[n][x], what);
      assert.deepEqual(listed(step.next.top_raw), top(pRaw[n]), `${what}: next's top_raw`);
    }
    ctx.push(...draft.slice(0, n), x);
  }
  assert.deepEqual(res.tokenIds, ctx.slice(PROMPT.length, PROMPT.length + o.maxNewTokens));
  return { copies, stops };
}

test("whole decodes record what the reference computes: tokens, decisions, p, q, raw rows, top lists", async () => {
  const settings = [
    { rule: "greedy", temperature: 0 },
    { rule: "sampling", temperature: 0 },
    { rule: "greedy", temperature: 1e-40 },
    { rule: "sampling", temperature: 1 },
    { rule: "sampling", temperature: 0.7, topK: 6, topP: 0.9 },
    { rule: "threshold", ruleParams: { tau: 0.5 }, temperature: 1.3, topP: 0.8 },
    { rule: "typical", temperature: 0.9 },
    { rule: "typical", temperature: 1, topK: 4 },
  ];
  let bonuses = 0;
  let residuals = 0;
  let copies = 0;
  let stops = 0;
  for (const st of settings) {
    // the seed picks the prompt-lookup fallback too (off, the default bar 0.7, always where a match is),
    // and the confidence stop (off, the default 0.4, 0.8)
    for (const [seed, lookupBelow, confidence] of [[0, 0, 0], [1, 0.7, 0.4], [2, 1, 0.8], [3, 0, 0.4]]) {
      const o = { ...st, seed, lookupBelow, confidence, gamma: 3, maxNewTokens: 30 };
      const res = await decodeSpeculative({
        target: fakeTarget(), draft: fakeDraft({ tokenMap: MAP }), tokenMap: MAP, promptIds: PROMPT, eosIds: [], decodeToken, ...o,
      });
      const seen = replay(res, o);
      copies += seen.copies;
      stops += seen.stops;
      bonuses += res.steps.filter((x) => x.next.kind === "bonus").length;
      residuals += res.steps.filter((x) => x.next.source === "residual").length;
    }
  }
  assert.ok(bonuses > 10 && residuals > 10, `${bonuses} bonus tokens, ${residuals} residual corrections`);
  assert.ok(copies > 20, `${copies} copied drafts`);
  assert.ok(stops > 20, `${stops} steps stopped early`);
});
