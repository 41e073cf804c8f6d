// specviz trace player: steps through a trace in the browser, without asking a server.
//
// The data comes from specviz.teach.player (Python): every step's words, table and Plotly figure specs,
// gzip + base64 packed. This file only lays them out and moves between steps. Trace text
// (tokens, prompts, names) is put into the page with textContent only, never as markup; figure
// labels arrive escaped for Plotly by specviz.figures.
//
// Used twice: as the Streamlit component of the step-through page (specviz/ui/player.py) and
// inlined in a lesson file (specviz/lesson.py). Plain script, no imports: it is handed the Plotly.js it
// draws with (opts.plotly), else uses window.Plotly.
/* exported specvizPlayer, specvizUnpack */
"use strict";

async function specvizUnpack(packed) {
  const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
  if (typeof DecompressionStream === "undefined") {
    throw new Error("This browser cannot unpack the lesson (no DecompressionStream): use a current browser.");
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}

function svzEl(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined && text !== null) el.textContent = String(text);
  return el;
}

// the window of `size` steps around `current`, as specviz.figures.window computes it
function svzWindow(n, current, size) {
  size = Math.max(1, Math.min(size, n));
  const start = Math.min(Math.max(0, current - Math.floor(size / 3)), Math.max(0, n - size));
  return [start, start + size];
}

const SVZ_CONFIG = { displayModeBar: false, responsive: true };
const SVZ_SPEEDS = [0.25, 0.5, 1, 2, 4];

// root: an element to fill; sources: [{name, packed}] (one or more traces); opts:
//   step: the step to open at; link: "query" (?step=N, the app) or "hash" (#step=N, a lesson file);
//   keys: listen to the keyboard (default true). Returns {destroy, go, state}.
function specvizPlayer(root, sources, opts) {
  opts = opts || {};
  const st = { data: null, k: 0, playing: null, speed: 1, source: 0 };
  const Plotly = opts.plotly || window.Plotly;
  let destroyed = false;
  let loads = 0; // a newer load() supersedes an older one still unpacking
  const times = (window.__svzTimes = window.__svzTimes || []); // key press → painted, ms (browser tests)
  let pressedAt = null;
  root.textContent = "";
  root.classList.add("svz");

  // ------------------------------------------------------------ layout (built once)
  const top = svzEl("div", "svz-top");
  const chooser = svzEl("select", "svz-chooser");
  chooser.setAttribute("aria-label", "Trace");
  sources.forEach((s, i) => chooser.appendChild(Object.assign(svzEl("option", null, s.name), { value: String(i) })));
  if (sources.length > 1) top.appendChild(chooser);
  const title = svzEl("div", "svz-meta");
  top.appendChild(title);
  const nav = svzEl("div", "svz-nav");
  const mk = (label, hint, fn) => {
    const b = svzEl("button", "svz-btn", label);
    b.type = "button";
    b.title = hint;
    b.onclick = fn;
    nav.appendChild(b);
    return b;
  };
  const bFirst = mk("« First", "Home", () => go(0));
  const bPrev = mk("◀ Prev", "←", () => go(st.k - 1));
  const bNext = mk("Next ▶", "→", () => go(st.k + 1));
  const bLast = mk("Last »", "End", () => st.data && go(st.data.n - 1));
  const bPlay = mk("Play", "Space", () => togglePlay());
  const speed = svzEl("select", "svz-speed");
  speed.setAttribute("aria-label", "Speed (steps per second)");
  SVZ_SPEEDS.forEach((v) =>
    speed.appendChild(Object.assign(svzEl("option", null, `${v} step${v === 1 ? "" : "s"}/s`), { value: String(v) })),
  );
  speed.value = "1";
  speed.onchange = () => {
    st.speed = Number(speed.value);
    if (st.playing) {
      togglePlay();
      togglePlay();
    }
  };
  nav.appendChild(speed);
  const slider = svzEl("input", "svz-slider");
  slider.type = "range";
  slider.min = "0";
  slider.setAttribute("aria-label", "Step");
  slider.oninput = () => go(Number(slider.value));
  nav.appendChild(slider);
  const keysHint = svzEl("div", "svz-caption");
  // the frames of the current step and the steps next to it: the neighbours are drawn ahead of time,
  // hidden, because Plotly takes tens of milliseconds per figure and a key press should find its
  // step finished
  const view = svzEl("div", "svz-view");
  const error = svzEl("div", "svz-error");
  root.append(top, nav, keysHint, view, error);
  const frames = new Map(); // step → {k, el, jobs}
  let queue = []; // [frame, job] pairs still to draw, the current step's first
  let timer = null;
  let dir = 1;
  let waiting = null; // {k, t0}: a key press whose step is not painted yet

  // ------------------------------------------------------------ one step's frame
  function plotJob(div, spec) {
    return () => {
      if (!spec) {
        div.style.display = "none";
        return;
      }
      div.style.display = "";
      const layout = Object.assign({ template: st.data.template }, spec.layout);
      Plotly.react(div, spec.data, layout, SVZ_CONFIG);
    };
  }

  // the timeline's window at step k: its steps' points, its y axis, its height, the step's band
  function timelineSpec(k) {
    const d = st.data;
    const tl = d.timeline;
    const [start, stop] = svzWindow(d.n, k, tl.rows);
    const data = tl.spec.data.map((tr) => {
      if (!tr.y || (tr.y.length === 1 && tr.y[0] === null)) return tr; // a legend-only entry
      const keep = [];
      tr.y.forEach((y, i) => {
        if (y >= start && y < stop) keep.push(i);
      });
      const out = Object.assign({}, tr);
      for (const key of ["x", "y", "text", "hovertext", "customdata"]) {
        if (Array.isArray(tr[key])) out[key] = keep.map((i) => tr[key][i]);
      }
      return out;
    });
    const layout = JSON.parse(JSON.stringify(tl.spec.layout));
    const steps = [];
    for (let s = start; s < stop; s++) steps.push(s);
    Object.assign(layout.yaxis, {
      tickvals: steps,
      ticktext: steps.map((s) => `step ${s}`),
      range: [stop - 0.5, start - 0.5],
    });
    layout.height = Math.trunc((tl.height[0] + tl.height[1] * Math.max(1, stop - start)) * tl.height[2]);
    layout.shapes = [Object.assign({}, tl.highlight, { y0: k - 0.5, y1: k + 0.5 })];
    const note =
      stop - start < d.n ? `Showing steps ${start}–${stop - 1} of ${d.n}; the window follows the current step.` : "";
    return { spec: { data, layout }, note };
  }

  function wordsInto(left, s, k) {
    const d = st.data;
    left.appendChild(svzEl("p", "svz-label", `${d.text.context}: ${s.context}`));
    if (d.prompt) left.appendChild(svzEl("pre", "svz-prompt", d.prompt));
    const tokens = svzEl("div", "svz-tokens");
    const before = [];
    for (const t of d.tokens) if (t[2] < k) before.push(t);
    const shown = before.slice(-d.context_tokens);
    if (shown.length < before.length) {
      const hidden = before.length - shown.length;
      tokens.appendChild(svzEl("span", "svz-hidden", d.text.hidden.replace("{n}", hidden.toLocaleString("en"))));
    }
    for (const [text, kind] of shown) {
      const span = svzEl("span", "svz-tok", text);
      span.style.background = d.kinds[kind].tint;
      span.title = d.kinds[kind].label;
      tokens.appendChild(span);
      if (text.includes("⏎")) tokens.appendChild(document.createElement("br"));
    }
    left.appendChild(tokens);
    left.appendChild(svzEl("p", "svz-label", d.text.decisions));
    const describe = svzEl("ul", "svz-describe");
    for (const line of s.describe) describe.appendChild(svzEl("li", null, line));
    left.appendChild(describe);
    left.appendChild(svzEl("p", "svz-label", d.text.next));
    left.appendChild(svzEl("div", "svz-next", s.next));
  }

  function distributionsInto(right, s) {
    const d = st.data;
    right.appendChild(svzEl("p", "svz-label", d.greedy ? d.text.distributions_greedy : d.text.distributions));
    if (!s.distributions) {
      right.appendChild(svzEl("p", "svz-caption", d.text.no_distributions));
      return [];
    }
    const dist = s.distributions;
    const pick = svzEl("div", "svz-radio");
    pick.setAttribute("role", "radiogroup");
    pick.setAttribute("aria-label", d.text.distributions_at);
    pick.title = d.text.distributions_help;
    const plotDiv = svzEl("div", "svz-plot svz-distribution");
    const buttons = dist.labels.map((label, i) => {
      const b = svzEl("button", "svz-pos", label);
      b.type = "button";
      b.setAttribute("role", "radio");
      b.onclick = () => choose(i);
      pick.appendChild(b);
      return b;
    });
    const mark = (i) =>
      buttons.forEach((b, j) => {
        b.classList.toggle("svz-on", i === j);
        b.setAttribute("aria-checked", String(i === j));
      });
    function choose(i) {
      mark(i);
      plotJob(plotDiv, dist.specs[i])();
    }
    const first = Math.max(0, dist.positions.indexOf(dist.default));
    mark(first);
    const note = (d.greedy ? d.text.residual_greedy : d.text.residual) + (dist.untempered ? d.text.untempered : "");
    right.append(pick, plotDiv, svzEl("p", "svz-caption", note));
    return [plotJob(plotDiv, dist.specs[first])];
  }

  // The step's table, full width under the two columns: eight columns do not fit beside a chart
  function tableInto(frameEl, s) {
    if (!s.table.rows.length) return;
    const d = st.data;
    const table = svzEl("table", "svz-table");
    const head = table.createTHead().insertRow();
    for (const c of s.table.columns) head.appendChild(svzEl("th", null, c));
    const body = table.createTBody();
    s.table.rows.forEach((row, i) => {
      const tr = body.insertRow();
      row.forEach((cell, j) => {
        const td = svzEl("td", null, cell);
        if (s.table.columns[j] === "outcome") td.style.background = d.kinds[s.table.kinds[i]].tint;
        if (s.table.columns[j] === "draft token") td.className = "svz-tokcell";
        tr.appendChild(td);
      });
    });
    const wrap = svzEl("div", "svz-table-wrap");
    wrap.appendChild(table);
    frameEl.append(svzEl("p", "svz-label", d.text.table), wrap);
  }

  function buildFrame(k) {
    const d = st.data;
    const s = d.steps[k];
    const frame = { k, el: svzEl("div", "svz-frame"), jobs: [] };
    frame.el.appendChild(svzEl("h3", "svz-heading", s.heading));
    const cols = svzEl("div", "svz-cols");
    const left = svzEl("div", "svz-left");
    const right = svzEl("div", "svz-right");
    cols.append(left, right);
    frame.el.appendChild(cols);
    wordsInto(left, s, k);
    right.appendChild(svzEl("p", "svz-label", d.text.acceptance));
    if (s.acceptance) {
      const acc = svzEl("div", "svz-plot svz-acceptance");
      right.appendChild(acc);
      frame.jobs.push(plotJob(acc, s.acceptance));
    } else {
      right.appendChild(svzEl("p", "svz-caption", d.text.no_acceptance));
    }
    frame.jobs.push(...distributionsInto(right, s));
    tableInto(frame.el, s);
    if (s.tree) {
      const box = svzEl("div", "svz-tree");
      box.appendChild(svzEl("p", "svz-label", d.text.tree));
      const tcols = svzEl("div", "svz-cols");
      const tl = svzEl("div", "svz-left");
      const tr = svzEl("div", "svz-right");
      const treeDiv = svzEl("div", "svz-plot svz-treeplot");
      const maskDiv = svzEl("div", "svz-plot svz-mask");
      tl.append(treeDiv, svzEl("p", "svz-caption", s.tree.words));
      tr.append(svzEl("p", "svz-label", d.text.mask), maskDiv);
      tcols.append(tl, tr);
      box.appendChild(tcols);
      frame.el.appendChild(box);
      frame.jobs.push(plotJob(treeDiv, s.tree.tree), plotJob(maskDiv, s.tree.mask));
    }
    frame.el.appendChild(svzEl("p", "svz-label", d.text.timeline));
    const tlDiv = svzEl("div", "svz-plot svz-timeline");
    const { spec, note } = timelineSpec(k);
    frame.el.append(tlDiv, svzEl("p", "svz-caption", note));
    frame.jobs.push(() => {
      plotJob(tlDiv, spec)();
      tlDiv.on("plotly_click", (ev) => {
        const pt = ev && ev.points && ev.points[0];
        if (pt && Number.isFinite(pt.y)) go(pt.y);
      });
    });
    return frame;
  }

  function dropFrame(f) {
    for (const div of f.el.querySelectorAll(".js-plotly-plot")) Plotly.purge(div);
    f.el.remove();
    frames.delete(f.k);
  }

  // ------------------------------------------------------------ drawing, one figure per task
  function pump() {
    timer = null;
    const item = queue.shift();
    if (item && frames.get(item[0].k) === item[0]) item[1]();
    settle();
    if (queue.length && !timer) timer = setTimeout(pump, 0);
  }

  function schedule(frame, first) {
    // the frame's jobs already queued (it was being drawn ahead) move to the front with the rest
    const queued = queue.filter(([f]) => f === frame);
    const items = queued.concat(frame.jobs.splice(0).map((job) => [frame, job]));
    const others = queue.filter(([f]) => f !== frame);
    queue = first ? items.concat(others) : others.concat(items);
    if (!timer && queue.length) timer = setTimeout(pump, 0);
  }

  // once the current step is fully drawn: note how long its key press took, then draw the next step ahead
  function settle() {
    const cur = frames.get(st.k);
    if (!cur || queue.some(([f]) => f === cur)) return;
    if (waiting && waiting.k === st.k) {
      const t0 = waiting.t0;
      waiting = null;
      afterPaint(() => times.push(performance.now() - t0));
    }
    for (const f of [...frames.values()]) if (Math.abs(f.k - st.k) > 2) dropFrame(f);
    const k = st.k;
    afterPaint(() => {
      const ahead = k + dir;
      if (st.k !== k || ahead < 0 || ahead >= st.data.n) return;
      let f = frames.get(ahead);
      if (!f) {
        f = buildFrame(ahead);
        frames.set(ahead, f);
        f.el.setAttribute("aria-hidden", "true");
        for (const b of f.el.querySelectorAll("button")) b.tabIndex = -1;
        view.appendChild(f.el);
      }
      schedule(f, false);
    });
  }

  // after the browser has painted what is on screen now
  function afterPaint(fn) {
    requestAnimationFrame(() => setTimeout(fn, 0));
  }

  function render(k) {
    const d = st.data;
    dir = st.k >= 0 && k < st.k ? -1 : 1;
    st.k = k;
    root.dataset.step = String(k);
    bFirst.disabled = bPrev.disabled = k === 0;
    bNext.disabled = bLast.disabled = k >= d.n - 1;
    slider.value = String(k);
    // keep the frames next to this step only: stepping faster than drawing must not pile them up
    for (const old of [...frames.values()]) if (Math.abs(old.k - k) > 2) dropFrame(old);
    let f = frames.get(k);
    if (!f) {
      f = buildFrame(k);
      frames.set(k, f);
    }
    const active = document.activeElement;
    // every frame sits in the same grid cell; only the current one is visible, so a step changes
    // what is painted without laying anything out again
    if (f.el.parentNode !== view) view.appendChild(f.el);
    for (const el of view.children) {
      el.classList.toggle("svz-current", el === f.el);
      // a step drawn ahead is neither read aloud nor reached with Tab (not `inert`: toggling it costs
      // Chromium ~50 ms of style and accessibility work per step)
      el.setAttribute("aria-hidden", String(el !== f.el));
      for (const b of el.querySelectorAll("button")) b.tabIndex = el === f.el ? 0 : -1;
    }
    if (active && view.contains(active) && !f.el.contains(active)) root.focus({ preventScroll: true });
    // drop queued work of frames no longer next to this step; draw what this one still lacks first
    const kept = [];
    for (const [fr, job] of queue) {
      if (Math.abs(fr.k - k) <= 1) kept.push([fr, job]);
      else fr.jobs.push(job); // drawn if that step is visited again
    }
    queue = kept;
    schedule(f, true);
    settle();
  }

  function link(k) {
    try {
      const url = new URL(window.location.href);
      if (opts.link === "query") url.searchParams.set("step", String(k));
      else if (opts.link === "hash") url.hash = sources.length > 1 ? `trace=${st.source}&step=${k}` : `step=${k}`;
      else return;
      window.history.replaceState(window.history.state, "", url.toString());
    } catch (e) {
      /* a page that cannot change its URL (some file:// viewers): the step still changes */
    }
  }

  function go(k, t0) {
    if (!st.data || !st.data.n) return;
    k = Math.max(0, Math.min(st.data.n - 1, Math.round(k)));
    if (k === st.k) return;
    if (t0 !== undefined) waiting = { k, t0 };
    render(k);
    link(k);
  }

  function togglePlay() {
    if (!st.data || !st.data.n) return;
    if (st.playing) {
      clearInterval(st.playing);
      st.playing = null;
    } else {
      if (st.k >= st.data.n - 1) go(0);
      st.playing = setInterval(() => {
        if (queue.some(([f]) => f.k === st.k)) return; // still drawing this step: wait a tick
        if (st.k >= st.data.n - 1) togglePlay();
        else go(st.k + 1);
      }, 1000 / st.speed);
    }
    bPlay.textContent = st.playing ? "Pause" : "Play";
  }

  function onKey(ev) {
    if (!st.data || ev.altKey || ev.ctrlKey || ev.metaKey || !root.isConnected) return;
    const t = ev.target;
    const tag = ((t && t.tagName) || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || (t && t.isContentEditable)) return;
    // the page's own controls keep their keys (a tab strip, a slider, a link, an expander)
    if (t && t.closest && !root.contains(t) && t.closest("a, summary, button, [role=slider], [role=tab], [role=radio]"))
      return;
    const to = { ArrowRight: st.k + 1, ArrowLeft: st.k - 1, Home: 0, End: st.data.n - 1 }[ev.key];
    if (to !== undefined) {
      ev.preventDefault();
      go(to, ev.timeStamp);
    } else if (ev.key === " " && tag !== "button") {
      ev.preventDefault();
      togglePlay();
    }
  }
  if (opts.keys !== false) document.addEventListener("keydown", onKey);

  function clear() {
    if (st.playing) togglePlay();
    queue = [];
    waiting = null;
    for (const f of [...frames.values()]) dropFrame(f);
    view.textContent = "";
    st.k = -1;
  }

  async function load(i, step) {
    const mine = ++loads;
    error.textContent = "";
    chooser.value = String(i);
    try {
      const data = await specvizUnpack(sources[i].packed);
      if (destroyed || mine !== loads) return; // unmounted, or another trace chosen meanwhile
      clear();
      st.data = data;
      st.source = i;
      title.textContent = data.meta_line || data.name;
      slider.max = String(Math.max(0, data.n - 1));
      slider.style.display = data.n > 1 ? "" : "none";
      keysHint.textContent = data.text.keys;
      root.classList.toggle("svz-present", Boolean(data.presentation));
      for (const b of [bFirst, bPrev, bNext, bLast, bPlay]) b.disabled = data.n <= 1;
      if (!data.n) {
        delete root.dataset.step;
        view.appendChild(svzEl("p", "svz-heading", "This trace has no steps to show."));
        return;
      }
      go(Number.isFinite(step) ? step : 0);
    } catch (e) {
      if (destroyed || mine !== loads) return;
      clear();
      st.data = null;
      error.textContent = `This trace could not be shown: ${e.message}`;
    }
  }
  chooser.onchange = () => load(Number(chooser.value), 0);
  root.tabIndex = -1; // focus lands here when the step it was in is swapped out
  const first = Math.max(0, Math.min(sources.length - 1, Number(opts.trace) || 0));
  load(first, opts.step);

  return {
    go,
    open: (i, step) => load(i, step),
    state: st,
    destroy() {
      destroyed = true;
      clear();
      document.removeEventListener("keydown", onKey);
    },
  };
}
