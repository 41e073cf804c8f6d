import json

import pytest
import torch

from specviz.core.decoder import DecodeConfig, speculative_decode, target_decode
from specviz.core.rules import make_rule
from specviz.core.warp import Sampling
from specviz.drafters.model import ModelDrafter
from specviz.drafters.ngram import LookupFallback, NgramDrafter
from specviz.models.lm import CausalLM
from specviz.run.record import Recording
from specviz.trace import validate

PROMPT = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]  # <bos> the cat sat on the mat the cat sat


def hf_greedy(lm: CausalLM, ids: list[int], n: int) -> list[int]:
    x = torch.tensor([ids])
    out = lm.model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=n, pad_token_id=0)
    return out[0, len(ids) :].tolist()


def drafter_for(kind: str, target: CausalLM, draft_lm: CausalLM):
    if kind == "ngram":
        return NgramDrafter(target.vocab_size)
    return ModelDrafter(draft_lm, target.vocab_size, lookup=LookupFallback(1.0) if kind == "model+lookup" else None)


@pytest.mark.parametrize("kind", ["model", "ngram", "model+lookup"])
@pytest.mark.parametrize("gamma", [1, 2, 4, 8])
@pytest.mark.parametrize("rule", ["greedy", "sampling"])
def test_greedy_output_equals_target_generate(target, draft_lm, kind, gamma, rule):
    cfg = DecodeConfig(gamma=gamma, rule=make_rule(rule), sampling=Sampling(0), max_new_tokens=24, seed=3)
    rec = Recording(target, drafter_for(kind, target, draft_lm), "", cfg, prompt_ids=PROMPT)
    trace = rec.run()
    assert trace["output"]["token_ids"] == hf_greedy(target, PROMPT, 24)
    assert validate(trace) == []


@pytest.mark.parametrize("max_new", [1, 2, 3, 5, 9, 17])
def test_stops_exactly_at_max_new_tokens(target, draft_lm, max_new):
    cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=max_new)
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert trace["output"]["token_ids"] == hf_greedy(target, PROMPT, max_new)
    assert len(trace["output"]["token_ids"]) == max_new
    assert trace["output"]["stop_reason"] == "max_new_tokens"
    assert validate(trace) == []


def _with_eos(lm: CausalLM, eos: int) -> CausalLM:
    clone = CausalLM(lm.model, lm.tokenizer, lm.name, lm.device)
    clone.model.generation_config.eos_token_id = eos
    return clone


def test_eos_inside_accepted_drafts_ends_generation(target):
    """A perfect draft (the target itself) gets EOS accepted mid-draft: output stops right there."""
    free = hf_greedy(target, PROMPT, 30)
    eos = free[5]  # make a token the target emits at position 5 the end-of-sequence token
    saved = target.model.generation_config.eos_token_id
    try:
        tgt = _with_eos(target, eos)
        cfg = DecodeConfig(gamma=8, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=30)
        trace = Recording(tgt, ModelDrafter(tgt, tgt.vocab_size), "", cfg, prompt_ids=PROMPT).run()
        out = trace["output"]["token_ids"]
        assert out == hf_greedy(tgt, PROMPT, 30)
        assert out[-1] == eos and out.count(eos) == 1
        assert trace["output"]["stop_reason"] == "eos"
        last = trace["steps"][-1]
        assert last["next"] is None  # ended among the accepted drafts: no evaluation-model token
        assert validate(trace) == []
    finally:
        target.model.generation_config.eos_token_id = saved


def test_statistics_count_only_drafts_that_reached_the_output(target):
    """Public report: drafts accepted after an EOS were counted (acceptance 87.5% for a 3-token output)."""
    from specviz.trace import summarize

    free = hf_greedy(target, PROMPT, 30)
    eos = free[2]
    saved = target.model.generation_config.eos_token_id
    try:
        tgt = _with_eos(target, eos)
        cfg = DecodeConfig(gamma=8, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=30)
        trace = Recording(tgt, ModelDrafter(tgt, tgt.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    finally:
        target.model.generation_config.eos_token_id = saved
    (step,) = trace["steps"]
    assert step["n_accepted"] == 8 and len(trace["output"]["token_ids"]) == 3  # the rule accepted past the EOS
    s = summarize(trace)
    assert (s["drafted"], s["accepted"], s["acceptance_rate"]) == (3, 3, 1.0)
    assert s["mean_accepted"] <= s["tokens_per_step"] == 3
    assert s["per_position_acceptance"][:3] == [1.0, 1.0, 1.0] and s["per_position_acceptance"][3:] == [None] * 5
    assert s["accepted_length_counts"][3] == 1


def test_a_step_without_drafts_records_why(target):
    """Public report: a last step emptied by the token budget read "prompt lookup found nothing to copy"."""
    from specviz.trace import no_draft_words, summarize

    cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=6)
    trace = Recording(target, ModelDrafter(target, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    first, last = trace["steps"]
    assert first["n_accepted"] == 4 and last["draft"] == [] and last["no_draft"] == "budget"
    assert "no_draft" not in first and validate(trace) == []
    s = summarize(trace)
    assert s["no_draft_reasons"] == {"budget": 1} and s["mean_accepted"] == 4.0
    assert "token budget" in no_draft_words(s)
    lookup = Recording(target, NgramDrafter(target.vocab_size), "", cfg, prompt_ids=[1, 8, 9]).run()
    assert lookup["steps"][0]["no_draft"] == "no_match"
    broken = {**trace, "steps": [first, {**last, "no_draft": "tired"}]}
    assert any("no_draft must be one of" in p for p in validate(broken))


def test_a_run_without_drafts_has_undefined_rates_everywhere(target):
    """Public report: nothing drafted read as "acceptance 0.0%, α 0.000"; undefined is None / "n/a", with the reason."""
    from specviz import figures
    from specviz.core import theory
    from specviz.figures import compare as fcompare
    from specviz.teach import exercises
    from specviz.trace import rate, summarize, undefined_words

    cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=2)
    trace = Recording(target, NgramDrafter(target.vocab_size), "", cfg, prompt_ids=[1, 8, 9]).run()
    s = summarize(trace)
    assert s["drafted"] == 0 and (s["acceptance_rate"], s["alpha"], s["mean_accepted"]) == (None, None, None)
    assert rate(s["alpha"]) == "n/a" and "prompt lookup found nothing to copy" in undefined_words(s)
    m = theory.measure(trace, summary=s)
    assert m.alpha is None and m.expected_tokens_per_step is None and m.ideal_speedup is None
    assert "Nothing was drafted" in figures.verdict(m)[0]
    figures.per_position_figure(s), figures.accepted_lengths_figure(s, 4), figures.tokens_per_step_figure(m)
    assert "n/a: nothing was drafted" in fcompare.summary_html(trace, "t")
    assert all(q.kind != "expected_tokens" for q in exercises.make_quiz(trace, seed=0))


def test_steps_obey_trace_semantics(target, draft_lm):
    cfg = DecodeConfig(gamma=4, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=40, seed=7)
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    steps = trace["steps"]
    assert validate(trace) == []
    kinds = {s["next"]["kind"] for s in steps if s["next"]}
    assert kinds == {"correction", "bonus"}  # the tiny pair gives both outcomes
    for s in steps:
        v = s["verify"]
        for j in range(s["n_accepted"]):
            assert v[j]["accepted"] and v[j]["r"] < v[j]["accept_prob"]
        if s["n_accepted"] < len(v):
            assert v[s["n_accepted"]]["accepted"] is False
            assert all(e["accepted"] is None and e["r"] is None for e in v[s["n_accepted"] + 1 :])
            assert s["next"]["source"] == "residual"
        assert s["timing_ms"]["draft"] >= 0 and s["timing_ms"]["verify"] > 0


def test_same_seed_same_trace(target, draft_lm):
    cfg = DecodeConfig(
        gamma=3, rule=make_rule("sampling"), sampling=Sampling(0.8, top_k=20), max_new_tokens=20, seed=11
    )
    a = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    b = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert a["output"]["token_ids"] == b["output"]["token_ids"]
    assert [s["n_accepted"] for s in a["steps"]] == [s["n_accepted"] for s in b["steps"]]


@pytest.mark.parametrize("lookup", [None, 1.0])
def test_first_token_distribution_matches_target(target, draft_lm, lookup):
    """Speculative sampling is lossless: the first emitted token is distributed as the target's p, with
    the model's drafts and with copies from the prompt (a one-hot q) alike."""
    gamma, n = 2, 1500
    p = torch.softmax(target.forward(target.new_cache(), PROMPT)[-1], -1).double()
    counts = torch.zeros_like(p)
    drafter = ModelDrafter(draft_lm, target.vocab_size, lookup=None if lookup is None else LookupFallback(lookup))
    accepted_first = 0
    for seed in range(n):
        cfg = DecodeConfig(
            gamma=gamma, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=gamma + 1, seed=seed
        )
        step = next(speculative_decode(target, drafter, PROMPT, cfg))
        first = step["draft"][0]["token_id"] if step["n_accepted"] > 0 else step["next"]["token_id"]
        accepted_first += step["n_accepted"] > 0
        counts[first] += 1
    # the draft differs from the target: both paths are exercised (a copy's p(x) is ~1% here)
    assert (0.1 * n if lookup is None else 0) < accepted_first < 0.95 * n
    assert_chi_square_fits(counts, p, n)


def assert_chi_square_fits(counts: torch.Tensor, p: torch.Tensor, n: int) -> None:
    """Chi-square of observed counts against n draws from p, over bins with expected count >= 5
    (the rest pooled); mean dof, sd sqrt(2 dof): 6 sd above the mean is ~never reached by chance."""
    expected = p * n
    big = expected >= 5
    obs = torch.cat([counts[big], counts[~big].sum().view(1)])
    exp = torch.cat([expected[big], expected[~big].sum().view(1)])
    keep = exp > 0
    chi2 = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum())
    dof = int(keep.sum()) - 1
    assert chi2 < dof + 6 * (2 * dof) ** 0.5, (chi2, dof)


def test_target_decode_matches_generate(target):
    assert list(target_decode(target, PROMPT, Sampling(0), 12)) == hf_greedy(target, PROMPT, 12)


def test_should_stop_ends_early_and_trace_is_marked_stopped(target, draft_lm):
    cfg = DecodeConfig(gamma=2, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=50)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    rec = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT, should_stop=stop)
    trace = rec.run()
    assert len(trace["steps"]) == 3
    assert trace["output"]["stop_reason"] == "stopped"
    assert validate(trace) == []


def test_breaking_out_of_the_loop_keeps_the_partial_trace(target, draft_lm):
    cfg = DecodeConfig(gamma=2, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=50)
    rec = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT)
    for i, _ in enumerate(rec):
        if i == 1:
            break
    assert len(rec.trace["steps"]) == 2 and rec.trace["output"]["stop_reason"] == "stopped"
    assert validate(rec.trace) == []


@pytest.mark.parametrize("rule", ["threshold", "typical"])
def test_lossy_rules_produce_valid_traces(target, draft_lm, rule):
    cfg = DecodeConfig(gamma=4, rule=make_rule(rule), sampling=Sampling(0.7, top_p=0.9), max_new_tokens=30, seed=2)
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert validate(trace) == []
    assert not trace["meta"]["rule"]["lossless"]


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="gamma"):
        DecodeConfig(gamma=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        DecodeConfig(max_new_tokens=0)


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_untempered_distributions_are_logged_beside_the_warped_ones(target, draft_lm, temperature):
    """Public report: greedy traces showed only 0/1 probabilities and one-entry top lists."""
    cfg = DecodeConfig(
        gamma=3,
        rule=make_rule("greedy" if temperature == 0 else "sampling"),
        sampling=Sampling(temperature),
        max_new_tokens=12,
    )
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert validate(trace) == []
    for s in trace["steps"]:
        for d, v in zip(s["draft"], s["verify"], strict=True):
            assert 0 < d["q_raw"] < 1 and 0 < v["p_raw"] < 1 and len(d["top_raw"]) > 1 and len(v["top_raw"]) > 1
            if temperature == 0:
                assert d["q"] == 1.0 and len(d["top"]) == 1  # warped: one-hot
        if s["next"] is not None:
            assert 0 < s["next"]["p_raw"] <= 1 and len(s["next"]["top_raw"]) > 1
    ctx = PROMPT
    with torch.no_grad():
        raw = target.model(input_ids=torch.tensor([ctx])).logits[0, -1].softmax(-1)
    first = trace["steps"][0]
    want = first["draft"][0]["token_id"] if first["draft"] else first["next"]["token_id"]
    got = first["verify"][0]["p_raw"] if first["draft"] else first["next"]["p_raw"]
    assert abs(got - float(raw[want])) < 1e-5  # the model's own softmax, not a warped one
    plain = DecodeConfig(gamma=3, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=6)
    untouched = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", plain, prompt_ids=PROMPT).run()
    assert not any("q_raw" in d or "top_raw" in d for s in untouched["steps"] for d in s["draft"])  # nothing warped
    bad = json.loads(json.dumps(trace))
    bad["steps"][0]["verify"][0]["p_raw"] = 1.5
    assert any("p_raw must be a probability" in p for p in validate(bad))


def test_build_config_is_the_one_builder():
    """Issue 24, item 7: the CLI, bench, the Live page and the lab's sweep build their configuration here."""
    from specviz.core.decoder import GammaPolicy, build_config
    from specviz.core.tree import TreeShape

    cfg = build_config(gamma=5, rule="threshold", temperature=0.7, top_k=20, seed=3, adaptive=True)
    assert cfg.rule.name == "threshold" and cfg.rule.params == {"tau": 0.3}  # the rule's default, from rules.py
    assert (cfg.sampling.temperature, cfg.sampling.top_k, cfg.seed) == (0.7, 20, 3)
    assert cfg.gamma_policy == GammaPolicy("heuristic", start=4)
    assert build_config(tree=TreeShape.parse("auto")).tree == TreeShape()  # auto is sized later
    with pytest.raises(ValueError, match="takes no parameter"):
        build_config(rule="sampling", tau=0.5)
    import inspect

    from specviz.cli.commands import main as cli
    from specviz.run import bench, live
    from specviz.ui import speedup_sweep

    for module in (bench, cli, live, speedup_sweep):
        assert "DecodeConfig(" not in inspect.getsource(module), module.__name__


@pytest.mark.parametrize(
    ("rule", "temperature"),
    [("sampling", 0.8), ("sampling", 0.0), ("greedy", 0.0), ("threshold", 0.0), ("typical", 0.0)],
)
def test_a_one_branch_tree_records_the_chains_steps(target, rule, temperature):
    """Issue 24, item 2: one step function and one record builder for chains and trees. With the same
    seed a one-branch tree drafts what the chain drafts (sampled drafts, or argmax at T = 0), and its
    records say what the chain's say: the same tested decisions, draws, corrections and sources; only
    the pass differs (tree-masked, not causal), so p agrees to float rounding, and the chain keeps the
    numbers its test computed past the first rejection where the tree tested nothing."""
    from specviz.core.tree import TreeShape
    from tests.conftest import perturbed

    # a draft close to the target (the golden traces' noise): every rule accepts some drafts, bonuses too
    draft_lm = CausalLM(perturbed(target.model, 1, 0.15), target.tokenizer, "close-draft", torch.device("cpu"))
    common = dict(gamma=4, rule=make_rule(rule), sampling=Sampling(temperature), max_new_tokens=30, seed=5)
    chain = list(speculative_decode(target, ModelDrafter(draft_lm, target.vocab_size), PROMPT, DecodeConfig(**common)))
    tree_cfg = DecodeConfig(**common, tree=TreeShape.parse("1,1,1,1"))
    tree = list(speculative_decode(target, ModelDrafter(draft_lm, target.vocab_size), PROMPT, tree_cfg))
    assert len(chain) == len(tree) and all("tree" not in s for s in chain)
    for c, t in zip(chain, tree, strict=True):
        n = c["n_accepted"]
        assert set(t) - set(c) == {"tree"} and n == t["n_accepted"]
        assert [d["token_id"] for d in c["draft"]] == [d["token_id"] for d in t["draft"]]
        for a, b in zip(c["verify"][: n + 1], t["verify"][: n + 1], strict=True):
            assert a.keys() == b.keys() and (a["accepted"], a["r"]) == (b["accepted"], b["r"])
            for key in ("p", "accept_prob", "ratio", "cutoff"):
                assert a[key] == (None if b[key] is None else pytest.approx(b[key], rel=1e-4, abs=1e-6))
        assert all(v["accepted"] is None and v["r"] is None for v in c["verify"][n + 1 :])
        nc, nt = c["next"], t["next"]
        assert (nc is None) == (nt is None)
        if nc is not None:
            assert [nc[k] for k in ("token_id", "kind", "source")] == [nt[k] for k in ("token_id", "kind", "source")]
    assert {s["n_accepted"] for s in chain} >= {0, 1}
