// specviz/assets/live/warp.js against specviz/core/warp.py: fixtures written by make_fixtures.py.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { isGreedy, sample, sampling, warp } from "../../specviz/assets/live/warp.js";

const fixtures = JSON.parse(readFileSync(new URL("./fixtures/warp.json", import.meta.url)));
const settings = (c) => sampling({ temperature: c.temperature, topK: c.top_k, topP: c.top_p });
const label = (c) => `logits ${JSON.stringify(c.logits)} T ${c.temperature} top_k ${c.top_k} top_p ${c.top_p}`;

test("warp keeps the tokens Python keeps, with its probabilities (float32 round-off)", () => {
  assert.ok(fixtures.warp.length > 100);
  for (const c of fixtures.warp) {
    const probs = warp(c.logits, settings(c));
    assert.deepEqual(Array.from(probs, (v) => v > 0), c.probs.map((v) => v > 0), label(c));
    probs.forEach((v, i) => assert.ok(Math.abs(v - c.probs[i]) <= 1e-6, `${label(c)}: token ${i} ${v} vs ${c.probs[i]}`));
  }
});

test("temperature 0, or too small for float32, is one-hot on the first argmax", () => {
  for (const t of [0, 1e-40, 2e-39]) {
    assert.ok(isGreedy({ temperature: t }));
    assert.deepEqual(Array.from(warp([1, 3, 2, 3], { temperature: t, topK: 0, topP: 1 })), [0, 1, 0, 0]);
  }
  assert.ok(!isGreedy({ temperature: 3e-39 })); // representable: 0 / T = 0 for both maxima, which share
  assert.deepEqual(Array.from(warp([1, 3, 2, 3], { temperature: 3e-39, topK: 0, topP: 1 })), [0, 0.5, 0, 0.5]);
});

test("sampling settings are checked as Python's Sampling checks them", () => {
  assert.throws(() => sampling({ temperature: -1 }), RangeError);
  assert.throws(() => sampling({ temperature: NaN }), RangeError);
  assert.throws(() => sampling({ temperature: Infinity }), RangeError);
  assert.throws(() => sampling({ topK: -1 }), RangeError);
  assert.throws(() => sampling({ topP: 0 }), RangeError);
  assert.throws(() => sampling({ topP: 1.5 }), RangeError);
  assert.deepEqual(sampling(), { temperature: 1, topK: 0, topP: 1 });
});

test("sample is Python's inverse-CDF draw, index for index", () => {
  for (const c of fixtures.sample) assert.equal(sample(Float32Array.from(c.probs), c.u), c.index, JSON.stringify(c));
});
