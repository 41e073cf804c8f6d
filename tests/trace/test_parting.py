"""specviz.trace.parting: the first parting from the evaluation model alone, and the trace's proof of a near-tie."""

from __future__ import annotations

import copy
import math

from specviz.trace import first_parting
from specviz.trace.parting import TOLERANCE_NATS


def _entry(token: int, probs: dict[int, float]) -> dict:
    return {"token_id": token, "top_raw": [{"token_id": t, "prob": p} for t, p in probs.items()]}


def _trace(dtype: str = "bfloat16", rule: str = "greedy") -> dict:
    """Two greedy steps: [5 accepted, 6 correction], then [7 bonus]: output 5, 6, 7."""
    return {
        "meta": {"rule": {"name": rule}, "sampling": {"temperature": 0.0 if rule == "greedy" else 1.0}, "dtype": dtype},
        "steps": [
            {
                "index": 0,
                "n_accepted": 1,
                "verify": [_entry(5, {5: 0.9, 1: 0.1}), _entry(9, {6: 0.40, 9: 0.39})],
                "next": _entry(6, {6: 0.40, 8: 0.35, 9: 0.2}),
            },
            {"index": 1, "n_accepted": 0, "verify": [], "next": _entry(7, {7: 0.6, 3: 0.3})},
        ],
        "output": {"token_ids": [5, 6, 7]},
    }


def test_identical_outputs() -> None:
    assert first_parting(_trace(), [5, 6, 7]).verdict == "identical"
    assert first_parting(_trace(), [5, 6]).verdict == "identical"  # the alone run stopped earlier


def test_a_parting_at_a_near_tie_is_proven_by_the_trace() -> None:
    verdict = first_parting(_trace(), [5, 8, 1])
    assert verdict.verdict == "near-tie" and verdict.position == 1 and verdict.step == 0
    assert math.isclose(verdict.gap, math.log(0.40 / 0.35)) and verdict.tolerance == TOLERANCE_NATS["bfloat16"]
    assert "rounding, not the method" in verdict.words() and "token 1 (step 0)" in verdict.words()


def test_a_wide_gap_or_an_unlogged_token_is_a_parting_otherwise() -> None:
    wide = first_parting(_trace(), [5, 6, 3])  # 0.6 vs 0.3: ln 2 = 0.69 nats > 0.5
    assert wide.verdict == "parted" and "above bfloat16's 0.5" in wide.why
    unlogged = first_parting(_trace(), [4, 6, 7])
    assert unlogged.verdict == "parted" and "not in the logged top-k" in unlogged.why
    assert "cannot show a near-tie" in unlogged.words()


def test_exact_numerics_allow_no_real_gap() -> None:
    assert first_parting(_trace("float32"), [5, 8, 1]).verdict == "parted"


def test_old_or_foreign_traces_say_not_recorded_never_a_false_pass() -> None:
    old = copy.deepcopy(_trace())
    del old["steps"][0]["next"]["top_raw"]
    verdict = first_parting(old, [5, 8, 1])
    assert verdict.verdict == "not recorded" and "no top_raw" in verdict.words()
    no_dtype = copy.deepcopy(_trace())
    del no_dtype["meta"]["dtype"]
    assert first_parting(no_dtype, [5, 8, 1]).verdict == "parted"
    assert first_parting({}, [1]).verdict == "not recorded"  # not greedy as far as it says


def test_sampled_runs_are_not_compared_token_by_token() -> None:
    verdict = first_parting(_trace(rule="sampling"), [5, 8, 1])
    assert verdict.verdict == "not recorded" and "distribution" in verdict.why
