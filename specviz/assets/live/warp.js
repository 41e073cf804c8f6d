// Logits → probabilities, and sampling with a random number passed in: specviz/core/warp.py in JavaScript.
//
// The same warping (temperature, top-k, top-p) is applied to the draft's q and the target's p: the
// acceptance rules compare the two distributions the models would actually sample from. Python computes
// in float32; so does this file where a decision hangs on it (Math.fround at the same operations:
// the shift, the division by T, the top-p cumulative sum and its comparison), so the kept tokens are
// the same and the probabilities agree to float32 round-off (tests/js/warp.test.mjs, against Python's).
//
// A step warps a dozen or more rows of 49k, so the work per row is kept small without changing a bit of
// the result: one pass finds the max and the argmax, the tempered row goes straight into exp when no
// top-k or top-p needs it kept, scratch rows are reused (tests/js/fast_paths.test.mjs holds all of it
// to the straightforward code in tests/js/reference.mjs, bit for bit).
//
// One known difference: when the top-p boundary falls inside a group of exactly tied probabilities,
// this file keeps the lower ids; torch.sort orders ties that way up to 16 entries and in no promised
// order beyond.

export const F32_MAX = 3.4028234663852886e38;

/** The model's own distribution (no warping), logged beside the warped one when they differ. */
export const UNTEMPERED = Object.freeze({ temperature: 1, topK: 0, topP: 1 });

/**
 * Check and complete sampling settings, as Python's `Sampling` does (it raises ValueError there).
 * @param {{temperature?: number, topK?: number, topP?: number}} s  temperature 0 = greedy; topK 0 and topP 1 = off
 * @returns {{temperature: number, topK: number, topP: number}}
 */
export function sampling({ temperature = 1, topK = 0, topP = 1 } = {}) {
  if (!(temperature >= 0) || temperature === Infinity) {
    throw new RangeError(`temperature must be a finite number >= 0, got ${temperature}`);
  }
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK must be an integer >= 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
  return { temperature, topK, topP };
}

/** True when warping changes nothing: temperature 1, no top-k, no top-p. */
export function isIdentity(s) {
  return s.temperature === 1 && !s.topK && s.topP === 1;
}

/** Temperature 0, or one so small that float32 logits / T overflow (below ~3e-39): argmax. */
export function isGreedy(s) {
  return s.temperature === 0 || 1 / s.temperature > F32_MAX;
}

/** Index of the first maximum (torch.argmax and Hugging Face's greedy search pick the first). */
export function argmax(xs) {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** A one-hot Float32Array of length n at index i. */
export function oneHot(i, n) {
  const out = new Float32Array(n);
  out[i] = 1;
  return out;
}

// Scratch rows for the tempered logits (float32) and their exponentials (float64): fresh arrays for each
// of a step's rows cost more than the arithmetic. Only the synchronous calls below use them, and nothing
// they return points into them, so no caller can see one change.
let zScratch = new Float32Array(0);
let eScratch = new Float64Array(0);

/** Scratch views of length n: [z (float32), e (float64)]. */
function scratch(n) {
  if (zScratch.length < n) {
    zScratch = new Float32Array(n);
    eScratch = new Float64Array(n);
  }
  return [zScratch.subarray(0, n), eScratch.subarray(0, n)];
}

/**
 * softmax of z in double, rounded to float32 into out; -Infinity entries get 0. e: a float64 scratch row;
 * when it already holds exp(z - shift) for z's entries (top-p's pass, before it cut some to -Infinity)
 * and shift is z's max, those are reused.
 */
function softmax(z, e, out, shift = NaN) {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i] > max) max = z[i];
  const reuse = max === shift;
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += e[i] = z[i] === -Infinity ? 0 : reuse ? e[i] : Math.exp(z[i] - max);
  for (let i = 0; i < z.length; i++) out[i] = e[i] / sum;
  return out;
}

/** The k-th largest value of z, duplicates counted (torch.topk(z, k).values[-1]): quickselect, O(V). */
function kthLargest(z, k) {
  const a = z.slice();
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
 * Leaves exp(z - max) in e (for `softmax`) and returns that max.
 */
function nucleus(z, e, topP) {
  const n = z.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (z[i] > max) max = z[i];
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
  return max;
}

/**
 * The largest logit in float32 (NaN skipped) and `argmax`'s index (the first maximum), in one pass.
 * @param {ArrayLike<number>} logits  [V]
 */
function peak(logits) {
  let max = -Infinity;
  let best = 0;
  let bestValue = Math.fround(logits[0]);
  for (let i = 0; i < logits.length; i++) {
    const v = Math.fround(logits[i]);
    if (v > max) max = v;
    if (v > bestValue) {
      best = i;
      bestValue = v;
    }
  }
  return { max, best };
}

/**
 * softmax((x - max) / T) without top-k or top-p, for a finite max: `softmax` over the tempered row, in one
 * exp pass. The tempered row's largest entry is (max - max) / T = 0 (shift and division keep the order),
 * so softmax's own max pass and the row itself are not needed: each entry goes straight into exp.
 */
function temperedSoftmax(logits, max, t, e, out) {
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    sum += e[i] = Math.exp(Math.fround(Math.fround(Math.fround(logits[i]) - max) / t)); // z, rounded as the float32 row stores it
  }
  for (let i = 0; i < logits.length; i++) out[i] = e[i] / sum;
  return out;
}

/** `warp` given the row's peak: greedy needs nothing else, and a raw row beside it needs the same max. */
function warpFrom(logits, { max, best }, s) {
  const n = logits.length;
  if (isGreedy(s)) return oneHot(best, n);
  // shift first so the largest logit is 0: a temperature too small to represent then gives 0 / T = 0
  // for the maximum and -inf for the rest (greedy) instead of inf - inf = NaN
  const t = Math.fround(s.temperature);
  const [z, e] = scratch(n);
  const topK = s.topK && s.topK < n;
  if (!topK && !(s.topP < 1) && Number.isFinite(max)) return temperedSoftmax(logits, max, t, e, new Float32Array(n));
  for (let i = 0; i < n; i++) z[i] = Math.fround(Math.fround(logits[i]) - max) / t; // float32 ops: the store rounds the quotient
  if (topK) {
    const kth = kthLargest(z, s.topK);
    for (let i = 0; i < n; i++) if (z[i] < kth) z[i] = -Infinity; // ties at the k-th value stay
  }
  const shift = s.topP < 1 ? nucleus(z, e, Math.fround(s.topP)) : NaN;
  return softmax(z, e, new Float32Array(n), shift);
}

/**
 * Warp one row of logits into a distribution: shift by the max, / temperature, top-k, top-p, softmax.
 * specviz/core/warp.py `warp`, operation for operation.
 * @param {ArrayLike<number>} logits  [V]
 * @param {{temperature: number, topK: number, topP: number}} s  see `sampling`
 * @returns {Float32Array}  [V] probabilities summing to 1 (a new array)
 */
export function warp(logits, s) {
  return warpFrom(logits, peak(logits), s);
}

/**
 * A row warped with s and the model's own distribution beside it, as a step records them: the same as
 * `warp(logits, s)` and `warp(logits, UNTEMPERED)`, from one pass for the max and argmax.
 * @param {ArrayLike<number>} logits  [V]
 * @param {{temperature: number, topK: number, topP: number}} s
 * @returns {{probs: Float32Array, raw: Float32Array|null}}  raw is null when s warps nothing (probs is it then)
 */
export function warpWithRaw(logits, s) {
  const top = peak(logits);
  return { probs: warpFrom(logits, top, s), raw: isIdentity(s) ? null : warpFrom(logits, top, UNTEMPERED) };
}

/**
 * Inverse-CDF draw from a [V] distribution with the uniform number u in [0, 1) (specviz/core/warp.py `sample`).
 * Unnormalised weights work too.
 * @param {ArrayLike<number>} probs  [V]
 * @param {number} u  in [0, 1)
 * @returns {number} the drawn index
 */
export function sample(probs, u) {
  const n = probs.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += probs[i];
  const target = u * total;
  let idx = 0; // the first index whose cdf is > target (searchsorted, right=True); the same running sums as the total's
  let cdf = 0;
  while (idx < n && (cdf += probs[idx]) <= target) idx++;
  idx = Math.min(idx, n - 1);
  // float round-off at the top end could land on a zero-probability tail token: step back
  while (probs[idx] <= 0 && idx > 0) idx--;
  return idx;
}
