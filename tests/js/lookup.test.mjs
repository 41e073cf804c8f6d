// decode.js's prompt-lookup fallback against drafters/ngram.py: findCopy gives what LookupFallback.find
// gives on the same texts (fixtures/lookup.json, written by make_fixtures.py), and the defaults are Python's.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { DEFAULT_LOOKUP_BELOW, LOOKUP_NGRAMS, findCopy, lookupSettings } from "../../specviz/assets/live/decode.js";
import * as ref from "./reference.mjs";

const fixtures = JSON.parse(readFileSync(new URL("./fixtures/lookup.json", import.meta.url)));

test("the fallback's defaults are Python's: below 0.7, n-grams of 2 to 3 tokens", () => {
  const d = fixtures.defaults;
  assert.deepEqual([DEFAULT_LOOKUP_BELOW, LOOKUP_NGRAMS.minNgram, LOOKUP_NGRAMS.maxNgram], [d.below, d.min_ngram, d.max_ngram]);
  assert.deepEqual(lookupSettings(undefined), { below: d.below, minNgram: d.min_ngram, maxNgram: d.max_ngram });
});

test("findCopy finds what LookupFallback.find finds, case by case", () => {
  let found = 0;
  for (const [i, c] of fixtures.cases.entries()) {
    const want = c.found && { token: c.found[0], n: c.found[1] };
    const maxNgram = fixtures.defaults.max_ngram;
    assert.deepEqual(findCopy(c.ids, c.vocab, c.min_ngram, maxNgram), want, `case ${i}: ${JSON.stringify(c)}`);
    assert.deepEqual(ref.findCopy(c.ids, c.vocab, c.min_ngram, maxNgram), want, `the reference, case ${i}`);
    // typed arrays too (the page's ids are plain arrays, but nothing in findCopy needs them to be)
    assert.deepEqual(findCopy(Int32Array.from(c.ids), c.vocab, c.min_ngram, maxNgram), want, `case ${i}, Int32Array`);
    if (want) found++;
  }
  assert.ok(found > 50 && found < fixtures.cases.length - 50, `${found} of ${fixtures.cases.length} cases found a copy`);
});
