"""The learning pages headlessly with AppTest: exercises are answerable and marked, the lab's numbers
match the formulas, the sweep runs on the tiny pair, compare aligns two traces, presentation mode."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from specviz import exercises as ex
from specviz import figures as fg
from specviz import figures_learn as fl
from specviz import learn_ui, theory, ui
from specviz.trace import validate
from tests.apptestkit import ok, open_page

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = list(ui.list_samples())
HOSTILE = "<script>alert(1)</script>"


def plain(md: str) -> str:
    return re.sub(r"\\(.)", r"\1", md)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# ---------------------------------------------------------------- exercises


@pytest.mark.parametrize("name", SAMPLES or ["toy"])
def test_every_question_is_answerable_and_marked(name):
    seed = 4
    at = open_page("pages/exercises.py", trace=name, seed=str(seed))
    trace = ui.load_sample(name) if SAMPLES else fg.toy_trace()
    assert not isinstance(trace, str)
    quiz = ex.make_quiz(trace, seed, name)
    assert len(at.radio) == len(quiz)
    assert metric(at, "This set") == f"0 / {len(quiz)}"
    for i, q in enumerate(quiz):
        # a wrong answer first (it stays the score), then the right one
        wrong = (q.answer + 1) % len(q.options)
        at.radio(key=f"exercise_q_{name}:{seed}:{q.qid}").set_value(wrong)
        ok(at.button(key=f"exercise_check_{name}:{seed}:{q.qid}").click().run())
        assert any(plain(e.value).startswith("Not quite") for e in at.error)
        at.radio(key=f"exercise_q_{name}:{seed}:{q.qid}").set_value(q.answer)
        ok(at.button(key=f"exercise_check_{name}:{seed}:{q.qid}").click().run())
        assert metric(at, "Answered") == f"{i + 1} of {len(quiz)}"
    assert len(at.success) == len(quiz) and not at.error
    assert metric(at, "This set") == f"0 / {len(quiz)}"  # the first attempts were wrong
    if SAMPLES:
        links = [link.proto for link in at.get("page_link")]
        steps = {q.step for q in quiz if q.step is not None}
        assert {p.query_string for p in links if p.page == "replay"} == {f"trace={name}&step={k}" for k in steps}


def test_right_first_time_scores_and_the_seed_is_in_the_url():
    name = SAMPLES[0] if SAMPLES else "toy"
    trace = ui.load_sample(name) if SAMPLES else fg.toy_trace()
    assert not isinstance(trace, str)
    at = open_page("pages/exercises.py", trace=name, seed="11")
    assert at.query_params["seed"] in ("11", ["11"])
    quiz = ex.make_quiz(trace, 11, name)
    q = quiz[0]
    at.radio(key=f"exercise_q_{name}:11:{q.qid}").set_value(q.answer)
    ok(at.button(key=f"exercise_check_{name}:11:{q.qid}").click().run())
    assert metric(at, "This set") == f"1 / {len(quiz)}"
    assert plain(at.success[0].value).startswith("Correct.")
    ok(at.button(key="exercise_new").click().run())  # a new set: seed + 1, the session score kept
    assert at.query_params["seed"] in ("12", ["12"])
    assert metric(at, "This set") == f"0 / {len(ex.make_quiz(trace, 12, name))}"
    assert metric(at, "This session") == "1 / 1"


def test_check_without_an_answer_asks_for_one():
    at = open_page("pages/exercises.py", seed="2")
    first = next(b for b in at.button if b.key and b.key.startswith("exercise_check"))
    ok(first.click().run())
    assert any("Pick an answer first" in w.value for w in at.warning)


def test_hostile_sample_text_is_escaped_everywhere(tmp_path, monkeypatch, target, draft_lm):
    from specviz.decoder import DecodeConfig
    from specviz.drafters import ModelDrafter
    from specviz.record import Recording
    from specviz.rules import make_rule
    from specviz.trace import dump
    from specviz.warp import Sampling

    cfg = DecodeConfig(gamma=4, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=30, seed=9)
    prompt = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "the cat", cfg, prompt_ids=prompt).run()
    for step in trace["steps"]:
        for d in step["draft"]:
            d["token"] = HOSTILE
        if step["next"]:
            step["next"]["token"] = HOSTILE
    assert validate(trace) == []
    dump(trace, tmp_path / "evil.json")
    monkeypatch.setattr(ui, "SAMPLES_DIR", tmp_path)
    at = open_page("pages/exercises.py", trace="evil", seed="1")
    for q in ex.make_quiz(trace, 1, "evil"):
        at.radio(key=f"exercise_q_evil:1:{q.qid}").set_value(q.answer)
        ok(at.button(key=f"exercise_check_evil:1:{q.qid}").click().run())
    shown = [m.value for m in at.markdown] + [m.value for m in at.success] + [m.value for m in at.error]
    shown += [o for r in at.radio for o in r.options]
    assert any("script" in v for v in shown)
    assert not any("<script>" in v for v in shown)
    ok(at.switch_page("pages/compare.py").run())
    assert not any("<script>" in v for v in [i.value for i in at.info] + [m.value for m in at.markdown])


# ---------------------------------------------------------------- the speedup lab


@pytest.mark.parametrize(("alpha", "gamma", "c"), [(0.7, 4, 0.05), (0.9, 8, 0.01), (0.3, 2, 0.2), (0.0, 1, 0.0)])
def test_lab_numbers_match_the_formulas(alpha, gamma, c):
    at = open_page("pages/speedup.py")
    at.slider(key="lab_alpha").set_value(alpha)
    at.slider(key="lab_gamma").set_value(gamma)
    ok(at.slider(key="lab_c").set_value(c).run())
    e = (1 - alpha ** (gamma + 1)) / (1 - alpha)
    assert metric(at, "expected tokens per step") == f"{e:.2f}"
    assert metric(at, "expected speedup") == f"{e / (gamma * c + 1):.2f}×"
    best = max(range(1, 13), key=lambda g: ((1 - alpha ** (g + 1)) / (1 - alpha) / (g * c + 1), -g))
    assert metric(at, "best γ") == str(best)
    assert len(at.get("plotly_chart")) >= 3
    assert any(r"\gamma c+1" in x.value for x in at.latex)


def test_lab_takes_alpha_gamma_and_c_from_a_trace():
    name = SAMPLES[-1]
    trace = ui.load_sample(name)
    assert not isinstance(trace, str)
    m = theory.measure(trace, name)
    at = open_page("pages/speedup.py")
    ok(at.selectbox(key="lab_from").set_value(name).run())
    alpha = round(min(m.alpha, 0.99), 2)
    assert at.slider(key="lab_alpha").value == pytest.approx(alpha)
    assert at.slider(key="lab_gamma").value == m.gamma
    assert metric(at, "expected tokens per step") == f"{theory.expected_tokens(alpha, m.gamma):.2f}"


def test_lab_budget_units_and_glossary():
    at = open_page("pages/speedup.py")
    for unit in ("passes", "positions", "compute"):
        ok(at.radio(key="lab_budget_unit").set_value(unit).run())
    headers = {h.proto.anchor for h in at.subheader}
    assert set(ex.GLOSSARY.values()) <= headers  # every exercise's glossary link has its target
    assert len(at.latex) >= 8


def test_sweep_runs_on_the_tiny_pair(model_dirs):
    tdir, ddir = model_dirs
    at = open_page("pages/speedup.py", timeout=240)
    at.text_input(key="sweep_target").set_value(str(tdir))
    at.text_input(key="sweep_draft").set_value(str(ddir))
    at.number_input(key="sweep_max_new").set_value(10)
    at.slider(key="sweep_max_gamma").set_value(3)
    at.checkbox(key="sweep_chat").set_value(False)
    ok(at.button(key="sweep_run").click().run())
    sweep = at.session_state["sweep"]
    labels = [r["label"] for r in sweep["runs"]]
    assert labels == ["γ = 1", "γ = 2", "γ = 3", "threshold τ = 0.1, γ = 3", "threshold τ = 0.3, γ = 3",
                      "threshold τ = 0.6, γ = 3", "adaptive γ ≤ 3"]  # fmt: skip
    for run in sweep["runs"]:
        assert validate(run["trace"]) == []
        assert len(run["trace"]["output"]["token_ids"]) <= 10
    assert sweep["runs"][-1]["trace"]["meta"]["gamma_policy"]["name"] == "heuristic"
    assert len(sweep["baseline"]["token_ids"]) <= 10
    rows, base = learn_ui.sweep_rows(sweep)
    assert base and all(r.measured_speedup is not None for r in rows)
    for r, run in zip(rows, sweep["runs"], strict=True):
        m = theory.measure(run["trace"])
        assert r.predicted_tokens_per_step == pytest.approx(theory.expected_tokens(m.alpha, m.gamma))
    dl = next(e for e in at.get("download_button") if "sweep" in str(e.proto.label))
    assert dl is not None
    blob = learn_ui._sweep_zip(sweep, rows)
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        assert len([n for n in z.namelist() if n.startswith("run-")]) == len(rows)
        assert len(json.loads(z.read("sweep.json"))["rows"]) == len(rows)
    # the sweep's runs can be compared, against the evaluation model alone (the sweep's baseline)
    ok(at.switch_page("pages/compare.py").run())
    options = at.selectbox(key="compare_a").options
    assert any(o.startswith("Sweep · γ = 1") for o in options)
    at.selectbox(key="compare_a").set_value("sweep:0")
    ok(at.selectbox(key="compare_b").set_value("sweep:3").run())
    timeline = at.get("plotly_chart")[0].proto.spec
    assert "evaluation model alone" in timeline


def test_sweep_with_a_bad_model_explains(tmp_path):
    at = open_page("pages/speedup.py")
    at.text_input(key="sweep_target").set_value(str(tmp_path / "nothing-here"))
    ok(at.button(key="sweep_run").click().run())
    assert any("Could not load the models" in e.value for e in at.error)
    assert "sweep" not in at.session_state


# ---------------------------------------------------------------- compare


def test_compare_aligns_two_traces():
    a, b = SAMPLES[0], SAMPLES[1]
    at = open_page("pages/compare.py", a=a, b=b)
    ta, tb = ui.load_sample(a), ui.load_sample(b)
    assert not isinstance(ta, str) and not isinstance(tb, str)
    where = fl.divergence(ta["output"]["token_ids"], tb["output"]["token_ids"])
    if where is None:
        assert at.success
    else:
        assert any(f"agree for {where} token" in plain(i.value) for i in at.info)
    assert len(at.get("plotly_chart")) == 2
    assert len(at.get("download_button")) == 2
    assert at.query_params["a"] in (a, [a])


@pytest.fixture()
def greedy_sample(tmp_path, monkeypatch, loaded_pair):
    """A T = 0 trace recorded with the tiny pair loaded from its directories, as the only sample."""
    from specviz.decoder import DecodeConfig
    from specviz.drafters import ModelDrafter
    from specviz.record import Recording
    from specviz.rules import make_rule
    from specviz.trace import dump
    from specviz.warp import Sampling

    target, draft = loaded_pair
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=16, seed=0)
    prompt = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]
    trace = Recording(target, ModelDrafter(draft, target.vocab_size), "", cfg, prompt_ids=prompt).run()
    dump(trace, tmp_path / "tiny-greedy.json")
    monkeypatch.setattr(ui, "SAMPLES_DIR", tmp_path)
    return trace


def test_compare_runs_the_evaluation_model_alone(greedy_sample, model_dirs):
    at = open_page("pages/compare.py", timeout=120, a="tiny-greedy", b="tiny-greedy")
    at.text_input(key="compare_ref_target").set_value(str(model_dirs[1]))  # the wrong model: refused
    ok(at.button(key="compare_ref_run").click().run())
    assert any("recorded with" in e.value for e in at.error)
    at.text_input(key="compare_ref_target").set_value(str(model_dirs[0]))
    ok(at.button(key="compare_ref_run").click().run())
    ref = next(iter(at.session_state["compare_refs"].values()))
    assert ref["token_ids"] == greedy_sample["output"]["token_ids"]  # lossless at T = 0: the same text
    assert any("Same text as the evaluation model alone" in c.value for c in at.caption)
    assert "evaluation model alone" in at.get("plotly_chart")[0].proto.spec


def test_compare_a_trace_with_itself_is_identical():
    name = SAMPLES[0] if SAMPLES else "toy"
    at = open_page("pages/compare.py", a=name, b=name)
    assert any("identical" in s.value for s in at.success)
    ok(at.button(key="compare_next").click().run())
    ok(at.button(key="compare_prev").click().run())


# ---------------------------------------------------------------- instructor mode


def test_presentation_mode_is_constant_css_and_carries_over():
    at = open_page("pages/speedup.py")
    assert not at.get("html")
    ok(at.toggle(key="presentation_widget").set_value(True).run())
    styles = at.get("html")
    assert styles and all(s.proto.body == ui.PRESENTATION_CSS for s in styles)
    for page in ("pages/exercises.py", "pages/replay.py", "pages/stats.py", "pages/live.py", "pages/home.py"):
        ok(at.switch_page(page).run())
        assert at.toggle(key="presentation_widget").value is True, page
        assert at.get("html"), page


def test_compare_opens_on_a_like_for_like_pair():
    """Public report: Compare opened on two samples with different prompts, leading with a warning."""
    at = open_page("pages/compare.py")
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (
        "sample:greedy",
        "sample:feature-greedy",
    )
    assert not at.warning and any("identical" in s.value for s in at.success)
