"""The course's example as a trace: no model at all (Home's picture, the fallback sample, tests)."""

from __future__ import annotations

from specviz.trace import VERSION, TopEntry, Trace

__all__ = ["toy_trace"]


def toy_trace() -> Trace:
    """The course's example as a one-step trace: 'The cat sat' + drafts 'on the mat' → 'on the rug'."""

    def top(*pairs: tuple[int, str, float]) -> list[TopEntry]:
        return [{"token_id": i, "token": t, "prob": p} for i, t, p in pairs]

    return {
        "format": "specviz-trace",
        "version": VERSION,
        "meta": {
            "target": {"name": "illustration"},
            "draft": {"name": "illustration", "kind": "model"},
            "gamma": 3,
            "rule": {"name": "sampling", "params": {}, "lossless": True},
            "sampling": {"temperature": 1.0, "top_k": 0, "top_p": 1.0},
            "eos_token_ids": [],
            "max_new_tokens": 4,
        },
        "prompt": {"text": "The cat sat", "token_ids": [1, 2, 3]},
        "steps": [
            {
                "index": 0,
                "context_length": 3,
                "draft": [
                    {"token_id": 4, "token": " on", "q": 0.6, "top": top((4, " on", 0.6), (9, " down", 0.3))},
                    {"token_id": 5, "token": " the", "q": 0.5, "top": top((5, " the", 0.5), (10, " a", 0.4))},
                    {"token_id": 6, "token": " mat", "q": 0.4, "top": top((6, " mat", 0.4), (7, " rug", 0.3))},
                ],
                "verify": [
                    {
                        "p": 0.7,
                        "accept_prob": 1.0,
                        "r": 0.41,
                        "ratio": None,
                        "cutoff": None,
                        "accepted": True,
                        "top": top((4, " on", 0.7), (9, " down", 0.2)),
                    },
                    {
                        "p": 0.45,
                        "accept_prob": 0.9,
                        "r": 0.3,
                        "ratio": None,
                        "cutoff": None,
                        "accepted": True,
                        "top": top((5, " the", 0.45), (10, " a", 0.45)),
                    },
                    {
                        "p": 0.1,
                        "accept_prob": 0.25,
                        "r": 0.83,
                        "ratio": None,
                        "cutoff": None,
                        "accepted": False,
                        "top": top((7, " rug", 0.6), (8, " floor", 0.2), (6, " mat", 0.1)),
                    },
                ],
                "n_accepted": 2,
                "next": {
                    "token_id": 7,
                    "token": " rug",
                    "kind": "correction",
                    "source": "residual",
                    "prob": 0.6,
                    "top": top((7, " rug", 0.6), (8, " floor", 0.4)),
                },
                "timing_ms": {"draft": 3.0, "verify": 10.0},
            }
        ],
        "output": {"token_ids": [4, 5, 7], "text": " on the rug", "stop_reason": "stopped"},
    }
