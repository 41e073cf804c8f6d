"""Step through's panels: the acceptance diagram and the distributions at one position of a step.

`acceptance_spec` draws p and q at each draft position with the rule's test and the first
rejection; `distribution_spec` the top-k of p, q and the residual at one position, the drafted
and the chosen token marked. Both are plain Plotly dicts (specviz.figures.spec): the browser player
ships them for every step; `*_figure` turns them into go.Figure for a server page.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from specviz.figures.palette import COLORS, FONT, LABELS, NEUTRAL, P_COLOR, Q_COLOR, SYMBOLS, Kind
from specviz.figures.spec import Spec, to_figure
from specviz.figures.step import Cell, draft_outcome, step_cells
from specviz.figures.text import esc, esc_sentence
from specviz.trace import TopEntry, Trace, no_draft_reason, rule_of

__all__ = [
    "RAW_COLOR",
    "RAW_NAME",
    "acceptance_figure",
    "acceptance_spec",
    "distribution_figure",
    "distribution_spec",
    "residual_top",
]


# ---------------------------------------------------------------- the acceptance diagram


def _logged_or(value: float | None, c: Cell, derive: Any) -> float | None:
    """A logged number, else derived from the cell's p and q where both are known (and q > 0)."""
    if value is not None or c.p is None or not c.q:
        return value
    return float(derive(c.p, c.q))


def _lines(text: str, width: int) -> str:
    """A sentence broken into lines of at most `width` characters, escaped for Plotly: an annotation
    never wraps by itself, and a long one runs past its chart."""
    return "<br>".join(esc_sentence(line) for line in textwrap.wrap(text, width, break_long_words=True) or [""])


def acceptance_spec(trace: Trace, k: int) -> dict[str, Any]:
    """`acceptance_figure` as a plain Plotly dict (specviz.figures.spec)."""
    step = trace["steps"][k]
    rule, params = rule_of(trace)
    cells = [c for c in step_cells(trace, k) if not c.from_model]
    fig = Spec()
    if not cells:
        fig.add_annotation(
            text=_lines(
                f"No drafts this step ({no_draft_reason(step)}): the evaluation model generated one token.", 44
            ),
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
                hovertext=[esc_sentence(c.test, 100) for c, _ in pts],
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
        tickfont=FONT,
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
    """`distribution_figure` as a plain Plotly dict (specviz.figures.spec)."""
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
            draft_outcome(step["verify"][position].get("accepted")),
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
    if rule_of(trace)[0] == "greedy":  # greedy never draws from a residual: its token is p's argmax
        panels = panels[:2]
    if drawn_from >= len(panels):  # a (foreign) greedy trace that says its token came from a residual
        drawn_from = -1
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
    fig.subplots(len(panels), 0.07, [t for t, _ in panels], title_size=13)  # titles side by side in a half page
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
            why = "not logged here" if col == 1 else "empty"
            if position >= g and col > 1:
                why = "no draft at the bonus position" if col == 2 else "not used: every draft was accepted"
                if g == 0:  # a step that drafted nothing: no draft was there to accept
                    why = "nothing drafted this step" if col == 2 else "not used: nothing was drafted"
            if col == 3 and position < g and p_top:
                why = "empty: p ≤ q on every logged token"
            axis = "x" if col == 1 else f"x{col}"  # Plotly spells the first axis "x domain", never "x1 domain"
            # a third of a half page: a few words per line, or two panels' notes run into each other
            fig.add_annotation(
                text=_lines(why, 12), showarrow=False, x=0.5, y=0.5, xref=f"{axis} domain", yref="y domain"
            )
    below = False  # the "chosen" note under its panel (a long bar) rather than beside the bar
    if chosen is not None and drawn_from >= 0:
        drawn = {e["token_id"]: e["prob"] for e in panels[drawn_from][1]}
        at = drawn.get(chosen["token_id"], 0.0)
        kind = "its own token" if g == 0 else LABELS[chosen["kind"]].split(" (")[0]  # short: beside a short bar
        note = dict(text=f"chosen: {kind}", bgcolor="rgba(255,255,255,0.85)", font=dict(color=COLORS[chosen["kind"]]))
        if at < 0.5:  # beside a short bar, with an arrow: never over the token labels on the left
            fig.add_annotation(
                x=at, y=labels[chosen["token_id"]], xref=f"x{drawn_from + 1}", yref="y",
                showarrow=True, arrowhead=2, ax=70, ay=0, xanchor="auto", **note,
            )  # fmt: skip
        else:  # a long bar fills a panel a third of a half page wide: a note on it hid the bar it names
            below = True
            note["text"] = f"▲ chosen: {labels[chosen['token_id']]} ({kind})"
            fig.add_annotation(
                x=0.5, y=0, xref=f"x{drawn_from + 1 if drawn_from else ''} domain", yref="paper",
                yanchor="top", yshift=-22, showarrow=False, **note,
            )  # fmt: skip
    plot_h = 26 * max(1, len(order)) + 70  # the plot area: the height below less the margins
    fig.update_layout(
        height=plot_h + 70 + (30 if any(raw.values()) else 0) + (26 if below else 0),
        # room for the "chosen" arrow (or the residual's title) on the right, the note and the outline's legend below
        margin=dict(
            l=10, r=110 if drawn_from == 2 else 40, t=60, b=(50 if any(raw.values()) else 10) + (26 if below else 0)
        ),
        plot_bgcolor="white",
        bargap=0.25,
        barmode="overlay",
        dragmode=False,
        # under the ticks (and under the note, 26 px further down, when there is one)
        legend=dict(orientation="h", x=0, y=-0.08 - (26 / plot_h if below else 0), yanchor="top"),
    )
    fig.update_yaxes(autorange="reversed", tickfont=FONT, fixedrange=True)
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
