"""specviz.figures.step: a step in words, and where each output token came from."""

from __future__ import annotations

import copy

from specviz import figures as fg
from tests.conftest import PROMPT


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


def test_a_step_without_drafts_is_described_with_its_recorded_reason(target):
    """The pictures and the words say why nothing was drafted, from the trace, never a guess."""
    from specviz.core.decoder import DecodeConfig
    from specviz.core.rules import make_rule
    from specviz.core.warp import Sampling
    from specviz.drafters.model import ModelDrafter
    from specviz.run.record import Recording

    cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=6)
    trace = Recording(target, ModelDrafter(target, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert trace["steps"][-1]["no_draft"] == "budget"
    assert "token budget" in fg.describe_step(trace, 1)[0]
    notes = [a.text for a in fg.acceptance_figure(trace, 1).layout.annotations]
    assert any("token budget" in t for t in notes)
    del trace["steps"][-1]["no_draft"]  # an older trace or another engine's log: said as unknown
    assert "does not record why" in fg.describe_step(trace, 1)[0]


def test_a_confidence_stop_is_said_where_it_ended_the_chain(target, draft_lm):
    """Fewer drafts than gamma: the step's words and the last draft's hover say why (its own q below the bar)."""
    import json

    from specviz.core.decoder import build_config
    from specviz.drafters.model import ModelDrafter
    from specviz.run.record import Recording

    cfg = build_config(gamma=4, rule="greedy", temperature=0.0, max_new_tokens=24, seed=3, confidence=0.99)
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    short = [k for k, s in enumerate(trace["steps"]) if 0 < len(s["draft"]) < 4]
    assert short
    k = short[0]
    own = trace["steps"][k]["draft"][-1]["q_raw"]
    words = " ".join(fg.describe_step(trace, k))
    warped = trace["steps"][k]["draft"][-1]["q"]  # greedy: 1, the q the rule read; both are said
    assert (
        f"own q = {own:.3f} (before temperature; the rule's q, after temperature, is {warped:.3f}) is below 0.99"
        in words
    )
    assert "drafting stopped" in json.dumps(fg.timeline_figure(trace, 0, len(trace["steps"])).to_plotly_json())
    trace["meta"]["gamma_policy"] = None  # no stop asked: nothing to explain
    assert "drafting stopped" not in " ".join(fg.describe_step(trace, k))


def test_a_tree_steps_words_name_every_node_the_rule_tested():
    """Newcomer review: the tree said "the rule tested 3" while the words listed two drafts; a sibling tried
    off the main line gets its own sentence, with the numbers its hover gives."""
    from specviz.trace import load
    from specviz.ui import traces

    for name in ("tree-greedy", "tree-sampling"):
        trace = load(traces.SAMPLES_DIR / f"{name}.json.gz")
        for k, step in enumerate(trace["steps"]):
            lines = fg.describe_step(trace, k)
            tested = sum(nd.get("accepted") is not None for nd in step["tree"]["nodes"]) if step.get("tree") else 0
            on_line = sum(v.get("accepted") is not None for v in step["verify"])
            siblings = [ln for ln in lines if ln.startswith("Also tested at depth")]
            assert len(siblings) == tested - on_line, (name, k)
    greedy = load(traces.SAMPLES_DIR / "tree-greedy.json.gz")
    assert fg.describe_step(greedy, 0)[-1] == (
        "Also tested at depth 2, a sibling off the line above: '␣poem': p = 0.000, not the evaluation model's "
        "argmax → rejected draft (the tree below shows where it hangs)."
    )
