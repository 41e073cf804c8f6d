"""Draft trees: their shapes, the tree attention mask, and the acceptance rules on trees.

A step's drafts form a tree hanging from the *root*: the last context token, which the target
reads in the same pass as the drafts. Node j has a token, a parent (-1 = the root) and a depth
(1 = a child of the root). Nodes are kept parent-before-child (breadth first), so the chain of
gamma drafts is the tree with parents [-1, 0, 1, ..., gamma - 2].

One target pass reads the root and every node; node j attends to the context, the root, its
ancestors and itself, and sits at position (root's position + depth): SpecInfer's tree attention
(Miao et al. 2024, arXiv 2305.09781, section 4). Its output row j gives p after the path to j.

Verification walks down from the root. At each node the children are tested in turn; the first
accepted child becomes the next node, and when every child is rejected the evaluation model
draws its own token (a correction); a node without children ends the path with a bonus token.
Each child is decided by its rule's own test (specviz.core.rules.KINDS), the one a chain runs.
With the sampling rule the children of a node are drawn from q *without replacement*, and
recursive rejection sampling keeps the result distributed exactly as p (SpecInfer's multi-round
speculative sampling, with the without-replacement form of Jeon et al. 2024, arXiv 2402.14160):
child i is accepted with min(1, p_i(x)/q_i(x)), where q_i is q with the earlier siblings removed
and renormalised, and after a rejection p_{i+1} = norm(max(0, p_i - q_i)).

Pure torch: no model here. Random numbers come in as arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from specviz.core.rules import Rule
from specviz.core.warp import sample

__all__ = [
    "DraftTree",
    "TreeShape",
    "TreeVerdict",
    "ancestors",
    "children_of",
    "depths",
    "feed_mask",
    "grow",
    "remove_drawn",
    "tree_mask",
    "tree_positions",
    "verify_tree",
]


def depths(parents: Sequence[int]) -> list[int]:
    """Depth of each node (1 = child of the root). Raises ValueError if a parent comes after its child."""
    out: list[int] = []
    for j, par in enumerate(parents):
        if not -1 <= par < j:
            raise ValueError(f"node {j}: parent {par} must be -1 (the root) or an earlier node")
        out.append(1 if par < 0 else out[par] + 1)
    return out


def ancestors(parents: Sequence[int], j: int) -> list[int]:
    """The nodes on the path from the root to node j, j included, root first (the root itself is left out)."""
    path = []
    while j >= 0:
        path.append(j)
        j = parents[j]
    return path[::-1]


def children_of(parents: Sequence[int], node: int) -> list[int]:
    """The children of `node` (-1 = the root), in the order they were drafted."""
    return [j for j, par in enumerate(parents) if par == node]


def tree_positions(parents: Sequence[int], root_position: int, n_context: int = 1) -> list[int]:
    """Position ids for one pass over (n_context new context tokens ending with the root) + the nodes."""
    first = root_position - n_context + 1
    return list(range(first, root_position + 1)) + [root_position + d for d in depths(parents)]


def tree_mask(parents: Sequence[int], past: int, n_context: int = 1) -> torch.Tensor:
    """The tree attention mask for one pass: [T, past + T] bool, True = may attend, T = n_context + N.

    `past` positions are already in the cache (all visible); the n_context new context tokens (the
    root last) attend causally; node j attends to the past, every new context token, its ancestors
    and itself — never to its siblings or cousins.
    """
    n = len(parents)
    t = n_context + n
    mask = torch.zeros(t, past + t, dtype=torch.bool)
    mask[:, :past] = True
    mask[:n_context, past : past + n_context] = torch.ones(n_context, n_context, dtype=torch.bool).tril()
    mask[n_context:, past : past + n_context] = True
    for j in range(n):
        for a in ancestors(parents, j):
            mask[n_context + j, past + n_context + a] = True
    return mask


def feed_mask(past: int, context: int, visible: Sequence[Sequence[int]]) -> torch.Tensor:
    """The mask for feeding some tree nodes to a model whose cache already holds `past` slots:
    [T, past + T] bool; row i sees the first `context` slots (the context), the cache slots listed in
    visible[i] (its ancestors, fed earlier) and itself."""
    t = len(visible)
    mask = torch.zeros(t, past + t, dtype=torch.bool)
    mask[:, :context] = True
    for i, slots in enumerate(visible):
        mask[i, list(slots)] = True
        mask[i, past + i] = True
    return mask


def remove_drawn(q: torch.Tensor, drawn: Sequence[int]) -> torch.Tensor:
    """q with the tokens already drawn removed and renormalised (sampling without replacement).
    [V] → [V]; all zeros when nothing is left."""
    if not drawn:
        return q
    q = q.clone()
    q[list(drawn)] = 0.0
    total = q.sum()
    return q / total if total > 0 else q


@dataclass
class TreeVerdict:
    """The outcome of verifying a draft tree. Per-node lists have one entry per node (None: not tested)."""

    path: list[int]  # accepted nodes, root first: n_accepted = len(path)
    accepted: list[bool | None]  # the rule's decision on each tested node
    accept_prob: list[float | None]  # sampling: min(1, p_i(x)/q_i(x)) as tested
    p_test: list[float | None]  # sampling: p_i(x), p after the earlier siblings' rejections
    q_test: list[float | None]  # sampling: q_i(x), q without the earlier siblings
    ratio: list[float | None]  # threshold: p(x)/q(x)
    cutoff: list[float | None]  # typical: min(epsilon, delta * exp(-H(p)))
    next_probs: torch.Tensor = field(repr=False)  # [V] where the evaluation model's own token is drawn
    source: str = "p"  # p | residual | argmax
    rejected_at: int | None = None  # the node whose children were all rejected (-1 = root), or None: a bonus


def verify_tree(
    rule: Rule,
    p: torch.Tensor,
    q: torch.Tensor,
    tokens: Sequence[int],
    parents: Sequence[int],
    r: torch.Tensor,
) -> TreeVerdict:
    """Walk a draft tree from the root, testing each node's children in drafting order.

    p: [1 + N, V], row 0 after the root, row 1 + j after node j (from one tree-masked target pass);
    q: [N, V], row j the draft distribution node j was drawn from (its parent's q, before any
    sibling was removed); tokens, parents: [N]; r: [N] uniforms, r[j] used if node j is tested.
    The first child the rule accepts is taken: sampling (recursive rejection sampling, lossless),
    greedy (the child equal to argmax p), threshold (p/q >= tau), typical (p above Medusa's cutoff).
    Raises ValueError on inconsistent shapes.
    """
    n = len(tokens)
    if p.shape[0] != n + 1 or q.shape[0] != n or len(parents) != n or r.numel() < n:
        raise ValueError(
            f"need p [N+1, V], q [N, V], parents [N], r [N]; got N={n}, p {tuple(p.shape)}, q {tuple(q.shape)}"
        )
    nones: list[None] = [None] * n
    v = TreeVerdict([], list(nones), list(nones), list(nones), list(nones), list(nones), list(nones), p[0])
    node = -1
    while True:
        kids = children_of(parents, node)
        p_row = p[node + 1]
        if not kids:  # a leaf: every node on the path was accepted
            v.next_probs, v.source = rule.next_distribution(p_row, None)
            return v
        chosen = _test_children(rule, p_row, q, tokens, kids, r, v)
        if chosen is None:
            v.rejected_at = node
            return v
        v.path.append(chosen)
        node = chosen


def _test_children(
    rule: Rule,
    p_row: torch.Tensor,
    q: torch.Tensor,
    tokens: Sequence[int],
    kids: list[int],
    r: torch.Tensor,
    v: TreeVerdict,
) -> int | None:
    """Test `kids` in order with the rule's own test (the one Rule.verify runs on a chain); record each
    decision in v; return the accepted child, or None and set v.next_probs to the correction's
    distribution. A recursive rule (sampling) tests each later sibling against the distribution the
    correction would have come from and q without the rejected tokens; the others test every
    sibling against p_row and its own q row (their parent's; a copied node's is one-hot)."""
    q_row = q[kids[0]]
    p_i, q_i, drawn = p_row, q_row, []
    for j in kids:
        x = tokens[j]
        p_x, q_x = _number(p_i[x]), _number((q_i if rule.recursive else q[j])[x])
        accepted, numbers = rule.test(p_i[None], p_x, q_x, torch.tensor([x]), _number(r[j]))
        v.accepted[j] = bool(accepted[0])
        for name, value in numbers.items():  # accept_prob | ratio | cutoff
            getattr(v, name)[j] = float(value[0])
        if rule.recursive:  # what the test read: p and q after the earlier siblings' rejections
            v.p_test[j], v.q_test[j] = float(p_x[0]), float(q_x[0])
        if v.accepted[j]:
            return j
        if rule.recursive or j == kids[-1]:
            v.next_probs, v.source = rule.next_distribution(p_i, q_i)
        if rule.recursive:
            drawn.append(x)
            p_i, q_i = v.next_probs, remove_drawn(q_row, drawn)
    return None


def _number(t: torch.Tensor) -> torch.Tensor:
    """One number as a [1] float64 tensor on the CPU: a tree tests its children one at a time."""
    return t.to("cpu", torch.float64).view(1)


_SHAPE = re.compile(r"^\d+(,\d+)*$")
_DYNAMIC = re.compile(r"^dynamic:(\d+)(?::(\d+))?(?::(\d+))?$")


@dataclass(frozen=True)
class TreeShape:
    """How a step's draft tree is grown. Text forms (the --tree option):

    - "chain": gamma drafts in a row (the default; a tree with one branch);
    - "k1,k2,...": static branching, k_d children for every node at depth d - 1
      (e.g. "3,2,1,1" = 3 + 6 + 6 + 6 = 21 nodes, depth 4);
    - "dynamic:N[:D[:K]]": EAGLE-2's expansion (Li et al. 2024, arXiv 2406.16858): at each depth the
      K most confident nodes (by the product of q along their path) get K children each, until N
      nodes or depth D (defaults D = 6, K = 4);
    - "auto": dynamic, with N and D chosen at load from the measured cost of target passes over
      1…64 positions (specviz.run.treesize).
    """

    kind: str = "chain"  # chain | static | dynamic | auto
    branching: tuple[int, ...] = ()
    nodes: int = 0
    depth: int = 0
    topk: int = 4

    def __post_init__(self) -> None:
        if self.kind not in ("chain", "static", "dynamic", "auto"):
            raise ValueError(f"unknown tree kind {self.kind!r}")
        if self.kind == "static" and (not self.branching or self.depth != len(self.branching)):
            raise ValueError("a static tree needs its branching per depth, and depth = len(branching)")
        if self.kind == "dynamic" and not (self.nodes >= 1 and self.depth >= 1 and self.topk >= 1):
            raise ValueError(
                f"a dynamic tree needs nodes, depth and topk >= 1, got {self.nodes}, {self.depth}, {self.topk}"
            )

    @classmethod
    def parse(cls, text: str) -> TreeShape:
        """Read the --tree text; raises ValueError with the accepted forms."""
        t = text.strip().lower().replace(" ", "")
        if t in ("chain", "auto"):
            return cls(t)
        if _SHAPE.match(t):
            branching = tuple(int(k) for k in t.split(","))
            if min(branching) < 1:
                raise ValueError(f"tree shape {text!r}: every depth needs at least one child")
            shape = cls("static", branching=branching, depth=len(branching))
            if shape.size > 256:
                raise ValueError(f"tree shape {text!r} has {shape.size} nodes: at most 256")
            return shape
        if m := _DYNAMIC.match(t):
            nodes, depth, topk = int(m[1]), int(m[2] or 6), int(m[3] or 4)
            if not (1 <= nodes <= 256 and 1 <= depth <= 32 and 1 <= topk <= 16):
                raise ValueError(f"tree shape {text!r}: need 1 <= N <= 256, 1 <= D <= 32, 1 <= K <= 16")
            return cls("dynamic", nodes=nodes, depth=depth, topk=topk)
        raise ValueError(
            f"unknown tree shape {text!r}: use 'chain', 'auto', branching per depth like '3,2,1,1', "
            "or 'dynamic:N[:D[:K]]'"
        )

    @property
    def size(self) -> int:
        """The most nodes a step can draft (a chain's is gamma, known only with the config)."""
        if self.kind == "static":
            total, width = 0, 1
            for k in self.branching:
                width *= k
                total += width
            return total
        return self.nodes

    def meta(self) -> dict[str, object]:
        """What a trace records about the shape (meta.tree)."""
        out: dict[str, object] = {"shape": self.text, "kind": self.kind, "nodes": self.size, "depth": self.depth}
        if self.kind == "static":
            out["branching"] = list(self.branching)
        if self.kind == "dynamic":
            out["topk"] = self.topk
        return out

    @property
    def text(self) -> str:
        """The --tree text that gives this shape back."""
        if self.kind == "static":
            return ",".join(str(k) for k in self.branching)
        if self.kind == "dynamic":
            return f"dynamic:{self.nodes}:{self.depth}:{self.topk}"
        return self.kind


@dataclass
class DraftTree:
    """A drafted tree: per node its token, parent, the draft distribution it was chosen from (its
    parent's q: [N, V]), the draft's own untempered one when warping changed it, and its path score
    (the product of q along the path from the root: EAGLE-2's confidence)."""

    token_ids: list[int]
    parents: list[int]
    q: torch.Tensor
    q_raw: torch.Tensor | None = None
    score: list[float] = field(default_factory=list)
    why_empty: str | None = None
    copied: list[int] = field(default_factory=list)  # per node: n of a prompt-lookup copy, 0 the model's; or empty

    @property
    def depth(self) -> int:
        return max(depths(self.parents), default=0)


# feed(nodes) runs the draft on those (already drafted) nodes and returns, for each, the draft's
# distribution of the next token: (q [k, V], q_raw [k, V] or None)
Feed = Callable[[list[int], "DraftTree"], tuple[torch.Tensor, torch.Tensor | None]]


def _choose(q: torch.Tensor, raw: torch.Tensor | None, k: int, sampled: bool, gen: torch.Generator) -> list[int]:
    """k children of one node: drawn from q without replacement (the sampling rule needs draws), or
    the k most likely under the draft's own distribution (greedy and lossy rules). One uniform is
    used per child either way, so a one-branch tree consumes the generator exactly as a chain does."""
    out: list[int] = []
    order = torch.topk(raw if raw is not None else q, min(k, q.shape[-1])).indices.tolist() if not sampled else []
    for i in range(k):
        u = float(torch.rand(1, generator=gen))
        if sampled:
            q_i = remove_drawn(q, out)
            if float(q_i.sum()) <= 0:
                break  # q's support is used up: no further child can be drawn
            out.append(sample(q_i, u))
        elif i < len(order) and float((raw if raw is not None else q)[order[i]]) > 0:
            out.append(int(order[i]))
    if not sampled and raw is not None and int((q > 0).sum()) > 1:
        # top-k / top-p left several tokens: a child the warped q excludes is one no chain would draft
        out = [x for x in out if float(q[x]) > 0]
    return out


def grow(
    shape: TreeShape,
    q_root: torch.Tensor,
    raw_root: torch.Tensor | None,
    feed: Feed,
    sampled: bool,
    gen: torch.Generator,
    max_depth: int,
) -> DraftTree:
    """Grow a draft tree level by level from the root's draft distribution q_root [V].

    Static shapes expand every node of the previous level; dynamic ones the K nodes with the best
    path score, K children each, until the node budget is spent (EAGLE-2's expansion phase; its
    re-ranking phase is left out because dropping drawn siblings by their own score would make the
    sampling rule lossy). Never deeper than max_depth (the token budget). `feed` runs the draft.
    """
    tree = DraftTree([], [], torch.zeros(0, q_root.shape[-1]), None, [])
    qs: list[torch.Tensor] = []
    raws: list[torch.Tensor] = []
    frontier: list[int] = [-1]  # nodes of the previous level
    known = {-1: (q_root, raw_root)}  # node → its next-token distribution
    budget = shape.size
    depth_limit = min(max_depth, shape.depth)
    for d in range(1, depth_limit + 1):
        left = budget - len(tree.token_ids)
        if left <= 0:
            break  # the budget is spent: no draft pass for a level that would get no nodes
        if shape.kind == "static":
            expand, k = frontier, shape.branching[d - 1]
        else:
            expand = sorted(frontier, key=lambda j: -(tree.score[j] if j >= 0 else 1.0))[: shape.topk]
            k = shape.topk
        expand = expand[: -(-left // k)]  # only the nodes the budget lets have children are run
        need = [j for j in expand if j not in known]
        if need:
            q_new, raw_new = feed(need, tree)
            for i, j in enumerate(need):
                known[j] = (q_new[i], None if raw_new is None else raw_new[i])
        frontier = []
        for j in expand:
            left = budget - len(tree.token_ids)
            if left <= 0:
                break
            q, raw = known[j]
            base = tree.score[j] if j >= 0 else 1.0
            for x in _choose(q, raw, min(k, left), sampled, gen):
                tree.token_ids.append(x)
                tree.parents.append(j)
                tree.score.append(base * float((q if sampled or raw is None else raw)[x]))
                qs.append(q)
                if raw is not None:
                    raws.append(raw)
                frontier.append(len(tree.token_ids) - 1)
        if not frontier:
            break
    if qs:
        tree.q = torch.stack(qs)
        tree.q_raw = torch.stack(raws) if raws else None
    return tree
