"""specviz.models.numerics (the dtype a machine computes fast) and the model layer's exact rows (models.rows_attention)."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
import torch

from specviz.core.decoder import DecodeConfig, target_decode
from specviz.core.rules import make_rule
from specviz.core.tree import TreeShape, tree_mask
from specviz.core.warp import Sampling
from specviz.drafters.factory import make_drafter
from specviz.drafters.model import ModelDrafter
from specviz.drafters.pair import load_pair
from specviz.models import lowbit, numerics, prepack, rows
from specviz.models.lm import ROWS_ATTENTION, CausalLM, ModelLoadError, load_model
from specviz.models.presets import REPO_ROOT
from specviz.models.rows import one_query, rows_attention
from specviz.run.record import Recording
from specviz.trace import first_parting, validate
from tests.conftest import PROMPT, make_model

CPU = torch.device("cpu")


def _probe(gain: float, one_row: float = 1.0) -> dict[str, object]:
    """A probe where bf16 is `gain` x fp32's speed on 9 rows and `one_row` x on one row."""
    return {"ms": {"float32": {"1": 1.0, "9": 2.0 * gain}, "bfloat16": {"1": 1.0 / one_row, "9": 2.0}}}


def test_named_dtypes_are_taken_as_asked() -> None:
    assert numerics.choose(CPU, "float32") == numerics.NumericsChoice(torch.float32, "exact", "--dtype float32")
    assert numerics.choose(CPU, "bf16").mode == "fast"
    with pytest.raises(ValueError, match="unknown dtype 'int4'; choose auto, float32"):
        numerics.choose(CPU, "int4")


def test_forced_bf16_on_a_cpu_without_bf16_units_says_it_is_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numerics, "bf16_flags", lambda: [])
    assert "no bf16 units: expect it to be slower" in numerics.choose(CPU, "bfloat16").why


def test_auto_keeps_float32_without_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numerics, "bf16_flags", lambda: [])
    monkeypatch.setattr(numerics, "_cpu_probe", lambda: pytest.fail("no probe needed without bf16 units"))
    choice = numerics.choose(CPU)
    assert choice.dtype == torch.float32 and choice.mode == "exact" and "no bf16 units" in choice.why


@pytest.mark.parametrize(
    ("gain", "one_row", "dtype"),
    [(1.72, 1.5, torch.bfloat16), (1.1, 1.5, torch.float32), (1.72, 0.87, torch.float32)],  # the last: this Xeon
)
def test_auto_follows_the_measured_probe(
    monkeypatch: pytest.MonkeyPatch, gain: float, one_row: float, dtype: torch.dtype
) -> None:
    monkeypatch.setattr(numerics, "bf16_flags", lambda: ["avx512_bf16"])
    monkeypatch.setattr(numerics, "_cpu_probe", lambda: _probe(gain, one_row))
    choice = numerics.choose(CPU)
    assert choice.dtype == dtype and f"{gain:.2f}x on a 9-row pass" in choice.why
    assert choice.meta()["dtype"] == str(dtype).removeprefix("torch.")


def test_auto_is_bf16_on_cuda_and_fp32_on_mps() -> None:
    assert numerics.choose(torch.device("cuda")).dtype == torch.bfloat16
    assert numerics.choose(torch.device("mps")).dtype == torch.float32


def test_the_probe_is_cached_per_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPECVIZ_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(numerics, "probe", lambda: calls.append(1) or _probe(2.0))
    first = numerics._cpu_probe()
    assert numerics._cpu_probe() == first and calls == [1]
    (cached,) = (tmp_path / "numerics").glob("cpu-*.json")
    assert json.loads(cached.read_text())["ms"] == first["ms"]
    cached.write_text("{broken")  # a damaged cache is measured again
    numerics._cpu_probe()
    assert calls == [1, 1]


def test_the_output_layer_probe_decides_once_per_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPECVIZ_CACHE", str(tmp_path))
    result = numerics.output_probe(reps=1)
    assert set(result["ms"]) == {"torch", "onednn"} and isinstance(result["packed"], bool)
    calls = []
    monkeypatch.setattr(numerics, "output_probe", lambda: calls.append(1) or {"packed": True})
    if not prepack.available_fp32():
        assert numerics.packs_output() is False
        return
    assert numerics.packs_output() is True and numerics.packs_output() is True and calls == [1]
    assert list((tmp_path / "numerics").glob("output-*.json"))


def test_the_real_probe_measures_both_dtypes() -> None:
    result = numerics.probe()
    assert set(result["ms"]) == {"float32", "bfloat16"}
    assert all(v > 0 for per in result["ms"].values() for v in per.values())


def test_row_limit_finds_where_rows_stay_bit_identical() -> None:
    w = torch.randn(48, 32).to(torch.bfloat16)
    limit = numerics.row_limit([w], limit=16)
    assert 1 <= limit <= 16
    x = torch.randn(limit, 32).to(torch.bfloat16)
    alone = torch.cat([torch.nn.functional.linear(x[i : i + 1], w) for i in range(limit)])
    assert torch.equal(torch.nn.functional.linear(x, w), alone)


class _Kernel(torch.nn.Module):
    """A stand-in matmul whose rounding depends on the call's row count, as real CPU kernels' does."""

    def __init__(self, one_row_off: bool = False, rare_row_off: bool = False) -> None:
        super().__init__()
        self.weight = torch.zeros(4, 16)
        self.one_row_off, self.rare_row_off = one_row_off, rare_row_off

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x[..., :4].float().clone()
        if self.one_row_off and x.shape[0] == 1:
            y += 1 / 64  # a one-row call rounds otherwise than any wider one (1536→576 on a Zen 4 EPYC)
        if self.rare_row_off and x.shape[0] > 1:
            y[x[:, 0].float() > 2.0] += 1 / 64  # only a rare row, and only in wide calls
        return y


def test_row_limit_checks_each_row_count_on_rows_of_its_own() -> None:
    assert numerics.row_limit([], limit=32, layers=[_Kernel()]) == 32
    # a rare row is met in calls of two rows already, not only once the calls reach it
    assert numerics.row_limit([], limit=32, layers=[_Kernel(rare_row_off=True)]) == 1


def test_a_one_row_kernel_that_rounds_otherwise_is_found_and_padding_fixes_it() -> None:
    odd = _Kernel(one_row_off=True)
    assert numerics.row_limit([], limit=16, layers=[odd]) == 1
    assert numerics.row_limit([], limit=16, layers=[odd], pad_one=True) == 16


def test_one_query_attention_is_torchs_attention_with_grouped_heads() -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, h, n, 16, generator=gen) for h, n in ((6, 1), (2, 37), (2, 37)))
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    assert torch.allclose(one_query(q, k, v), want, atol=1e-5)
    half = one_query(q.bfloat16(), k.bfloat16(), v.bfloat16(), scale=0.25)
    assert half.dtype == torch.bfloat16
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=0.25, enable_gqa=True)
    assert torch.allclose(half.float(), want, atol=0.05)


def test_a_tree_pass_attends_each_row_as_its_one_token_pass_bit_for_bit() -> None:
    gen = torch.Generator().manual_seed(0)
    past, parents = 20, [-1, -1, 0, 1, 3]  # two branches, one of depth 3
    t = len(parents) + 1
    q = torch.randn(1, 6, t, 16, generator=gen).bfloat16()
    k, v = (torch.randn(1, 2, past + t, 16, generator=gen).bfloat16() for _ in range(2))
    mask = tree_mask(parents, past, 1)
    additive = torch.zeros(mask.shape, dtype=torch.bfloat16).masked_fill_(~mask, torch.finfo(torch.bfloat16).min)
    out, _ = rows_attention(None, q, k, v, additive[None, None], 0.25)
    for i in range(t):
        seen = mask[i].nonzero().squeeze(-1)  # what the model alone's cache holds when it decodes row i
        alone, _ = rows_attention(None, q[:, :, i : i + 1], k[:, :, seen], v[:, :, seen], None, 0.25)
        assert torch.equal(out[:, i], alone[:, 0]), i


@pytest.mark.parametrize(("past", "d", "b"), [(5, 64, 1), (63, 64, 1), (64, 80, 1), (65, 128, 1), (200, 64, 2)])
def test_a_chain_pass_attends_each_row_as_its_one_token_pass_bit_for_bit(past: int, d: int, b: int) -> None:
    """A chain's rows read their keys in place (a prefix of the pass's keys, not a copy): the bits must
    still be those of the one-token pass, which reads a whole cache (on this machine's CPU kernels)."""
    gen = torch.Generator().manual_seed(past)
    t = 6
    q = torch.randn(b, 9, t, d, generator=gen).bfloat16()
    k, v = (torch.randn(b, 3, past + t, d, generator=gen).bfloat16() for _ in range(2))
    out, _ = rows_attention(None, q, k, v, None, 0.125)
    for i in range(t):
        n = past + i + 1  # the model alone's cache when it decodes row i: a tensor of its own
        alone, _ = rows_attention(None, q[:, :, i : i + 1], k[:, :, :n].clone(), v[:, :, :n].clone(), None, 0.125)
        assert torch.equal(out[:, i], alone[:, 0]), i


def test_a_masks_seen_keys_come_as_runs_and_bad_masks_say_so() -> None:
    mask = torch.tensor([[True, True, False, True, False], [False, False, False, False, True]])
    assert rows._seen(mask[None, None], 5) == [[(0, 2), (3, 4)], [(4, 5)]]
    other = mask.clone()
    other[1, 0] = True  # a new mask object is read anew, never the last one's runs
    assert rows._seen(other[None, None], 5)[1] == [(0, 1), (4, 5)]
    with pytest.raises(ValueError, match="row 1 of the attention mask sees no key"):
        rows._seen(torch.tensor([[True], [False]])[None, None], 1)
    with pytest.raises(ValueError, match="one sequence at a time, not a batch of 2"):
        rows._seen(mask[None, None].expand(2, 1, 2, 5), 5)


def test_exact_rows_pads_one_row_only_where_that_is_what_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    # oneDNN's packing stood in by a plain linear: what is tested is the choice, on any CPU (CI's may lack bf16 units)
    monkeypatch.setattr(
        prepack, "packed", lambda w, b=None, batch_size=1: partial(torch.nn.functional.linear, weight=w, bias=b)
    )
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Linear(32, 64)).to(torch.bfloat16)
    prepack.prepack(model)
    lm = CausalLM(model, None, "two-linears", CPU)  # type: ignore[arg-type]
    lm.prepacked = True
    monkeypatch.setattr(lm.model, "set_attn_implementation", lambda _: None, raising=False)

    def measured(weights, packed=False, pad_one=False, layers=(), limit=64):
        odd = weights and weights[0].shape[1] == 32  # the 32 → 64 layer: its one-row call rounds otherwise
        return 64 if pad_one or not odd else 1

    monkeypatch.setattr(numerics, "row_limit", measured)
    assert lm.exact_rows() and lm.rows == 64 and lm.padded_one == ["32→64"]
    assert [m.pad_one for m in lm.model] == [False, True]
    assert lm.meta()["one_row"] == "computed as a row of two in 32→64"


@pytest.fixture
def rows_lm(tokenizer) -> CausalLM:
    """A tiny float32 model computing rows one at a time, in pieces of 4 positions."""
    lm = CausalLM(make_model(0, len(tokenizer)), tokenizer, "tiny-rows", CPU)
    lm.rows = 4
    lm.model.set_attn_implementation(ROWS_ATTENTION)
    return lm


def test_rows_and_pieces_compute_what_one_fused_pass_does(target: CausalLM, rows_lm: CausalLM) -> None:
    ids = [*PROMPT, 8, 9, 10]
    fused = target.forward(target.new_cache(), ids)
    cache = rows_lm.new_cache()
    pieces = rows_lm.forward(cache, ids)
    assert pieces.shape == fused.shape and torch.allclose(pieces, fused, atol=1e-4)
    assert rows_lm.cache_length(cache) == len(ids)
    last = rows_lm.forward(rows_lm.new_cache(), ids, last=6)  # the last 6 rows span two pieces
    assert torch.allclose(last, fused[-6:], atol=1e-4)
    cache = rows_lm.new_cache()
    lg, hidden = rows_lm.forward_features(cache, ids, last=1)  # in pieces too, as forward is
    assert lg.shape[0] == 1 and rows_lm.cache_length(cache) == len(ids)
    assert torch.allclose(hidden, target.forward_features(target.new_cache(), ids)[1], atol=1e-4)
    _, fused_layers = rows_lm.forward_features(rows_lm.new_cache(), ids, layers=(1, 2))
    assert torch.allclose(fused_layers, target.forward_features(target.new_cache(), ids, layers=(1, 2))[1], atol=1e-4)


def test_exact_rows_keep_greedy_chains_and_trees_lossless(target: CausalLM, draft_lm: CausalLM, rows_lm) -> None:
    alone = list(target_decode(rows_lm, PROMPT, Sampling(0), 30))
    for tree in (TreeShape(), TreeShape.parse("3,2,1,1")):
        cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=30, tree=tree)
        trace = Recording(rows_lm, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
        assert trace["output"]["token_ids"] == alone
        assert validate(trace) == [] and trace["meta"]["numerics"]["rows"] == "one-token"


EVAL = (REPO_ROOT / "assets" / "prompts" / "eval.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def fast_pair():
    return load_pair("default", "standalone", "cpu", "bfloat16")


@pytest.mark.slow
@pytest.mark.parametrize("tree", ["chain", "dynamic:8:8:4"])
def test_fast_numerics_keep_the_contract_on_the_embedded_pair(fast_pair, tree: str) -> None:
    """bf16 greedy speculative output equals the evaluation model alone in bf16, or parts only at a
    near-tie the trace proves: never otherwise. Where this CPU's matmuls are row-invariant (exact rows
    on), it must be identical."""
    target, draft = fast_pair
    shape = TreeShape() if tree == "chain" else TreeShape.parse(tree)
    for prompt in EVAL[4:7]:
        ids = target.encode(prompt)
        cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=40, tree=shape)
        trace = Recording(target, make_drafter(target, draft), "", cfg, prompt_ids=ids).run()
        verdict = first_parting(trace, list(target_decode(target, ids, Sampling(0), 40)))
        assert verdict.verdict in ("identical", "near-tie"), verdict.words()
        if target.rows:
            assert verdict.verdict == "identical", verdict.words()
        assert trace["meta"]["numerics"]["mode"] == "fast" and trace["meta"]["dtype"] == "bfloat16"


@pytest.mark.slow
@pytest.mark.skipif(not lowbit.available(4), reason="this torch build has no CPU int4 weight-only kernel")
def test_int4_weights_keep_the_contract_on_the_embedded_pair() -> None:
    """--weights int4: the evaluation model computes with 4-bit groups; its greedy speculative output (chain
    and tree) equals the int4 model alone, since both kernels compute each row alone (exact rows)."""
    target, draft = load_pair("default", "standalone", "cpu", "auto", weights="int4")
    assert target.weights == "int4" and target.rows and draft.dtype == torch.bfloat16
    meta = target.meta()
    assert meta["mode"] == "fast" and "int4" in str(meta["weights"]) and meta["rows"] == "one-token"
    ids = target.encode(EVAL[4])
    alone = list(target_decode(target, ids, Sampling(0), 24))
    for shape in (TreeShape(), TreeShape.parse("dynamic:8:8:4")):
        cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=24, tree=shape)
        trace = Recording(target, make_drafter(target, draft), "", cfg, prompt_ids=ids).run()
        assert trace["output"]["token_ids"] == alone
        assert "int4" in str(trace["meta"]["numerics"]["weights"])


def test_low_bit_weights_say_what_they_need(model_dirs) -> None:
    tdir, _ = model_dirs
    with pytest.raises(ModelLoadError, match="unknown weights 'int3': choose one of full, int8, int4"):
        load_model(str(tdir), "cpu", "auto", weights="int3")
    with pytest.raises(ModelLoadError, match="computes in bfloat16: use --device cpu and --dtype auto or bfloat16"):
        load_model(str(tdir), "cpu", "float32", weights="int8")


def test_row_limit_measures_low_bit_layers_as_modules() -> None:
    if not lowbit.available(8):
        pytest.skip("no int8 weight-only kernel")
    layer = lowbit.Int8Linear(torch.nn.Linear(64, 48))
    assert numerics.row_limit([], limit=8, layers=[layer]) == 8  # one output row at a time: row-invariant


def test_the_probe_cache_tells_cpu_generations_apart(monkeypatch):
    # VMs name every Xeon generation alike: the cached probe must not cross from one to another
    monkeypatch.setattr(numerics, "cpu_name", lambda: "Intel(R) Xeon(R) Processor")
    monkeypatch.setattr(numerics, "cpu_model", lambda: "cpu family 6 model 143 stepping 8")
    sapphire = numerics._cache_file()
    monkeypatch.setattr(numerics, "cpu_model", lambda: "cpu family 6 model 207 stepping 2")
    assert numerics._cache_file() != sapphire
