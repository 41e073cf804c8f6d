// specviz/assets/live/view.js's step table on a minimal stand-in for the DOM (no browser here): a draft the
// prompt-lookup fallback copied is marked "copied" with Python's words (figures/step.py copied_words), a
// model draft is not, and token text goes in as text only.
import assert from "node:assert/strict";
import { test } from "node:test";

/** Just what view.js calls: createElement, className, textContent, title, style, dataset, append, setAttribute. */
class Node {
  constructor(tag, text = null) {
    Object.assign(this, { tag, text, className: "", title: "", style: {}, dataset: {}, attrs: {}, children: [] });
  }
  append(...xs) {
    for (const x of xs) this.children.push(typeof x === "string" ? new Node("#text", x) : x);
  }
  setAttribute(k, v) {
    this.attrs[k] = v;
  }
  get firstChild() {
    return this.children[0];
  }
  get lastChild() {
    return this.children.at(-1);
  }
  set textContent(v) {
    this.children = [new Node("#text", v)];
  }
  get textContent() {
    return this.tag === "#text" ? this.text : this.children.map((c) => c.textContent).join("");
  }
  set innerHTML(_) {
    throw new Error("view.js set innerHTML");
  }
  all(pred) {
    return [...(pred(this) ? [this] : []), ...this.children.flatMap((c) => c.all(pred))];
  }
}
globalThis.document = { createElement: (tag) => new Node(tag) };
const { copiedWords, stepView, stopWords } = await import("../../specviz/assets/live/view.js");

const top = (id, prob) => [{ token_id: id, token: "x", prob }];
const STEP = {
  index: 2,
  context_length: 9,
  draft: [
    { token_id: 4, token: "<b>bold</b>", q: 1, top: top(4, 1), q_raw: 1, top_raw: top(4, 1), copied: 3 },
    { token_id: 7, token: " mat", q: 0.4, top: top(7, 0.4), q_raw: 0.3, top_raw: top(7, 0.3) },
  ],
  verify: [
    { p: 0.6, accepted: true, r: 0.2, accept_prob: 0.6, ratio: null, cutoff: null, top: top(4, 0.6), p_raw: 0.5, top_raw: top(4, 0.5) },
    { p: 0.1, accepted: false, r: 0.9, accept_prob: 0.25, ratio: null, cutoff: null, top: top(7, 0.1), p_raw: 0.1, top_raw: top(7, 0.1) },
  ],
  n_accepted: 1,
  next: { token_id: 5, token: " on", kind: "correction", source: "residual", prob: 0.5, top: top(5, 0.5) },
  timing_ms: { draft: 1, verify: 2 },
};

test("a copied draft is marked copied, with Python's words; the model's own draft is not", () => {
  assert.equal(copiedWords(3), "copied: the last 3 tokens occurred earlier, and this followed them");
  assert.equal(copiedWords(0), "");
  const box = stepView(STEP);
  const rows = box.all((n) => n.tag === "tr").slice(1); // the header row first
  assert.equal(rows.length, 3);
  const marks = box.all((n) => n.className === "copied muted");
  assert.equal(marks.length, 1);
  assert.equal(marks[0].textContent, "copied");
  assert.equal(marks[0].title, copiedWords(3));
  assert.ok(rows[0].all((n) => n === marks[0]).length === 1, "the mark is in the copied draft's row");
  // the token itself is text, whatever it looks like
  const token = rows[0].all((n) => n.className === "token")[0];
  assert.ok(token.textContent.startsWith("<b>bold</b>"));
  assert.match(box.all((n) => n.tag === "caption")[0].textContent, /marked copied/);
  const plain = stepView({ ...STEP, draft: STEP.draft.map(({ copied, ...d }) => d) });
  assert.equal(plain.all((n) => n.className === "copied muted").length, 0);
  assert.doesNotMatch(plain.all((n) => n.tag === "caption")[0].textContent, /copied/);
});

test("a chain the confidence stop ended marks its last draft stopped, with Python's words", () => {
  // STEP's last draft is the model's own, with own q 0.3 (q_raw): below a bar of 0.4, not below 0.25
  assert.equal(
    stopWords(STEP, 0.4),
    "drafting stopped after this draft: the draft model's own q = 0.300 (before temperature; the rule's q, after temperature, is 0.400) is below 0.4, the stop below q",
  );
  assert.equal(stopWords(STEP, 0.25), "");
  assert.equal(stopWords(STEP, null), "");
  const copiedLast = { ...STEP, draft: [STEP.draft[1], STEP.draft[0]] };
  assert.equal(stopWords(copiedLast, 0.4), "", "a copy never stops the chain");
  const marks = stepView(STEP, 0.4).all((n) => n.className === "stopped muted");
  assert.equal(marks.length, 1);
  assert.equal(marks[0].title, stopWords(STEP, 0.4));
  assert.equal(stepView(STEP).all((n) => n.className === "stopped muted").length, 0);
});
