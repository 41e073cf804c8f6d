// The exported models on onnxruntime-web, behind the decoder's model interface (decode.js):
// forward(ids, cache) → {logits, cache}, crop(cache, length), vocab, newCache(). The ONNX files take
// the past keys and values and return the present ones (specviz/export, docs/BROWSER.md); rolling
// back rejected drafts is a slice of every layer's cache along the sequence axis.
//
// Every library file comes from ./vendor/ on this server: ORT's .wasm paths are set there too, so the
// page fetches nothing from anywhere else.

const VENDOR = new URL("./vendor/ort/", import.meta.url).href;

/**
 * The ONNX Runtime build and backend this browser gets: WebGPU where a GPU adapter answers, else
 * WebAssembly, with threads where the page is cross-origin isolated (SharedArrayBuffer allowed).
 * @returns {Promise<{ort: any, providers: string[], label: string, cpu: string, note: string}>}
 *   label: what runs, in words; cpu: the WebAssembly part alone; note: why only one thread, or ""
 */
export async function loadRuntime({ allowWebGPU = true } = {}) {
  let adapter = null;
  if (allowWebGPU && "gpu" in navigator) {
    try {
      adapter = await navigator.gpu.requestAdapter();
    } catch {
      adapter = null; // a browser that lists WebGPU but cannot give an adapter
    }
  }
  // the WebGPU build carries a 28 MB .wasm: only a browser that can use it loads it
  const ort = await import(adapter ? "./vendor/ort/ort.webgpu.min.mjs" : "./vendor/ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = VENDOR;
  ort.env.wasm.proxy = false; // a worker would copy every layer's cache in and out on each pass
  ort.env.logLevel = "error"; // its warnings (nodes left to WebAssembly) are not the reader's concern
  const threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  ort.env.wasm.numThreads = threads;
  const cpu = `WebAssembly, ${threads} thread${threads === 1 ? "" : "s"}`;
  const note = self.crossOriginIsolated
    ? ""
    : "One WebAssembly thread: this page is not cross-origin isolated (docs/BROWSER.md says how to serve it for threads).";
  return adapter
    ? { ort, providers: ["webgpu", "wasm"], label: `WebGPU (${cpu} for any operator it lacks)`, cpu, note }
    : { ort, providers: ["wasm"], label: cpu, cpu, note };
}

/**
 * A file's bytes, reporting progress; the total comes from Content-Length or the manifest.
 * @param {string} url  @param {number} expected  bytes, from the manifest
 * @param {(loaded: number, total: number) => void} onProgress
 */
export async function fetchBytes(url, expected, onProgress) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get("Content-Length")) || expected || 0;
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const parts = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.length;
    onProgress(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * One exported model as the decoder's model. A draft with a reduced vocabulary gives logits over its
 * own ids: the decoder maps them with the manifest's token_map (decode.js `vocabBridge`).
 * @param {any} ort  @param {Uint8Array} bytes  the .onnx file
 * @param {{num_layers: number, num_kv_heads: number, head_dim: number, vocab_size: number}} info
 *   the manifest's entry
 * @param {string[]} providers  loadRuntime's
 */
export async function createModel(ort, bytes, info, providers) {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: providers, graphOptimizationLevel: "all" });
  const { num_layers: layers, num_kv_heads: heads, head_dim: dim, vocab_size: vocab } = info;
  const i64 = (xs) => new ort.Tensor("int64", BigInt64Array.from(xs, (x) => BigInt(x)), [1, xs.length]);
  const empty = () => new ort.Tensor("float32", new Float32Array(0), [1, heads, 0, dim]);

  /** @typedef {{length: number, kv: any[]}} Cache  kv: 2 per layer (key, value), [1, heads, length, dim] */
  return {
    vocab,
    session,
    /** @returns {Cache} */
    newCache: () => ({ length: 0, kv: [] }),
    /**
     * @param {number[]} ids  the model's own ids, [T]
     * @param {Cache} cache
     * @returns {Promise<{logits: Float32Array, cache: Cache}>}  logits [T * vocab]
     */
    async forward(ids, cache) {
      const P = cache.length;
      const T = ids.length;
      const feeds = {
        input_ids: i64(ids),
        attention_mask: i64(new Array(P + T).fill(1)),
        position_ids: i64(Array.from({ length: T }, (_, j) => P + j)),
      };
      for (let i = 0; i < layers; i++) {
        feeds[`past_key_values.${i}.key`] = P ? cache.kv[2 * i] : empty();
        feeds[`past_key_values.${i}.value`] = P ? cache.kv[2 * i + 1] : empty();
      }
      const out = await session.run(feeds);
      const kv = [];
      for (let i = 0; i < layers; i++) kv.push(out[`present.${i}.key`], out[`present.${i}.value`]);
      return { logits: out.logits.data, cache: { length: P + T, kv } }; // logits [1, T, vocab]
    },
    /**
     * The cache's first `length` positions: each [1, heads, P, dim] tensor sliced along axis 2.
     * @param {Cache} cache  @param {number} length
     * @returns {Cache}
     */
    crop(cache, length) {
      if (length >= cache.length) return cache;
      const P = cache.length;
      const kv = cache.kv.map((t) => {
        const src = t.data;
        const dst = new Float32Array(heads * length * dim);
        for (let h = 0; h < heads; h++) dst.set(src.subarray(h * P * dim, h * P * dim + length * dim), h * length * dim);
        return new ort.Tensor("float32", dst, [1, heads, length, dim]);
      });
      return { length, kv };
    },
  };
}
