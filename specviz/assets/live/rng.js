// A seedable pseudo-random generator, so that a browser run is reproducible from its recorded seed.
// sfc32 (Chris Doty-Humphrey's small fast counter, PractRand-clean) seeded through splitmix32; each
// draw takes two 32-bit outputs for a double with 53 random bits. It is not torch's generator: the
// same seed gives other numbers than a Python run does, but the same ones on every browser and in Node.

/** One splitmix32 output and the next state. */
function splitmix32(state) {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [(z ^ (z >>> 16)) >>> 0, state];
}

/**
 * A generator of uniforms in [0, 1).
 * @param {number} seed  a safe integer >= 0 (the trace's meta.seed)
 * @returns {() => number}
 */
export function makeRng(seed) {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be an integer >= 0, got ${seed}`);
  // both halves of the seed go in: seeds 1 and 2**32 + 1 differ
  let s = (seed % 2 ** 32) ^ Math.imul(Math.floor(seed / 2 ** 32), 0x632be5ab);
  const words = [];
  for (let i = 0; i < 4; i++) [words[i], s] = splitmix32(s);
  let [a, b, c, d] = words;
  const next32 = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next32(); // mix the seeded state before the first draw
  return () => ((next32() >>> 5) * 2 ** 26 + (next32() >>> 6)) / 2 ** 53;
}
