"""Command-line options shared by `record` and `bench` (and their argument types).

A module of its own so that specviz.cli.commands and specviz.run.bench both import it and neither imports the
other at load time. argparse, and the rules' names and defaults from their home (specviz.core.rules); the tree
shape is parsed by specviz.core.tree when it is used.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from specviz.core.decoder import DEFAULT_CONFIDENCE
from specviz.core.rules import KINDS, RULES
from specviz.drafters.ngram import DEFAULT_LOOKUP_BELOW

if TYPE_CHECKING:
    from specviz.core.decoder import DecodeConfig
    from specviz.core.tree import TreeShape

__all__ = [
    "add_decoding_arguments",
    "add_policy_arguments",
    "add_tree_argument",
    "decode_config",
    "finite_float",
    "int_at_least",
    "probability",
    "seed",
    "tree_shape",
]


def int_at_least(lo: int) -> Callable[[str], int]:
    def parse(s: str) -> int:
        try:
            x = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None
        if x < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {x}")
        return x

    return parse


def finite_float(s: str) -> float:
    try:
        x = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {s!r}")
    return x


def seed(s: str) -> int:
    x = int_at_least(0)(s)
    if x >= 2**63:  # torch.Generator.manual_seed takes a 64-bit signed integer
        raise argparse.ArgumentTypeError(f"must be < 2**63, got {x}")
    return x


def add_policy_arguments(p: argparse.ArgumentParser) -> None:
    """How many drafts a step asks for, beyond a fixed --gamma (see GammaPolicy)."""
    p.add_argument(
        "--adaptive",
        action="store_true",
        help="adapt the draft length each step (start at 4, +2 after all accepted, -1 otherwise; --gamma is the most)",
    )
    p.add_argument(
        "--confidence",
        type=probability,
        default=DEFAULT_CONFIDENCE,
        help="a model draft stops early after a token whose own probability q is below this "
        f"(0..1; 0: never; default {DEFAULT_CONFIDENCE})",
    )


def add_lookup_argument(p: argparse.ArgumentParser, default: float = DEFAULT_LOOKUP_BELOW) -> None:
    """--lookup-below: a draft model's chain copies from earlier text where it is unsure (LookupFallback)."""
    p.add_argument(
        "--lookup-below",
        type=probability,
        default=default,
        help="a draft model's chain copies what followed the last 2-3 tokens' earlier occurrence (prompt lookup) "
        f"where its own best q is below this (0..1; 0: never; default {default})",
    )


def tree_shape(s: str) -> TreeShape:
    from specviz.core.tree import TreeShape

    try:
        return TreeShape.parse(s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_tree_argument(p: argparse.ArgumentParser) -> None:
    """--tree: a chain of gamma drafts (the default), a draft tree, or one sized to this machine."""
    p.add_argument(
        "--tree",
        type=tree_shape,
        default="chain",
        help="chain (gamma drafts in a row, the default); auto (a dynamic tree or a chain, sized to this machine's "
        "measured costs); branching per depth like 3,2,1,1; or dynamic:N[:D[:K]] (EAGLE-2: N nodes, depth D, K children)",
    )


def add_decoding_arguments(p: argparse.ArgumentParser, rule: str = "sampling", temperature: float = 1.0) -> None:
    """The rule, its parameters, the warping, the seed and the prompt format: what `record` and the
    Live page take, and `bench` too, so that the three can be held side by side."""
    threshold, typical = KINDS["threshold"].defaults, KINDS["typical"].defaults
    p.add_argument("--rule", default=rule, choices=RULES)
    p.add_argument(
        "--tau", type=finite_float, help=f"threshold rule: accept iff p/q >= tau (default {threshold['tau']})"
    )
    p.add_argument("--epsilon", type=finite_float, help=f"typical rule (default {typical['epsilon']})")
    p.add_argument("--delta", type=finite_float, help=f"typical rule (default {typical['delta']})")
    p.add_argument("--temperature", type=finite_float, default=temperature, help="0 = greedy")
    p.add_argument("--top-k", type=int_at_least(0), default=0, help="0 = off")
    p.add_argument("--top-p", type=finite_float, default=1.0, help="in (0, 1]; 1.0 = off")
    p.add_argument("--seed", type=seed, default=0)
    chat = p.add_mutually_exclusive_group()
    chat.add_argument(
        "--chat",
        dest="chat",
        action="store_true",
        default=None,
        help="wrap the prompt in the chat template (default when there is one)",
    )
    chat.add_argument("--no-chat", dest="chat", action="store_false", help="use the prompt as raw text")


def probability(s: str) -> float:
    x = finite_float(s)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {s}")
    return x


def decode_config(args: argparse.Namespace, **extra: object) -> DecodeConfig:
    """decoder.build_config from the options add_decoding_arguments and add_policy_arguments define
    (record and bench share them); `extra` adds what only one command has (tree, top_k_log)."""
    from specviz.core.decoder import build_config

    return build_config(
        gamma=args.gamma,
        rule=args.rule,
        tau=args.tau,
        epsilon=args.epsilon,
        delta=args.delta,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        adaptive=args.adaptive,
        confidence=args.confidence,
        **extra,  # type: ignore[arg-type]
    )
