"""The trace player's data: everything the step-through view shows, for every step, computed once.

The browser player (specviz/assets/player/player.js, mounted by specviz.ui.player and inlined in a
lesson file by specviz.teach.lesson) steps through this data without asking the server again: the
figures are the same Plotly specs the server pages draw (specviz.figures and specviz.figures.tree `*_spec`),
and the words are the same sentences (`describe_step`, `describe_next`, `tree_words`).

Token and prompt text is plain text here (made visible with `visible` / `literal`); the player
only ever puts it into the page as text (`textContent`), never as markup. Figure labels are
escaped for Plotly by the figure functions, as on the server.

The data contract (version `PLAYER_VERSION`): `player_data(trace, name)` → a JSON-ready dict
{version, name, meta_line, n, presentation, greedy, prompt, text, kinds, tokens, context_tokens, template,
timeline: {spec, highlight, rows, height}, steps: [step_data...]};
`pack` → gzip + base64 of its JSON (what travels to the browser; base64 has no character
that could end a <script> element). No Streamlit here.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from typing import Any

import plotly.io as pio

from specviz import figures as fg
from specviz.figures import spec as figspec
from specviz.figures import tree as ftree
from specviz.figures.palette import TINTS
from specviz.trace import Trace, rule_of

__all__ = [
    "PLAYER_VERSION",
    "TEXT",
    "TIMELINE_ROWS",
    "meta_line",
    "pack",
    "player_data",
    "step_data",
    "step_heading",
    "unpack",
]

PLAYER_VERSION = 1
TIMELINE_ROWS = 24  # steps the token timeline shows at once; its window follows the current step
CONTEXT_TOKENS = 60  # generated tokens shown before the step (the rest elided, with their count)
PROMPT_CHARS = 400  # the prompt's last characters shown (the rest elided, with their count)

# the view's fixed words, in one place for the page, the player and the lesson file
TEXT = {
    "context": "1 · Context so far",
    "hidden": "… {n} earlier generated tokens not shown",
    "decisions": "2–5 · Drafts, q, p, the rule's test, the decision",
    "next": "6 · n_accepted and the post-acceptance token",
    "table": "The drafts in numbers: q and p as the rule read them, each outcome and test",
    "acceptance": "Acceptance diagram: p and q of each draft, the rule's test, the first rejection",
    "no_acceptance": "No p or q in this trace, so no acceptance diagram: the decisions are in the table.",
    "distributions": "Distributions: top tokens of p, q and the residual; the chosen token is marked",
    "no_distributions": "No top-k lists in this trace, so no distributions panel.",
    "distributions_at": "Distributions at",
    "distributions_help": "Starts where the evaluation model's own token is drawn: position n_accepted + 1.",
    "residual": "The residual is rebuilt from the logged top lists only, so it is approximate where p or q has "
    "mass outside them.",
    "distributions_greedy": "Distributions: top tokens of p and q; the chosen token is marked",
    "residual_greedy": "Greedy has no residual: a draft is accepted when it is p's argmax, and the evaluation "
    "model's own token is p's argmax.",
    "untempered": " Outlined bars are each model's own distribution before temperature, top-k and top-p: at "
    "temperature 0 the filled bars are all-or-nothing, and the outlines show how sure each model was.",
    "tree": "Draft tree: every candidate the draft proposed, scored in one pass of the evaluation model; "
    "the accepted path is drawn thick. The acceptance diagram above shows its main line.",
    "mask": "Tree attention mask: which position each node may attend to (dark = sees)",
    "timeline": "Token timeline — click a marker to jump to its step",
    "keys": "Keys: ← → step, Home / End first and last, Space plays and pauses.",
}


# Room for the axis labels, set ahead: with margins too small, Plotly.js measures the labels, grows the
# margins and draws the whole figure again, which doubles what a step costs in the browser. The same
# figures, with the margins Plotly would have grown to (about: it still grows them if they fall short).
CHAR_PX = 7.4  # one character of the figures' monospace font at 12 px


def _label_px(labels: Any) -> float:
    return max((len(html.unescape(re.sub(r"<[^>]+>", "", str(x)))) for x in labels or []), default=0) * CHAR_PX


def _room(spec: dict[str, Any], **margin: float) -> dict[str, Any]:
    layout = spec["layout"]
    have = layout.get("margin") or {}
    layout["margin"] = {**have, **{k: max(v, have.get(k, 0)) for k, v in margin.items()}}
    return spec


def _has_raw(step: dict[str, Any]) -> bool:
    """Whether the step logs the models' untempered distributions (a trace recorded with warping)."""
    nxt = step.get("next") or {}
    return any("top_raw" in e for e in (*step["draft"], *step["verify"], nxt))


def _cells(trace: Trace, k: int) -> dict[str, Any]:
    """The step's table: one row per draft position (the server page's columns and numbers)."""
    cells = [c for c in fg.step_cells(trace, k) if not c.from_model]
    columns = ["pos", "draft token", "q(x)", "p(x)"]
    raw = [(name, attr) for name, attr in (("q(x) untempered", "q_raw"), ("p(x) untempered", "p_raw"))]
    raw = [(name, attr) for name, attr in raw if any(getattr(c, attr) is not None for c in cells)]
    columns += [name for name, _ in raw] + ["outcome", "the rule's test"]
    rows = []
    for c in cells:
        numbers = [c.q, c.p, *(getattr(c, attr) for _, attr in raw)]
        rows.append(
            [
                str(c.position + 1),
                fg.visible(c.token),
                *("—" if x is None else f"{x:.3f}" for x in numbers),
                fg.LABELS[c.kind],
                c.test,
            ]
        )
    kinds = [c.kind for c in cells]
    return {"columns": columns, "rows": rows, "kinds": kinds}


def meta_line(trace: Trace) -> str:
    """The trace in one line of plain text: models, gamma, rule, temperature, seed."""
    m = trace.get("meta", {})
    rule = m.get("rule", {})
    params = ", ".join(f"{k} = {v:g}" for k, v in (rule.get("params") or {}).items() if isinstance(v, (int, float)))
    samp = m.get("sampling", {})
    return fg.literal(
        f"{m.get('target', {}).get('name', '?')} ← {m.get('draft', {}).get('name', '?')} · γ = {m.get('gamma')} · "
        f"rule {rule.get('name', '?')}{f' ({params})' if params else ''} · T = {samp.get('temperature', '?')} · "
        f"seed {m.get('seed', '?')}",
        300,
    )


def step_heading(k: int, n: int) -> str:
    """ "Step 3 of 34 (numbered from 0)": the count as the timeline says it, the index as the trace has it."""
    return f"Step {k} of {n} (numbered from 0)"


def _context(trace: Trace, k: int, generated_before: int) -> str:
    step = trace["steps"][k]
    prompt = trace.get("prompt", {})
    if "context_length" in step and "token_ids" in prompt:
        chat = ", with the chat template" if trace.get("meta", {}).get("chat") else ""
        return (
            f"i = {step['context_length']} tokens — the prompt ({len(prompt['token_ids'])} tokens{chat}) and "
            f"{generated_before} generated."
        )
    return f"the prompt (not in this trace) and {generated_before} generated tokens."


def _distribution(trace: Trace, k: int, position: int) -> dict[str, Any]:
    spec = fg.distribution_spec(trace, k, position)
    return _room(spec, l=16 + _label_px(spec["data"][0]["y"]) if spec["data"] else 10)


def _mask(trace: Trace, k: int) -> dict[str, Any]:
    spec = ftree.tree_mask_spec(trace, k)
    return _room(spec, l=16 + _label_px(spec["layout"]["yaxis"]["ticktext"]), t=60)


def step_data(
    trace: Trace, k: int, gaps: set[str], generated_before: int, presentation: bool = False
) -> dict[str, Any]:
    """Everything the step-through view shows for step k (JSON-ready; see the module docstring).

    `gaps`: the keys of parts missing everywhere (`figures.missing_parts`, e.g. {"p", "q", "top"});
    `generated_before`: output tokens before step k. `presentation` scales the figures for a projector.
    """
    look = figspec.presented_spec if presentation else (lambda spec: spec)
    step = trace["steps"][k]
    n, g = step["n_accepted"], len(step["draft"])
    positions = list(range(g + 1)) if n == g else list(range(g))
    out: dict[str, Any] = {
        "heading": step_heading(k, len(trace["steps"])),
        "context": _context(trace, k, generated_before),
        "describe": fg.describe_step(trace, k),
        "table": _cells(trace, k),
        "next": fg.describe_next(trace, k),
        "acceptance": None if {"p", "q"} <= gaps else look(_room(fg.acceptance_spec(trace, k), l=64, b=44)),
        "distributions": None,
        "tree": None,
    }
    if "top" not in gaps:
        out["distributions"] = {
            "positions": positions or [0],
            "labels": [f"position {j + 1}" if j < g else "bonus position" for j in positions or [0]],
            "default": min(n, (positions or [0])[-1]),
            "specs": [look(_distribution(trace, k, j)) for j in positions or [0]],
            "untempered": _has_raw(step),
        }
    if (step.get("tree") or {}).get("nodes"):  # a tree step that drafted nothing reads as a chain's: no 1×2 mask
        out["tree"] = {
            "tree": look(_room(ftree.tree_spec(trace, k), b=30)),
            "mask": look(_mask(trace, k)),
            "words": ftree.tree_words(trace, k),
        }
    return out


def player_data(trace: Trace, name: str, meta_line: str = "", presentation: bool = False) -> dict[str, Any]:
    """The player's data for a whole trace: every step's words, table and figures, the output tokens
    with their provenance, and the token timeline over all steps (the player shows a window of
    `TIMELINE_ROWS` around the current step, as the server did).

    `name` labels the trace (a sample's name, an upload's file name: shown as text); `meta_line` is
    the one-line description the page shows above. Cost: about 1 ms per step on a 2-core CPU.
    """
    steps = trace["steps"]
    gaps = {gap.key for gap in fg.missing_parts(trace) if gap.missing >= gap.of}
    tokens = fg.provenance(trace)
    counts = [0] * (len(steps) + 1)  # counts[k]: output tokens generated before step k
    for t in tokens:
        counts[min(t.step, len(steps) - 1) + 1] += 1
    for k in range(1, len(counts)):
        counts[k] += counts[k - 1]
    look = figspec.presented_spec if presentation else (lambda spec: spec)
    prompt = trace.get("prompt", {})
    return {
        "version": PLAYER_VERSION,
        "name": fg.literal(name, 200),
        "meta_line": meta_line,
        "n": len(steps),
        "presentation": presentation,
        "greedy": rule_of(trace)[0] == "greedy",
        "prompt": fg.recent(prompt["text"], PROMPT_CHARS) if prompt.get("text") else "",
        "text": TEXT,
        "kinds": {k: {"color": fg.COLORS[k], "tint": TINTS[k], "label": fg.LABELS[k]} for k in fg.KINDS},
        # [visible text, kind, step] for every output token; the player shows those before the step
        "tokens": [[fg.visible(t.token), t.kind, t.step] for t in tokens],
        "context_tokens": CONTEXT_TOKENS,
        # plotly.py's own template (automargin, grid, fonts); by name: Streamlit changes the default
        "template": pio.templates["plotly"].to_plotly_json(),
        "timeline": {
            "spec": look(_room(fg.timeline_spec(trace, 0, len(steps)), l=64)),
            "highlight": fg.TIMELINE_HIGHLIGHT,
            "rows": TIMELINE_ROWS,
            # height = (base + row · rows) · scale, as timeline_spec and figspec.presented_spec compute it
            "height": [130, 28, 1 + (1.6 - 1) / 2 if presentation else 1],
        },
        "steps": [step_data(trace, k, gaps, counts[k], presentation) for k in range(len(steps))],
    }


def pack(data: dict[str, Any]) -> str:
    """gzip + base64 of the data's JSON: a tenth of the size, and only [A-Za-z0-9+/=] characters."""
    raw = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def unpack(packed: str) -> dict[str, Any]:
    """The inverse of `pack` (for tests and tools)."""
    return json.loads(gzip.decompress(base64.b64decode(packed)))
