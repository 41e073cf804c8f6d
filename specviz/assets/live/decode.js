// The speculative decoding loop in the browser: specviz/core/decoder.py for a chain, in JavaScript.
//
// Each step, in order: (1) the draft model proposes up to gamma tokens with q, one at a time, from its
// own cache (where it is unsure and the last 2-3 tokens occurred earlier, it copies what followed them
// there instead: the prompt-lookup fallback, drafters/ngram.py LookupFallback; with the confidence
// stop it ends the chain after a draft of its own whose own q is below the bar); (2) ONE target pass
// scores them all, giving p after the root (the last context token) and after each draft; (3) the rule
// accepts n_accepted leading drafts; (4) the evaluation model adds its own token: a correction after a
// rejection (residual, p or argmax, as the rule says), or a bonus token when every draft was accepted;
// (5) the target cache keeps the context and the accepted drafts, the draft cache is rolled back to
// what still matches at the next step. Every step is handed out as a trace step record (trace.js) the
// moment it is done.
//
// Models sit behind a small async interface (Model, below), so Node tests drive fake ones and the page
// onnxruntime-web. Random numbers come from a generator seeded with `seed` (rng.js), drawn in Python's
// order: one per drafted token (a copied one too), then one uniform r per draft made for the rule (fewer
// than gamma when the chain stopped early), then one for the evaluation model's token.

/**
 * @typedef {Object} Model  what the loop asks of a model (fakes in tests/js/fakes.mjs, onnxruntime-web on the page)
 * @property {number} vocab  the logits width
 * @property {() => any} newCache
 * @property {(ids: number[], cache: any) => Promise<{logits: Float32Array, cache: any}>} forward  logits
 *   [ids.length * vocab] row-major (or only the last rows); the cache grown by ids.length
 * @property {(cache: any, length: number) => any} crop  keep the first `length` positions (may return a Promise)
 */

import { makeRng } from "./rng.js";
import { makeRule, nextDistribution, verify } from "./rules.js";
import { finishTrace, newTrace, outputIds, stepRecord, timingMeta, tokenLabels } from "./trace.js";
import { isIdentity, sample, sampling, warp, warpWithRaw } from "./warp.js";

/** Where the draft model copies by default (drafters/ngram.py DEFAULT_LOOKUP_BELOW): below this best q. */
export const DEFAULT_LOOKUP_BELOW = 0.7;
/** The n-grams the fallback matches (drafters/ngram.py LookupFallback's min_ngram, max_ngram). */
export const LOOKUP_NGRAMS = Object.freeze({ minNgram: 2, maxNgram: 3 });

/**
 * Prompt lookup for one draft (drafters/ngram.py `continuations` with length 1, limit 1, and
 * LookupFallback.find): the longest n-gram (maxNgram down to minNgram) ending `ids` that occurred
 * earlier; the token that followed its latest earlier occurrence whose follower the target can score
 * (an id < vocab; an occurrence followed by another id is passed over).
 * @param {ArrayLike<number>} ids  the context and the drafts so far (target ids)
 * @param {number} vocab  the target's logits width
 * @returns {{token: number, n: number}|null}  the copied token and the n-gram's length, or null: nothing matches
 */
export function findCopy(ids, vocab, minNgram = LOOKUP_NGRAMS.minNgram, maxNgram = LOOKUP_NGRAMS.maxNgram) {
  const len = ids.length;
  for (let n = Math.min(maxNgram, len - 1); n >= minNgram; n--) {
    // latest match first: recent text is the likeliest to repeat
    for (let start = len - n - 1; start >= 0; start--) {
      let same = true;
      for (let k = 0; k < n && same; k++) same = ids[start + k] === ids[len - n + k];
      if (same && ids[start + n] < vocab) return { token: ids[start + n], n };
    }
  }
  return null;
}

/**
 * The fallback's settings from speculativeSteps' o.lookupBelow: undefined → DEFAULT_LOOKUP_BELOW; 0 or
 * null → off (null returned). Throws RangeError outside [0, 1].
 * @returns {{below: number, minNgram: number, maxNgram: number}|null}
 */
export function lookupSettings(lookupBelow) {
  const below = lookupBelow === undefined ? DEFAULT_LOOKUP_BELOW : (lookupBelow ?? 0);
  if (typeof below !== "number" || !(below >= 0 && below <= 1)) {
    throw new RangeError(`lookupBelow must be a number from 0 to 1 (0: never copy), got ${lookupBelow}`);
  }
  return below > 0 ? { below, ...LOOKUP_NGRAMS } : null;
}

/**
 * Where the page stops a chain by default (core/decoder.py DEFAULT_CONFIDENCE, the Live page's and the
 * command line's default): after a draft of the model's own whose own q (before warping) is below it.
 */
export const DEFAULT_CONFIDENCE = 0.4;

/**
 * The confidence stop from speculativeSteps' o.confidence (GammaPolicy.from_options: 0 is none):
 * undefined → DEFAULT_CONFIDENCE; 0 or null → off (null returned). Throws RangeError outside [0, 1].
 * @returns {number|null}  the bar, or null: never stop early
 */
export function confidenceSettings(confidence) {
  const c = confidence === undefined ? DEFAULT_CONFIDENCE : (confidence ?? 0);
  if (typeof c !== "number" || !(c >= 0 && c <= 1)) {
    throw new RangeError(`confidence must be a number from 0 to 1 (0: never stop early), got ${confidence}`);
  }
  return c > 0 ? c : null;
}

/** The largest value of a row. */
function rowMax(row) {
  let best = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > best) best = row[i];
  return best;
}

/** The last `need` rows [vocab] of a row-major [rows * vocab] logits array. */
function lastRows(logits, vocab, need, who) {
  const have = logits.length / vocab;
  if (!Number.isInteger(have) || have < need) {
    throw new Error(`${who}.forward gave ${logits.length} logits: expected rows of ${vocab} (vocab), at least ${need}`);
  }
  return Array.from({ length: need }, (_, i) => logits.subarray((have - need + i) * vocab, (have - need + i + 1) * vocab));
}

/**
 * The draft's vocabulary against the target's (specviz/models/vocab.py TokenMap, drafters/model.py `_q`).
 * With a token map, draft id i is target id map[i] and the draft's extra last id (`unk`) stands for every
 * target token outside the map: it is only ever an input, never proposed (its logit is cut before
 * warping), and q over the target's ids is the draft's distribution scattered onto them (0 elsewhere).
 * Without one the draft shares the target's ids: q is padded with zeros, or cut and renormalised.
 * @param {number[]|{target_ids: number[], unk?: number}|null} tokenMap  as speculativeSteps' o.tokenMap
 * @returns {{width: number, toDraft: (ids: number[]) => number[], toTarget: (probs: Float32Array) => Float32Array}}
 *   width: the draft logits warped (unk cut off); toTarget: q [width] → q over the target's ids [targetVocab]
 */
export function vocabBridge(tokenMap, draftVocab, targetVocab) {
  if (!tokenMap) {
    return {
      width: draftVocab,
      toDraft: (ids) => ids,
      toTarget(probs) {
        if (probs.length === targetVocab) return probs;
        const out = new Float32Array(targetVocab);
        out.set(probs.subarray(0, targetVocab));
        if (probs.length < targetVocab) return out;
        const total = out.reduce((a, b) => a + b, 0);
        return out.map((v) => v / Math.max(total, 1e-30));
      },
    };
  }
  const targetIds = Array.isArray(tokenMap) || ArrayBuffer.isView(tokenMap) ? tokenMap : tokenMap.target_ids;
  const unk = tokenMap.unk ?? targetIds.length;
  if (targetIds.length > draftVocab) {
    throw new Error(`the token map has ${targetIds.length} ids but the draft model only ${draftVocab} logits`);
  }
  const lookup = new Int32Array(targetVocab).fill(unk); // target id → draft id
  targetIds.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= targetVocab) {
      throw new Error(`the token map names target id ${t}, outside the evaluation model's ${targetVocab} ids`);
    }
    lookup[t] = i;
  });
  // the mapped target ids in increasing order and the draft id each takes its q from (the last one naming
  // it): toTarget sums q in the target's order, as a sum over the scattered row would, without visiting
  // the 49k target ids the draft does not know
  const mapped = new Int32Array(targetVocab).fill(-1);
  targetIds.forEach((t, i) => (mapped[t] = i));
  const to = [];
  const from = [];
  mapped.forEach((i, t) => i >= 0 && (to.push(t), from.push(i)));
  return {
    width: targetIds.length,
    toDraft: (ids) => ids.map((t) => (t >= 0 && t < targetVocab ? lookup[t] : unk)),
    toTarget(probs) {
      const out = new Float32Array(targetVocab);
      let total = 0;
      for (let j = 0; j < to.length; j++) {
        out[to[j]] = probs[from[j]];
        total += out[to[j]];
      }
      if (total > 0) for (let j = 0; j < to.length; j++) out[to[j]] /= total;
      return out;
    },
  };
}

/**
 * A draft model that keeps its cache between steps (drafters/model.py ModelDrafter): at each step it
 * keeps the longest cached prefix that still matches the context, so what the target rejected goes.
 * With `lookup` (lookupSettings'), a draft where the model's own best q is below lookup.below is copied
 * from earlier text when findCopy finds something (LookupFallback.copy): q one-hot, never through the
 * token map (a copied id outside the draft's vocabulary is fed to the draft model as its unk).
 * With a minConfidence (confidenceSettings'), propose stops after a draft of the model's own whose own q
 * (the unwarped row when warping changed it: greedy's warped q is one-hot) is below it; never after a copy.
 */
export function modelDrafter(model, tokenMap, targetVocab, lookup = null) {
  const bridge = vocabBridge(tokenMap, model.vocab, targetVocab);
  let cache = null;
  let cached = []; // the target ids the draft cache holds

  async function resume(ids) {
    cache ??= await model.newCache();
    let keep = 0;
    const limit = Math.min(cached.length, ids.length - 1);
    while (keep < limit && cached[keep] === ids[keep]) keep++;
    if (keep < cached.length) cache = await model.crop(cache, keep);
    cached = cached.slice(0, keep);
    return ids.slice(keep);
  }

  /**
   * Up to gamma drafts continuing ids (gamma, or fewer when minConfidence stopped the chain): {draft,
   * q [.][V], qRaw (null when warping changed nothing), copied (the n-gram length of a copied draft, 0
   * for the model's own; [] when lookup is off)}. One rng() per draft made, copied or not.
   */
  async function propose(ids, gamma, s, rng, minConfidence = null) {
    let pending = await resume(ids);
    const draft = [];
    const qs = [];
    const raws = [];
    const copied = [];
    for (let i = 0; i < gamma; i++) {
      const out = await model.forward(bridge.toDraft(pending), cache);
      cache = out.cache;
      cached = cached.concat(pending);
      const [row] = lastRows(out.logits, model.vocab, 1, "draft");
      const { probs, raw } = warpWithRaw(row.subarray(0, bridge.width), s);
      let qRow = bridge.toTarget(probs);
      let rawRow = raw ? bridge.toTarget(raw) : null;
      const u = rng(); // drawn either way: a copy leaves the random stream as it was
      // the model's own distribution (greedy's warped q is one-hot) decides whether to look for a copy,
      // and whether to stop after its own draft
      const own = rawRow ?? qRow;
      const found = lookup && rowMax(own) < lookup.below
        ? findCopy(ids.concat(draft), targetVocab, lookup.minNgram, lookup.maxNgram)
        : null;
      let x;
      if (found) {
        x = found.token; // a one-hot q: the rules test it as any draft
        qRow = new Float32Array(targetVocab);
        qRow[x] = 1;
        if (rawRow) rawRow = qRow;
      } else {
        x = sample(qRow, u);
      }
      if (rawRow) raws.push(rawRow);
      draft.push(x);
      qs.push(qRow);
      copied.push(found ? found.n : 0);
      pending = [x]; // the draft model reads the drafted token next, copied or not
      // the draft is unsure (its own q, before warping): later drafts would likely be wasted. A copy
      // goes on: the model's q says nothing of it (drafters/model.py ModelDrafter.propose)
      if (minConfidence !== null && !found && own[x] < minConfidence) break;
    }
    return { draft, q: qs, qRaw: raws.length ? raws : null, copied: lookup ? copied : [] };
  }

  return { propose };
}

/** The tokens a step appends, up to and including the first EOS. */
function untilEos(tokens, eos) {
  const at = tokens.findIndex((t) => eos.has(t));
  return at < 0 ? tokens : tokens.slice(0, at + 1);
}

/** The run's settings, checked before any model runs: {s (sampling), rule, lookup, confidence}. Throws RangeError. */
function settings(o, speculative = true) {
  if (!o.promptIds?.length) throw new RangeError("the prompt is empty: give at least one token");
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) {
    throw new RangeError(`maxNewTokens must be an integer >= 1, got ${o.maxNewTokens}`);
  }
  makeRng(o.seed ?? 0); // refuses a seed it cannot take
  if (!speculative) return { s: sampling(o), rule: null };
  if (!Number.isInteger(o.gamma) || o.gamma < 1) throw new RangeError(`gamma must be an integer >= 1, got ${o.gamma}`);
  return {
    s: sampling(o),
    rule: makeRule(o.rule ?? "sampling", o.ruleParams ?? {}),
    lookup: lookupSettings(o.lookupBelow),
    confidence: confidenceSettings(o.confidence),
  };
}

/**
 * Chain speculative decoding, one step record at a time (decoder.py `speculative_decode` with a model
 * drafter and a constant gamma, or GammaPolicy("constant") with o.confidence). Stops at maxNewTokens,
 * an EOS, or shouldStop().
 * @param {Object} o
 * @param {Model} o.target  the evaluation model
 * @param {Model} o.draft  the draft model
 * @param {number[]|{target_ids: number[], unk?: number}|null} [o.tokenMap]  draft id → target id (token_map.json), or null: shared ids
 * @param {number[]} o.promptIds
 * @param {number} o.gamma  drafts per step (fewer at the end of the budget, or after an unsure draft: o.confidence)
 * @param {string} [o.rule="sampling"]  one of rules.RULES  @param {Object} [o.ruleParams]  tau, epsilon, delta
 * @param {number|null} [o.lookupBelow=DEFAULT_LOOKUP_BELOW]  copy from earlier text where the draft model's own
 *   best q is below this (the prompt-lookup fallback, as Python's default drafter); 0 or null: never
 * @param {number|null} [o.confidence=DEFAULT_CONFIDENCE]  stop drafting after a draft of the model's own whose
 *   own q is below this (a copy never stops it; Python's --confidence); 0 or null: always gamma
 * @param {number} [o.temperature=1]  @param {number} [o.topK=0]  @param {number} [o.topP=1]
 * @param {number} o.maxNewTokens  @param {number[]} [o.eosIds=[]]  @param {number} [o.seed=0]
 * @param {(id: number) => string} [o.decodeToken]  token text for the records
 * @param {(id: number) => Uint8Array|null} [o.tokenBytes]  see trace.js tokenLabels
 * @param {number} [o.topKLogged=10]  entries per `top` list
 * @param {() => boolean} [o.shouldStop]
 * @yields {Object} a trace step record (docs/TRACE_FORMAT.md `steps[k]`); timing_ms.draft and .verify in ms
 */
export async function* speculativeSteps(o) {
  const { s, rule, lookup, confidence } = settings(o);
  const { target } = o;
  const V = target.vocab;
  const drafter = modelDrafter(o.draft, o.tokenMap ?? null, V, lookup);
  const rng = makeRng(o.seed ?? 0);
  const eos = new Set(o.eosIds ?? []);
  const tok = tokenLabels(o.decodeToken ?? String, o.tokenBytes);
  const shouldStop = o.shouldStop ?? (() => false);
  const ids = [...o.promptIds];
  let cache = await target.newCache();
  let cached = 0; // positions the target cache holds
  if (ids.length > 1) {
    // prefill: everything but the last token, which each step feeds
    cache = (await target.forward(ids.slice(0, -1), cache)).cache;
    cached = ids.length - 1;
  }
  let generated = 0;
  for (let index = 0; generated < o.maxNewTokens && !shouldStop(); index++) {
    const budget = o.maxNewTokens - generated - 1; // never draft past it: drafts + the evaluation model's token fit
    const gamma = Math.min(o.gamma, budget);
    const t0 = performance.now();
    const { draft, q, qRaw, copied } = gamma > 0
      ? await drafter.propose(ids, gamma, s, rng, confidence)
      : { draft: [], q: [], qRaw: null, copied: [] };
    const t1 = performance.now();
    const fed = ids.slice(cached).concat(draft);
    const out = await target.forward(fed, cache);
    cache = out.cache;
    const logits = lastRows(out.logits, V, draft.length + 1, "target"); // after the root, after each draft
    // the model's own distribution beside the warped one (at T = 0 a warped p says nothing of how sure it
    // was); p after the last draft is read only for a bonus token, so it is warped only then
    const warped = logits.slice(0, draft.length).map((row) => warpWithRaw(row, s));
    const p = warped.map((w) => w.probs);
    const pRaw = isIdentity(s) ? null : warped.map((w) => w.raw);
    const r = draft.map(() => rng());
    const u = rng();
    const verdict = verify(rule, p, q, draft, r);
    const n = verdict.nAccepted;
    if (n === draft.length) {
      const bonus = warpWithRaw(logits[n], s);
      p.push(bonus.probs);
      pRaw?.push(bonus.raw);
    }
    const { probs, source } = nextDistribution(rule, p[n], n < draft.length ? q[n] : null);
    const x = sample(probs, u);
    const t2 = performance.now();
    // keep the context and the accepted drafts; x is fed next step
    cache = await target.crop(cache, ids.length + n);
    cached = ids.length + n;
    const appended = untilEos([...draft.slice(0, n), x], eos);
    yield stepRecord({
      index, contextLength: ids.length, draft, q, qRaw, copied, p, pRaw, r, verdict, rule, budget,
      next: { token: x, probs, source }, appended, timingMs: { draft: t1 - t0, verify: t2 - t1 },
      topK: o.topKLogged ?? 10, tok,
    });
    ids.push(...appended);
    generated += appended.length;
    if (eos.has(appended.at(-1))) break;
  }
}

/** Why the output ended: "eos", "max_new_tokens", else "stopped" (Stop pressed, or a failure). */
function stopReason(ids, eos, maxNewTokens) {
  if (ids.length && eos.includes(ids.at(-1))) return "eos";
  return ids.length >= maxNewTokens ? "max_new_tokens" : "stopped";
}

/**
 * Run speculativeSteps to the end, handing each step to onStep as it is done (the page draws it).
 * Options: as speculativeSteps, plus onStep(step) (may return a Promise; its time is not counted).
 * @returns {Promise<{steps: Object[], tokenIds: number[], stopReason: string, wallMs: number, modelMs: number}>}
 *   wallMs: the decode loop, first step to last, without onStep; modelMs: the steps' draft + verify
 */
export async function decodeSpeculative(o) {
  const steps = [];
  let drawing = 0;
  const t0 = performance.now();
  for await (const step of speculativeSteps(o)) {
    steps.push(step);
    const d0 = performance.now();
    if (o.onStep) await o.onStep(step);
    drawing += performance.now() - d0;
  }
  const wallMs = performance.now() - t0 - drawing;
  const eos = o.eosIds ?? [];
  const tokenIds = outputIds(steps, eos, o.maxNewTokens);
  const modelMs = steps.reduce((a, st) => a + st.timing_ms.draft + st.timing_ms.verify, 0);
  return { steps, tokenIds, stopReason: stopReason(tokenIds, eos, o.maxNewTokens), wallMs, modelMs };
}

/**
 * The evaluation model alone, same warping and seed: the baseline of the speed comparison
 * (decoder.py `target_decode`). onToken(id) is called with each token (its time is not counted).
 * @param {Object} o  target, promptIds, temperature, topK, topP, maxNewTokens, eosIds, seed, shouldStop, onToken
 * @returns {Promise<{tokenIds: number[], tokens: number, stopReason: string, wallMs: number}>}
 */
export async function decodeTargetAlone(o) {
  const { s } = settings(o, false);
  const { target } = o;
  const rng = makeRng(o.seed ?? 0);
  const eos = o.eosIds ?? [];
  const shouldStop = o.shouldStop ?? (() => false);
  const tokenIds = [];
  let cache = await target.newCache();
  let pending = [...o.promptIds];
  let drawing = 0;
  const t0 = performance.now();
  while (tokenIds.length < o.maxNewTokens && !shouldStop()) {
    const out = await target.forward(pending, cache);
    cache = out.cache;
    const [row] = lastRows(out.logits, target.vocab, 1, "target");
    const x = sample(warp(row, s), rng());
    tokenIds.push(x);
    const d0 = performance.now();
    if (o.onToken) await o.onToken(x);
    drawing += performance.now() - d0;
    if (eos.includes(x)) break;
    pending = [x];
  }
  const wallMs = performance.now() - t0 - drawing;
  return { tokenIds, tokens: tokenIds.length, stopReason: stopReason(tokenIds, eos, o.maxNewTokens), wallMs };
}

/**
 * A whole browser run as a trace (specviz/run/live.py's Recording and LiveRun): the header, each step
 * appended as it is done (onStep(step, trace) sees the growing trace), the output, meta.timing, and
 * with `baseline: true` the evaluation model alone right after. A run that fails midway keeps its
 * finished steps: the trace ends with stop_reason "stopped" and the error is returned beside it.
 * Options: as decodeSpeculative, plus newTrace's (targetName, draftName, promptText, dtype, quant,
 * device, versions, meta), decodeText(ids) → the output's text (the tokenizer's), baseline. With the
 * confidence stop on, meta.gamma_policy records it as Python does (trace.js gammaPolicyMeta).
 * @returns {Promise<{trace: Object, baseline: Object|null, error: Error|null}>}
 */
export async function recordSpeculative(o) {
  const { rule, lookup, confidence } = settings(o); // bad settings throw here, before a trace exists
  const trace = newTrace({ ...o, rule, lookup, confidence, seed: o.seed ?? 0 });
  let run = null;
  let baseline = null;
  let error = null;
  try {
    run = await decodeSpeculative({
      ...o,
      onStep: async (step) => {
        trace.steps.push(step);
        if (o.onStep) await o.onStep(step, trace);
      },
    });
    if (o.baseline && !(o.shouldStop ?? (() => false))()) baseline = await decodeTargetAlone(o);
  } catch (err) {
    error = err; // a model failure mid-run (out of memory, a lost GPU): keep what was made
  }
  const ids = outputIds(trace.steps, trace.meta.eos_token_ids, trace.meta.max_new_tokens);
  finishTrace(trace, {
    stopReason: stopReason(ids, trace.meta.eos_token_ids, trace.meta.max_new_tokens),
    text: o.decodeText ? o.decodeText(ids) : undefined,
    timing: timingMeta(trace.steps, ids.length, run ? run.wallMs : 0, baseline),
  });
  return { trace, baseline, error };
}
