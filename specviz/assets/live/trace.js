// A browser run as a specviz trace (format version 2, docs/TRACE_FORMAT.md): the header (meta,
// prompt), one chain step record per step as specviz/core/decoder.py `_record` builds it, and the
// output as specviz/trace/schema.py `finish` fills it. The result passes `specviz validate` strictly,
// so it replays in the app's player, Statistics and Compare like a trace recorded in Python.
// Pure functions on plain data: no model, no page.

import { KINDS } from "./rules.js";

export const FORMAT = "specviz-trace";
export const VERSION = 2;
export const ENGINE = "browser";

/**
 * token_id, token (and `bytes`, hex) for a token id, memoised: a step's top lists ask for the same
 * few ids again and again, and a tokenizer's decode is not free.
 * @param {(id: number) => string} decodeToken  the token's text (the tokenizer's)
 * @param {((id: number) => Uint8Array|null)} [tokenBytes]  the token's bytes when it is only part of a
 *   character (half an emoji), else null; then `decodeToken` should label it (e.g. "‹F0 9F›")
 * @returns {(id: number) => {token_id: number, token: string, bytes?: string}}
 */
export function tokenLabels(decodeToken, tokenBytes = null) {
  const memo = new Map();
  return (id) => {
    let entry = memo.get(id);
    if (entry === undefined) {
      entry = { token_id: id, token: String(decodeToken(id)) };
      const b = tokenBytes ? tokenBytes(id) : null;
      if (b && b.length) entry.bytes = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      memo.set(id, entry);
    }
    return { ...entry };
  };
}

/** The ids of a distribution's top-k, by decreasing prob (ties by id), zero-probability ids left out. */
function topIds(probs, k) {
  const best = []; // indices, kept sorted, at most k: one pass over V (49k for SmolLM2)
  // 0 until k are kept, then the k-th kept probability: only a larger one enters (a tie with the k-th:
  // the lower id stays), so most of the row costs one comparison
  let floor = 0;
  const n = k > 0 ? probs.length : 0; // a bound that is not re-read each turn: V8 runs the loop ~30% faster
  for (let i = 0; i < n; i++) {
    const v = probs[i];
    if (v > floor) {
      let at = best.length;
      while (at > 0 && v > probs[best[at - 1]]) at--;
      best.splice(at, 0, i);
      if (best.length > k) best.pop();
      if (best.length === k) floor = probs[best[k - 1]];
    }
  }
  return best;
}

/**
 * A distribution's top-k as trace `top` entries {token_id, token, prob}: by decreasing prob (ties by
 * id), zero-probability entries left out, so a list can be shorter than k.
 * @param {ArrayLike<number>} probs  [V]
 * @param {number} k
 * @param {ReturnType<typeof tokenLabels>} tok
 */
export function topList(probs, k, tok) {
  return topIds(probs, k).map((i) => ({ ...tok(i), prob: probs[i] }));
}

/**
 * topList, each row scanned once: after a rejection the next token's raw p (and with source "p" its p)
 * is a row a verify entry already listed.
 */
function topLists(k, tok) {
  const ids = new Map();
  return (probs) => {
    if (!ids.has(probs)) ids.set(probs, topIds(probs, k));
    return ids.get(probs).map((i) => ({ ...tok(i), prob: probs[i] }));
  };
}

/** {"<name>_raw": raw[token], top_raw: top-k of raw}, or {} when nothing was warped (raw is null). */
function rawFields(name, raw, token, top) {
  return raw ? { [`${name}_raw`]: raw[token], top_raw: top(raw) } : {};
}

/**
 * One chain step's record, the trace's `steps[k]` (decoder.py `_record` for a chain: draft and verify
 * show every draft; accept_prob, ratio and cutoff are kept past the first rejection, `accepted` and
 * `r` are null there; `next` is null when generation ended inside the accepted drafts).
 * @param {Object} s
 * @param {number} s.index
 * @param {number} s.contextLength  tokens before this step: prompt + generated so far
 * @param {number[]} s.draft  [gamma] drafted ids
 * @param {Float32Array[]} s.q  [gamma] rows [V]: the draft's warped q
 * @param {Float32Array[]|null} s.qRaw  the draft's own q, or null when warping changed nothing
 * @param {number[]} [s.copied]  [gamma] per draft the n-gram length the prompt-lookup fallback matched to
 *   copy it (its q one-hot), 0 for the model's own draft; the entry gets `copied` only where it is > 0
 * @param {Float32Array[]} s.p  [gamma] or [gamma + 1] rows [V]: the target's warped p after the root, after
 *   each draft (the last only when every draft was accepted: it is read only for the bonus)
 * @param {Float32Array[]|null} s.pRaw  the same rows unwarped, or null when warping changed nothing
 * @param {ArrayLike<number>} s.r  [gamma] the uniforms the rule's test read
 * @param {ReturnType<import("./rules.js").verify>} s.verdict
 * @param {{token: number, probs: Float32Array, source: string}} s.next  the evaluation model's own token
 * @param {number[]} s.appended  the tokens this step appends (up to and including an EOS)
 * @param {number} s.budget  the most drafts that fit before max_new_tokens
 * @param {{draft: number, verify: number}} s.timingMs
 * @param {{name: string, usesRandom: boolean}} s.rule
 * @param {number} s.topK  entries per `top` list
 * @param {ReturnType<typeof tokenLabels>} s.tok
 */
export function stepRecord(s) {
  const { draft, q, p, verdict: v, tok } = s;
  const top = topLists(s.topK, tok);
  const n = v.nAccepted;
  const nulls = (xs) => draft.map((_, j) => (xs ? xs[j] : null));
  const [acceptProb, ratio, cutoff] = [nulls(v.accept_prob), nulls(v.ratio), nulls(v.cutoff)];
  const accepted = draft.map((_, j) => (j <= n ? v.accepted[j] : null)); // null after the first rejection
  const step = {
    index: s.index,
    context_length: s.contextLength,
    draft: draft.map((x, j) => ({
      ...tok(x),
      q: q[j][x],
      top: top(q[j]),
      ...rawFields("q", s.qRaw?.[j], x, top),
      ...(s.copied?.[j] ? { copied: s.copied[j] } : {}),
    })),
    verify: draft.map((x, j) => ({
      p: p[j][x],
      accept_prob: acceptProb[j],
      r: accepted[j] !== null && s.rule.usesRandom ? s.r[j] : null,
      ratio: ratio[j],
      cutoff: cutoff[j],
      accepted: accepted[j],
      top: top(p[j]),
      ...rawFields("p", s.pRaw?.[j], x, top),
    })),
    n_accepted: n,
    next:
      s.appended.length <= n
        ? null // generation ended inside the accepted drafts (an accepted EOS)
        : {
            ...tok(s.next.token),
            kind: n < draft.length ? "correction" : "bonus",
            source: s.next.source,
            prob: s.next.probs[s.next.token],
            top: top(s.next.probs),
            ...rawFields("p", s.pRaw?.[n], s.next.token, top),
          },
    timing_ms: s.timingMs,
  };
  if (!draft.length) step.no_draft = s.budget <= 0 ? "budget" : "drafter"; // recorded, not guessed later
  return step;
}

/**
 * meta.gamma_policy of a chain with the confidence stop, as Python records it (specviz/run/record.py:
 * GammaPolicy("constant", start=gamma, confidence=c).meta(gamma)), or null when there is none (c 0 or
 * null: Python's GammaPolicy.from_options gives no policy, and the trace has no gamma_policy).
 * @param {number} gamma  drafts per step, the most a step may draft
 * @param {number|null} confidence
 */
export function gammaPolicyMeta(gamma, confidence) {
  if (!confidence) return null;
  return { name: "constant", start: gamma, increase: 2, decrease: 1, min: 1, max: gamma, confidence };
}

/**
 * A trace without steps yet: format, version, meta (how the run was made), prompt.
 * @param {Object} o
 * @param {string} o.targetName  @param {string} o.draftName
 * @param {number} o.gamma
 * @param {{name: string, params: Object, lossless: boolean}|string} o.rule  makeRule's result, or a name (with o.ruleParams)
 * @param {number} o.temperature  @param {number} o.topK  @param {number} o.topP
 * @param {number|null} o.seed  @param {number} o.maxNewTokens  @param {number[]} o.eosIds
 * @param {string} o.promptText  @param {number[]} o.promptIds
 * @param {number} [o.topKLogged=10]  @param {string} [o.dtype]  @param {string} [o.quant]  @param {string} [o.device]
 * @param {boolean} [o.chat]  @param {Object<string, string>} [o.versions]  library versions (onnxruntime-web, ...)
 * @param {{below: number, minNgram: number, maxNgram: number}|null} [o.lookup]  the draft's prompt-lookup
 *   fallback (decode.js lookupSettings), recorded as meta.draft.lookup; null or absent: off
 * @param {number|null} [o.confidence]  the confidence stop (decode.js confidenceSettings), recorded as
 *   meta.gamma_policy (gammaPolicyMeta); 0, null or absent: off, no gamma_policy
 * @param {Object} [o.meta]  more meta fields, merged last (e.g. the models' files)
 */
export function newTrace(o) {
  const rule = typeof o.rule === "string" ? { name: o.rule, params: o.ruleParams ?? {} } : o.rule;
  const lossless = rule.lossless ?? KINDS[rule.name]?.lossless;
  const policy = gammaPolicyMeta(o.gamma, o.confidence ?? null);
  const optional = { dtype: o.dtype, quant: o.quant, device: o.device, chat: o.chat };
  const meta = {
    created: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    versions: { ...(o.versions ?? {}) },
    engine: ENGINE,
    target: { name: String(o.targetName ?? "target") },
    draft: {
      name: String(o.draftName ?? "draft"),
      kind: "model",
      ...(o.lookup ? { lookup: { below: o.lookup.below, min_ngram: o.lookup.minNgram, max_ngram: o.lookup.maxNgram } } : {}),
    },
    gamma: o.gamma,
    rule: { name: rule.name, params: { ...rule.params }, lossless },
    sampling: { temperature: o.temperature ?? 1, top_k: o.topK ?? 0, top_p: o.topP ?? 1 },
    seed: o.seed ?? null,
    max_new_tokens: o.maxNewTokens,
    eos_token_ids: [...(o.eosIds ?? [])],
    top_k_logged: o.topKLogged ?? 10,
    ...(policy ? { gamma_policy: policy } : {}),
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined && v !== null)),
    ...(o.meta ?? {}),
  };
  return { format: FORMAT, version: VERSION, meta, prompt: { text: o.promptText ?? "", token_ids: [...o.promptIds] }, steps: [] };
}

/**
 * The generated ids: each step's accepted drafts and next token, cut at the first EOS and the budget
 * (specviz/trace/schema.py `output_ids`).
 */
export function outputIds(steps, eosIds = [], maxNewTokens = Infinity) {
  const eos = new Set(eosIds);
  const out = [];
  for (const step of steps) {
    const toks = step.draft.slice(0, step.n_accepted).map((d) => d.token_id);
    if (step.next) toks.push(step.next.token_id);
    for (const t of toks) {
      if (out.length >= maxNewTokens) return out;
      out.push(t);
      if (eos.has(t)) return out;
    }
  }
  return out;
}

/**
 * meta.timing of a browser run (as the Live page's worker writes it, specviz/run/live.py): the steps'
 * model time, the decode loop's wall time, and the evaluation model alone with the same settings.
 * @param {Object[]} steps
 * @param {number} tokens  output tokens
 * @param {number} wallMs  the decode loop, first step to last (performance.now), the page's drawing excluded
 * @param {{tokens: number, wallMs: number}|null} [baseline]  decodeTargetAlone's result, or null
 */
export function timingMeta(steps, tokens, wallMs, baseline = null) {
  const modelMs = steps.reduce((sum, s) => sum + (s.timing_ms.draft ?? 0) + (s.timing_ms.verify ?? 0), 0);
  return {
    where: "browser decode loop (performance.now); the page's drawing is not included",
    tokens,
    model_ms: modelMs,
    wall_ms: wallMs,
    baseline: baseline && {
      what: "the evaluation model alone in this browser, same settings, seed and dtype, right after",
      tokens: baseline.tokens,
      wall_ms: baseline.wallMs,
    },
  };
}

/**
 * Fill `output` from the steps (specviz/trace/schema.py `finish`); stop_reason defaults to what the
 * steps show: eos, max_new_tokens, else stopped.
 * @param {Object} trace  newTrace's, with its steps
 * @param {{stopReason?: string, text?: string, timing?: Object}} [o]  text: the tokenizer's decode of the
 *   output ids (exact across split characters); without it the token texts are joined
 */
export function finishTrace(trace, { stopReason, text, timing } = {}) {
  const meta = trace.meta;
  const ids = outputIds(trace.steps, meta.eos_token_ids, meta.max_new_tokens);
  if (stopReason === undefined || stopReason === null) {
    if (ids.length && meta.eos_token_ids.includes(ids.at(-1))) stopReason = "eos";
    else if (ids.length >= meta.max_new_tokens) stopReason = "max_new_tokens";
    else stopReason = "stopped";
  }
  if (text === undefined || text === null) {
    const byId = new Map();
    for (const s of trace.steps) for (const d of [...s.draft, s.next ?? []].flat()) byId.set(d.token_id, d.token);
    text = ids.map((t) => byId.get(t) ?? "").join("");
  }
  trace.output = { token_ids: ids, text, stop_reason: stopReason };
  if (timing) meta.timing = timing;
  return trace;
}
