"""Figures: pure functions from a trace (or one of its steps) to a Plotly figure, plus the words.

No Streamlit here: the UI layer (specviz.ui) decides where a figure goes; this module decides
what it shows. One palette and one set of marker shapes stand for the five outcomes of a drafted
or generated token everywhere — colour plus shape, so the panels read without colour vision.

Token text comes from trace files, which may be hostile, and Plotly renders a subset of HTML in
labels and hovers (and LaTeX between dollar signs where MathJax is loaded): every piece of trace
text goes through `esc` before it reaches a figure. Outside figures, `visible` (tokens) and
`literal` (prompts, outputs, names) show control, bidi and format characters as escapes.

Traces may be minimal (an event-log import, another engine's log): q, p, r, top lists, timings
or the evaluation model's own token can be missing. Every figure draws what is there, and
`missing_parts` says what is not and what that costs, for the pages to tell the reader.
"""

from __future__ import annotations

import html
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import plotly.graph_objects as go

from specviz import figspec
from specviz.figspec import Spec, to_figure
from specviz.trace import VERSION, TopEntry, Trace, byte_label, no_draft_reason, summarize, token_bytes

__all__ = [
    "COLORS",
    "KINDS",
    "LABELS",
    "SYMBOLS",
    "Cell",
    "Costs",
    "Gap",
    "Kind",
    "OutTok",
    "acceptance_figure",
    "accepted_lengths_figure",
    "costs",
    "describe_next",
    "describe_step",
    "distribution_figure",
    "esc",
    "expected_tokens",
    "implied_speedup",
    "literal",
    "missing_parts",
    "per_position_figure",
    "provenance",
    "residual_top",
    "step_cells",
    "step_picture",
    "timeline_figure",
    "timing_figure",
    "tokens_per_step_figure",
    "toy_trace",
    "verdict",
    "visible",
    "window",
]

Kind = Literal["accepted", "rejected", "unevaluated", "correction", "bonus"]
KINDS: tuple[Kind, ...] = ("accepted", "rejected", "unevaluated", "correction", "bonus")
# Okabe–Ito colours (safe for the common colour-vision deficiencies), each with its own shape
COLORS: dict[Kind, str] = {
    "accepted": "#009E73",  # bluish green
    "rejected": "#D55E00",  # vermillion
    "unevaluated": "#9E9E9E",  # grey
    "correction": "#0072B2",  # blue
    "bonus": "#CC79A7",  # reddish purple
}
SYMBOLS: dict[Kind, str] = {
    "accepted": "circle",
    "rejected": "x",
    "unevaluated": "circle-open",
    "correction": "diamond",
    "bonus": "star",
}
LABELS: dict[Kind, str] = {
    "accepted": "accepted draft",
    "rejected": "rejected draft",
    "unevaluated": "never evaluated",
    "correction": "correction (evaluation model)",
    "bonus": "bonus (evaluation model)",
}
P_COLOR, Q_COLOR, NEUTRAL = "#404040", "#A0A0A0", "#D9D9D9"
_FONT = dict(family="DejaVu Sans Mono, Menlo, Consolas, monospace")


# ---------------------------------------------------------------- token text


_WS = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "↵"}


# control, format (bidi overrides, zero-width), line/paragraph separators, lone surrogates
_HIDDEN = ("Cc", "Cf", "Zl", "Zp", "Cs")


def _escape_hidden(ch: str) -> str:
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


def presented(fig: go.Figure, scale: float = 1.6) -> go.Figure:
    """A copy of `fig` for a projector: every font `scale` times larger, the figure taller
    (specviz.figspec.presented, which the browser player applies to its specs too)."""
    return to_figure(figspec.presented(fig.to_plotly_json(), scale))


END_MARK = " ⏹ (end of turn)"


def end_tokens(trace: Trace) -> list[str]:
    """The text of the end-of-sequence tokens this trace logged (e.g. "<|im_end|>")."""
    eos = set(trace.get("meta", {}).get("eos_token_ids") or [])
    found = {
        e["token"]
        for s in trace["steps"]
        for e in [*s["draft"], *([s["next"]] if s.get("next") else [])]
        if e["token_id"] in eos and e["token"]
    }
    return sorted(found)


def readable_output(text: str, trace: Trace) -> str:
    """Output text for people: an end-of-turn token shown as a marked end, not as "<|im_end|>"."""
    for tok in end_tokens(trace):
        text = text.replace(tok, END_MARK)
    return text


def plural(n: int, word: str) -> str:
    """ "1 token", "2 tokens", "0 tokens"."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def visible(text: str) -> str:
    """Token text with whitespace and control characters made visible: ' the\\n' → '␣the⏎'.

    Bidi overrides (U+202E), zero-width and other invisible characters become \\uXXXX, so a token
    can neither hide nor reorder the text around it.
    """
    if text == "":
        return "∅"
    out = []
    for ch in text:
        if ch in _WS:
            out.append(_WS[ch])
        elif unicodedata.category(ch) in _HIDDEN:
            out.append(_escape_hidden(ch))
        else:
            out.append(ch)
    return "".join(out)


def literal(text: object, limit: int | None = None) -> str:
    """Free text from a trace (a prompt, an output, a model name) as plain, safe characters.

    Newlines and tabs stay (they are layout); every other control, bidi or format character becomes
    \\uXXXX. Not escaped for markdown or HTML: pair it with the escaping of the place it goes.
    """
    s = text if isinstance(text, str) else str(text)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    if all(ch.isprintable() or ch in "\n\t" for ch in s):  # the common case, fast
        return s
    return "".join(ch if ch in "\n\t" or unicodedata.category(ch) not in _HIDDEN else _escape_hidden(ch) for ch in s)


def _plotly_safe(text: str) -> str:
    """HTML-escaped, and $ as an entity so Plotly never takes "$...$" for LaTeX."""
    return html.escape(text, quote=False).replace("$", "&#36;")


def esc(text: str, limit: int | None = None) -> str:
    """Visible and HTML-escaped, for Plotly labels and hovers (which render a subset of HTML)."""
    shown = visible(text)
    if limit is not None and len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return _plotly_safe(shown)


def _html(text: str, limit: int = 160) -> str:
    """A sentence (whose token parts are already visible()) escaped for Plotly."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _plotly_safe(text)


def _num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


# ---------------------------------------------------------------- one step, cell by cell


@dataclass(frozen=True)
class Cell:
    """One drafted token (position 0..gamma-1) or the evaluation model's own token."""

    step: int
    position: int  # 0-based draft position; for the model's token: its place after n_accepted drafts
    kind: Kind
    token: str
    token_id: int
    p: float | None
    q: float | None
    test: str  # the rule's test in words, e.g. "r = 0.12 < min(1, p/q) = 0.87"
    p_raw: float | None = None  # the models' own probabilities before warping, where logged
    q_raw: float | None = None

    @property
    def from_model(self) -> bool:
        return self.kind in ("correction", "bonus")


def _rule(trace: Trace) -> tuple[str, dict[str, Any]]:
    """The rule's name and parameters; name "" when the trace does not say (a minimal trace)."""
    rule = trace.get("meta", {}).get("rule") or {}
    return str(rule.get("name", "")), dict(rule.get("params") or {})


def _source(rule: str, nxt: dict[str, Any]) -> str:
    """Where the evaluation model's token was drawn from: as logged, else what the rule implies ("" unknown)."""
    if isinstance(nxt.get("source"), str):
        return str(nxt["source"])
    if rule == "greedy":
        return "argmax"
    if nxt.get("kind") == "bonus" or rule == "typical":
        return "p" if rule else ""
    return "residual" if rule in ("sampling", "threshold") else ""


def _draft_kind(accepted: bool | None) -> Kind:
    return "unevaluated" if accepted is None else ("accepted" if accepted else "rejected")


def _test_words(rule: str, params: dict[str, Any], v: dict[str, Any], q: float | None = None) -> str:
    acc = v.get("accepted")
    if acc is None:
        return "never evaluated: an earlier draft was rejected"
    if rule == "sampling":
        a, r = v.get("accept_prob"), v.get("r")
        if a is None and r is not None and v.get("p") is not None and q:
            a = min(1.0, v["p"] / q)
        if a is None or r is None:
            return "accepted" if acc else "rejected"
        return f"r = {r:.3f} {'<' if acc else '≥'} min(1, p/q) = {a:.3f}"
    if rule == "threshold":
        ratio = v.get("ratio")
        if ratio is None and v.get("p") is not None and q:
            ratio = v["p"] / q
        tau = params.get("tau")
        return f"p/q = {_num(ratio)} {'≥' if acc else '<'} τ = {tau}"
    if rule == "typical":
        return f"p = {_num(v.get('p'))} {'>' if acc else '≤'} cutoff = {_num(v.get('cutoff'))}"
    if rule != "greedy":  # the trace does not name its rule: say what was decided, and r if logged
        r = v.get("r")
        return ("accepted" if acc else "rejected") + (f" (r = {r:.3f})" if r is not None else "")
    top = v.get("top") or []
    if acc:
        return "the evaluation model's argmax"
    best = f" ('{visible(top[0]['token'])}', p = {top[0]['prob']:.3f})" if top else ""
    return f"not the evaluation model's argmax{best}"


def step_cells(trace: Trace, k: int) -> list[Cell]:
    """The drafted tokens of step k, then the evaluation model's token (if the step has one)."""
    step = trace["steps"][k]
    rule, params = _rule(trace)
    cells = [
        Cell(
            k,
            j,
            _draft_kind(v.get("accepted")),
            d["token"],
            d["token_id"],
            v.get("p"),
            d.get("q"),
            _test_words(rule, params, v, d.get("q")),
            v.get("p_raw"),
            d.get("q_raw"),
        )
        for j, (d, v) in enumerate(zip(step["draft"], step["verify"], strict=True))
    ]
    nxt = step.get("next")
    if nxt is not None:
        source = {"residual": "norm(max(0, p − q))", "p": "p", "argmax": "argmax p"}.get(_source(rule, nxt), "")
        how = f"drawn from {source}" if source else "drawn by the evaluation model"
        prob = nxt.get("prob")
        chance = f"with probability {prob:.3f}" if prob is not None else "(its probability is not logged)"
        cells.append(
            Cell(
                k,
                step["n_accepted"],
                nxt["kind"],
                nxt["token"],
                nxt["token_id"],
                prob,
                None,
                f"{how} {chance}",
                nxt.get("p_raw"),
            )
        )
    return cells


def _hover(cell: Cell) -> str:
    where = f"draft {cell.position + 1}" if not cell.from_model else f"evaluation model's token (after {cell.position})"
    lines = [
        f"step {cell.step} · {where}",
        f"token '{visible(cell.token)}' (id {cell.token_id})",
        LABELS[cell.kind],
    ]
    if not cell.from_model:
        lines.append(f"q = {_num(cell.q)}   p = {_num(cell.p)}")
    lines.append(cell.test)
    return "<br>".join(_html(line, 120) for line in lines)


# ---------------------------------------------------------------- provenance of the output


@dataclass(frozen=True)
class OutTok:
    """One token of the output, with where it came from."""

    token: str
    token_id: int
    kind: Kind  # accepted | correction | bonus
    step: int
    raw: bytes = b""  # what it adds to the text (bytes: a character split over tokens joins up again)


def provenance(trace: Trace) -> list[OutTok]:
    """The output tokens in order with their provenance, cut at EOS and the budget like the output."""
    meta = trace.get("meta", {})
    eos = set(meta.get("eos_token_ids") or [])
    budget = meta.get("max_new_tokens") or math.inf
    out: list[OutTok] = []
    for step in trace["steps"]:
        toks = [
            OutTok(d["token"], d["token_id"], "accepted", step["index"], token_bytes(d))
            for d in step["draft"][: step["n_accepted"]]
        ]
        nxt = step.get("next")
        if nxt is not None:
            toks.append(OutTok(nxt["token"], nxt["token_id"], nxt["kind"], step["index"], token_bytes(nxt)))
        for t in toks:
            if len(out) >= budget:
                return out
            out.append(t)
            if t.token_id in eos:
                return out
    return out


# ---------------------------------------------------------------- what a minimal trace lacks


@dataclass(frozen=True)
class Gap:
    """Something a trace does not record, and what the pages cannot show because of it."""

    key: str  # q | p | r | top | next | timing | rule | prompt | token_ids
    what: str  # the missing data, in words
    missing: int  # how many places lack it
    of: int  # out of how many places that could have it
    consequence: str  # what the reader loses

    def sentence(self) -> str:
        share = "" if self.missing >= self.of else f" (in {self.missing} of {self.of})"
        return f"no {self.what}{share}: {self.consequence}"


def missing_parts(trace: Trace) -> list[Gap]:
    """What this trace does not record, most important first; [] for a complete trace.

    A part counts as missing where it is absent or null at a place that should have it: q for
    every draft, p and the top lists at every position, r wherever the sampling rule (or an
    unnamed one) made a decision, the evaluation model's token and the timings for every step.
    """
    steps = trace.get("steps") or []
    meta = trace.get("meta") or {}
    rule, _ = _rule(trace)
    drafts = [(d, v) for s in steps for d, v in zip(s["draft"], s["verify"], strict=False)]
    decided = [v for _, v in drafts if v.get("accepted") is not None]
    nexts = [s["next"] for s in steps if s.get("next")]
    gaps: list[Gap] = []

    def add(key: str, what: str, missing: int, of: int, consequence: str) -> None:
        if missing > 0:
            gaps.append(Gap(key, what, missing, of, consequence))

    add(
        "q",
        "draft probabilities q",
        sum(d.get("q") is None for d, _ in drafts),
        len(drafts),
        "no q bars and no ratio p/q or min(1, p/q) in the acceptance diagram",
    )
    add(
        "p",
        "evaluation-model probabilities p",
        sum(v.get("p") is None for _, v in drafts),
        len(drafts),
        "no p bars in the acceptance diagram",
    )
    if rule in ("sampling", ""):
        add(
            "r",
            "random draws r",
            sum(v.get("r") is None for v in decided),
            len(decided),
            "the test r < min(1, p/q) cannot be shown, only its outcome",
        )
    tops = [x.get("top") for pair in drafts for x in pair] + [n.get("top") for n in nexts]
    add(
        "top",
        "top-k lists",
        sum(t is None for t in tops),
        len(tops),
        "no distributions panel (top tokens of p, q and the residual)",
    )
    add(
        "next",
        "evaluation-model tokens (correction or bonus)",
        sum("next" not in s for s in steps),
        len(steps),
        "the output lacks the tokens the evaluation model generated itself",
    )
    add(
        "timing",
        "step timings",
        sum(not s.get("timing_ms") for s in steps),
        len(steps),
        "no cost analysis (draft vs verify time, cost ratio c, ideal speedup)",
    )
    if not rule:
        add("rule", "acceptance rule", 1, 1, "decisions are shown as logged, not re-derived from p, q and r")
    prompt = trace.get("prompt") or {}
    if "token_ids" not in prompt or any("context_length" not in s for s in steps):
        add("prompt", "prompt tokens or context lengths", 1, 1, "the context length i of each step is unknown")
    source = meta.get("source")
    if isinstance(source, dict) and source.get("synthetic_token_ids") is True:
        add("token_ids", "token ids", 1, 1, "ids shown are numbered by distinct token text, not the model's ids")
    return gaps


# ---------------------------------------------------------------- the token timeline


def window(n_steps: int, current: int, size: int = 24) -> tuple[int, int]:
    """[start, stop) of at most `size` steps around `current`, clamped to the trace."""
    size = max(1, min(size, n_steps))
    start = min(max(0, current - size // 3), max(0, n_steps - size))
    return start, start + size


def _legend_only(kind: Kind, size: int = 12) -> dict[str, Any]:
    return dict(
        type="scatter",
        x=[None],
        y=[None],
        mode="markers",
        name=LABELS[kind],
        legendgroup=kind,
        marker=dict(color=COLORS[kind], symbol=SYMBOLS[kind], size=size, line=dict(width=2, color=COLORS[kind])),
    )


def timeline_gamma(trace: Trace) -> int:
    """The timeline's number of draft columns: the trace's longest draft (or meta.gamma), for every
    window, so the columns stay put while the reader steps."""
    steps = trace["steps"]
    return max([int(trace.get("meta", {}).get("gamma", 1))] + [len(s["draft"]) for s in steps])


# the current step's band on the timeline; the browser player draws the same (specviz.player)
TIMELINE_HIGHLIGHT = dict(
    type="rect", xref="paper", x0=0, x1=1, fillcolor="#FFE9A8", opacity=0.6, line=dict(width=0), layer="below"
)


def timeline_spec(trace: Trace, start: int, stop: int, selected: int | None = None) -> dict[str, Any]:
    """`timeline_figure` as a plain Plotly dict (specviz.figspec)."""
    steps = trace["steps"]
    start, stop = max(0, start), min(len(steps), stop)
    gamma = timeline_gamma(trace)
    by_kind: dict[Kind, list[Cell]] = {k: [] for k in KINDS}
    for k in range(start, stop):
        for cell in step_cells(trace, k):
            by_kind[cell.kind].append(cell)
    fig = Spec()
    # a token's label gets the room of one column: at gamma 16 twelve characters would overlap the next
    chars = max(3, min(12, 90 // (gamma + 2)))
    for kind in KINDS:
        cells = by_kind[kind]
        if not cells:
            fig.add_trace(_legend_only(kind))
            continue
        fig.add_trace(
            dict(
                type="scatter",
                x=[gamma + 1 if c.from_model else c.position + 1 for c in cells],
                y=[c.step for c in cells],
                mode="markers+text",
                name=LABELS[kind],
                legendgroup=kind,
                text=[esc(c.token, chars) for c in cells],
                textposition="middle right",
                textfont=dict(size=12, color="#202020", **_FONT),
                hovertext=[_hover(c) for c in cells],
                hovertemplate="%{hovertext}<extra></extra>",
                customdata=[c.step for c in cells],
                marker=dict(color=COLORS[kind], symbol=SYMBOLS[kind], size=13, line=dict(width=2, color=COLORS[kind])),
                # a click selects the step; do not fade the other markers
                selected=dict(marker=dict(opacity=1)),
                unselected=dict(marker=dict(opacity=1)),
                cliponaxis=False,
            )
        )
    if selected is not None and start <= selected < stop:
        fig.add_shape(**TIMELINE_HIGHLIGHT, y0=selected - 0.5, y1=selected + 0.5)
    rows = max(1, stop - start)
    fig.update_layout(
        height=130 + 28 * rows,
        margin=dict(l=10, r=10, t=80, b=10),
        legend=dict(orientation="h", yref="container", yanchor="top", y=1.0, x=0),
        clickmode="event+select",
        dragmode=False,
        hovermode="closest",
        plot_bgcolor="white",
    )
    fig.update_xaxes(
        tickvals=[*range(1, gamma + 1), gamma + 1],
        ticktext=[f"draft {j}" if gamma <= 8 else str(j) for j in range(1, gamma + 1)] + ["model's token"],
        title="draft position" if gamma > 8 else None,
        range=[0.6, gamma + 1 + max(0.9, chars * 0.09)],  # room for the model's token's label
        side="top",
        showgrid=False,
        zeroline=False,
        fixedrange=True,
    )
    fig.update_yaxes(
        tickvals=list(range(start, stop)),
        ticktext=[f"step {k}" for k in range(start, stop)],
        range=[stop - 0.5, start - 0.5],  # step 0 on top
        showgrid=True,
        gridcolor="#F0F0F0",
        zeroline=False,
        fixedrange=True,
    )
    return fig.to_dict()


def timeline_figure(trace: Trace, start: int, stop: int, selected: int | None = None) -> go.Figure:
    """One row per step in [start, stop), one marker per drafted token plus the model's token.

    Columns 1..gamma are the draft positions (gamma: the trace's longest draft, `timeline_gamma`); the
    last column is the evaluation model's token. Markers (not a heatmap) so that a click selects the
    step: y is the step index.
    """
    return to_figure(timeline_spec(trace, start, stop, selected))


# ---------------------------------------------------------------- the acceptance diagram


def _logged_or(value: float | None, c: Cell, derive: Any) -> float | None:
    """A logged number, else derived from the cell's p and q where both are known (and q > 0)."""
    if value is not None or c.p is None or not c.q:
        return value
    return float(derive(c.p, c.q))


def acceptance_spec(trace: Trace, k: int) -> dict[str, Any]:
    """`acceptance_figure` as a plain Plotly dict (specviz.figspec)."""
    step = trace["steps"][k]
    rule, params = _rule(trace)
    cells = [c for c in step_cells(trace, k) if not c.from_model]
    fig = Spec()
    if not cells:
        fig.add_annotation(
            text=_html(f"no drafts this step ({no_draft_reason(step)}): the evaluation model generated one token"),
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
        fig.update_layout(height=220, xaxis=dict(visible=False), yaxis=dict(visible=False), plot_bgcolor="white")
        return fig.to_dict()
    xs = [c.position + 1 for c in cells]
    has_q, has_p = any(c.q is not None for c in cells), any(c.p is not None for c in cells)
    if has_q:
        fig.add_trace(
            dict(
                type="bar",
                x=xs,
                y=[c.q for c in cells],
                name="q(x) draft",
                marker=dict(color=Q_COLOR, pattern=dict(shape="/", fillmode="overlay", fgcolor="white")),
                hovertemplate="q(x) = %{y:.3f}<extra></extra>",
            )
        )
    if has_p:
        fig.add_trace(
            dict(
                type="bar",
                x=xs,
                y=[c.p for c in cells],
                name="p(x) evaluation model",
                marker=dict(color=P_COLOR),
                hovertemplate="p(x) = %{y:.3f}<extra></extra>",
            )
        )
    absent = [name for name, has in (("q", has_q), ("p", has_p)) if not has]
    if absent:
        fig.add_annotation(
            text=f"{' and '.join(absent)} not logged in this trace",
            showarrow=False,
            x=0.99,
            y=0.99,
            xref="paper",
            yref="paper",
            xanchor="right",
            font=dict(color="#616161"),
        )
    verify = step["verify"]
    ymax = 1.05
    if rule == "sampling":
        fig.add_trace(
            dict(
                type="scatter",
                x=xs,
                y=[_logged_or(verify[c.position].get("accept_prob"), c, lambda p, q: min(1.0, p / q)) for c in cells],
                mode="markers",
                name="min(1, p/q)",
                marker=dict(symbol="line-ew", size=34, line=dict(width=3, color="black")),
                hovertemplate="min(1, p/q) = %{y:.3f}<extra></extra>",
            )
        )
        tested = [(c, verify[c.position].get("r")) for c in cells]
        test_name = "r"
    elif rule == "threshold":
        tau = float(params.get("tau", 0.0))
        ratios = [_logged_or(verify[c.position].get("ratio"), c, lambda p, q: p / q) for c in cells]
        finite = [r for r in ratios if r is not None]
        ymax = max(1.05, tau * 1.3, min(max(finite, default=0.0), 5.0) * 1.1)
        fig.add_hline(y=tau, line=dict(color="black", dash="dash"), annotation_text=f"τ = {tau:g}")
        tested = [(c, None if r is None else min(r, ymax)) for c, r in zip(cells, ratios, strict=True)]
        test_name = "p/q"
    elif rule == "typical":
        fig.add_trace(
            dict(
                type="scatter",
                x=xs,
                y=[verify[c.position].get("cutoff") for c in cells],
                mode="markers",
                name="cutoff = min(ε, δ·exp(−H(p)))",
                marker=dict(symbol="line-ew", size=34, line=dict(width=3, color="black")),
                hovertemplate="cutoff = %{y:.3f}<extra></extra>",
            )
        )
        tested = [(c, c.p) for c in cells]
        test_name = "p(x)"
    elif rule == "greedy":
        tops = [verify[c.position].get("top") or [] for c in cells]
        fig.add_trace(
            dict(
                type="scatter",
                x=xs,
                y=[t[0]["prob"] if t else None for t in tops],
                mode="markers",
                name="p of the argmax",
                marker=dict(symbol="line-ew", size=34, line=dict(width=3, color="black")),
                hovertemplate="max p = %{y:.3f}<extra></extra>",
            )
        )
        tested = [(c, c.p) for c in cells]
        test_name = "p(x)"
    else:  # the rule is not named: the decisions alone, at r where it was logged, else on top of p
        rs = [verify[c.position].get("r") for c in cells]
        test_name = "r" if any(r is not None for r in rs) else "decision"
        tested = [
            (c, r if r is not None else (c.p if c.p is not None else 0.5)) for c, r in zip(cells, rs, strict=True)
        ]
    for kind in ("accepted", "rejected", "unevaluated"):
        pts = [(c, y) for c, y in tested if c.kind == kind and y is not None]
        fig.add_trace(
            dict(
                type="scatter",
                x=[c.position + 1 for c, _ in pts] or [None],
                y=[y for _, y in pts] or [None],
                mode="markers",
                name=f"{test_name}: {LABELS[kind]}",
                legendgroup=kind,
                marker=dict(
                    color=COLORS[kind], symbol=SYMBOLS[kind], size=14, line=dict(width=2.5, color=COLORS[kind])
                ),
                hovertext=[_html(c.test, 100) for c, _ in pts],
                hovertemplate="%{hovertext}<extra></extra>",
                showlegend=bool(pts),
            )
        )
    first_reject = next((c.position for c in cells if c.kind == "rejected"), None)
    if first_reject is not None:
        fig.add_vrect(
            x0=first_reject + 0.5,
            x1=first_reject + 1.5,
            fillcolor=COLORS["rejected"],
            opacity=0.08,
            line=dict(width=0),
            layer="below",
        )
        fig.add_annotation(
            x=first_reject + 1,
            y=ymax,
            text="first rejection",
            showarrow=False,
            yanchor="bottom",
            font=dict(color=COLORS["rejected"]),
        )
        if first_reject + 1 < len(cells):
            fig.add_vrect(
                x0=first_reject + 1.5,
                x1=len(cells) + 0.5,
                fillcolor=NEUTRAL,
                opacity=0.25,
                line=dict(width=0),
                layer="below",
            )
    fig.update_layout(
        barmode="group",
        height=380,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        plot_bgcolor="white",
        dragmode=False,
    )
    fig.update_xaxes(
        tickvals=xs,
        ticktext=[f"{c.position + 1}: '{esc(c.token, 10)}'" for c in cells],
        tickfont=_FONT,
        tickangle=0,
        fixedrange=True,
    )
    fig.update_yaxes(range=[0, ymax * 1.08], title="probability", gridcolor="#EEEEEE", fixedrange=True)
    return fig.to_dict()


def acceptance_figure(trace: Trace, k: int) -> go.Figure:
    """p(x) and q(x) at each draft position, the rule's test, and the first rejection marked."""
    return to_figure(acceptance_spec(trace, k))


# ---------------------------------------------------------------- distributions at one position


def residual_top(p_top: Sequence[TopEntry], q_top: Sequence[TopEntry]) -> list[TopEntry]:
    """norm(max(0, p − q)) over the tokens the logged top lists know, largest first.

    An approximation of the true residual: tokens outside p's logged top-k are taken as p = 0,
    tokens outside q's as q = 0. Empty when p ≤ q on every known token.
    """
    q_of = {e["token_id"]: e["prob"] for e in q_top}
    diff = [(e, max(0.0, e["prob"] - q_of.get(e["token_id"], 0.0))) for e in p_top]
    total = sum(d for _, d in diff)
    if total <= 0:
        return []
    out: list[TopEntry] = [
        {"token_id": e["token_id"], "token": e["token"], "prob": d / total} for e, d in diff if d > 0
    ]
    return sorted(out, key=lambda e: -e["prob"])


RAW_COLOR = "#444444"
RAW_NAME = "outline: the model's own distribution, before temperature / top-k / top-p"


def distribution_spec(trace: Trace, k: int, position: int | None = None, rows: int = 10) -> dict[str, Any]:
    """`distribution_figure` as a plain Plotly dict (specviz.figspec)."""
    step = trace["steps"][k]
    n, g = step["n_accepted"], len(step["draft"])
    position = n if position is None else max(0, min(position, g))
    nxt = step.get("next")
    chosen = nxt if nxt is not None and position == n else None
    raw: dict[int, Sequence[TopEntry]] = {}  # panel → the model's own distribution before warping, if logged
    if position < g:
        p_top = step["verify"][position].get("top") or []
        q_top = step["draft"][position].get("top") or []
        res_top = residual_top(p_top, q_top)
        raw = {1: step["verify"][position].get("top_raw") or [], 2: step["draft"][position].get("top_raw") or []}
        drafted: tuple[int, Kind] | None = (
            step["draft"][position]["token_id"],
            _draft_kind(step["verify"][position].get("accepted")),
        )
    else:  # the bonus position: only the evaluation model's p (logged as next.top) exists
        p_top = (nxt.get("top") or []) if nxt is not None and nxt.get("source") in ("p", "argmax") else []
        q_top, res_top, drafted = [], [], None
        raw = {1: (nxt.get("top_raw") or []) if nxt is not None else []}
    # which panel the chosen token was drawn from
    source = chosen.get("source") if chosen is not None else None
    drawn_from = {"residual": 2, "p": 0, "argmax": 0}.get(source or "", -1)
    panels: list[tuple[str, Sequence[TopEntry]]] = [
        ("p<br>evaluation model", p_top),
        ("q<br>draft", q_top),
        ("residual<br>norm(max(0, p − q))", res_top),
    ]
    order: list[int] = []
    names: dict[int, str] = {}
    for top in [t for _, t in panels] + list(raw.values()):
        for e in top[:rows]:
            if e["token_id"] not in names:
                order.append(e["token_id"])
                names[e["token_id"]] = e["token"]
    extra = [(chosen["token_id"], chosen["token"])] if chosen is not None else []
    if drafted is not None:
        extra.append((drafted[0], step["draft"][position]["token"]))
    for tid, txt in extra:
        if tid not in names:
            order.append(tid)
            names[tid] = txt
    labels = _unique_labels([(tid, names[tid]) for tid in order])
    fig = Spec()
    fig.subplots(3, 0.07, [t for t, _ in panels], title_size=13)  # three titles side by side in a half page
    for col, (_title, top) in enumerate(panels, start=1):
        probs = {e["token_id"]: e["prob"] for e in top}
        colors, lines = [], []
        for tid in order:
            color = NEUTRAL
            if drafted is not None and tid == drafted[0]:
                color = COLORS[drafted[1]]
            if chosen is not None and tid == chosen["token_id"] and col - 1 == drawn_from:
                color = COLORS[chosen["kind"]]
            colors.append(color)
            lines.append(1.5 if color != NEUTRAL else 0)
        fig.add_trace(
            dict(
                type="bar",
                y=[labels[tid] for tid in order],
                x=[probs.get(tid, 0.0) for tid in order],
                orientation="h",
                marker=dict(color=colors, line=dict(width=lines, color="black")),
                hovertemplate="%{y}: %{x:.3f}<extra></extra>",
                showlegend=False,
            ),
            col=col,
        )
        if raw.get(col):  # outlined on top: the model's own distribution, before temperature / top-k / top-p
            own = {e["token_id"]: e["prob"] for e in raw[col]}
            fig.add_trace(
                dict(
                    type="bar",
                    y=[labels[tid] for tid in order],
                    x=[own.get(tid, 0.0) for tid in order],
                    orientation="h",
                    marker=dict(color="rgba(0,0,0,0)", line=dict(width=2, color=RAW_COLOR)),
                    hovertemplate="%{y}: %{x:.3f} before warping<extra></extra>",
                    name=RAW_NAME,
                    legendgroup="raw",
                    showlegend=col == min(raw),
                ),
                col=col,
            )
        if not top:
            why = "not logged here" if col == 1 else "not used: every draft was accepted" if position >= g else "empty"
            if col == 3 and position < g and p_top:
                why = "empty: p ≤ q on every logged token"
            axis = "x" if col == 1 else f"x{col}"  # Plotly spells the first axis "x domain", never "x1 domain"
            fig.add_annotation(text=why, showarrow=False, x=0.5, y=0.5, xref=f"{axis} domain", yref="y domain")
    if chosen is not None and drawn_from >= 0:
        drawn = {e["token_id"]: e["prob"] for e in panels[drawn_from][1]}
        at = drawn.get(chosen["token_id"], 0.0)
        fig.add_annotation(
            x=at,
            y=labels[chosen["token_id"]],
            xref=f"x{drawn_from + 1}",
            yref="y",
            text=f"chosen: {LABELS[chosen['kind']].split(' (')[0]}",
            showarrow=True,
            arrowhead=2,
            # beside a short bar; over a long one (pointing back at its end) rather than past the chart's edge
            ax=70 if at < 0.5 else -70,
            ay=0 if at < 0.5 else 18,
            bgcolor="rgba(255,255,255,0.85)",
            font=dict(color=COLORS[chosen["kind"]]),
        )
    fig.update_layout(
        height=140 + 26 * max(1, len(order)) + (30 if any(raw.values()) else 0),
        # room for the "chosen" arrow (or the residual's title) on the right, and the outline's legend below
        margin=dict(l=10, r=110 if drawn_from == 2 else 40, t=60, b=50 if any(raw.values()) else 10),
        plot_bgcolor="white",
        bargap=0.25,
        barmode="overlay",
        dragmode=False,
        legend=dict(orientation="h", x=0, y=-0.08, yanchor="top"),
    )
    fig.update_yaxes(autorange="reversed", tickfont=_FONT, fixedrange=True)
    # ticks at 0, 0.5 and 1 only: a panel's "1" next to its neighbour's "0" read as "1 0"
    fig.update_xaxes(range=[0, 1.05], tickvals=[0, 0.5, 1], gridcolor="#EEEEEE", fixedrange=True)
    return fig.to_dict()


def distribution_figure(trace: Trace, k: int, position: int | None = None, rows: int = 10) -> go.Figure:
    """Top-k of p, q and the residual at one position of step k, the chosen token marked.

    Where the trace logs the untempered distributions (top_raw), p's and q's panels outline them
    over the warped bars: at temperature 0 the filled bars are one-hot and only the outlines say how
    sure each model was.

    position defaults to n_accepted: where the evaluation model's token is drawn.
    """
    return to_figure(distribution_spec(trace, k, position, rows))


def _unique_labels(items: list[tuple[int, str]]) -> dict[int, str]:
    """Category labels: the visible token, with the id added where two tokens look alike."""
    shown = [esc(txt, 16) for _, txt in items]
    out = {}
    for (tid, _), label in zip(items, shown, strict=True):
        out[tid] = label if shown.count(label) == 1 else f"{label} #{tid}"
    return out


# ---------------------------------------------------------------- the step in one picture


def step_picture(trace: Trace, k: int, prefix_chars: int = 18) -> go.Figure:
    """Two rows of boxes: what was proposed (prefix | drafts) and what was kept (prefix | accepted | model's token)."""
    cells = step_cells(trace, k)
    drafts = [c for c in cells if not c.from_model]
    model = [c for c in cells if c.from_model]
    before = byte_label(b"".join(t.raw for t in provenance(trace) if t.step < k))
    tail = trace.get("prompt", {}).get("text", "") + before
    tail = ("…" if len(tail) > prefix_chars else "") + tail[-prefix_chars:]
    fig = go.Figure()
    pw = 3.2  # the prefix box is wider than a token box

    def box(x0: float, y: float, label: str, fill: str, edge: str, dash: str = "solid", width: float = 1.0) -> None:
        fig.add_shape(
            type="rect",
            x0=x0 + 0.05,
            x1=x0 + width - 0.05,
            y0=y - 0.32,
            y1=y + 0.32,
            fillcolor=fill,
            line=dict(color=edge, width=2, dash=dash),
        )
        fig.add_annotation(x=x0 + width / 2, y=y, text=label, showarrow=False, font=dict(size=13, **_FONT))

    for y, title in ((1, "proposed"), (0, "kept")):
        box(0, y, esc(tail.replace("\n", " ")), "#F4F4F4", "#BDBDBD", width=pw)
        fig.add_annotation(x=-0.1, y=y, text=f"<b>{title}</b>", showarrow=False, xanchor="right")
    labels = {id(c): esc(c.token, 12) for c in cells}
    longest = max((len(visible(c.token)[:12]) for c in cells), default=1)
    w = min(2.4, max(1.0, 0.13 * longest + 0.35))  # one width for every token box, from the longest label
    for c in drafts:
        fill = {"accepted": "#CDEEE4", "rejected": "#F7DCCC", "unevaluated": "#FFFFFF"}[c.kind]
        dash = "dot" if c.kind == "unevaluated" else "solid"
        box(pw + c.position * w, 1, labels[id(c)], fill, COLORS[c.kind], dash, width=w)
        if c.kind == "accepted":
            box(pw + c.position * w, 0, labels[id(c)], fill, COLORS["accepted"], width=w)
    for c in model:
        fill = "#CCE3F0" if c.kind == "correction" else "#F5E4EE"
        box(pw + c.position * w, 0, labels[id(c)], fill, COLORS[c.kind], width=w)
    for kind in KINDS:
        fig.add_trace(_legend_only(kind, 11))
    width = pw + w * max(len(drafts), (model[0].position + 1) if model else 0)
    fig.update_layout(
        height=230,
        margin=dict(l=90, r=10, t=10, b=10),
        plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="top", y=-0.02, x=0),
        dragmode=False,
    )
    fig.update_xaxes(visible=False, range=[-0.1, width + 0.1], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.6, 1.6], fixedrange=True)
    return fig


# ---------------------------------------------------------------- the step in words


def describe_step(trace: Trace, k: int) -> list[str]:
    """The verification of step k in sentences, one per draft position (plain text, not markdown)."""
    rule, _ = _rule(trace)
    cells = [c for c in step_cells(trace, k) if not c.from_model]
    g = len(cells)
    if g == 0:
        return [f"Nothing was drafted this step: {no_draft_reason(trace['steps'][k])}."]
    test = {
        "sampling": "accepted when the uniform draw r falls below min(1, p/q)",
        "threshold": "accepted when p/q reaches τ (lossy)",
        "typical": "accepted when p exceeds min(ε, δ·exp(−H(p))) (lossy)",
        "greedy": "accepted when it is the evaluation model's argmax",
    }.get(rule)
    how = (
        f"Rule '{rule}': a draft is {test}."
        if test
        else "The trace does not name the rule; the decisions are as logged."
    )
    tree = trace["steps"][k].get("tree")
    lines = [
        f"The draft proposed {g} token{'s' if g != 1 else ''}; the evaluation model scored all of them in one "
        f"forward pass. {how}"
        if not tree
        else f"The draft proposed a tree of {len(tree['nodes'])} candidates (drawn below, with its attention mask); "
        f"the evaluation model scored all of them in one forward pass. Here is the line the rule walked: {how}"
    ]
    for c in cells:
        lines.append(
            f"Draft {c.position + 1} '{visible(c.token)}': q = {_num(c.q)}, p = {_num(c.p)}; {c.test} → {LABELS[c.kind]}."
        )
    return lines


def describe_next(trace: Trace, k: int) -> str:
    """n_accepted and the post-acceptance token, in the course's words."""
    step = trace["steps"][k]
    n, g = step["n_accepted"], len(step["draft"])
    nxt = step.get("next")
    drafts = "draft" if n == 1 else "drafts"
    ctx = step.get("context_length")
    at = f"i+{n + 1}" + (f" (i = {ctx}: the tokens before this step)" if isinstance(ctx, int) else "")
    if "next" not in step:
        after = "every draft passed, so it adds a bonus token" if n == g else "it replaces the rejected draft"
        return (
            f"n_accepted = {n}: {n} {drafts} accepted. The evaluation model then generates the token at position "
            f"{at} itself ({after}), but this trace does not record which token that was."
        )
    if nxt is None:
        return (
            f"n_accepted = {n}: {n} {drafts} accepted, and the last of them ends the text (end-of-sequence), "
            "so the evaluation model adds nothing."
        )
    prob = nxt.get("prob")
    tok = f"'{visible(nxt['token'])}'" + (f" (probability {prob:.3f})" if prob is not None else "")
    if nxt["kind"] == "bonus":
        src = "argmax of its p" if nxt.get("source") == "argmax" else "its own distribution p"
        every = f"all {g} drafts" if g > 1 else "the only draft" if g == 1 else "no drafts to check, so none"
        return (
            f"n_accepted = {n}: {every} accepted, so the evaluation model generates a bonus token at "
            f"position {at}, from {src} at that position (already computed in the same pass): {tok}."
        )
    src = {
        "residual": "norm(max(0, p − q))",
        "p": "its own p (this rule never looked at q)",
        "argmax": "the argmax of p",
    }.get(_source(_rule(trace)[0], nxt), "its own distribution (the trace does not say which)")
    return (
        f"n_accepted = {n}: {n} {drafts} accepted, so the evaluation model now generates the token at position "
        f"{at}, from {src}: {tok}. It replaces the rejected draft; the drafts after it are discarded."
    )


# ---------------------------------------------------------------- statistics and the cost model


def expected_tokens(alpha: float, gamma: int) -> float:
    """(1 − α^(γ+1)) / (1 − α): expected tokens per step when each draft is accepted with probability α."""
    if alpha >= 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def implied_speedup(alpha: float, gamma: int, c: float) -> float:
    """(1 − α^(γ+1)) / ((1 − α)(γc + 1)): expected speedup over target-only decoding."""
    return expected_tokens(alpha, gamma) / (gamma * c + 1.0)


@dataclass(frozen=True)
class Costs:
    alpha: float | None  # None: nothing drafted, no acceptance measured
    gamma: int
    steps: int
    tokens_per_step: float
    expected_tokens_per_step: float | None
    draft_ms_per_token: float | None  # mean time to draft one token
    verify_ms_per_step: float | None  # mean time of one verification pass
    c: float | None  # draft_ms_per_token / verify_ms_per_step
    speedup: float | None  # ideal: implied by alpha, gamma and c with verification costing one target pass
    best_gamma: int | None
    best_speedup: float | None
    draft_kind: str
    # measured beside the run (meta.timing.baseline: the evaluation model alone, same settings, right after)
    target_ms_per_token: float | None = None
    verify_passes: float | None = None  # one verification pass in target-alone tokens (1.0 in the ideal)
    predicted_speedup: float | None = None  # the formula with the measured verification and draft costs
    measured_speedup: float | None = None  # speculative tokens/s ÷ target-alone tokens/s


def costs(trace: Trace, summary: dict[str, Any] | None = None) -> Costs:
    """α, the measured cost ratio c and the speedup they imply, from the trace alone."""
    s = summary or summarize(trace)
    meta = trace.get("meta", {})
    gamma = int(meta.get("gamma") or max(len(s["per_position_acceptance"]), 1))
    alpha = None if s["alpha"] is None else float(s["alpha"])
    timed = [st for st in trace["steps"] if st.get("timing_ms")]
    drafted = sum(len(st["draft"]) for st in timed)
    draft_ms = sum(st["timing_ms"].get("draft", 0.0) for st in timed)
    verify_ms = sum(st["timing_ms"].get("verify", 0.0) for st in timed)
    per_tok = draft_ms / drafted if drafted else None
    per_pass = verify_ms / len(timed) if timed and verify_ms > 0 else None
    c = per_tok / per_pass if per_tok is not None and per_pass else None
    speedup = implied_speedup(alpha, gamma, c) if c is not None and alpha is not None else None
    best_gamma = best = None
    if c is not None and alpha is not None:
        best_gamma, best = max(((g, implied_speedup(alpha, g, c)) for g in range(1, 17)), key=lambda t: t[1])
    measured = _measured(meta.get("timing"), len((trace.get("output") or {}).get("token_ids", [])))
    target_ms = measured[0]
    verify_passes = per_pass / target_ms if per_pass and target_ms else None
    predicted = None
    if verify_passes and per_tok is not None and alpha is not None and target_ms:
        predicted = expected_tokens(alpha, gamma) / (gamma * per_tok / target_ms + verify_passes)
    return Costs(
        alpha=alpha,
        gamma=gamma,
        steps=int(s["steps"]),
        tokens_per_step=_tokens_per_step(trace, s),
        expected_tokens_per_step=None if alpha is None else expected_tokens(alpha, gamma),
        draft_ms_per_token=per_tok,
        verify_ms_per_step=per_pass,
        c=c,
        speedup=speedup,
        best_gamma=best_gamma,
        best_speedup=best,
        draft_kind=str(meta.get("draft", {}).get("kind", "model")),
        target_ms_per_token=target_ms,
        verify_passes=verify_passes,
        predicted_speedup=predicted,
        measured_speedup=measured[1],
    )


def _measured(timing: object, tokens: int) -> tuple[float | None, float | None]:
    """(target-alone ms per token, measured speedup) from meta.timing, where the run measured them."""
    if not isinstance(timing, dict) or not isinstance(timing.get("baseline"), dict):
        return None, None
    base = timing["baseline"]
    b_tokens, b_ms, wall = base.get("tokens"), base.get("wall_ms"), timing.get("wall_ms")
    if not all(isinstance(x, int | float) and x > 0 for x in (b_tokens, b_ms)):
        return None, None
    target_ms = float(b_ms) / float(b_tokens)
    if not (isinstance(wall, int | float) and wall > 0 and tokens):
        return target_ms, None
    return target_ms, (tokens / float(wall)) / (float(b_tokens) / float(b_ms))


def _tokens_per_step(trace: Trace, summary: dict[str, Any]) -> float:
    """Output tokens per step; where a minimal trace omits the model's own tokens, they still count (one a step)."""
    steps = trace["steps"]
    if not steps or all("next" in s for s in steps):
        return float(summary["tokens_per_step"])
    made = sum(s["n_accepted"] + (0 if "next" in s and s["next"] is None else 1) for s in steps)
    return made / len(steps)


def verdict(k: Costs) -> list[str]:
    """The bottleneck in plain words, most important first."""
    if k.steps == 0:
        return ["The trace has no steps, so there is nothing to judge."]
    if k.alpha is None:
        return [
            "Nothing was drafted, so there is no acceptance to judge: every token came from the evaluation model "
            "alone. With prompt lookup this means the text never repeated the prompt; a draft model always drafts."
        ]
    out = []
    if k.alpha < 0.5:
        out.append(
            f"Low acceptance: only α = {k.alpha:.2f} of the draft's decisions pass, so a step yields "
            f"{k.tokens_per_step:.2f} tokens on average. A draft closer to the evaluation model, a lower "
            "temperature, or a shorter gamma would waste less work."
        )
    if k.c is not None and k.c > 0.3:
        out.append(
            f"The draft is slow: one draft token costs c = {k.c:.2f} of a verification pass. Speculation only pays "
            "when drafting is much cheaper than the evaluation model (c well below 0.1 in the papers)."
        )
    if k.best_gamma is not None and k.speedup is not None and k.best_speedup is not None:
        if k.best_gamma < k.gamma and k.best_speedup > 1.05 * k.speedup:
            out.append(
                f"Gamma is too long: with α = {k.alpha:.2f} and c = {k.c:.2f}, gamma = {k.best_gamma} would give "
                f"an ideal {k.best_speedup:.2f}× instead of {k.speedup:.2f}× (by the formula) — late drafts are rarely "
                "reached."
            )
        elif k.best_gamma > k.gamma and k.best_speedup > 1.05 * k.speedup:
            out.append(
                f"Gamma could be longer: drafts are cheap and usually accepted; gamma = {k.best_gamma} would give "
                f"an ideal {k.best_speedup:.2f}× instead of {k.speedup:.2f}× (by the formula)."
            )
        if k.measured_speedup is not None:
            out.append(
                f"Measured: {k.measured_speedup:.2f}× the evaluation model alone (ideal by the formula: "
                f"{k.speedup:.2f}×)."
                + (
                    f" One verification pass cost {k.verify_passes:.2f} target-alone tokens, not the 1.0 the ideal "
                    "assumes."
                    if k.verify_passes is not None and k.verify_passes > 1.1
                    else ""
                )
            )
        elif k.speedup < 1.0:
            out.append(
                f"Net effect: the ideal speedup (verification costing one target pass) is {k.speedup:.2f}× — slower "
                "than running the evaluation model alone even before any overhead."
            )
    if not out:
        sp = f" and an ideal speedup of {k.speedup:.2f}× (by the formula)" if k.speedup is not None else ""
        out.append(
            f"Healthy: α = {k.alpha:.2f} gives {k.tokens_per_step:.2f} tokens per verification pass{sp}; "
            "no single bottleneck stands out."
        )
    return out


def per_position_figure(summary: dict[str, Any], measure: str = "accepted when evaluated") -> go.Figure:
    """Acceptance by draft position (and α as a line where it is defined); `measure` names the
    y axis: a trace counts the steps that reached the position, an engine's counters every draft."""
    rates = summary["per_position_acceptance"]
    xs = list(range(1, len(rates) + 1))
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=[r if r is not None else 0.0 for r in rates],
            marker=dict(color=COLORS["accepted"]),
            text=["not reached" if r is None else f"{r:.0%}" for r in rates],
            textposition="outside",
            hovertemplate=f"draft position %{{x}}: %{{y:.1%}} ({measure})<extra></extra>",
            name="acceptance rate",
        )
    )
    if summary.get("alpha") is not None:  # undefined without drafts; a run summary may not give it
        fig.add_trace(
            go.Scatter(
                x=[0.5, len(rates) + 0.5],
                y=[summary["alpha"]] * 2,
                mode="lines",
                name=f"α = {summary['alpha']:.2f} over all positions",
                line=dict(dash="dash", color="black"),
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="white",
        dragmode=False,
        legend=dict(orientation="h", y=1.12),
    )
    fig.update_xaxes(title="draft position", tickvals=xs, fixedrange=True)
    fig.update_yaxes(title=measure, range=[0, 1.15], tickformat=".0%", fixedrange=True)
    return fig


def accepted_lengths_figure(summary: dict[str, Any], gamma: int) -> go.Figure:
    counts = summary["accepted_length_counts"]
    xs = list(range(len(counts)))
    a, total = summary.get("alpha"), sum(counts)
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=counts,
            name="steps",
            marker=dict(color=COLORS["accepted"]),
            hovertemplate="n_accepted = %{x}: %{y} steps<extra></extra>",
        )
    )
    if a is not None:  # undefined without drafts; a run summary may not give it
        # if every decision passed with probability α independently: P(n) = α^n (1 − α), and α^γ for n = γ
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[total * (a**n * (1 - a) if n < gamma else a**gamma) for n in xs],
                name="expected with independent α",
                mode="markers+lines",
                marker=dict(symbol="line-ew", size=24, line=dict(width=3, color="black")),
                line=dict(dash="dot", color="black"),
                hovertemplate="expected: %{y:.1f}<extra></extra>",
            )
        )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="white",
        legend=dict(orientation="h", y=1.12),
        dragmode=False,
    )
    fig.update_xaxes(title="n_accepted (drafts accepted in a step)", tickvals=xs, fixedrange=True)
    fig.update_yaxes(title="steps", fixedrange=True)
    return fig


def tokens_per_step_figure(k: Costs) -> go.Figure:
    """The theory curve (1 − α^(γ+1))/(1 − α) over α, this trace's α and measured tokens per step on it."""
    alphas = [i / 100 for i in range(0, 100)] + [0.999]
    fig = go.Figure()
    for g in sorted({1, 2, 4, 8, k.gamma}):
        mine = g == k.gamma
        fig.add_trace(
            go.Scatter(
                x=alphas,
                y=[expected_tokens(a, g) for a in alphas],
                mode="lines",
                name=f"theory, γ = {g}",
                line=dict(color="black" if mine else "#BBBBBB", width=3 if mine else 1.5),
                hovertemplate=f"γ = {g}, α = %{{x:.2f}}: %{{y:.2f}} tokens/step<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[] if k.alpha is None else [k.alpha],  # no α: the run drafted nothing, so no point on the curve
            y=[] if k.alpha is None else [k.tokens_per_step],
            mode="markers",
            name="this trace (measured)",
            marker=dict(color=COLORS["bonus"], symbol="star", size=18, line=dict(width=1, color="black")),
            hovertemplate="measured: α = %{x:.2f}, %{y:.2f} tokens/step<extra></extra>",
        )
    )
    fig.update_layout(
        height=340, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white", legend=dict(x=0.01, y=0.99)
    )
    fig.update_xaxes(title="α (acceptance probability)", range=[0, 1], gridcolor="#EEEEEE")
    fig.update_yaxes(title="tokens per step", gridcolor="#EEEEEE")
    return fig


def timing_figure(trace: Trace) -> go.Figure:
    steps = trace["steps"]
    xs = [s["index"] for s in steps]
    draft = [(s.get("timing_ms") or {}).get("draft", 0.0) for s in steps]
    verify = [(s.get("timing_ms") or {}).get("verify", 0.0) for s in steps]
    fig = go.Figure(
        [
            go.Bar(
                x=xs,
                y=draft,
                name="draft",
                marker=dict(color=Q_COLOR, pattern=dict(shape="/", fillmode="overlay", fgcolor="white")),
                hovertemplate="step %{x}: draft %{y:.1f} ms<extra></extra>",
            ),
            go.Bar(
                x=xs,
                y=verify,
                name="verify (one evaluation-model pass)",
                marker=dict(color=P_COLOR),
                hovertemplate="step %{x}: verify %{y:.1f} ms<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        barmode="stack",
        bargap=0.1 if len(xs) < 100 else 0,
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="white",
        legend=dict(orientation="h", y=1.12),
    )
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="milliseconds", gridcolor="#EEEEEE")
    return fig


# ---------------------------------------------------------------- an illustration with no model at all


def toy_trace() -> Trace:
    """The course's example as a one-step trace: 'The cat sat' + drafts 'on the mat' → 'on the rug'."""

    def top(*pairs: tuple[int, str, float]) -> list[TopEntry]:
        return [{"token_id": i, "token": t, "prob": p} for i, t, p in pairs]

    return {
        "format": "specviz-trace",
        "version": VERSION,
        "meta": {
            "target": {"name": "illustration"},
            "draft": {"name": "illustration", "kind": "model"},
            "gamma": 3,
            "rule": {"name": "sampling", "params": {}, "lossless": True},
            "sampling": {"temperature": 1.0, "top_k": 0, "top_p": 1.0},
            "eos_token_ids": [],
            "max_new_tokens": 4,
        },
        "prompt": {"text": "The cat sat", "token_ids": [1, 2, 3]},
        "steps": [
            {
                "index": 0,
                "context_length": 3,
                "draft": [
                    {"token_id": 4, "token": " on", "q": 0.6, "top": top((4, " on", 0.6), (9, " down", 0.3))},
                    {"token_id": 5, "token": " the", "q": 0.5, "top": top((5, " the", 0.5), (10, " a", 0.4))},
                    {"token_id": 6, "token": " mat", "q": 0.4, "top": top((6, " mat", 0.4), (7, " rug", 0.3))},
                ],
                "verify": [
                    {
                        "p": 0.7,
                        "accept_prob": 1.0,
                        "r": 0.41,
                        "ratio": None,
                        "cutoff": None,
                        "accepted": True,
                        "top": top((4, " on", 0.7), (9, " down", 0.2)),
                    },
                    {
                        "p": 0.45,
                        "accept_prob": 0.9,
                        "r": 0.3,
                        "ratio": None,
                        "cutoff": None,
                        "accepted": True,
                        "top": top((5, " the", 0.45), (10, " a", 0.45)),
                    },
                    {
                        "p": 0.1,
                        "accept_prob": 0.25,
                        "r": 0.83,
                        "ratio": None,
                        "cutoff": None,
                        "accepted": False,
                        "top": top((7, " rug", 0.6), (8, " floor", 0.2), (6, " mat", 0.1)),
                    },
                ],
                "n_accepted": 2,
                "next": {
                    "token_id": 7,
                    "token": " rug",
                    "kind": "correction",
                    "source": "residual",
                    "prob": 0.6,
                    "top": top((7, " rug", 0.6), (8, " floor", 0.4)),
                },
                "timing_ms": {"draft": 3.0, "verify": 10.0},
            }
        ],
        "output": {"token_ids": [4, 5, 7], "text": " on the rug", "stop_reason": "stopped"},
    }
