"""Compare (specviz/ui/compare.py) with AppTest: two traces aligned, the evaluation model alone as
the reference, a trace with itself, the like-for-like pair it opens on."""

from __future__ import annotations

import pytest

from specviz.figures import compare as fcompare
from specviz.ui import traces
from tests.apptestkit import ok, open_page, plain

SAMPLES = list(traces.list_samples())


def test_compare_aligns_two_traces():
    a, b = SAMPLES[0], SAMPLES[1]
    at = open_page("pages/compare.py", a=a, b=b)
    ta, tb = traces.load_sample(a), traces.load_sample(b)
    assert not isinstance(ta, str) and not isinstance(tb, str)
    where = fcompare.divergence(ta["output"]["token_ids"], tb["output"]["token_ids"])
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
    from specviz.core.decoder import DecodeConfig
    from specviz.core.rules import make_rule
    from specviz.core.warp import Sampling
    from specviz.drafters.model import ModelDrafter
    from specviz.run.record import Recording
    from specviz.trace import dump

    target, draft = loaded_pair
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=16, seed=0)
    prompt = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]
    trace = Recording(target, ModelDrafter(draft, target.vocab_size), "", cfg, prompt_ids=prompt).run()
    dump(trace, tmp_path / "tiny-greedy.json")
    monkeypatch.setattr(traces, "SAMPLES_DIR", tmp_path)
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


def test_compare_opens_on_a_like_for_like_pair():
    """Public report: Compare opened on two samples with different prompts, leading with a warning."""
    at = open_page("pages/compare.py")
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (
        "sample:greedy",
        "sample:feature-greedy",
    )
    assert not at.warning and any("identical" in s.value for s in at.success)


def test_each_card_puts_the_ideal_speedups_assumption_beside_the_measured_time():
    from specviz.core import theory

    at = ok(open_page("pages/compare.py", a=SAMPLES[0], b=SAMPLES[1]))
    captions = [plain(c.value) for c in at.caption]
    for name in SAMPLES[:2]:
        trace = traces.load_sample(name)
        assert not isinstance(trace, str)
        m = theory.measure(trace)
        want = f"Speedup: {m.ideal_speedup:.2f}× {theory.IDEAL_WORDS}; measured: {m.ms_per_token:.1f} ms per token."
        assert want in captions


def test_a_tree_slower_per_token_than_its_chain_is_explained_on_the_page():
    at = open_page("pages/compare.py", a="greedy", b="tree-greedy")
    said = [plain(c.value) for c in at.caption if "makes more tokens per step" in c.value]
    assert said and said[0].startswith("B makes more tokens per step (2.21 against 1.60)")
