"""specviz.figures: the figures' data (colours per kind, counts, escaped text) and the words."""

from __future__ import annotations

import copy
import math
from typing import Any

import plotly.graph_objects as go
import pytest

from specviz import figures as fg
from specviz.decoder import DecodeConfig
from specviz.drafters import ModelDrafter, NgramDrafter
from specviz.models import CausalLM
from specviz.record import Recording
from specviz.rules import make_rule
from specviz.trace import Trace, summarize, validate
from specviz.warp import Sampling

PROMPT = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def recorded(target: CausalLM, draft_lm: CausalLM) -> dict[str, Trace]:
    """One real trace per rule from the tiny pair, plus prompt lookup."""
    out = {}
    for rule, params in (("sampling", {}), ("greedy", {}), ("threshold", {"tau": 0.3}), ("typical", {})):
        cfg = DecodeConfig(gamma=4, rule=make_rule(rule, **params), sampling=Sampling(1.0), max_new_tokens=40, seed=5)
        out[rule] = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0.0), max_new_tokens=30)
    out["ngram"] = Recording(target, NgramDrafter(target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    for trace in out.values():
        assert validate(trace) == []
    return out


def hostile_toy() -> Trace:
    """The toy step with nasty token text in every place a token can appear."""
    trace = copy.deepcopy(fg.toy_trace())
    step = trace["steps"][0]
    step["draft"][0]["token"] = HOSTILE
    step["draft"][1]["token"] = " \n"
    step["draft"][2]["token"] = "<b>bold</b>&amp;"
    step["verify"][2]["top"][0]["token"] = HOSTILE + "x"
    step["next"]["token"] = "<img src=x onerror=alert(1)>"
    step["next"]["top"][0]["token"] = "<img src=x onerror=alert(1)>"
    return trace


def figure_strings(fig: go.Figure) -> list[str]:
    """Every string Plotly will render: trace text, hovers, names, tick labels, annotations, titles."""
    out: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, str):
            out.append(obj)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)

    walk(fig.to_plotly_json())
    return out


def points(fig: go.Figure, name: str) -> list[Any]:
    tr = next(t for t in fig.data if t.name == name)
    return [x for x in (tr.x or []) if x is not None]


# ---------------------------------------------------------------- text


def test_visible_whitespace_and_controls():
    assert fg.visible(" the\n\t") == "␣the⏎⇥"
    assert fg.visible("") == "∅"
    assert fg.visible("a\x00b") == "a\\u0000b"
    assert fg.visible("\u200b") == "\\u200b"  # invisible format characters are shown too
    assert fg.visible("héllo") == "héllo"


def test_esc_escapes_html_and_truncates():
    assert fg.esc(HOSTILE) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert fg.esc("a&b") == "a&amp;b"
    assert fg.esc("abcdefghij", 5) == "abcd…"


# ---------------------------------------------------------------- the timeline


def test_timeline_colours_shapes_and_counts_per_kind():
    trace = fg.toy_trace()  # accepted, accepted, rejected, then a correction
    fig = fg.timeline_figure(trace, 0, 1, selected=0)
    for kind in fg.KINDS:
        tr = next(t for t in fig.data if t.name == fg.LABELS[kind])
        assert tr.marker.color == fg.COLORS[kind]
        assert tr.marker.symbol == fg.SYMBOLS[kind]
    counts = {k: len(points(fig, fg.LABELS[k])) for k in fg.KINDS}
    assert counts == {"accepted": 2, "rejected": 1, "unevaluated": 0, "correction": 1, "bonus": 0}
    # the model's token sits in its own column after the gamma draft columns
    assert points(fig, fg.LABELS["correction"]) == [4]
    assert len(fig.layout.shapes) == 1  # the selected step's band


def test_timeline_counts_match_a_recorded_trace(recorded):
    for trace in recorded.values():
        steps = trace["steps"]
        fig = fg.timeline_figure(trace, 0, len(steps))
        total = sum(len(points(fig, fg.LABELS[k])) for k in fg.KINDS)
        assert total == sum(len(s["draft"]) + (s["next"] is not None) for s in steps)
        want_acc = sum(s["n_accepted"] for s in steps)
        assert len(points(fig, fg.LABELS["accepted"])) == want_acc
        rows = {y for t in fig.data for y in (t.y or []) if y is not None}
        assert rows <= set(range(len(steps)))


def test_timeline_window_draws_only_its_rows(recorded):
    trace = recorded["sampling"]
    n = len(trace["steps"])
    start, stop = fg.window(n, n // 2, 5)
    fig = fg.timeline_figure(trace, start, stop, selected=n // 2)
    rows = {y for t in fig.data for y in (t.y or []) if y is not None}
    assert rows <= set(range(start, stop)) and len(rows) >= 1
    assert list(fig.layout.yaxis.tickvals) == list(range(start, stop))


@pytest.mark.parametrize(
    ("n", "cur", "size", "want"),
    [(500, 0, 24, (0, 24)), (500, 250, 24, (242, 266)), (500, 499, 24, (476, 500)), (3, 1, 24, (0, 3))],
)
def test_window(n, cur, size, want):
    assert fg.window(n, cur, size) == want


def test_timeline_hover_and_labels_are_escaped():
    fig = fg.timeline_figure(hostile_toy(), 0, 1)
    texts = figure_strings(fig)
    assert not any("<script" in s or "<img" in s or "<b>bold" in s for s in texts)
    joined = "\n".join(texts)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in joined
    assert "&lt;b&gt;bold&lt;/b&gt;&amp;amp;" in joined  # a literal "&amp;" token stays literal
    assert "␣⏎" in joined  # whitespace made visible
    hover = next(t for t in fig.data if t.name == fg.LABELS["accepted"]).hovertext[0]
    assert "q = 0.600" in hover and "p = 0.700" in hover and "r = 0.410 &lt; min(1, p/q) = 1.000" in hover


# ---------------------------------------------------------------- the acceptance diagram


def test_acceptance_marks_first_rejection_and_colours_r():
    fig = fg.acceptance_figure(fg.toy_trace(), 0)
    names = [t.name for t in fig.data]
    assert "q(x) draft" in names and "p(x) evaluation model" in names and "min(1, p/q)" in names
    acc = next(t for t in fig.data if t.name == "r: " + fg.LABELS["accepted"])
    rej = next(t for t in fig.data if t.name == "r: " + fg.LABELS["rejected"])
    assert acc.marker.color == fg.COLORS["accepted"] and list(acc.y) == [0.41, 0.3]
    assert rej.marker.color == fg.COLORS["rejected"] and list(rej.x) == [3]
    assert any(a.text == "first rejection" and a.x == 3 for a in fig.layout.annotations)
    bars = {t.name: list(t.y) for t in fig.data if isinstance(t, go.Bar)}
    assert bars["q(x) draft"] == [0.6, 0.5, 0.4] and bars["p(x) evaluation model"] == [0.7, 0.45, 0.1]


@pytest.mark.parametrize("rule", ["sampling", "greedy", "threshold", "typical", "ngram"])
def test_acceptance_every_rule(recorded, rule):
    trace = recorded[rule]
    for k in range(len(trace["steps"])):
        assert isinstance(fg.acceptance_figure(trace, k), go.Figure)
    if rule == "threshold":
        fig = fg.acceptance_figure(trace, 0)
        assert any("τ = 0.3" in (a.text or "") for a in fig.layout.annotations)


def test_acceptance_escapes_tick_labels():
    texts = figure_strings(fg.acceptance_figure(hostile_toy(), 0))
    assert not any("<script" in s for s in texts)
    assert any("&lt;script&gt;" in s for s in texts)


# ---------------------------------------------------------------- distributions


def test_residual_top():
    p = [{"token_id": 1, "token": "a", "prob": 0.5}, {"token_id": 2, "token": "b", "prob": 0.3}]
    p.append({"token_id": 3, "token": "c", "prob": 0.2})
    q = [{"token_id": 1, "token": "a", "prob": 0.6}, {"token_id": 2, "token": "b", "prob": 0.1}]
    res = fg.residual_top(p, q)
    assert {e["token_id"]: round(e["prob"], 6) for e in res} == {2: 0.5, 3: 0.5}
    assert fg.residual_top(q[:1], q[:1]) == []


def test_distribution_marks_drafted_and_chosen_tokens():
    fig = fg.distribution_figure(fg.toy_trace(), 0)  # position n_accepted = 2: ' mat' rejected, ' rug' chosen
    p_bars, _, res_bars = fig.data
    labels = list(p_bars.y)
    mat, rug = labels.index("␣mat"), labels.index("␣rug")
    assert p_bars.marker.color[mat] == fg.COLORS["rejected"]
    assert res_bars.marker.color[rug] == fg.COLORS["correction"]
    assert p_bars.marker.color[rug] == fg.NEUTRAL  # drawn from the residual, not from p
    assert math.isclose(res_bars.x[rug], 0.6) and math.isclose(res_bars.x[mat], 0.0)
    assert any("chosen" in (a.text or "") for a in fig.layout.annotations)


def test_distribution_bonus_and_other_positions(recorded):
    trace = recorded["sampling"]
    bonus = next(k for k, s in enumerate(trace["steps"]) if s["next"] and s["next"]["kind"] == "bonus")
    fig = fg.distribution_figure(trace, bonus)
    p_bars = fig.data[0]
    chosen = fg.esc(trace["steps"][bonus]["next"]["token"], 16)
    assert fg.COLORS["bonus"] in list(p_bars.marker.color)
    assert any(chosen in lab for lab in p_bars.y)
    assert not fig.data[1].x or not any(fig.data[1].x)  # no q at the bonus position
    for j in range(len(trace["steps"][0]["draft"])):
        assert isinstance(fg.distribution_figure(trace, 0, j), go.Figure)


def test_distribution_escapes_labels():
    texts = figure_strings(fg.distribution_figure(hostile_toy(), 0))
    assert not any("<script" in s or "<img" in s for s in texts)
    assert any(s.startswith("&lt;script&gt;") for s in texts)


# ---------------------------------------------------------------- the home picture and the words


def test_step_picture_boxes_and_escaping():
    fig = fg.step_picture(hostile_toy(), 0)
    # proposed: prefix + 3 drafts; kept: prefix + 2 accepted + the correction
    assert len(fig.layout.shapes) == 4 + 4
    edges = [s.line.color for s in fig.layout.shapes]
    assert edges.count(fg.COLORS["accepted"]) == 4 and edges.count(fg.COLORS["correction"]) == 1
    texts = figure_strings(fig)
    assert not any("<script" in s or "<img" in s for s in texts)


def test_describe_next_in_the_course_words():
    text = fg.describe_next(fg.toy_trace(), 0)
    assert text.startswith("n_accepted = 2: 2 drafts accepted, so the evaluation model now generates the token at")
    ctx = fg.toy_trace()["steps"][0]["context_length"]
    assert f"position i+3 (i = {ctx}: the tokens before this step), from norm(max(0, p − q))" in text
    assert "'␣rug'" in text
    bonus = copy.deepcopy(fg.toy_trace())
    step = bonus["steps"][0]
    step["verify"][2].update(accepted=True, r=0.1)
    step["n_accepted"] = 3
    step["next"].update(kind="bonus", source="p")
    text = fg.describe_next(bonus, 0)
    assert "n_accepted = 3: all 3 drafts accepted" in text
    assert "bonus token at position i+4 (i = " in text and "from its own distribution p" in text


def test_describe_step_one_line_per_draft(recorded):
    for rule, trace in recorded.items():
        for k, step in enumerate(trace["steps"][:5]):
            lines = fg.describe_step(trace, k)
            assert len(lines) == 1 + len(step["draft"]) or (not step["draft"] and len(lines) == 1), rule
    lines = fg.describe_step(fg.toy_trace(), 0)
    assert "r = 0.830 ≥ min(1, p/q) = 0.250 → rejected draft" in lines[3]


def test_provenance_matches_the_output(recorded):
    for trace in recorded.values():
        prov = fg.provenance(trace)
        assert [t.token_id for t in prov] == trace["output"]["token_ids"]
        assert {t.kind for t in prov} <= {"accepted", "correction", "bonus"}


# ---------------------------------------------------------------- statistics


def test_theory_formulas():
    assert fg.expected_tokens(0.0, 4) == 1.0
    assert fg.expected_tokens(1.0, 4) == 5.0
    assert math.isclose(fg.expected_tokens(0.8, 4), (1 - 0.8**5) / 0.2)
    assert math.isclose(fg.implied_speedup(0.8, 4, 0.0), fg.expected_tokens(0.8, 4))
    assert math.isclose(fg.implied_speedup(0.8, 4, 0.25), (1 - 0.8**5) / (0.2 * 2.0))


def _with_timing(trace: Trace, draft_ms: float, verify_ms: float) -> Trace:
    trace = copy.deepcopy(trace)
    for s in trace["steps"]:
        s["timing_ms"] = {"draft": draft_ms * len(s["draft"]), "verify": verify_ms}
    return trace


def test_costs_and_verdicts(recorded):
    base = recorded["sampling"]
    s = summarize(base)
    k = fg.costs(_with_timing(base, 1.0, 10.0), s)
    assert math.isclose(k.c, 0.1) and k.alpha == s["alpha"]
    assert math.isclose(k.speedup, fg.implied_speedup(s["alpha"], 4, 0.1))
    slow = fg.costs(_with_timing(base, 8.0, 10.0), s)
    assert any("draft is slow" in line for line in fg.verdict(slow))
    low = fg.Costs(0.2, 8, 10, 1.2, fg.expected_tokens(0.2, 8), 0.1, 10.0, 0.01, 1.2, 1, 1.5, "model")
    lines = fg.verdict(low)
    assert lines[0].startswith("Low acceptance") and any("Gamma is too long" in line for line in lines)
    good = fg.costs(_with_timing(fg.toy_trace(), 0.1, 10.0))
    assert fg.verdict(good)[0].startswith(("Healthy", "Gamma could be longer"))


def test_stats_figures(recorded):
    trace = recorded["sampling"]
    s = summarize(trace)
    k = fg.costs(trace, s)
    per_pos = fg.per_position_figure(s)
    assert len(per_pos.data[0].x) == 4 and per_pos.data[0].marker.color == fg.COLORS["accepted"]
    lengths = fg.accepted_lengths_figure(s, 4)
    assert sum(lengths.data[0].y) == s["steps"]
    assert math.isclose(sum(lengths.data[1].y), s["steps"])  # the expected counts add up too
    theory = fg.tokens_per_step_figure(k)
    star = next(t for t in theory.data if t.name == "this trace (measured)")
    assert list(star.x) == [k.alpha] and list(star.y) == [k.tokens_per_step]
    timing = fg.timing_figure(trace)
    assert len(timing.data[0].x) == len(trace["steps"])


def test_a_step_without_drafts_is_described_with_its_recorded_reason(target):
    """The pictures and the words say why nothing was drafted, from the trace, never a guess."""
    from specviz.decoder import DecodeConfig
    from specviz.drafters import ModelDrafter
    from specviz.record import Recording
    from specviz.rules import make_rule
    from specviz.warp import Sampling

    cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=6)
    trace = Recording(target, ModelDrafter(target, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert trace["steps"][-1]["no_draft"] == "budget"
    assert "token budget" in fg.describe_step(trace, 1)[0]
    notes = [a.text for a in fg.acceptance_figure(trace, 1).layout.annotations]
    assert any("token budget" in t for t in notes)
    del trace["steps"][-1]["no_draft"]  # an older trace or another engine's log: said as unknown
    assert "does not record why" in fg.describe_step(trace, 1)[0]


def test_an_end_of_turn_token_reads_as_a_marked_end():
    """Public report: `<|im_end|>` was printed in the output text."""
    trace = fg.toy_trace()
    eos = trace["steps"][-1]["next"]
    trace["meta"]["eos_token_ids"] = [eos["token_id"]]
    eos["token"] = "<|im_end|>"
    assert fg.readable_output("Hi!<|im_end|>", trace) == "Hi!" + fg.END_MARK
    assert fg.end_tokens(trace) == ["<|im_end|>"]


def test_timeline_labels_shrink_with_gamma_so_they_do_not_overlap():
    """Public report: at gamma 16 the timeline's tokens overlapped and the model-token column was clipped."""
    wide = fg.toy_trace()
    wide["meta"]["gamma"] = 16
    for d in wide["steps"][0]["draft"]:
        d["token"] = "abcdefghijklmnop"
    fig = fg.timeline_figure(wide, 0, 1)
    longest = max(len(t) for tr in fig.data if tr.text for t in tr.text)
    assert longest == 90 // 18  # one column's room, the cut marked by "…"
    assert fig.layout.xaxis.range[1] > 17.4 and fig.layout.xaxis.title.text == "draft position"
    assert max(len(t) for tr in fg.timeline_figure(fg.toy_trace(), 0, 1).data if tr.text for t in tr.text) <= 12


def test_presented_grows_fonts_and_the_margins_that_hold_them():
    """Presentation mode: titles in a margin that kept its size were cut off at the chart's edge."""
    fig = fg.distribution_figure(fg.toy_trace(), 0)
    big = fg.presented(fig, 1.5)
    assert big.layout.font.size == pytest.approx(1.5 * (fig.layout.font.size or 12))
    for side in ("l", "r", "t", "b"):
        assert getattr(big.layout.margin, side) == pytest.approx(1.5 * getattr(fig.layout.margin, side))
    assert big.layout.height > fig.layout.height
