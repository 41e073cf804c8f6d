"""Figures for draft trees: the step's tree, and its tree attention mask; the tree's words.

Pure functions trace → go.Figure, like the rest of specviz.figures (whose colours, markers and
escaping they share). A step without `tree` (a chain, or a version-1 trace) is drawn as the
one-branch tree it is. Step through draws the tree and the mask, Statistics `tree_stats_words`;
the Speedup lab's `sizing_figure` (`--tree auto`'s measurements) is in specviz.figures.speedup.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from specviz.figures.palette import (
    COLORS,
    COPIED_LABEL,
    COPIED_MARKER,
    FONT,
    LABELS,
    LAYOUT,
    SYMBOLS,
    Kind,
)
from specviz.figures.spec import Spec, to_figure
from specviz.figures.step import copied_words
from specviz.figures.text import esc, fmt_num, visible
from specviz.trace import Step, Trace, TreeNode, rule_of

__all__ = [
    "node_kind",
    "step_nodes",
    "tree_figure",
    "tree_layout",
    "tree_mask_figure",
    "tree_mask_spec",
    "tree_spec",
    "tree_stats_words",
    "tree_words",
]

_FONT = {**FONT, "size": 12}  # the tree's labels: 12 px


def step_nodes(step: Step) -> tuple[list[TreeNode], list[int]]:
    """(nodes, path) of a step: its tree, or its chain of drafts read as a one-branch tree."""
    tree = step.get("tree")
    if tree:
        return tree["nodes"], tree["path"]
    nodes: list[TreeNode] = []
    for j, (d, v) in enumerate(zip(step["draft"], step["verify"], strict=True)):
        nodes.append(
            {  # type: ignore[typeddict-item]
                "token_id": d["token_id"],
                "token": d["token"],
                "parent": j - 1,
                "depth": j + 1,
                "q": d.get("q"),
                "p": v.get("p"),
                "accepted": v.get("accepted"),
                "r": v.get("r"),
                "accept_prob": v.get("accept_prob"),
                "p_test": None,
                "q_test": None,
                "ratio": v.get("ratio"),
                "cutoff": v.get("cutoff"),
                "score": None,
            }
        )
    return nodes, list(range(step["n_accepted"]))


def node_kind(node: TreeNode) -> Kind:
    """accepted | rejected | unevaluated (never tested: its parent was rejected, or a sibling won first)."""
    acc = node.get("accepted")
    return "unevaluated" if acc is None else "accepted" if acc else "rejected"


def tree_layout(parents: list[int]) -> tuple[list[int], list[float]]:
    """(x, y) per node: x = depth, y = the mean row of its leaves, leaves in drafting order (a tidy tree).
    The root is not included; it sits at x 0, at the mean row of the depth-1 nodes."""
    n = len(parents)
    kids: dict[int, list[int]] = {j: [] for j in range(-1, n)}
    for j, par in enumerate(parents):
        kids[par].append(j)
    y: dict[int, float] = {}
    row = 0

    def place(j: int) -> float:
        nonlocal row
        if not kids[j]:
            y[j] = float(row)
            row += 1
            return y[j]
        ys = [place(c) for c in kids[j]]
        y[j] = sum(ys) / len(ys)
        return y[j]

    place(-1)
    depth = [0] * n
    for j, par in enumerate(parents):
        depth[j] = 1 if par < 0 else depth[par] + 1
    return depth, [y[j] for j in range(n)] + [y[-1]]


def _hover(node: TreeNode, j: int) -> str:
    parts = [f"node {j} · depth {node['depth']} · {esc(node['token'], 40)}"]
    parts.append(f"q = {fmt_num(node.get('q'))}, p = {fmt_num(node.get('p'))}")
    if node.get("p_test") is not None:
        parts.append(f"tested after earlier siblings: p′ = {fmt_num(node['p_test'])}, q′ = {fmt_num(node['q_test'])}")
    if node.get("accept_prob") is not None:
        ratio = "p′/q′" if node.get("p_test") is not None else "p/q"  # as the step's words say it
        parts.append(f"r = {fmt_num(node.get('r'))} against min(1, {ratio}) = {fmt_num(node['accept_prob'])}")
    if node.get("ratio") is not None:
        parts.append(f"p/q = {fmt_num(node['ratio'])}")
    if node.get("cutoff") is not None:
        parts.append(f"cutoff = {fmt_num(node['cutoff'])}")
    if node.get("copied"):  # its q is one-hot by construction: a path score would claim a confidence it never had
        parts.append(copied_words(int(node["copied"])))
    elif node.get("score") is not None:
        parts.append(f"draft confidence (product of q on the path) = {fmt_num(node['score'])}")
    parts.append(LABELS[node_kind(node)] if node.get("accepted") is not None else "never tested")
    return "<br>".join(parts)


LABEL_CHARS = 8  # a node's label, at most: a depth's column is ~100 px on a half page


def tree_spec(trace: Trace, k: int) -> dict[str, Any]:
    """`tree_figure` as a plain Plotly dict (specviz.figures.spec)."""
    step = trace["steps"][k]
    nodes, path = step_nodes(step)
    parents = [nd["parent"] for nd in nodes]
    x, y = tree_layout(parents)
    root_y = y[-1] if nodes else 0.0
    fig = Spec()
    on_path = set(path)
    for j, nd in enumerate(nodes):  # edges first, under the markers
        px, py = (0, root_y) if nd["parent"] < 0 else (x[nd["parent"]], y[nd["parent"]])
        fig.add_trace(
            dict(
                type="scatter",
                x=[px, x[j]],
                y=[py, y[j]],
                mode="lines",
                line=dict(color=COLORS["accepted"] if j in on_path else "#C8C8C8", width=4 if j in on_path else 1.5),
                hoverinfo="skip",
                legendgroup="accepted" if j in on_path else None,  # the accepted path: an outcome's colour
                showlegend=False,
            )
        )
    fig.add_trace(
        dict(
            type="scatter",
            x=[0],
            y=[root_y],
            mode="markers+text",
            marker=dict(color="#404040", symbol="square", size=12),
            text=["context"],
            textposition="middle left",
            hovertemplate=f"the root: the context ({step.get('context_length', '?')} tokens), read in the same pass"
            "<extra></extra>",
            showlegend=False,
        )
    )
    for kind in ("accepted", "rejected", "unevaluated"):
        idx = [j for j, nd in enumerate(nodes) if node_kind(nd) == kind]
        if not idx:
            continue
        fig.add_trace(
            dict(
                type="scatter",
                x=[x[j] for j in idx],
                y=[y[j] for j in idx],
                mode="markers+text",
                marker=dict(
                    color=COLORS[kind], symbol=SYMBOLS[kind], size=13, line=dict(width=1.5, color=COLORS[kind])
                ),
                opacity=0.55 if kind == "unevaluated" else 1.0,
                legendgroup=kind,
                # short enough to end before the next depth's markers (newcomer review); hover has it whole
                text=[esc(nodes[j]["token"], LABEL_CHARS) for j in idx],
                textposition="middle right",
                textfont=_FONT,
                customdata=[_hover(nodes[j], j) for j in idx],
                hovertemplate="%{customdata}<extra></extra>",
                name=LABELS[kind],
            )
        )
    copied = [j for j, nd in enumerate(nodes) if nd.get("copied")]
    if copied:  # a ring around each copied node, as on the timeline
        fig.add_trace(
            dict(
                type="scatter",
                x=[x[j] for j in copied],
                y=[y[j] for j in copied],
                mode="markers",
                name=COPIED_LABEL,
                marker=COPIED_MARKER,
                hoverinfo="skip",
            )
        )
    nxt = step.get("next")
    last = max(x, default=0)
    if nxt is not None:
        at = path[-1] if path else -1
        ay = root_y if at < 0 else y[at]
        # the evaluation model's own token in a column of its own, level with the path's end: where a
        # node would go it would sit on the drafts of that depth
        kind = nxt["kind"]
        # no line to it: from the path's end any line crossed that row's (or another row's) untested drafts and
        # read as a path through them (newcomer review); level with the path's end, its hover and the words say it
        fig.add_trace(
            dict(
                type="scatter",
                x=[last + 1],
                y=[ay],
                mode="markers+text",
                marker=dict(color=COLORS[kind], symbol=SYMBOLS[kind], size=15),
                text=[esc(nxt["token"], 12)],
                textposition="middle right",
                textfont=_FONT,
                name=LABELS[kind],
                legendgroup=kind,
                # %{…} in a hovertemplate is Plotly's own syntax: a token's % becomes an entity
                hovertemplate=f"{LABELS[kind]}: {esc(nxt['token'], 40).replace('%', '&#37;')}<extra></extra>",
            )
        )
    depth = last + (1 if nxt is not None else 0)
    rows = max(y, default=0.0) + 1
    fig.update_layout(
        height=int(120 + 34 * max(rows, 3)),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
        **LAYOUT,
    )
    fig.update_xaxes(
        range=[-0.9, depth + 1.5],  # room for the last column's labels (up to 12 characters)
        tickvals=list(range(0, depth + 1)),
        ticktext=["root"] + [f"depth {d}" for d in range(1, last + 1)] + (["model's token"] if nxt is not None else []),
        fixedrange=True,
        showgrid=False,
        zeroline=False,
    )
    fig.update_yaxes(visible=False, autorange="reversed", fixedrange=True, range=[rows, -1])
    return fig.to_dict()


def tree_mask_spec(trace: Trace, k: int) -> dict[str, Any]:
    """`tree_mask_figure` as a plain Plotly dict (specviz.figures.spec)."""
    nodes, path = step_nodes(trace["steps"][k])
    n = len(nodes)
    labels = ["root"] + [f"{j}: {esc(nd['token'], 10)}" for j, nd in enumerate(nodes)]
    cols = ["context", *labels]
    z: list[list[int]] = []
    for i in range(n + 1):
        row = [1, 1] + [0] * n  # everyone sees the context and the root
        if i > 0:
            j = i - 1
            while j >= 0:
                row[2 + j] = 1
                j = nodes[j]["parent"]
        z.append(row)
    on_path = {0, *(j + 1 for j in path)}
    fig = Spec()
    fig.add_trace(
        dict(
            type="heatmap",
            z=z,
            x=list(range(len(cols))),
            y=list(range(n + 1)),
            colorscale=[[0, "#FFFFFF"], [1, "#404040"]],
            showscale=False,
            xgap=1,
            ygap=1,
            customdata=[
                [
                    f"{labels[i]} sees {cols[c]}" if z[i][c] else f"{labels[i]} does not see {cols[c]}"
                    for c in range(len(cols))
                ]
                for i in range(n + 1)
            ],
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    fig.update_layout(height=int(150 + 26 * (n + 1)), **{**LAYOUT, "margin": dict(l=10, r=10, t=10, b=10)})
    # columns by number (the rows name the tokens), upright text is as narrow as a column
    every = 1 if n <= 32 else 5
    fig.update_xaxes(
        tickvals=[0, 1, *range(2, len(cols), every)],
        ticktext=["context", "root", *[str(j) for j in range(0, n, every)]],
        tickangle=-90,
        side="top",
        tickfont=_FONT,
        fixedrange=True,
    )
    fig.update_yaxes(
        tickvals=list(range(n + 1)),
        ticktext=[f"<b>{lab}</b>" if i in on_path else lab for i, lab in enumerate(labels)],
        autorange="reversed",
        tickfont=_FONT,
        fixedrange=True,
    )
    return fig.to_dict()


def tree_figure(trace: Trace, k: int) -> go.Figure:
    """Step k's draft tree: the root (the context) on the left, a column per depth, edges to parents;
    nodes coloured and shaped as everywhere (accepted, rejected, not tested), the accepted path
    drawn thick, untested subtrees faded, and the evaluation model's own token after the path."""
    return to_figure(tree_spec(trace, k))


def tree_mask_figure(trace: Trace, k: int) -> go.Figure:
    """The tree attention mask of step k's verification pass: row = the query (the root, then each
    node), column = what it may attend to (the context, the root, the nodes). A node sees the context,
    the root, its ancestors and itself: never a sibling, so every branch is scored as if alone."""
    return to_figure(tree_mask_spec(trace, k))


def tree_words(trace: Trace, k: int) -> str:
    """One paragraph on step k's tree, for the page (plain text; token text made visible, not escaped:
    the caller escapes it for Markdown)."""
    step = trace["steps"][k]
    nodes, path = step_nodes(step)
    if not nodes:
        return "This step drafted nothing: the evaluation model wrote its token alone."
    depth = max(nd["depth"] for nd in nodes)
    tested = sum(nd.get("accepted") is not None for nd in nodes)
    words = [
        f"The draft proposed {len(nodes)} node{'s' if len(nodes) != 1 else ''} up to depth {depth}; "
        f"one pass of the evaluation model scored all of them, and the rule tested {tested}."
    ]
    if path:
        toks = " ".join(f"⟨{visible(nodes[j]['token'])}⟩" for j in path)
        words.append(f"The accepted path is {toks} ({len(path)} token{'s' if len(path) != 1 else ''}).")
    else:
        words.append("No child of the root was accepted.")
    nxt = step.get("next")
    if nxt is not None:
        words.append(
            f"Then the evaluation model added ⟨{visible(nxt['token'])}⟩ as a {nxt['kind']}: "
            + (
                "every child tried after the path's end was rejected, so it drew its own token there."
                if nxt["kind"] == "correction"
                else "the path reached a leaf, so its next token comes from p there, for free."
            )
        )
    copies = [j for j, nd in enumerate(nodes) if nd.get("copied")]
    if copies:
        took = sum(j in path for j in copies)
        words.append(
            f"{len(copies)} node{'s' if len(copies) != 1 else ''} {'were' if len(copies) != 1 else 'was'} "
            "copied from earlier text (q one-hot), beside the draft model's own where it was unsure; "
            f"{took} of {'them' if len(copies) != 1 else 'it'} on the accepted path."
        )
    firsts = {nd["parent"]: j for j, nd in reversed(list(enumerate(nodes)))}  # each parent's first child
    siblings = [j for j in path if firsts[nodes[j]["parent"]] != j]
    if siblings:
        words.append(
            f"{len(siblings)} accepted node{'s were' if len(siblings) != 1 else ' was'} not the first child tried: "
            + (
                "after a sibling is rejected the next one is tested on what is left (the residual "
                "norm(max(0, p − q)), and q without the rejected token)."
                if rule_of(trace)[0] == "sampling"
                else "after a sibling is rejected the next one is tested in turn."
            )
        )
    return " ".join(words)


def tree_stats_words(trace: Trace) -> str:
    """How a tree trace's statistics read (plain text), or "" for a chain trace.

    Per draft position becomes per depth: of the steps that reached depth d - 1, the share in which
    some child at depth d was accepted. α pools those decisions, so for a tree it is the chance that at
    least one candidate at a depth passes: higher than a chain's with the same draft, which is the
    point of a tree. Tokens per step is n_accepted + 1, as for a chain."""
    steps = [s for s in trace["steps"] if s.get("tree")]
    if not steps:
        return ""
    nodes = sum(len(s["tree"]["nodes"]) for s in steps) / len(steps)
    tested = sum(sum(nd.get("accepted") is not None for nd in s["tree"]["nodes"]) for s in steps) / len(steps)
    shape = (trace.get("meta", {}).get("tree") or {}).get("shape") or steps[0]["tree"].get("shape", "?")
    return (
        f"This trace drafted trees (shape {shape}): {nodes:.1f} nodes per step on average, {tested:.1f} of them tested "
        "by the rule; all were scored in one pass of the evaluation model. Read 'draft position' as depth: the "
        "acceptance at depth d is the share of steps that reached depth d − 1 in which some child at depth d was "
        "accepted, and α pools those decisions — for a tree it is the chance that at least one candidate at a depth "
        "passes, so it is higher than a chain's with the same draft. Tokens per step is n_accepted + 1, as for a "
        "chain; the formula's γ is the tree's depth, and its cost ratio c counts one draft pass per depth."
    )
