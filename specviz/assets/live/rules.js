// Acceptance rules: pure functions on probability arrays; randomness comes in as arguments.
// specviz/core/rules.py in JavaScript: the same four rules (KINDS), parameters, defaults, per-token
// tests, corrections and fallbacks. A new rule there is a new entry here (tests/js/rules.test.mjs
// holds the two equal through fixtures Python writes).
//
// Notation: p = target ("evaluation model") distribution, q = draft distribution, x = drafted token,
// gamma = number of drafts, r ~ U[0, 1). Python decides in float32; the single operations a decision
// hangs on (p/q, the comparison with tau) are rounded to float32 here too (Math.fround).

import { argmax, oneHot } from "./warp.js";

const f32 = Math.fround;
const TINY = f32(1e-30); // q(x) is clamped to this before dividing (Python's clamp_min(1e-30))

/**
 * Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): accept iff r < min(1, p(x)/q(x)).
 * @param {number} pX  p(x)
 * @param {number} qX  q(x); x was drawn from q, so q(x) > 0 (the guard only keeps a hand-built q from dividing by zero)
 * @param {number} r  uniform in [0, 1)
 * @returns {{acceptProb: number, accepted: boolean}}
 */
export function acceptSampling(pX, qX, r) {
  const acceptProb = qX > 0 ? Math.min(f32(pX / Math.max(qX, TINY)), 1) : pX > 0 ? 1 : 0;
  return { acceptProb, accepted: r < acceptProb };
}

/** Greedy verification: accept iff x is the target's argmax (the first maximum). pRow: [V]. */
export function acceptGreedy(pRow, x) {
  return argmax(pRow) === x;
}

/** Lossy: accept iff p(x)/q(x) >= tau. @returns {{ratio: number, accepted: boolean}} */
export function acceptThreshold(pX, qX, tau) {
  const ratio = f32(pX / Math.max(qX, TINY));
  return { ratio, accepted: ratio >= f32(tau) };
}

/**
 * Lossy, Medusa's typical acceptance (Cai et al. 2024): accept iff p(x) > min(epsilon, delta * exp(-H(p))).
 * @param {ArrayLike<number>} pRow  [V] the target's row
 * @returns {{cutoff: number, accepted: boolean}}  H in nats
 */
export function acceptTypical(pRow, pX, epsilon, delta) {
  let entropy = 0;
  for (let i = 0; i < pRow.length; i++) {
    const v = pRow[i];
    if (v !== 0) entropy -= v * Math.log(Math.max(v, TINY)); // a zero adds 0: skip its log (most of a warped row)
  }
  const cutoff = Math.min(f32(epsilon), f32(f32(delta) * f32(Math.exp(-f32(entropy)))));
  return { cutoff, accepted: pX > cutoff };
}

/** norm(max(0, p - q)), or null when it is empty (p <= q everywhere). */
function normalisedResidual(p, q) {
  const diff = new Float32Array(p.length);
  let total = 0;
  for (let i = 0; i < p.length; i++) total += diff[i] = Math.max(p[i] - q[i], 0);
  if (!(total > 0)) return null;
  for (let i = 0; i < diff.length; i++) diff[i] /= total;
  return diff;
}

/**
 * norm(max(0, p - q)): the distribution a correction token is drawn from. [V] → [V].
 * When p == q everywhere the residual is empty; a rejection cannot happen then under the sampling
 * rule, but lossy rules can reject anyway, so fall back to p.
 */
export function residual(p, q) {
  return normalisedResidual(p, q) ?? Float32Array.from(p);
}

/** Number of consecutively accepted drafts from the start: [A, A, R, A, A] → 2. */
export function nLeading(accepted) {
  const first = accepted.indexOf(false);
  return first < 0 ? accepted.length : first;
}

// Each test decides one drafted token x against its own row: (pRow, pX, qX, x, r, params) →
// {accepted, accept_prob | ratio | cutoff} (the trace's names for the numbers the decision compared).
const TESTS = {
  sampling: (pRow, pX, qX, x, r) => {
    const { acceptProb, accepted } = acceptSampling(pX, qX, r);
    return { accepted, accept_prob: acceptProb };
  },
  greedy: (pRow, pX, qX, x) => ({ accepted: acceptGreedy(pRow, x) }),
  threshold: (pRow, pX, qX, x, r, params) => {
    const { ratio, accepted } = acceptThreshold(pX, qX, params.tau);
    return { accepted, ratio };
  },
  typical: (pRow, pX, qX, x, r, params) => {
    const { cutoff, accepted } = acceptTypical(pRow, pX, params.epsilon, params.delta);
    return { accepted, cutoff };
  },
};

/**
 * The four rules, as specviz/core/rules.py KINDS: name, parameters and their defaults, lossless or
 * not, whether the test reads a uniform r, where the evaluation model's own token comes from after
 * a rejection (residual = norm(max(0, p - q)), p itself, or argmax, also for the bonus), recursive
 * (a tree tests later siblings against what an earlier rejection leaves; unused by a chain).
 */
export const KINDS = Object.freeze({
  // Leviathan et al. 2023; Chen et al. 2023: accept iff r < min(1, p(x)/q(x))
  sampling: { name: "sampling", defaults: {}, lossless: true, usesRandom: true, correction: "residual", recursive: true },
  // accept iff x is p's argmax; the evaluation model's own token is its argmax too
  greedy: { name: "greedy", defaults: {}, lossless: true, usesRandom: false, correction: "argmax", recursive: false },
  // lossy: accept iff p(x)/q(x) >= tau
  threshold: {
    name: "threshold", defaults: { tau: 0.3 }, lossless: false, usesRandom: false, correction: "residual", recursive: false,
  },
  // lossy, Medusa: accept iff p(x) > min(epsilon, delta * exp(-H(p))); it never looks at q, and corrects from p
  typical: {
    name: "typical", defaults: { epsilon: 0.09, delta: 0.3 }, lossless: false, usesRandom: false, correction: "p", recursive: false,
  },
});
export const RULES = Object.freeze(Object.keys(KINDS));

/**
 * Build a rule, filling defaults and refusing parameters it does not take (Python's make_rule).
 * @param {string} name  one of RULES
 * @param {Object<string, number|null|undefined>} [params]  null/undefined take the default
 * @returns {{name: string, params: Object<string, number>, lossless: boolean, usesRandom: boolean, correction: string}}
 */
export function makeRule(name, params = {}) {
  const kind = KINDS[name];
  if (!kind) throw new RangeError(`unknown rule ${JSON.stringify(name)}; choose one of ${RULES.join(", ")}`);
  const merged = { ...kind.defaults };
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined) continue;
    if (!(key in merged)) throw new RangeError(`rule ${JSON.stringify(name)} takes no parameter ${JSON.stringify(key)}`);
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new RangeError(`${key} must be a finite number >= 0, got ${value}`);
    }
    merged[key] = value;
  }
  return Object.freeze({ ...kind, params: Object.freeze(merged) });
}

/**
 * A chain's gamma drafts at once (Python's Rule.verify). The test reads every position, so the
 * compared numbers are kept past the first rejection too.
 * @param {ReturnType<typeof makeRule>} rule
 * @param {ArrayLike<number>[]} p  >= gamma rows [V], row j the target's distribution for draft j
 * @param {ArrayLike<number>[]} q  gamma rows [V]
 * @param {number[]} draft  [gamma] token ids
 * @param {ArrayLike<number>} r  [gamma] uniforms (read only when rule.usesRandom)
 * @returns {{accepted: boolean[], nAccepted: number, accept_prob: number[]|null, ratio: number[]|null, cutoff: number[]|null}}
 */
export function verify(rule, p, q, draft, r) {
  const out = { accepted: [], nAccepted: 0, accept_prob: null, ratio: null, cutoff: null };
  draft.forEach((x, j) => {
    const { accepted, ...numbers } = TESTS[rule.name](p[j], p[j][x], q[j][x], x, r[j], rule.params);
    out.accepted.push(accepted);
    for (const [key, value] of Object.entries(numbers)) (out[key] ??= []).push(value);
  });
  out.nAccepted = nLeading(out.accepted);
  return out;
}

/**
 * The distribution of the evaluation model's own token after the accepted drafts (Rule.next_distribution).
 * @param {ReturnType<typeof makeRule>} rule
 * @param {Float32Array} pRow  [V] p at the first rejected position, or after the last draft
 * @param {Float32Array|null} qRow  q at the first rejected position; null when every draft was accepted (the bonus)
 * @returns {{probs: Float32Array, source: "p"|"residual"|"argmax"}}
 */
export function nextDistribution(rule, pRow, qRow) {
  if (rule.correction === "argmax") return { probs: oneHot(argmax(pRow), pRow.length), source: "argmax" };
  // the bonus; and Medusa corrects from the target itself: its rule never looked at q
  if (qRow === null || rule.correction === "p") return { probs: pRow, source: "p" };
  // an empty residual (p == q, a lossy rule rejected): fall back to p, as residual() does
  const probs = normalisedResidual(pRow, qRow);
  return probs ? { probs, source: "residual" } : { probs: pRow, source: "p" };
}
