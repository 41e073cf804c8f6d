// Deterministic fake models behind decode.js's model interface, for the Node tests and write_trace.mjs.
//
// A model's logits at a position are a pure function of the whole context its cache holds there
// (a hash of the ids), so a decoder that keeps the wrong positions after a rejection gets other logits
// and its greedy output parts from the target alone's: the greedy equality tests catch rollback bugs.
import { makeRng } from "../../specviz/assets/live/rng.js";

export const EOS = 1;
export const TARGET_VOCAB = 14;
// the draft's reduced vocabulary: draft id i is target id TOKEN_MAP[i]; ids 5, 9 and 12 are outside it
export const TOKEN_MAP = [0, 1, 2, 3, 4, 6, 7, 8, 10, 11, 13];
const WORDS = ["<pad>", "<eos>", " the", " cat", " sat", " on", " a", " mat", " and", " ran", " far", " away", " 🙂", " dog"];

export const decodeToken = (id) => WORDS[id] ?? `<${id}>`;

function hash(ids, salt) {
  let h = (2166136261 ^ salt) >>> 0;
  for (const id of ids) h = Math.imul(h ^ (id + 7), 16777619) >>> 0;
  return h;
}

/**
 * The target's logits after `ctx` (target ids): random-looking, fixed by the context. EOS is unlikely
 * (its logit lowered by 5) until, with eosAt, the context is that long: then it is raised by 20.
 */
export function targetLogits(ctx, { vocab = TARGET_VOCAB, eosAt = Infinity } = {}) {
  const rng = makeRng(hash(ctx, 0));
  const row = Float32Array.from({ length: vocab }, () => 4 * rng() - 2);
  row[EOS] += ctx.length >= eosAt ? 20 : -5;
  return row;
}

/**
 * A model over `rowFor(ctx)` with a KV cache that is just the ids it has read; it counts the crops
 * that dropped positions (rollbacks) and refuses a crop beyond its length.
 */
export function fakeModel(vocab, rowFor) {
  const model = {
    vocab,
    rollbacks: 0,
    newCache: () => ({ ids: [] }),
    crop(cache, length) {
      if (length > cache.ids.length) throw new Error(`crop to ${length} of a cache of ${cache.ids.length}`);
      if (length < cache.ids.length) model.rollbacks++;
      return { ids: cache.ids.slice(0, length) };
    },
    async forward(ids, cache) {
      if (!ids.length) throw new Error("forward with no ids");
      const all = cache.ids.concat(ids);
      const logits = new Float32Array(ids.length * vocab);
      ids.forEach((_, i) => logits.set(rowFor(all.slice(0, cache.ids.length + i + 1)), i * vocab));
      return { logits, cache: { ids: all } };
    },
  };
  return model;
}

export const fakeTarget = (opts = {}) => fakeModel(opts.vocab ?? TARGET_VOCAB, (ctx) => targetLogits(ctx, opts));

/**
 * The draft's logits after `ctx` (draft ids): a noisy copy of the target's, over TOKEN_MAP's reduced
 * vocabulary plus `unk` (the last id), given a huge logit: a decoder that warps it instead of cutting it
 * first proposes nothing at temperature 0. It reads its context back through the map, so a target id
 * outside the map is unknown to it, as with a real one.
 */
export function draftLogits(ctx, { noise = 1.5, eosAt = Infinity, tokenMap = TOKEN_MAP } = {}) {
  const unk = tokenMap.length;
  const base = targetLogits(ctx.map((d) => (d === unk ? 999 : tokenMap[d])), { eosAt });
  const rng = makeRng(hash(ctx, 1));
  const row = new Float32Array(unk + 1);
  tokenMap.forEach((t, i) => (row[i] = base[t] + noise * (2 * rng() - 1)));
  row[unk] = 100;
  return row;
}

export const fakeDraft = (opts = {}) => fakeModel((opts.tokenMap ?? TOKEN_MAP).length + 1, (ctx) => draftLogits(ctx, opts));

/** The target alone, greedy, computed straight from targetLogits: the reference the decoders must match. */
export function greedyReference(prompt, maxNewTokens, opts = {}) {
  const ids = [...prompt];
  const out = [];
  while (out.length < maxNewTokens) {
    const row = targetLogits(ids, opts);
    const x = row.indexOf(Math.max(...row));
    out.push(x);
    ids.push(x);
    if (x === EOS) break;
  }
  return out;
}
