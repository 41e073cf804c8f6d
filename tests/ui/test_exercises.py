"""Exercises (specviz/ui/exercises.py) with AppTest: every question answerable and marked, the seed
in the URL, hostile sample text escaped."""

from __future__ import annotations

import pytest

from specviz import figures as fg
from specviz.teach import exercises as ex
from specviz.trace import validate
from specviz.ui import traces
from tests.apptestkit import metric, ok, open_page, plain

SAMPLES = list(traces.list_samples())
HOSTILE = "<script>alert(1)</script>"


@pytest.mark.parametrize("name", SAMPLES or ["toy"])
def test_every_question_is_answerable_and_marked(name):
    seed = 4
    at = open_page("pages/exercises.py", trace=name, seed=str(seed))
    trace = traces.load_sample(name) if SAMPLES else fg.toy_trace()
    assert not isinstance(trace, str)
    quiz = ex.make_quiz(trace, seed, name)
    assert len(at.radio) == len(quiz)
    assert len(at.get("plotly_chart")) == sum(q.figure is not None for q in quiz)  # each scenario's chart
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
    trace = traces.load_sample(name) if SAMPLES else fg.toy_trace()
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
    from specviz.core.decoder import DecodeConfig
    from specviz.core.rules import make_rule
    from specviz.core.warp import Sampling
    from specviz.drafters.model import ModelDrafter
    from specviz.run.record import Recording
    from specviz.trace import dump

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
    monkeypatch.setattr(traces, "SAMPLES_DIR", tmp_path)
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
