// specviz/assets/live/rules.js against specviz/core/rules.py (fixtures written by make_fixtures.py), and
// the sampling rule's losslessness measured: its output tokens are distributed as p.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { makeRng } from "../../specviz/assets/live/rng.js";
import { KINDS, RULES, makeRule, nextDistribution, residual, verify } from "../../specviz/assets/live/rules.js";
import { sample } from "../../specviz/assets/live/warp.js";

const fixtures = JSON.parse(readFileSync(new URL("./fixtures/rules.json", import.meta.url)));
const close = (a, b, what) => assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test("KINDS says what Python's KINDS says: names, defaults, lossless, r, correction, recursive", () => {
  assert.deepEqual(RULES, Object.keys(fixtures.kinds));
  for (const [name, k] of Object.entries(fixtures.kinds)) {
    const mine = KINDS[name];
    assert.deepEqual(
      { defaults: mine.defaults, lossless: mine.lossless, uses_random: mine.usesRandom, correction: mine.correction, recursive: mine.recursive },
      k,
      name,
    );
  }
});

test("verify and nextDistribution decide as Python's Rule.verify and next_distribution", () => {
  assert.ok(fixtures.cases.length > 100);
  for (const [i, c] of fixtures.cases.entries()) {
    const what = `case ${i} (${c.rule} ${JSON.stringify(c.params)}, draft ${c.draft})`;
    const rule = makeRule(c.rule, c.params);
    const p = c.p.map((row) => Float32Array.from(row));
    const q = c.q.map((row) => Float32Array.from(row));
    const v = verify(rule, p, q, c.draft, c.r);
    assert.deepEqual(v.accepted, c.accepted, what);
    assert.equal(v.nAccepted, c.n_accepted, what);
    for (const key of ["accept_prob", "ratio", "cutoff"]) {
      if (!(key in c.numbers)) {
        assert.equal(v[key], null, `${what}: ${key}`);
        continue;
      }
      c.numbers[key].forEach((want, j) => close(v[key][j], want, `${what}: ${key}[${j}]`));
    }
    const n = v.nAccepted;
    const next = nextDistribution(rule, p[n], n < c.draft.length ? q[n] : null);
    assert.equal(next.source, c.next.source, what);
    c.next.probs.forEach((want, t) => close(next.probs[t], want, `${what}: next token ${t}`));
  }
});

test("makeRule fills defaults and refuses what Python's make_rule refuses", () => {
  assert.deepEqual(makeRule("typical").params, { epsilon: 0.09, delta: 0.3 });
  assert.deepEqual(makeRule("threshold", { tau: 0.5 }).params, { tau: 0.5 });
  assert.deepEqual(makeRule("threshold", { tau: null }).params, { tau: 0.3 });
  assert.throws(() => makeRule("nucleus"), /unknown rule/);
  assert.throws(() => makeRule("greedy", { tau: 1 }), /takes no parameter/);
  assert.throws(() => makeRule("threshold", { tau: -1 }), /finite number >= 0/);
  assert.throws(() => makeRule("threshold", { tau: Infinity }), /finite number >= 0/);
});

test("residual is norm(max(0, p - q)), and p where that is empty", () => {
  assert.deepEqual(Array.from(residual([0.5, 0.5, 0], [0.25, 0.25, 0.5])), [0.5, 0.5, 0]);
  assert.deepEqual(Array.from(residual([0.5, 0.5], [0.5, 0.5])), [0.5, 0.5]);
});

// draw x ~ q, test it with r, else draw the correction from the residual: the token is distributed as p
function tokenCounts(rule, p, q, draws, seed) {
  const rng = makeRng(seed);
  const counts = new Array(p.length).fill(0);
  for (let i = 0; i < draws; i++) {
    const x = sample(q, rng());
    const v = verify(rule, [p], [q], [x], [rng()]);
    counts[v.nAccepted ? x : sample(nextDistribution(rule, p, q).probs, rng())]++;
  }
  return counts;
}

test("the sampling rule is lossless: its tokens follow p (chi-squared and total variation)", () => {
  const p = Float32Array.from([0.3, 0.25, 0.2, 0.1, 0.1, 0.05, 0, 0]);
  const q = Float32Array.from([0.05, 0.4, 0.1, 0.1, 0, 0.15, 0.2, 0]); // q gives mass where p has none, and none where p has some
  const draws = 200_000;
  const counts = tokenCounts(makeRule("sampling"), p, q, draws, 1234);
  let chi2 = 0;
  let tv = 0;
  p.forEach((pi, i) => {
    if (pi > 0) chi2 += (counts[i] - draws * pi) ** 2 / (draws * pi);
    else assert.equal(counts[i], 0, `token ${i} has p = 0 but was emitted`);
    tv += Math.abs(counts[i] / draws - pi) / 2;
  });
  assert.ok(chi2 < 20.5, `chi-squared ${chi2.toFixed(2)} with 5 degrees of freedom (p < 0.001 beyond 20.5)`);
  assert.ok(tv < 0.005, `total variation ${tv}`);
  // a lossy rule is not: the threshold rule keeps q's favourite too often
  const lossy = tokenCounts(makeRule("threshold", { tau: 0.3 }), p, q, 20_000, 1234);
  assert.ok(lossy.reduce((a, c, i) => a + Math.abs(c / 20_000 - p[i]) / 2, 0) > 0.05);
});
