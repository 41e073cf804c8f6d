"""Compare's figures: two or more runs' outputs on aligned rows, their progress, a printable summary.

Pure functions to a Plotly figure (or, for the summary, an HTML string); no Streamlit. Names and
token text come from traces, which may be hostile: everything from a trace passes through
text.esc or text.esc_name (Plotly) or html.escape (the summary) before it is shown.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from specviz.core import theory
from specviz.figures.palette import (
    BASELINE_LINE,
    COLORS,
    KINDS,
    LABELS,
    LAYOUT,
    REFERENCE_MARKER,
    SERIES,
    SYMBOLS,
    Kind,
)
from specviz.figures.step import OutTok, provenance
from specviz.figures.text import esc, esc_name, visible
from specviz.trace import Trace, rate, summarize, undefined_words

__all__ = [
    "COMPARE_WIDTH",
    "compare_progress_figure",
    "compare_timeline_figure",
    "divergence",
    "ideal_words",
    "more_tokens_slower_words",
    "summary_html",
]

# the comparison's window: labels alternate above and below their markers, so one label has two
# positions' width: 20 positions across a wide chart leave ~100 px, room for 14 monospace characters
COMPARE_WIDTH, COMPARE_LABEL = 20, 14


# ---------------------------------------------------------------- comparing two traces


def divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first output position where two token sequences differ (the shorter one's end counts); None if equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def compare_timeline_figure(
    rows: Sequence[tuple[str, Sequence[OutTok]]],
    start: int = 0,
    width: int = COMPARE_WIDTH,
    marks: Sequence[int | None] = (),
    reference: tuple[str, Sequence[str]] | None = None,
) -> go.Figure:
    """Output tokens of several runs on aligned rows: x is the output position, colour the provenance.

    With `reference` (a name and the token texts of the evaluation model alone), it is the first row,
    in the evaluation model's dark grey squares (palette.REFERENCE_MARKER). `marks[i]` is where displayed row i departs from the first row: a vertical bar.
    """
    fig = go.Figure()
    offset = 0
    names = []
    if reference is not None:
        offset = 1
        names.append(esc_name(reference[0], 28))
        shown_ref = list(enumerate(reference[1]))[start : start + width]
        fig.add_trace(
            go.Scatter(
                x=[i for i, _ in shown_ref],
                y=[0] * len(shown_ref),
                mode="markers+text",
                text=[esc(t, COMPARE_LABEL) for _, t in shown_ref],
                textposition=["top center" if i % 2 == 0 else "bottom center" for i, _ in shown_ref],
                textfont=dict(size=10, family="DejaVu Sans Mono, Menlo, monospace"),
                marker=REFERENCE_MARKER,
                name="evaluation model alone",
                customdata=[esc(t, 40) for _, t in shown_ref],
                hovertemplate="position %{x}: %{customdata}<br>evaluation model alone<extra></extra>",
            )
        )
    names += [esc_name(n, 28) for n, _ in rows]
    seen: set[Kind] = set()
    for r, (_, toks) in enumerate(rows, start=offset):
        shown = list(enumerate(toks))[start : start + width]
        for kind in KINDS:
            pts = [(i, t) for i, t in shown if t.kind == kind]
            if not pts:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[i for i, _ in pts],
                    y=[r] * len(pts),
                    mode="markers+text",
                    text=[esc(t.token, COMPARE_LABEL) for _, t in pts],
                    textposition=["top center" if i % 2 == 0 else "bottom center" for i, _ in pts],
                    textfont=dict(size=10, family="DejaVu Sans Mono, Menlo, monospace"),
                    marker=dict(color=COLORS[kind], symbol=SYMBOLS[kind], size=11),
                    name=LABELS[kind],
                    legendgroup=kind,
                    showlegend=kind not in seen,
                    customdata=[[esc(t.token, 40), t.step] for _, t in pts],
                    hovertemplate=(
                        f"position %{{x}}: %{{customdata[0]}}<br>{LABELS[kind]}, step %{{customdata[1]}}<extra></extra>"
                    ),
                )
            )
            seen.add(kind)
    for r, m in enumerate(marks):
        if m is not None and start <= m < start + width:
            fig.add_shape(
                type="line",
                x0=m - 0.5,
                x1=m - 0.5,
                y0=r - 0.45,
                y1=r + 0.45,
                line=dict(color="black", width=3),
            )
            fig.add_annotation(
                x=m - 0.5,  # beside its line, not over it
                y=r - 0.45,
                text="departs here",
                showarrow=False,
                xanchor="left",
                xshift=4,
                yanchor="top",
                font=dict(size=11),
            )
    n_rows = len(names)
    fig.update_layout(height=140 + 90 * n_rows, legend=dict(orientation="h", y=1.2), **LAYOUT)
    fig.update_xaxes(title="output position", range=[start - 0.8, start + width], fixedrange=True)
    fig.update_yaxes(
        tickvals=list(range(n_rows)),
        ticktext=names,
        range=[n_rows - 0.4, -0.6],
        fixedrange=True,
        showgrid=False,
    )
    return fig


def compare_progress_figure(traces: Sequence[tuple[str, Trace]]) -> go.Figure:
    """Tokens so far against evaluation passes (left) and against time (right), one line per trace,
    in the palette's series colours (trace A, trace B, …: never a token outcome's colour)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("tokens per evaluation pass", "tokens over time"))
    for i, (name, trace) in enumerate(traces):
        total, ms = 0, 0.0
        xs_steps, xs_ms, ys = [0], [0.0], [0]
        for s in trace["steps"]:
            total += s["n_accepted"] + (1 if s.get("next") is not None else 0)
            ms += float(s.get("timing_ms", {}).get("draft", 0.0)) + float(s.get("timing_ms", {}).get("verify", 0.0))
            xs_steps.append(s["index"] + 1)
            xs_ms.append(ms)
            ys.append(total)
        color = SERIES[i % len(SERIES)]
        label = esc_name(name, 30)
        fig.add_trace(
            go.Scatter(x=xs_steps, y=ys, mode="lines", name=label, line=dict(color=color, width=3), legendgroup=label),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=xs_ms,
                y=ys,
                mode="lines",
                name=label,
                line=dict(color=color, width=3),
                legendgroup=label,
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    fig.add_trace(
        go.Scatter(
            x=[0, max((len(t["steps"]) for _, t in traces), default=1)],
            y=[0, max((len(t["steps"]) for _, t in traces), default=1)],
            mode="lines",
            name="evaluation model alone (1 token per pass)",
            line=BASELINE_LINE,
        ),
        row=1,
        col=1,
    )
    fig.update_layout(height=360, legend=dict(orientation="h", y=-0.2), **LAYOUT)
    fig.update_xaxes(title_text="evaluation passes (steps)", row=1, col=1, fixedrange=True)
    fig.update_xaxes(title_text="draft + verify time (ms)", row=1, col=2, fixedrange=True)
    fig.update_yaxes(title_text="tokens", rangemode="tozero", fixedrange=True)
    return fig


# ---------------------------------------------------------------- a printable page


def ideal_words(m: theory.Measured) -> str:
    """A trace's speedup by the formula with its assumption beside it (theory.IDEAL_WORDS), and the
    measured time per token to read it against: "1.52× ideal (formula: …); measured: 41.0 ms per
    token"; "—" without timings. For a tree the formula is a chain's as deep as the tree, and the words
    give the positions its passes really scored."""
    if m.ideal_speedup is None:
        return "—"
    measured = "" if m.ms_per_token is None else f"; measured: {m.ms_per_token:.1f} ms per token"
    if m.tree:  # the formula is a chain's: say how many positions the tree's passes really scored
        return (
            f"{m.ideal_speedup:.2f}× ideal for a chain as deep as this tree (formula: {theory.IDEAL_ASSUMPTION}, "
            f"γ+1 = {m.gamma + 1}; this tree's passes scored {m.positions_per_pass:.1f}){measured}"
        )
    return f"{m.ideal_speedup:.2f}× {theory.IDEAL_WORDS}{measured}"


def more_tokens_slower_words(a: theory.Measured, b: theory.Measured) -> str | None:
    """Words for the pair where one run makes more tokens per step yet takes longer per token (a tree against a
    chain, typically), else None: its wider passes cost more than the extra tokens save, which the ideal formula
    (every pass costs one token's) cannot show."""
    if a.ms_per_token is None or b.ms_per_token is None:
        return None
    more, other = (a, b) if a.tokens_per_step > b.tokens_per_step else (b, a)
    if more.tokens_per_step <= other.tokens_per_step or more.ms_per_token <= other.ms_per_token:
        return None
    side, rest = ("A", "B") if more is a else ("B", "A")
    passes = ""
    if more.verify_ms_per_pass is not None and other.verify_ms_per_pass is not None:
        passes = (
            f" (its verification pass took {more.verify_ms_per_pass:.1f} ms against {other.verify_ms_per_pass:.1f})"
        )
    return (
        f"{side} makes more tokens per step ({more.tokens_per_step:.2f} against {other.tokens_per_step:.2f}) yet takes "
        f"longer per token ({more.ms_per_token:.1f} against {other.ms_per_token:.1f} ms): its steps cost more than the "
        f"extra tokens save{passes}. A tree, or a longer chain, verifies more positions in one pass; the ideal "
        f"speedup assumes a pass costs the same whatever it holds, and on this machine it did not, so {rest} was faster."
    )


def summary_html(trace: Trace, name: str) -> str:
    """A self-contained, printable one-page summary of a trace (print it to PDF from the browser).

    Numbers and words only, and the coloured output; no script, so it opens anywhere. Every piece of
    trace text is HTML-escaped.
    """
    s = summarize(trace)
    m = theory.measure(trace, name, s)
    meta = trace.get("meta", {})
    rule = meta.get("rule", {})
    params = ", ".join(f"{k} = {v}" for k, v in (rule.get("params") or {}).items())
    e = html.escape
    rows = [
        ("evaluation (target) model", str(meta.get("target", {}).get("name", "?"))),
        ("draft", f"{meta.get('draft', {}).get('name', '?')} ({meta.get('draft', {}).get('kind', '?')})"),
        ("γ", str(meta.get("gamma"))),
        ("rule", f"{rule.get('name', '?')}{f' ({params})' if params else ''}, {'lossless' if m.lossless else 'lossy'}"),
        ("temperature", str(meta.get("sampling", {}).get("temperature"))),
        ("steps (evaluation passes)", str(m.steps)),
        ("tokens", str(s["tokens"])),
        ("α", rate(m.alpha, ".3f") if m.alpha is not None else f"n/a: {undefined_words(s)}"),
        ("tokens per step", f"{m.tokens_per_step:.2f} (theory {rate(m.expected_tokens_per_step)})"),
        ("cost ratio c", "—" if m.c is None else f"{m.c:.4f}"),
        ("time per token (measured)", "—" if m.ms_per_token is None else f"{m.ms_per_token:.1f} ms"),
        ("speedup", ideal_words(m)),
    ]
    counts = s["accepted_length_counts"]
    top = max(counts, default=1) or 1
    bars = "".join(
        f'<tr><td>{n}</td><td><div class="bar" style="width:{200 * c / top:.0f}px"></div></td><td>{c}</td></tr>'
        for n, c in enumerate(counts)
    )
    spans = "".join(
        f'<span class="{t.kind}" title="{e(LABELS[t.kind])}, step {t.step}">{e(visible(t.token))}</span>'
        for t in provenance(trace)[:600]
    )
    legend = " ".join(f'<span class="{k}">{e(LABELS[k])}</span>' for k in ("accepted", "correction", "bonus"))
    css = "".join(f".{k}{{background:{COLORS[k]}33;border-bottom:2px solid {COLORS[k]}}}" for k in KINDS)
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>specviz summary: {e(name)}</title>
<style>
body{{font:13px/1.4 system-ui,sans-serif;max-width:190mm;margin:10mm auto;color:#111}}
h1{{font-size:18px;margin:0 0 6px}} h2{{font-size:14px;margin:12px 0 4px}}
table{{border-collapse:collapse}} th,td{{text-align:left;padding:1px 8px 1px 0;vertical-align:top}}
.bar{{height:10px;background:{COLORS["accepted"]}}}
.out{{font-family:monospace;line-height:1.8;word-break:break-all}} .out span{{margin-right:1px}}
.cols{{display:flex;gap:24px}}
{css}
@page{{size:A4;margin:10mm}}
</style></head><body>
<h1>Speculative decoding trace: {e(name)}</h1>
<div class="cols"><table>{table}</table>
<div><h2>n_accepted per step</h2><table>{bars}</table></div></div>
<h2>Theory</h2>
<p>tokens per step = (1 − α<sup>γ+1</sup>) / (1 − α); speedup = (1 − α<sup>γ+1</sup>) / ((1 − α)(γc + 1)).</p>
<h2>Output, coloured by where each token came from</h2>
<p>{legend}</p>
<p class="out">{spans}</p>
<p style="color:#666">Made with specviz. Whitespace: ␣ space, ⏎ newline, ⇥ tab.</p>
</body></html>
"""
