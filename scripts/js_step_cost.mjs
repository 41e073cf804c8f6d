// The decoder's JavaScript time per speculative step outside the model passes, in Node, with fake models
// at the real pair's sizes (a 49,152-token evaluation model, an 8,192-id draft whose last id is `unk`):
//   node scripts/js_step_cost.mjs [--live DIR ...] [--runs N]
// --live names a copy of specviz/assets/live (default: this one); with several (e.g. the last commit's
// and this one) their runs take turns, so a busy machine slows each alike.
// A fake forward pass only copies a precomputed row, and its time (with crop's) is subtracted: what is
// left is warping, the rule, sampling, the draft's vocabulary bridge and the step record.
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: { live: { type: "string", multiple: true, default: ["specviz/assets/live"] }, runs: { type: "string", default: "5" } },
});
const decoders = [];
for (const dir of args.live) decoders.push((await import(new URL("decode.js", pathToFileURL(`${dir}/`)))).decodeSpeculative);
const { makeRng } = await import(new URL("rng.js", pathToFileURL(`${args.live[0]}/`)));

const TARGET_VOCAB = 49_152;
const DRAFT_VOCAB = 8_192; // 8,191 mapped ids + unk
const TOKEN_MAP = Array.from({ length: DRAFT_VOCAB - 1 }, (_, i) => (i * 6) % TARGET_VOCAB); // spread over the target's ids
const POOL = 97; // distinct contexts' rows: a row is picked by a hash of the context

/** A standard normal from two uniforms (Box-Muller). */
const gauss = (rng) => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());

// Rows shaped like a language model's: broad noise, lower outside the draft's ids (the map holds the
// common tokens), and two favourites; the draft's is a noisy copy over its mapped ids (unk very low).
const rng = makeRng(7);
const mapped = new Uint8Array(TARGET_VOCAB);
for (const id of TOKEN_MAP) mapped[id] = 1;
const targetRows = Array.from({ length: POOL }, () => {
  const row = Float32Array.from({ length: TARGET_VOCAB }, (_, i) => 1.5 * gauss(rng) - (mapped[i] ? 0 : 4));
  for (let j = 0; j < 2; j++) row[TOKEN_MAP[Math.floor(rng() * TOKEN_MAP.length)]] += 10 + 4 * rng();
  return row;
});
const draftRows = targetRows.map((t) => {
  const row = new Float32Array(DRAFT_VOCAB);
  TOKEN_MAP.forEach((id, i) => (row[i] = t[id] + 1.5 * gauss(rng)));
  row[DRAFT_VOCAB - 1] = -20;
  return row;
});

function hash(ids) {
  let h = 2166136261;
  for (const id of ids) h = Math.imul(h ^ (id + 7), 16777619) >>> 0;
  return h % POOL;
}

/**
 * A fake model that adds the time of its passes to clock[`${name}.forward`] and clock[`${name}.crop`];
 * toTarget reads its ids as the target's.
 */
function fakeModel(name, vocab, rows, clock, toTarget = (id) => id) {
  const timed = (what, f) => (...a) => {
    const t0 = performance.now();
    try {
      return f(...a); // a forward's work is done before its promise is returned
    } finally {
      clock[`${name}.${what}`] = (clock[`${name}.${what}`] ?? 0) + performance.now() - t0;
    }
  };
  return {
    vocab,
    newCache: () => ({ ids: [] }),
    crop: timed("crop", (cache, length) => ({ ids: cache.ids.slice(0, length) })),
    forward: timed("forward", async (ids, cache) => {
      const all = cache.ids.concat(ids.map(toTarget)); // the same context, the same row pool index
      const logits = new Float32Array(ids.length * vocab);
      ids.forEach((_, i) => logits.set(rows[hash(all.slice(0, cache.ids.length + i + 1))], i * vocab));
      return { logits, cache: { ids: all } };
    }),
  };
}

const SETTINGS = {
  "greedy, T 0": { rule: "greedy", temperature: 0 },
  "sampling, T 1": { rule: "sampling", temperature: 1 },
  "sampling, T 0.7 top-k 50 top-p 0.9": { rule: "sampling", temperature: 0.7, topK: 50, topP: 0.9 },
};

/**
 * One decode of 64 tokens with gamma 4: ms per step outside model passes, and its parts: drafting (warping
 * q, the vocabulary bridge, sampling), verifying (warping p, the rule, the evaluation model's token), and
 * the step record with the rest of the loop.
 */
async function measure(decodeSpeculative, s) {
  const clock = {};
  const target = fakeModel("target", TARGET_VOCAB, targetRows, clock);
  const draft = fakeModel("draft", DRAFT_VOCAB, draftRows, clock, (id) => TOKEN_MAP[id] ?? -1);
  const res = await decodeSpeculative({
    target, draft, tokenMap: { target_ids: TOKEN_MAP, unk: DRAFT_VOCAB - 1 }, promptIds: [12, 18, 24], gamma: 4,
    maxNewTokens: 64, eosIds: [], seed: 1, decodeToken: (id) => `t${id}`, ...s,
  });
  const n = res.steps.length;
  const sum = (k) => res.steps.reduce((a, st) => a + st.timing_ms[k], 0);
  const model = Object.values(clock).reduce((a, b) => a + b, 0);
  return {
    total: (res.wallMs - model) / n,
    draft: (sum("draft") - clock["draft.forward"] - (clock["draft.crop"] ?? 0)) / n,
    verify: (sum("verify") - clock["target.forward"]) / n,
    record: (res.wallMs - sum("draft") - sum("verify") - (clock["target.crop"] ?? 0)) / n,
    steps: n,
    accepted: res.steps.reduce((a, st) => a + st.n_accepted, 0) / res.steps.reduce((a, st) => a + st.draft.length, 0),
  };
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const runs = Number(args.runs);
console.log(`ms per step outside model passes: median of ${runs} decodes of 64 tokens, gamma 4`);
for (const [name, s] of Object.entries(SETTINGS)) {
  console.log(`  ${name}`);
  for (const d of decoders) await measure(d, s); // warm the JIT
  const got = decoders.map(() => []);
  for (let i = 0; i < runs; i++) for (const [j, d] of decoders.entries()) got[j].push(await measure(d, s));
  got.forEach((g, j) => {
    const m = (k) => median(g.map((x) => x[k])).toFixed(1);
    console.log(
      `    ${m("total").padStart(5)} ms/step (draft ${m("draft")}, verify ${m("verify")}, record + loop ${m("record")}); ${g[0].steps} steps, ` +
        `${(100 * g[0].accepted).toFixed(0)}% of drafts accepted  ${args.live[j]}`,
    );
  });
}
