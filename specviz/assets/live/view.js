// Drawing a browser run: the output text token by token, coloured by where each token came from, and
// each step as an accessible table (the drafts with q and p, the decision, the evaluation model's own
// token). Token text is model output: it goes into the page only as text (textContent), never as HTML.

import { literal, visible } from "./tokentext.js";

/** The app's palette (specviz/figures/palette.py), by what happened to a token. */
export const KIND = Object.freeze({
  accepted: { label: "accepted draft", short: "accepted", mark: "●" },
  rejected: { label: "rejected draft", short: "rejected", mark: "✕" },
  unevaluated: { label: "not tested (after a rejection)", short: "not tested", mark: "○" },
  correction: { label: "correction (evaluation model)", short: "correction", mark: "◆" },
  bonus: { label: "bonus (evaluation model)", short: "bonus", mark: "★" },
  alone: { label: "evaluation model alone", short: "", mark: "" },
});

/**
 * Why a step's chain drafted no more after its last draft (specviz/figures/step.py `stop_words`): that draft is
 * the model's own (not a copy) and its own q (before temperature) is below the stop bar; "" otherwise.
 * @param {Object} step  a trace step record
 * @param {number|null} bar  the run's stop below q (meta.gamma_policy.confidence), or null: no stop
 */
export function stopWords(step, bar) {
  const last = step.draft.at(-1);
  const own = last ? (last.q_raw ?? last.q) : null;
  if (!bar || !last || last.copied || own == null || own >= bar) return "";
  // the q the rule read is after temperature: both, as Python says them
  const after = last.q != null && last.q_raw != null ? `; the rule's q, after temperature, is ${last.q.toFixed(3)}` : "";
  return `drafting stopped after this draft: the draft model's own q = ${own.toFixed(3)} (before temperature${after}) is below ${bar}, the stop below q`;
}

/** What a copied draft's marker says (specviz/figures/step.py `copied_words`): "" for the model's own. */
export function copiedWords(n) {
  return n ? `copied: the last ${n} tokens occurred earlier, and this followed them` : "";
}

/** The decision cell: mark and short word, the long words as its title. */
function decisionCell(kind, why) {
  const td = el("td", `decision ${kind}`, `${KIND[kind].mark} ${KIND[kind].short}`);
  td.title = why ? `${KIND[kind].label}: ${why}` : KIND[kind].label;
  return td;
}

/** An element with a class and text (never HTML). */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** A probability as text: 3 significant digits, small ones in scientific notation. */
export function fmtProb(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (x === 0) return "0";
  return x < 1e-3 ? x.toExponential(1) : x.toPrecision(3);
}

/** A table cell with the number and a bar as wide as the probability. */
function probCell(x, kind) {
  const td = el("td", "num");
  const bar = el("span", `bar ${kind}`);
  bar.style.width = `${Math.max(0, Math.min(1, x ?? 0)) * 100}%`;
  bar.setAttribute("aria-hidden", "true");
  td.append(el("span", "v", fmtProb(x)), el("span", "track")); // the bar sits in its track
  td.lastChild.append(bar);
  return td;
}

/**
 * The output so far: one span per token, its kind as a class (colour) and as its title.
 * @param {HTMLElement} box
 */
export function outputView(box) {
  box.replaceChildren();
  return {
    /** @param {string} text  @param {keyof KIND} kind */
    add(text, kind) {
      const span = el("span", `tok ${kind}`, literal(text));
      span.title = KIND[kind].label;
      box.append(span);
    },
  };
}

/**
 * One step as a table: a row per draft (token, q, p, decision), then the evaluation model's token.
 * A draft the prompt-lookup fallback copied from earlier text is marked "copied" (its q is 1).
 * The probabilities are the models' own (before warping) when the trace logged them: at
 * temperature 0 the warped p is 1 for its argmax and 0 elsewhere, which says nothing of how sure it was.
 * The last draft of a chain the confidence stop ended is marked "stopped" (stopWords says why).
 * @param {Object} step  a trace step record (trace.js stepRecord)
 * @param {number|null} [stopBelow]  the run's stop below q, or null: no stop
 * @returns {HTMLElement}
 */
export function stepView(step, stopBelow = null) {
  const n = step.n_accepted;
  const box = el("section", "step");
  box.dataset.index = String(step.index);
  const gamma = step.draft.length;
  const head = el("h3", null, `Step ${step.index + 1}: ${n} of ${gamma} draft${gamma === 1 ? "" : "s"} accepted`);
  box.append(head);
  const table = el("table", "steptable");
  const raw = step.draft.some((d) => "q_raw" in d) || step.verify.some((v) => "p_raw" in v);
  const copies = step.draft.some((d) => d.copied);
  table.append(
    el(
      "caption",
      "sr",
      `Step ${step.index + 1}: each draft token with the draft model's q and the evaluation model's p${raw ? " (before temperature)" : ""}, and what the rule decided.` +
        (copies ? " A draft marked copied was copied from earlier text, where the draft model was unsure: its q is 1." : ""),
    ),
  );
  const thead = el("thead");
  const hr = el("tr");
  for (const h of ["", "token", "q (draft)", "p (evaluation)", "decision"]) hr.append(el("th", null, h));
  hr.firstChild.setAttribute("aria-label", "position");
  thead.append(hr);
  const body = el("tbody");
  step.draft.forEach((d, j) => {
    const v = step.verify[j];
    const kind = v.accepted === true ? "accepted" : v.accepted === false ? "rejected" : "unevaluated";
    const tr = el("tr", kind);
    const token = el("td", "token", visible(d.token));
    if (d.copied) {
      const mark = el("span", "copied muted", "copied"); // text only: the words, never the token, as HTML
      mark.title = copiedWords(d.copied);
      token.append(" ", mark);
    }
    const stopped = j === step.draft.length - 1 ? stopWords(step, stopBelow) : "";
    if (stopped) {
      const mark = el("span", "stopped muted", "stopped"); // text only, as the copied mark
      mark.title = stopped;
      token.append(" ", mark);
    }
    tr.append(el("td", "pos", `${j + 1}`), token);
    tr.append(probCell(d.q_raw ?? d.q, "q"), probCell(v.p_raw ?? v.p, "p"));
    tr.append(decisionCell(kind));
    body.append(tr);
  });
  if (step.next) {
    const kind = step.next.kind; // "correction" or "bonus"
    const tr = el("tr", kind);
    tr.append(el("td", "pos", `${n + 1}`), el("td", "token", visible(step.next.token)));
    tr.append(el("td", "num", "–"), probCell(step.next.p_raw ?? step.next.prob, "p"));
    const why = kind === "bonus" ? "every draft accepted, one more token from p" : `the evaluation model's own token, from ${step.next.source}`;
    tr.append(decisionCell(kind, why));
    body.append(tr);
  }
  table.append(thead, body);
  box.append(table);
  return box;
}
