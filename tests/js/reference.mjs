// The straightforward versions of what specviz/assets/live makes fast: the code as it was before the fast
// paths (commit 3de69b0), kept as the reference tests/js/fast_paths.test.mjs holds the fast code to, bit
// for bit. A full softmax per row, fresh arrays everywhere, a top list in one pass, the residual twice.
import { argmax, isGreedy, oneHot } from "../../specviz/assets/live/warp.js";

export const UNTEMPERED = Object.freeze({ temperature: 1, topK: 0, topP: 1 });

/** softmax in double, rounded to float32; -Infinity entries get 0. */
function softmax(z) {
  let max = -Infinity;
  for (const v of z) if (v > max) max = v;
  const e = new Float64Array(z.length);
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += e[i] = z[i] === -Infinity ? 0 : Math.exp(z[i] - max);
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) out[i] = e[i] / sum;
  return out;
}

/** The k-th largest value of z, duplicates counted (torch.topk(z, k).values[-1]): quickselect, O(V). */
function kthLargest(z, k) {
  const a = Float32Array.from(z);
  const want = k - 1; // its place in decreasing order
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] > pivot) i++;
      while (a[j] < pivot) j--;
      if (i <= j) {
        [a[i], a[j]] = [a[j], a[i]];
        i++;
        j--;
      }
    }
    if (want <= j) hi = j;
    else if (want >= i) lo = i;
    else return pivot; // between j and i every value equals the pivot
  }
  return a[want];
}

const ID_SPAN = 2 ** 21; // ids below this pack beside a 32-bit sort key into one exact double

/**
 * `ids` by decreasing z, ties by id (stable, as torch.sort is for up to 16 entries). Each id is packed
 * with its value's order-preserving float32 bits into one double, which sorts natively: a comparator
 * over 49k ids is several times slower.
 */
function byDecreasing(z, ids) {
  if (z.length > ID_SPAN) return ids.slice().sort((a, b) => z[b] - z[a] || a - b);
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  const keys = new Float64Array(ids.length);
  ids.forEach((i, j) => {
    f[0] = z[i];
    const b = bits[0];
    const up = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0; // increases with the value
    keys[j] = (0xffffffff - up) * ID_SPAN + i;
  });
  return Array.from(keys.sort(), (k) => k % ID_SPAN);
}

/**
 * Top-p in place on z (shifted, tempered logits [V]): a token is dropped when the tokens strictly before
 * it, by decreasing probability, already cover topP (the first always stays). Only a prefix of that
 * order can stay, so only a prefix holding more than topP is sorted: a vocabulary of 49k tokens is not.
 */
function nucleus(z, topP) {
  const n = z.length;
  let max = -Infinity;
  for (const v of z) if (v > max) max = v;
  const e = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += e[i] = z[i] === -Infinity ? 0 : Math.exp(z[i] - max);
  let prefix = [];
  for (const t of [1e-3, 1e-5, 1e-7, 0]) {
    // the tokens above t * total come first in the order; when they hold more than topP (with room for
    // float32 round-off) every token after them is dropped, whatever its place among the rest
    prefix = [];
    let mass = 0;
    for (let i = 0; i < n; i++) {
      if (e[i] > t * total) {
        prefix.push(i);
        mass += e[i];
      }
    }
    if (mass / total > topP + 1e-6) break;
  }
  const kept = new Uint8Array(n);
  let cum = 0; // torch's CPU cumsum accumulates float32 in double
  for (const i of byDecreasing(z, prefix)) {
    const p = Math.fround(e[i] / total); // the sorted softmax, in float32
    cum += p;
    if (!(Math.fround(Math.fround(cum) - p) > topP)) kept[i] = 1;
  }
  for (let i = 0; i < n; i++) if (!kept[i]) z[i] = -Infinity;
}

/**
 * Warp one row of logits into a distribution: shift by the max, / temperature, top-k, top-p, softmax.
 * specviz/core/warp.py `warp`, operation for operation.
 * @param {ArrayLike<number>} logits  [V]
 * @param {{temperature: number, topK: number, topP: number}} s  see `sampling`
 * @returns {Float32Array}  [V] probabilities summing to 1
 */
export function warp(logits, s) {
  const x = Float32Array.from(logits);
  const n = x.length;
  if (isGreedy(s)) return oneHot(argmax(x), n);
  // shift first so the largest logit is 0: a temperature too small to represent then gives 0 / T = 0
  // for the maximum and -inf for the rest (greedy) instead of inf - inf = NaN
  let max = -Infinity;
  for (const v of x) if (v > max) max = v;
  const t = Math.fround(s.temperature);
  const z = new Float32Array(n);
  for (let i = 0; i < n; i++) z[i] = Math.fround(x[i] - max) / t; // float32 ops: the store rounds the quotient
  if (s.topK && s.topK < n) {
    const kth = kthLargest(z, s.topK);
    for (let i = 0; i < n; i++) if (z[i] < kth) z[i] = -Infinity; // ties at the k-th value stay
  }
  if (s.topP < 1) nucleus(z, Math.fround(s.topP));
  return softmax(z);
}

/** Inverse-CDF draw (warp.js `sample`) with the cumulative sums kept in an array. */
export function sample(probs, u) {
  const n = probs.length;
  const cdf = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) cdf[i] = total += probs[i];
  const target = u * total;
  let idx = 0; // the first index whose cdf is > target (searchsorted, right=True)
  while (idx < n && cdf[idx] <= target) idx++;
  idx = Math.min(idx, n - 1);
  // float round-off at the top end could land on a zero-probability tail token: step back
  while (probs[idx] <= 0 && idx > 0) idx--;
  return idx;
}

/** A distribution's top-k as [id, prob] pairs: by decreasing prob, ties by id, zeros left out (trace.js topList). */
export function topList(probs, k) {
  const best = [];
  let floor = 0;
  for (let i = 0; i < probs.length && k > 0; i++) {
    const v = probs[i];
    if (!(v > 0) || v < floor || (v === floor && best.length === k)) continue;
    let at = best.length;
    while (at > 0 && v > probs[best[at - 1]]) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
    if (best.length === k) floor = probs[best[k - 1]];
  }
  return best.map((i) => [i, probs[i]]);
}

/** max(0, p - q) (unnormalised) and its total. */
function positivePart(p, q) {
  const diff = new Float32Array(p.length);
  let total = 0;
  for (let i = 0; i < p.length; i++) total += diff[i] = Math.max(p[i] - q[i], 0);
  return { diff, total };
}

/** rules.js `residual`. */
export function residual(p, q) {
  const { diff, total } = positivePart(p, q);
  if (!(total > 0)) return Float32Array.from(p);
  for (let i = 0; i < diff.length; i++) diff[i] /= total;
  return diff;
}

/** rules.js `nextDistribution`, given the rule's correction ("residual", "p" or "argmax"). */
export function nextDistribution(correction, pRow, qRow) {
  if (correction === "argmax") return { probs: oneHot(argmax(pRow), pRow.length), source: "argmax" };
  if (qRow === null || correction === "p") return { probs: pRow, source: "p" };
  if (!(positivePart(pRow, qRow).total > 0)) return { probs: pRow, source: "p" };
  return { probs: residual(pRow, qRow), source: "residual" };
}

/** rules.js `acceptTypical`: accept iff p(x) > min(epsilon, delta * exp(-H(p))). */
export function acceptTypical(pRow, pX, epsilon, delta) {
  const f32 = Math.fround;
  let entropy = 0;
  for (const v of pRow) entropy -= v * Math.log(Math.max(v, f32(1e-30)));
  const cutoff = Math.min(f32(epsilon), f32(f32(delta) * f32(Math.exp(-f32(entropy)))));
  return { cutoff, accepted: pX > cutoff };
}

/** q over the target's ids from a draft row through a token map (decode.js `vocabBridge`'s toTarget). */
export function toTarget(probs, targetIds, targetVocab) {
  const out = new Float32Array(targetVocab);
  let total = 0;
  targetIds.forEach((t, i) => (out[t] = probs[i]));
  for (const v of out) total += v;
  return total > 0 ? out.map((v) => v / total) : out;
}

/**
 * drafters/ngram.py `continuations(ids, 1, 1, minNgram, maxNgram, vocab)` as Python writes it, slices and
 * all: {token, n} for the token after the latest earlier occurrence of the longest matching n-gram, or null.
 */
export function findCopy(ids, vocab, minNgram = 2, maxNgram = 3) {
  for (let n = Math.min(maxNgram, ids.length - 1); n > minNgram - 1; n--) {
    const tail = JSON.stringify(ids.slice(-n));
    const found = [];
    for (let start = ids.length - n - 1; start > -1; start--) {
      if (JSON.stringify(ids.slice(start, start + n)) === tail) {
        const follow = [];
        for (const t of ids.slice(start + n, start + n + 1)) {
          if (!(t < vocab)) break; // itertools.takewhile
          follow.push(t);
        }
        if (follow.length) {
          found.push(follow);
          if (found.length === 1) break;
        }
      }
    }
    if (found.length) return { token: found[0][0], n };
  }
  return null;
}
