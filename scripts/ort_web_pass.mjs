// Times an exported model in onnxruntime-web's wasm build under Node (one thread, as a page served
// without cross-origin isolation gets): session load, a prefill pass, then one-token passes with the cache.
// Usage: node scripts/ort_web_pass.mjs MODEL.onnx '{"ids": [...], "kv": 3, "hd": 64, "n": 8}'
// Prints one JSON line: {"load_ms", "prefill_ms", "pass_ms" (median one-token pass), "tokens" (greedy)}.
import fs from 'fs';
import path from 'path';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ort = await import(path.join(here, '..', 'js', 'node_modules', 'onnxruntime-web', 'dist', 'ort.node.min.mjs'));
const [file, spec] = process.argv.slice(2);
const { ids: prompt, kv, hd, n } = JSON.parse(spec);
ort.env.wasm.numThreads = 1;
let t = performance.now();
const session = await ort.InferenceSession.create(fs.readFileSync(file), { executionProviders: ['wasm'] });
const loadMs = performance.now() - t;
const layers = session.inputNames.filter((x) => x.startsWith('past_key_values.')).length / 2;
const int64 = (xs) => BigInt64Array.from(xs.map(BigInt));
let ids = prompt, past = 0, present = null;
const tokens = [], passes = [];
let prefillMs = 0;
for (let step = 0; step <= n; step++) {
  const feed = {
    input_ids: new ort.Tensor('int64', int64(ids), [1, ids.length]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(past + ids.length).fill(1n), [1, past + ids.length]),
    position_ids: new ort.Tensor('int64', int64(ids.map((_, i) => past + i)), [1, ids.length]),
  };
  for (let i = 0; i < layers; i++) {
    for (const k of ['key', 'value']) {
      feed[`past_key_values.${i}.${k}`] = present ? present[`present.${i}.${k}`] : new ort.Tensor('float32', new Float32Array(0), [1, kv, 0, hd]);
    }
  }
  t = performance.now();
  const out = await session.run(feed);
  const ms = performance.now() - t;
  if (step === 0) prefillMs = ms; else passes.push(ms);
  const vocab = out.logits.dims[2], row = (ids.length - 1) * vocab, data = out.logits.data;
  let best = 0;
  for (let v = 1; v < vocab; v++) if (data[row + v] > data[row + best]) best = v;
  if (step < n) tokens.push(best);
  present = out; past += ids.length; ids = [best];
}
passes.sort((a, b) => a - b);
console.log(JSON.stringify({ load_ms: Math.round(loadMs), prefill_ms: Math.round(prefillMs), pass_ms: Math.round(passes[passes.length >> 1] ?? 0), tokens }));
