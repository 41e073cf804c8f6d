// Live in your browser: the exported model pair decodes here, on this computer, with nothing sent to
// a server. The page loads manifest.json, the tokenizer and both ONNX models (onnxruntime-web), runs
// speculative decoding (decode.js) or the evaluation model alone, draws every step as it is decoded,
// times both the same way, and offers the run as a specviz trace.
//
// State for tests and measurements lies in window.specvizLive (read only by them).

import { decodeTargetAlone, recordSpeculative } from "./decode.js";
import { createModel, fetchBytes, loadRuntime } from "./ortmodel.js";
import { RULES } from "./rules.js";
import { loadTokenizer } from "./text.js";
import { timingMeta } from "./trace.js";
import { el, outputView, stepView } from "./view.js";

const $ = (id) => document.getElementById(id);
const MB = (b) => `${(b / 1e6).toFixed(0)} MB`;
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
const END_MARK = " ■ (end of turn)"; // as the app shows an end-of-turn token in output text

/** What tests read: {ready, loadMs, backend, runs: {speculative, alone}, trace, messages, error, busy, runCount}. */
const live = { ready: false, loadMs: null, backend: null, runs: {}, trace: null, messages: [], error: null, busy: false, runCount: 0 };
window.specvizLive = live;

/** Say something in the message area: info, or an error (role alert). Text only. */
function say(text, level = "info") {
  live.messages.push({ level, text });
  $("messages").append(el("p", level, text));
}

function clearMessages() {
  $("messages").replaceChildren();
}

/** Let the browser paint between steps (no timer: a background tab would slow timers down). */
const yieldToPage = () => new Promise((done) => {
  const ch = new MessageChannel();
  ch.port1.onmessage = () => done();
  ch.port2.postMessage(null);
});

// ---- loading ---------------------------------------------------------------------------------------

async function load() {
  const t0 = performance.now();
  const status = $("load-status");
  const bar = $("load-bar");
  const base = new URL("./", location.href);
  status.textContent = "Reading manifest.json…";
  const res = await fetch(new URL("manifest.json", base));
  if (!res.ok) throw new Error(`manifest.json: HTTP ${res.status}. Make this folder with python -m specviz export-live -o DIR.`);
  const manifest = await res.json();
  if (manifest.version !== 1) throw new Error(`manifest.json is version ${manifest.version}; this page reads version 1`);
  const versions = await fetch(new URL("vendor/VERSIONS.txt", base))
    .then((r) => (r.ok ? r.text() : ""))
    .catch(() => "");
  status.textContent = "Loading the tokenizer…";
  const tokenizer = await loadTokenizer(base, manifest);
  status.textContent = "Starting ONNX Runtime…";
  const { ort, providers, label, cpu, note } = await loadRuntime();
  live.backend = label;
  const total = manifest.draft.bytes + manifest.target.bytes;
  const got = { draft: 0, target: 0 };
  const progress = (who) => (loaded) => {
    got[who] = loaded;
    const done = got.draft + got.target;
    bar.value = total ? done / total : 0;
    status.textContent = `Downloading the models: ${MB(done)} of ${MB(total)}`;
  };
  const [draftBytes, targetBytes] = await Promise.all(
    ["draft", "target"].map((who) => fetchBytes(new URL(manifest[who].file, base).href, manifest[who].bytes, progress(who))),
  );
  status.textContent = "Preparing the models (ONNX Runtime sessions)…";
  let draft, target;
  try {
    draft = await createModel(ort, draftBytes, manifest.draft, providers);
    target = await createModel(ort, targetBytes, manifest.target, providers);
  } catch (e) {
    if (!providers.includes("webgpu")) throw e;
    // a GPU that answers but cannot run these models: WebAssembly still can
    say(`WebGPU could not run the models (${e.message ?? e}); using WebAssembly instead.`);
    live.backend = cpu;
    draft = await createModel(ort, draftBytes, manifest.draft, ["wasm"]);
    target = await createModel(ort, targetBytes, manifest.target, ["wasm"]);
  }
  const vendorVersions = Object.fromEntries(versions.split("\n").filter(Boolean).map((l) => l.split(" ").slice(0, 2)));
  if (ort.env.versions?.web) vendorVersions["onnxruntime-web"] = ort.env.versions.web;
  live.loadMs = performance.now() - t0;
  bar.value = 1;
  $("load").classList.add("done");
  const m = (x, what) => `${what} ${x.name} (${x.quant}, ${MB(x.bytes)})`;
  status.textContent = `Ready in ${secs(live.loadMs)}: ${m(manifest.target, "evaluation model")}, ${m(manifest.draft, "draft model")}.`;
  $("backend").textContent = `Runs on: ${live.backend}.${note ? ` ${note}` : ""}`;
  return { manifest, tokenizer, draft, target, versions: vendorVersions };
}

// ---- one run ---------------------------------------------------------------------------------------

/** The form's settings, checked. @returns {{gamma, rule, temperature, maxNewTokens, seed, confidence, lookupBelow}} */
function settings() {
  const num = (id, lo, hi, int = true) => {
    const v = Number($(id).value);
    const label = $(id).labels?.[0]?.textContent.trim() ?? id;
    if (!Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v)))
      throw new RangeError(`${label} must be ${int ? "a whole number" : "a number"} from ${lo} to ${hi}.`);
    return v;
  };
  const rule = $("rule").value;
  if (!RULES.includes(rule)) throw new RangeError(`Unknown rule ${rule}.`);
  return {
    gamma: num("gamma", 1, 16),
    rule,
    temperature: rule === "greedy" ? 0 : num("temperature", 0, 5, false), // greedy decodes at T = 0
    maxNewTokens: num("max-new", 1, 512),
    seed: num("seed", 0, 2 ** 31),
    confidence: num("confidence", 0, 1, false), // stop drafting after a model draft below this q; 0: never
    lookupBelow: num("lookup", 0, 1, false), // copy from earlier text below this best q; 0: never
  };
}

/**
 * Times when tokens became known, the page's drawing left out, so both runs are timed the same way:
 * tokens after the first step's, per second from the first token to the last.
 */
function clock() {
  const start = performance.now();
  let drawing = 0;
  const marks = []; // [tokens so far, ms since start]
  let firstAt = null;
  return {
    mark(tokens) {
      marks.push([tokens, performance.now() - start - drawing]);
      if (marks.length === 1) firstAt = performance.now(); // since the page opened: for "open to first token"
    },
    async draw(fn) {
      const t = performance.now();
      fn();
      await yieldToPage();
      drawing += performance.now() - t;
    },
    result() {
      if (!marks.length) return null;
      const [n0, t0] = marks[0];
      const [n, t1] = marks.at(-1);
      const rate = n > n0 && t1 > t0 ? ((n - n0) * 1000) / (t1 - t0) : null;
      return { tokens: n, firstTokenMs: t0, firstTokenSincePageOpenMs: firstAt, firstToLastMs: t1 - t0, tokensPerSecond: rate, wallMs: t1 };
    },
  };
}

function showSpeed() {
  const box = $("speed");
  box.replaceChildren();
  const line = (name, r) => {
    if (!r) return;
    const rate = r.tokensPerSecond === null ? "too few tokens to time" : `${r.tokensPerSecond.toFixed(1)} tokens/s`;
    box.append(el("p", null, `${name}: ${rate} (${r.tokens} tokens; first token after ${secs(r.firstTokenMs)}).`));
  };
  line("Speculative decoding", live.runs.speculative);
  line("Evaluation model alone", live.runs.alone);
  const s = live.runs.speculative?.tokensPerSecond;
  const a = live.runs.alone?.tokensPerSecond;
  if (s && a) box.append(el("p", "ratio", `Speculative / alone: ${(s / a).toFixed(2)}× ${s >= a ? "(faster)" : "(slower)"} in this browser.`));
}

/** Special tokens in the output other than the end of turn: said, and shown only as text. */
function noteSpecial(ids, ctx) {
  const eos = new Set(ctx.manifest.eos_token_ids);
  const found = [...new Set(ids.filter((t) => ctx.tokenizer.special.has(t) && !eos.has(t)))];
  if (found.length)
    say(`The model wrote special tokens (${found.map((t) => ctx.tokenizer.special.get(t)).join(", ")}). They are shown as text, never acted on.`);
}

async function runSpeculative(ctx, prompt, opts) {
  const out = outputView($("output"));
  const steps = $("steps");
  steps.replaceChildren();
  const c = clock();
  const eos = new Set(ctx.manifest.eos_token_ids);
  let tokens = 0;
  let ended = false;
  const { trace, error } = await recordSpeculative({
    target: ctx.target,
    draft: ctx.draft,
    // draft id → target id; the draft's last id (unk) stands for every other target token
    tokenMap: ctx.manifest.draft.token_map ? { target_ids: ctx.manifest.draft.token_map, unk: ctx.manifest.draft.unk_id } : null,
    promptIds: prompt.ids,
    promptText: prompt.text,
    gamma: opts.gamma,
    confidence: opts.confidence,
    lookupBelow: opts.lookupBelow,
    rule: opts.rule,
    temperature: opts.temperature,
    maxNewTokens: opts.maxNewTokens,
    seed: opts.seed,
    eosIds: ctx.manifest.eos_token_ids,
    decodeToken: (id) => ctx.tokenizer.tokenText(id),
    tokenBytes: ctx.tokenizer.tokenBytes,
    decodeText: ctx.tokenizer.decode,
    targetName: ctx.manifest.target.name,
    draftName: ctx.manifest.draft.name,
    quant: ctx.manifest.target.quant,
    device: `browser (${live.backend})`,
    chat: true,
    versions: ctx.versions,
    shouldStop: () => live.stop,
    onStep: async (step) => {
      // the output as trace.js outputIds reads it: accepted drafts, then the evaluation model's token,
      // cut at the first end of turn and at the budget
      const fresh = [];
      const made = step.draft.slice(0, step.n_accepted).map((d) => [d, "accepted"]);
      if (step.next) made.push([step.next, step.next.kind]);
      for (const [t, kind] of made) {
        if (ended || tokens >= opts.maxNewTokens) break;
        fresh.push([t, kind]);
        tokens++;
        ended = eos.has(t.token_id);
      }
      c.mark(tokens);
      await c.draw(() => {
        for (const [t, kind] of fresh) out.add(eos.has(t.token_id) ? END_MARK : t.token, kind);
        steps.append(stepView(step, opts.confidence || null));
        steps.scrollTop = steps.scrollHeight;
      });
    },
  });
  live.runs.speculative = { ...c.result(), settings: opts, promptIds: prompt.ids, tokenIds: trace.output.token_ids };
  live.trace = trace;
  $("download").disabled = !trace.steps.length;
  noteSpecial(trace.output.token_ids, ctx);
  if (error) throw error;
}

async function runAlone(ctx, prompt, opts) {
  const out = outputView($("output"));
  $("steps").replaceChildren(el("p", "muted", "The evaluation model alone adds one token per pass: there are no drafts to show."));
  const c = clock();
  let tokens = 0;
  const r = await decodeTargetAlone({
    target: ctx.target,
    promptIds: prompt.ids,
    temperature: opts.temperature,
    maxNewTokens: opts.maxNewTokens,
    seed: opts.seed,
    eosIds: ctx.manifest.eos_token_ids,
    shouldStop: () => live.stop,
    onToken: async (x) => {
      c.mark(++tokens);
      await c.draw(() => out.add(ctx.manifest.eos_token_ids.includes(x) ? END_MARK : ctx.tokenizer.tokenText(x), "alone"));
    },
  });
  live.runs.alone = { ...c.result(), settings: opts, promptIds: prompt.ids, tokenIds: r.tokenIds, decoderWallMs: r.wallMs };
  noteSpecial(r.tokenIds, ctx);
}

/** The last speculative run as a trace file, with the evaluation model alone as its baseline when
 * the last run alone had the same prompt and settings. */
function download() {
  const trace = structuredClone(live.trace);
  const s = live.runs.speculative;
  const a = live.runs.alone;
  const same = a && JSON.stringify(a.promptIds) === JSON.stringify(s.promptIds) && a.settings.temperature === s.settings.temperature && a.settings.seed === s.settings.seed && a.settings.maxNewTokens === s.settings.maxNewTokens;
  if (same) trace.meta.timing = timingMeta(trace.steps, trace.output.token_ids.length, trace.meta.timing.wall_ms, { tokens: a.tokens, wallMs: a.decoderWallMs });
  const blob = new Blob([JSON.stringify(trace)], { type: "application/json" });
  const a2 = document.createElement("a");
  a2.href = URL.createObjectURL(blob);
  a2.download = `specviz-browser-${trace.meta.created.replace(/[:]/g, "-")}.json`;
  document.body.append(a2);
  a2.click();
  a2.remove();
  setTimeout(() => URL.revokeObjectURL(a2.href), 10_000);
}

// ---- wiring ----------------------------------------------------------------------------------------

function setBusy(busy) {
  live.busy = busy;
  for (const id of ["run-spec", "run-alone"]) $(id).disabled = busy || !live.ready;
  $("stop").disabled = !busy;
}

async function run(ctx, which) {
  clearMessages();
  try {
    const opts = settings();
    const text = $("prompt").value;
    const prompt = { text, ...ctx.tokenizer.encodePrompt(text) };
    for (const note of prompt.notes) say(note);
    if (prompt.error) {
      say(prompt.error, "error");
      return;
    }
    live.stop = false;
    setBusy(true);
    $("run-label").textContent = which === "speculative" ? "Speculative decoding" : "Evaluation model alone";
    await (which === "speculative" ? runSpeculative : runAlone)(ctx, prompt, opts);
    showSpeed();
  } catch (e) {
    say(live.busy ? `The run stopped: ${e.message ?? e}` : String(e.message ?? e), "error");
  } finally {
    setBusy(false);
    live.runCount++; // every press ends here, run or refused: what tests wait for
  }
}

async function main() {
  if (window.self !== window.top) document.body.classList.add("embedded"); // in the app's frame
  for (const r of RULES) $("rule").append(new Option(r, r, r === "greedy", r === "greedy"));
  $("download").addEventListener("click", download);
  $("stop").addEventListener("click", () => (live.stop = true));
  const greedy = () => {
    // greedy decodes at temperature 0; the other rules start from 0.7
    const on = $("rule").value === "greedy";
    $("temperature").disabled = on;
    if (on) $("temperature").value = "0";
    else if (Number($("temperature").value) === 0) $("temperature").value = "0.7";
  };
  $("rule").addEventListener("change", greedy);
  greedy();
  setBusy(false);
  let ctx;
  try {
    ctx = await load();
  } catch (e) {
    live.error = String(e.message ?? e);
    $("load-status").textContent = "Could not load the models.";
    say(live.error, "error");
    return;
  }
  $("run-spec").addEventListener("click", () => run(ctx, "speculative"));
  $("run-alone").addEventListener("click", () => run(ctx, "alone"));
  live.ready = true;
  setBusy(false);
}

// a failure nobody caught still reaches the reader, as text
window.addEventListener("unhandledrejection", (e) => say(`Unexpected error: ${e.reason?.message ?? e.reason}`, "error"));
window.addEventListener("error", (e) => say(`Unexpected error: ${e.message}`, "error"));
main();
