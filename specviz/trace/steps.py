"""Validation of one step: its drafts, verify entries, decisions under the rule, the next token,
and a draft tree (version 2)."""

from __future__ import annotations

import math
import re
from itertools import pairwise
from typing import Any

from specviz.trace.problems import _is_int, _Meta, _nonneg_int, _num, _prob, _Problems, short
from specviz.trace.schema import NEXT_KINDS, NO_DRAFT_REASONS, TOL, TopEntry


def _check_top(top: object, where: str, m: _Meta, probs: _Problems) -> list[TopEntry] | None:
    """A `top` list: entries {token_id, token, prob}, distinct ids, by decreasing prob, summing to <= 1."""
    if not isinstance(top, list) or not all(
        isinstance(e, dict)
        and _nonneg_int(e.get("token_id"))
        and isinstance(e.get("token"), str)
        and _prob(e.get("prob")) is not None
        for e in top
    ):
        probs.add(where, '"top" must be an array of {token_id, token, prob} with prob in [0, 1]')
        return None
    if not all(_check_bytes(e, where, probs) for e in top):
        return None
    ps = [float(e["prob"]) for e in top]
    if any(a < b - TOL for a, b in pairwise(ps)):
        probs.add(where, '"top" must be sorted by decreasing prob')
        return None
    if len({e["token_id"] for e in top}) != len(top):
        probs.add(where, '"top" lists a token twice')
        return None
    if sum(ps) > 1 + TOL:
        probs.add(where, f'"top" probabilities sum to {sum(ps):.6g}, more than 1')
        return None
    if m.top_k is not None and len(top) > m.top_k:
        probs.add(where, f'"top" has {len(top)} entries, more than meta.top_k_logged = {m.top_k}')
    return top


def _check_raw(entry: dict[str, Any], key: str, token: int, where: str, m: _Meta, probs: _Problems) -> None:
    """The optional untempered distribution: `<key>_raw` a probability, `top_raw` a top list holding it."""
    raw, top = entry.get(f"{key}_raw"), entry.get("top_raw")
    if raw is None and top is None:
        return
    if _prob(raw) is None:
        probs.add(where, f"{key}_raw must be a probability in [0, 1] beside top_raw, got {short(raw)}")
        return
    checked = _check_top(top, f"{where}, top_raw", m, probs)
    if checked is not None:
        _agrees_with_top(token, float(raw), checked, f"{key}_raw", where, probs)


_HEX = re.compile(r"(?:[0-9a-f]{2}){1,64}")  # a token is at most a few bytes


def _check_bytes(entry: dict[str, Any], where: str, probs: _Problems) -> bool:
    """The optional `bytes` of a token: lowercase hex of 1 to 64 bytes."""
    raw = entry.get("bytes")
    if raw is None:
        return True
    if not (isinstance(raw, str) and _HEX.fullmatch(raw)):
        probs.add(where, f"bytes must be the token's bytes in lowercase hex (1 to 64 bytes), got {short(raw)}")
        return False
    return True


def _agrees_with_top(token: int, prob: float, top: list[TopEntry], what: str, where: str, probs: _Problems) -> None:
    """The token's own probability must match its `top` entry, or be no larger than the top-k's smallest."""
    for e in top:
        if e["token_id"] == token:
            if abs(float(e["prob"]) - prob) > TOL:
                probs.add(where, f"{what} = {prob:.6g} but its entry in top says {float(e['prob']):.6g}")
            return
    if top and prob > float(top[-1]["prob"]) + TOL:
        probs.add(where, f"{what} = {prob:.6g} is larger than a listed top entry, yet the token is not in top")


def _check_step(step: object, k: int, where: str, m: _Meta, probs: _Problems) -> bool:
    """Structural and rule checks of one step. True when the step is sound enough to build on."""
    if not isinstance(step, dict):
        probs.add(where, f"must be an object, got {short(step)}")
        return False
    ok = True
    if not (_is_int(step.get("index")) and step["index"] == k):
        probs.add(where, f"index is {short(step.get('index'))}, expected {k}")
    if m.needs("context_length" in step) or ("context_length" in step and not _nonneg_int(step["context_length"])):
        probs.add(where, f"context_length must be an integer >= 0, got {short(step.get('context_length'))}")
        ok = False
    draft, verify = step.get("draft"), step.get("verify")
    if not isinstance(draft, list) or not isinstance(verify, list):
        probs.add(where, "draft and verify must be arrays")
        return False
    if len(draft) != len(verify):
        probs.add(where, f"{len(draft)} draft tokens but {len(verify)} verify entries")
        return False
    if m.gamma is not None and len(draft) > m.gamma and "tree" not in step:
        probs.add(where, f"{len(draft)} draft tokens, more than gamma = {m.gamma}")
    n = step.get("n_accepted")
    if not (_is_int(n) and 0 <= n <= len(draft)):
        probs.add(where, f"n_accepted must be an integer in [0, {len(draft)}], got {short(n)}")
        return False
    first_reject: int | None = None
    decisions_ok = True  # every position readable and its accepted flag in the right state
    for j, (d, v) in enumerate(zip(draft, verify, strict=True)):
        pos = f"{where}, position {j}"
        if not _check_position(d, v, pos, m, probs):
            decisions_ok = False
            continue
        acc = v["accepted"]
        if first_reject is not None:
            if acc is not None:
                probs.add(pos, f"accepted must be null after the first rejection at position {first_reject}")
                decisions_ok = False
            continue
        if acc is None:
            probs.add(pos, "accepted must be true or false up to the first rejection, got null")
            decisions_ok = False
            continue
        if not acc:
            first_reject = j
        _check_rule(m, d, v, acc, pos, probs)
    leading = first_reject if first_reject is not None else len(draft)
    if decisions_ok and n != leading:
        probs.add(where, f"n_accepted is {n} but {leading} leading drafts are marked accepted")
    ok = ok and decisions_ok and n == leading
    if "next" not in step:
        if m.strict:
            probs.add(where, "next is missing (it is null only when generation ended inside the step)")
            return False
        nxt = None  # a minimal trace may not know the evaluation model's own token
    else:
        nxt = step["next"]
    if nxt is not None:
        if not (
            isinstance(nxt, dict)
            and _nonneg_int(nxt.get("token_id"))
            and isinstance(nxt.get("token"), str)
            and nxt.get("kind") in NEXT_KINDS
        ):
            probs.add(where, "next must be null or an object {token_id, token, kind: correction|bonus, top}")
            return False
        _check_bytes(nxt, f"{where}, next", probs)
        _check_raw(nxt, "p", nxt["token_id"], f"{where}, next", m, probs)
        if "source" in nxt and not isinstance(nxt["source"], str):
            probs.add(f"{where}, next", f"source must be a string, got {short(nxt['source'])}")
        want = "bonus" if n == len(draft) else "correction"
        if nxt["kind"] != want:
            probs.add(
                where, f"next.kind is {nxt['kind']!r} but should be {want!r} ({n} of {len(draft)} drafts accepted)"
            )
        top = _check_top(nxt.get("top"), f"{where}, next", m, probs) if m.needs("top" in nxt) or "top" in nxt else None
        if "prob" in nxt:
            prob = _prob(nxt["prob"])
            if prob is None:
                probs.add(f"{where}, next", f"prob must be a probability in [0, 1], got {short(nxt['prob'])}")
            elif top is not None:
                _agrees_with_top(nxt["token_id"], prob, top, "prob", f"{where}, next", probs)
        if m.rule == "greedy" and want == "correction" and decisions_ok:
            best = verify[n].get("top") or []  # p at the rejected position: the greedy correction is its argmax
            if (
                best
                and best[0]["token_id"] != nxt["token_id"]
                and float(best[0]["prob"]) > _p_of(nxt["token_id"], best) + TOL
            ):
                probs.add(
                    where, f"under greedy the correction must be the target's argmax, token {best[0]['token_id']}"
                )
    if "tree" in step:
        ok = _check_tree(step, where, m, probs) and ok
    if "no_draft" in step and (step["no_draft"] not in NO_DRAFT_REASONS or step["draft"]):
        probs.add(where, f"no_draft must be one of {', '.join(NO_DRAFT_REASONS)}, and only on a step with no drafts")
    timing = step.get("timing_ms")
    if not m.strict and timing is None:
        pass  # no timings: the statistics page says there is no cost analysis
    elif not (
        isinstance(timing, dict)
        and "draft" in timing
        and "verify" in timing
        and all((t := _num(x)) is not None and t >= 0 for x in timing.values())
    ):
        probs.add(where, "timing_ms must be an object with draft and verify milliseconds (numbers >= 0)")
    return ok


def _check_tree(step: dict[str, Any], where: str, m: _Meta, probs: _Problems) -> bool:
    """step.tree (version 2): parents before children, the path a chain of accepted nodes, siblings
    tested in order (rejected ones, at most one accepted, then untested), draft/verify its main line,
    each decision the rule's. True when the tree is sound."""
    tree = step["tree"]
    w = f"{where}, tree"
    if not (
        isinstance(tree, dict)
        and isinstance(tree.get("nodes"), list)
        and isinstance(tree.get("path"), list)
        and isinstance(tree.get("main"), list)
        and isinstance(tree.get("shape"), str)
    ):
        probs.add(w, "must be an object {shape, nodes, path, main}")
        return False
    nodes, path, main = tree["nodes"], tree["path"], tree["main"]
    n = len(nodes)
    depth: list[int] = []
    for j, node in enumerate(nodes):
        at = f"{w}, node {j}"
        if not (
            isinstance(node, dict)
            and _nonneg_int(node.get("token_id"))
            and isinstance(node.get("token"), str)
            and _is_int(node.get("parent"))
            and -1 <= node["parent"] < j
            and node.get("accepted") in (True, False, None)
        ):
            probs.add(at, "needs token_id, token, parent (-1 or an earlier node) and accepted (true, false or null)")
            return False
        depth.append(1 if node["parent"] < 0 else depth[node["parent"]] + 1)
        if node.get("depth") != depth[j]:
            probs.add(at, f"depth is {short(node.get('depth'))}, but its parents make it {depth[j]}")
        _check_copied(node, at, probs)
        for key in ("q", "p", "r", "accept_prob", "p_test", "q_test", "cutoff"):
            if node.get(key) is not None and _prob(node[key]) is None:
                probs.add(at, f"{key} must be null or a probability in [0, 1], got {short(node[key])}")
                return False
        if (
            m.rule == "sampling"
            and node["accepted"] is not None
            and node.get("r") is not None
            and node.get("accept_prob") is not None
            and (float(node["r"]) < float(node["accept_prob"])) != node["accepted"]
        ):
            probs.add(
                at,
                f"accepted is {str(node['accepted']).lower()} but r = {float(node['r']):.6g} against accept_prob = {float(node['accept_prob']):.6g}",
            )
    if not all(_is_int(j) and 0 <= j < n for j in path + main):
        probs.add(w, f"path and main must list node indices in [0, {n})")
        return False
    for i, j in enumerate(path):
        if nodes[j]["parent"] != (path[i - 1] if i else -1) or nodes[j]["accepted"] is not True:
            probs.add(w, f"path node {j} must be an accepted child of the node before it on the path")
            return False
    for parent in [-1, *range(n)]:
        states = [nodes[j]["accepted"] for j in range(n) if nodes[j]["parent"] == parent]
        tested = [s for s in states if s is not None]
        if states[: len(tested)] != tested or tested.count(True) > (1 if tested[-1:] == [True] else 0):
            probs.add(
                w,
                f"the children of node {parent} must be tested in order: rejected ones, then at most one accepted, then untested",
            )
            return False
    # only the root's and the path's children can have been tested; where the path ends, a child
    # left untested (or accepted) would mean the walk stopped early
    reached = {-1, *path}
    end = path[-1] if path else -1
    for j, node in enumerate(nodes):
        if node["accepted"] is not None and node["parent"] not in reached:
            probs.add(w, f"node {j} is marked tested, but its parent {node['parent']} is not on the accepted path")
            return False
        if node["parent"] == end and node["accepted"] is not False:
            probs.add(w, f"node {j} hangs from the path's end, so it must have been tested and rejected")
            return False
    if len(path) != step["n_accepted"] or main[: len(path)] != path:
        probs.add(
            w, f"the path has {len(path)} nodes, n_accepted is {step['n_accepted']}, and main must start with the path"
        )
        return False
    if len(main) != len(step["draft"]) or any(
        isinstance(d, dict) and d.get("token_id") != nodes[j]["token_id"]
        for d, j in zip(step["draft"], main, strict=False)
    ):
        probs.add(w, "draft must show the main line's tokens, in order")
        return False
    # the main line's draft and verify entries are its nodes, seen as a chain: the same numbers
    for i, (d, v, j) in enumerate(zip(step["draft"], step["verify"], main, strict=False)):
        if not (isinstance(d, dict) and isinstance(v, dict)):
            continue  # reported with the positions
        for key, entry in (("q", d), ("p", v), ("r", v), ("accept_prob", v), ("accepted", v)):
            mine, theirs = nodes[j].get(key), entry.get(key)
            if mine is None or theirs is None:
                continue  # not logged on one side (a minimal trace)
            same = mine == theirs if key == "accepted" else abs(float(mine) - float(theirs)) <= 1e-6
            if not same:
                probs.add(
                    w,
                    f"node {j} is draft position {i + 1}, but its {key} is {short(mine)} there and {short(theirs)} here",
                )
                return False
    return True


def _check_copied(entry: dict[str, Any], where: str, probs: _Problems) -> bool:
    """A draft entry's or tree node's `copied`, where present: the matched n-gram's length (1..10^6)."""
    copied = entry.get("copied")
    if copied is not None and not (_nonneg_int(copied) and 1 <= copied <= 1_000_000):
        probs.add(where, f"copied must be the matched n-gram's length, an integer >= 1, got {short(copied)}")
        return False
    return True


def _p_of(token: int, top: list[TopEntry]) -> float:
    return next((float(e["prob"]) for e in top if e["token_id"] == token), 0.0)


def _check_position(d: object, v: object, pos: str, m: _Meta, probs: _Problems) -> bool:
    """One draft entry and its verify entry, structurally. True when both are sound."""
    if not (isinstance(d, dict) and _nonneg_int(d.get("token_id")) and isinstance(d.get("token"), str)):
        probs.add(pos, "a draft entry needs an integer token_id >= 0 and a string token")
        return False
    if not isinstance(v, dict):
        probs.add(pos, f"the verify entry must be an object, got {short(v)}")
        return False
    ok = _check_bytes(d, pos, probs) & _check_copied(d, pos, probs)
    for key, entry in (("q", d), ("p", v)):
        _check_raw(entry, key, d["token_id"], pos, m, probs)
        if not m.strict and entry.get(key) is None:
            continue  # not logged (absent or null): allowed in a minimal trace
        if _prob(entry.get(key)) is None:
            probs.add(pos, f"{key} must be a probability in [0, 1], got {short(entry.get(key))}")
            ok = False
    for key in ("accept_prob", "r", "cutoff"):
        if v.get(key) is not None and _prob(v[key]) is None:
            probs.add(pos, f"{key} must be null or a probability in [0, 1], got {short(v[key])}")
            ok = False
    ratio = v.get("ratio")
    if ratio is not None and ((f := _num(ratio)) is None or f < 0):
        probs.add(pos, f"ratio must be null or a finite number >= 0, got {short(ratio)}")
        ok = False
    if "accepted" not in v or not (v["accepted"] is None or isinstance(v["accepted"], bool)):
        probs.add(pos, f"accepted must be true, false or null, got {short(v.get('accepted'))}")
        ok = False
    for entry, what, name in ((d, "q", "draft"), (v, "p", "verify")):
        if not m.strict and entry.get("top") is None:
            continue
        top = _check_top(entry.get("top"), f"{pos} ({name} top)", m, probs)
        if top is None:
            ok = False
        elif ok and entry.get(what) is not None:
            _agrees_with_top(d["token_id"], float(entry[what]), top, what, pos, probs)
    return ok


def _check_rule(m: _Meta, d: dict[str, Any], v: dict[str, Any], acc: bool, pos: str, probs: _Problems) -> None:
    """Is the decision the one the rule makes from the logged numbers? (Entries are sound here.)

    In a minimal trace a check runs only when the numbers it needs were logged.
    """
    if v.get("p") is None or d.get("q") is None:
        if not m.strict:
            _check_partial_rule(m, d, v, acc, pos, probs)
        return  # strict mode has reported the missing number already
    p, q = float(v["p"]), float(d["q"])
    said = "true" if acc else "false"
    if m.rule == "sampling" and v.get("p_test") is not None and v.get("q_test") is not None:
        p, q = float(v["p_test"]), float(v["q_test"])  # a tree's later sibling: tested without the earlier ones
    if m.rule == "sampling":
        a, r = v.get("accept_prob"), v.get("r")
        if (a is None or r is None) and m.strict:
            probs.add(pos, "the sampling rule logs accept_prob and r at every decided position")
            return
        want = min(1.0, p / q) if q > 0 else float(p > 0)
        if a is not None and abs(float(a) - want) > TOL:
            probs.add(pos, f"accept_prob {float(a):.6g} is not min(1, p/q) = {want:.6g}")
        if r is None:
            return
        a, r = (want if a is None else float(a)), float(r)
        if (r < a) != acc:
            probs.add(pos, f"accepted is {said} but r = {r:.6g} {'<' if r < a else '>='} accept_prob = {a:.6g}")
    elif m.rule == "threshold" and m.params is not None:
        tau = m.params["tau"]
        ratio = _num(v.get("ratio"))
        if ratio is None:
            ratio = p / q if q > 0 else math.inf
        elif q > 0 and abs(ratio - p / q) > TOL * max(1.0, ratio):
            probs.add(pos, f"ratio {ratio:.6g} is not p/q = {p / q:.6g}")
        if abs(ratio - tau) > 1e-6 * max(1.0, tau) and (ratio >= tau) != acc:
            probs.add(pos, f"accepted is {said} but p/q = {ratio:.6g} {'>=' if ratio >= tau else '<'} tau = {tau:.6g}")
    elif m.rule == "typical" and m.params is not None:
        cutoff = v.get("cutoff")
        if cutoff is None:
            return  # without the cutoff the decision cannot be re-checked (it needs all of p)
        cutoff = float(cutoff)
        if cutoff > m.params["epsilon"] + TOL:
            probs.add(pos, f"cutoff {cutoff:.6g} is above epsilon = {m.params['epsilon']:.6g}")
        if abs(p - cutoff) > 1e-9 and (p > cutoff) != acc:
            probs.add(pos, f"accepted is {said} but p = {p:.6g} {'>' if p > cutoff else '<='} cutoff = {cutoff:.6g}")
    elif m.rule == "greedy":
        top = v.get("top")
        if not top:
            return
        best = top[0]
        if acc and p < float(best["prob"]) - TOL:
            probs.add(pos, f"accepted under greedy but p = {p:.6g} is below the argmax's {float(best['prob']):.6g}")
        runner_up = float(top[1]["prob"]) if len(top) > 1 else 0.0
        if not acc and d["token_id"] == best["token_id"] and float(best["prob"]) > runner_up + TOL:
            probs.add(pos, "rejected under greedy although the draft is the target's argmax")


def _check_partial_rule(m: _Meta, d: dict[str, Any], v: dict[str, Any], acc: bool, pos: str, probs: _Problems) -> None:
    """A minimal trace without p or q: only a logged r against a logged accept_prob can be checked."""
    said = "true" if acc else "false"
    a, r = v.get("accept_prob"), v.get("r")
    if m.rule == "sampling" and a is not None and r is not None and (float(r) < float(a)) != acc:
        rel = "<" if float(r) < float(a) else ">="
        probs.add(pos, f"accepted is {said} but r = {float(r):.6g} {rel} accept_prob = {float(a):.6g}")
