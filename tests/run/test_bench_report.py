"""What `specviz bench` prints, from a result dict shaped as `--json-out` writes it."""

from __future__ import annotations

import pytest

from specviz.run.bench_report import print_table


def _result() -> dict:
    spread = {"median": 30.0, "min": 29.0, "max": 31.0}
    return {
        "target": "default",
        "draft": "default",
        "gamma": 4,
        "gamma_policy": {"name": "fixed", "confidence": 0.4},
        "tree": "chain",
        "prompts": 6,
        "reps": 2,
        "max_new_tokens": 128,
        "device": "cpu",
        "tokens_per_s": {"target-only": {**spread, "median": 20.0}, "specviz": spread},
        "tokens_per_step": 1.84,
        "acceptance_rate": 0.52,
        "speedup_vs_target": 1.5,
        "hf_assisted_ratio": None,
        "compare_draft": {
            "draft": "/tmp/other",
            "speedup_vs_target": 1.4,
            "tokens_per_step": 1.8,
            "acceptance_rate": 0.5,
        },
        "sampling_t0.7": {"tokens_per_step": 1.67, "acceptance_rate": None},
        "identical_greedy_outputs": True,
        "numerics": {"mode": "fast", "dtype": "bfloat16", "rows": "all", "why": "bf16 units", "row_limit": None},
        "contract": {"identical": 6, "near-tie": 0, "parted": 0, "not recorded": 0},
    }


def test_the_table_names_every_method_and_the_comparisons(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(_result())
    out = capsys.readouterr().out
    assert "default <- default, gamma 4 (fixed schedule, stop below q 0.4), tree chain" in out
    assert "target-only" in out and "specviz" in out and "1.84" in out and "52.0%" in out
    assert "speedup vs target-only: 1.50x" in out
    assert "with --compare-draft /tmp/other: 1.40x the target, 1.80 tokens/step" in out
    assert "sampling at T=0.7: 1.67 tokens/step, acceptance n/a" in out
    assert "numerics: fast (bfloat16" in out
