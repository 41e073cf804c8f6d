"""The Live page's settings form (pages/live.py): the model pair, the prompt, the decoding settings.
Each setting keeps its value through a visit to another page (persist_state="session"); the run and
its result are specviz.ui.live."""

from __future__ import annotations

import streamlit as st

from specviz.core.rules import KINDS, RULES
from specviz.models import presets
from specviz.models.presets import DEFAULT, FEATURE, PRESETS, draft_ready, resolve_draft
from specviz.run.live import LiveSettings
from specviz.ui.traces import FEATURE_DRAFT_WORDS

__all__ = ["CUSTOM", "DRAFT_MODEL", "NGRAM", "TREE_CHOICES", "live_form", "tree_choice_words"]

LOSSLESS = [name for name, kind in KINDS.items() if kind.lossless]
RULE_HELP = f"{' and '.join(LOSSLESS)} are lossless; {' and '.join(n for n in RULES if n not in LOSSLESS)} are lossy"
CUSTOM = "custom (hub id or local path)"
NGRAM = "prompt lookup (n-gram, no draft model)"
DRAFT_MODEL = "the pair's draft"

TREE_CHOICES = ["chain", "auto", "2,2,1,1", "3,2,1,1,1", "dynamic:16:6:4"]


def tree_choice_words(text: str) -> str:
    """A tree choice in words: 'chain of γ drafts', 'tree 2·2·1·1 (14 nodes)', ..."""
    from specviz.core.tree import TreeShape

    shape = TreeShape.parse(text)
    if shape.kind == "chain":
        return "chain of γ drafts"
    if shape.kind == "auto":
        return "sized to this machine (a tree or a chain)"
    if shape.kind == "static":
        return f"tree {'·'.join(map(str, shape.branching))} ({shape.size} nodes)"
    return f"dynamic tree, {shape.nodes} nodes (EAGLE-2)"


def live_form() -> LiveSettings:
    """The live page's controls; returns what they say."""
    d = LiveSettings()
    # the preset names a whole pair ("SmolLM2-135M-Instruct ← feature draft, reads …"): full width, never cut off
    preset = st.selectbox("Model pair", [*PRESETS, CUSTOM], key="live_preset", persist_state="session")
    models, prompt, decoding = st.columns([4, 5, 4], gap="large")
    with models:
        st.markdown("**Models**")
        if preset == CUSTOM:
            target = st.text_input(
                "Evaluation (target) model",
                DEFAULT,
                key="live_target",
                persist_state="session",
                help="hub id, directory, .gguf or 'default'",
            )
            draft = st.text_input(
                "Draft model",
                DEFAULT,
                key="live_draft",
                persist_state="session",
                help="hub id, directory, .gguf, 'default', 'feature', 'standalone' or 'ngram'",
            )
        else:
            target, draft = PRESETS[preset]
        ready = draft_ready(draft, target)
        kind = st.radio(
            "Drafter",
            [DRAFT_MODEL, NGRAM],
            index=0 if ready else 1,
            key="live_drafter",
            persist_state="session",
            horizontal=False,
        )
        if not ready and kind == DRAFT_MODEL:
            st.warning("This embedded draft is not installed (assets/); choose prompt lookup or another preset.")
        elif not ready:
            st.caption("This embedded draft is not installed (assets/), so prompt lookup is preselected.")
        if kind == NGRAM:
            draft = presets.NGRAM
        elif resolve_draft(draft, target) == FEATURE:
            st.caption(FEATURE_DRAFT_WORDS)
    with prompt:
        st.markdown("**Prompt**")
        text = st.text_area(
            "Prompt", d.prompt, key="live_prompt", persist_state="session", height=120, label_visibility="collapsed"
        )
        chat = (
            st.radio("Format", ["chat template", "raw text"], key="live_chat", persist_state="session", horizontal=True)
            == "chat template"
        )
        compare = st.checkbox(
            "Also run the evaluation model alone",
            d.compare,
            key="live_compare",
            persist_state="session",
            help="Target-only decoding with the same settings and seed: its output and speed beside the result.",
        )
    with decoding:
        st.markdown("**Decoding**")
        gamma = st.slider("γ (drafts per step)", 1, 16, d.gamma, key="live_gamma", persist_state="session")
        c1, c2 = st.container(), st.container()  # one per row: a half column cuts "Adapt γ each step"
        adaptive = c1.checkbox(
            "Adapt γ each step",
            d.adaptive,
            key="live_adaptive",
            persist_state="session",
            help="Start at 4 drafts; +2 after a step that accepted them all, −1 otherwise; γ above is the most "
            "(the schedule of transformers' assisted generation).",
        )
        confidence = c2.number_input(
            "Stop drafting below q",
            0.0,
            1.0,
            d.confidence,
            0.05,
            key="live_confidence",
            persist_state="session",
            help="The draft model stops early after a token it gave less than this probability (its own q, "
            "before temperature; 0 = off); a copy never stops it. The step's words say where it stopped. "
            "Prompt lookup ignores it.",
        )
        lookup_below = c2.number_input(
            "Copy from the text below q",
            0.0,
            1.0,
            d.lookup_below,
            0.05,
            key="live_lookup",
            persist_state="session",
            help="Where the draft model gives its best token less than this probability (its own q, before "
            "temperature) and the last 2–3 tokens "
            "appeared earlier, a chain drafts what followed them there instead (prompt lookup as a fallback; "
            "0 = off); a greedy tree holds the copy as a branch beside the model's. The step view marks such "
            "drafts “copied”.",
        )
        tree = st.selectbox(
            "Draft shape",
            TREE_CHOICES,
            index=TREE_CHOICES.index(d.tree) if d.tree in TREE_CHOICES else 0,
            key="live_tree",
            persist_state="session",
            format_func=tree_choice_words,
            help="A chain drafts γ tokens in a row. A tree drafts several candidates per depth, all checked in one "
            "pass of the evaluation model; 'sized to this machine' measures what that pass costs here first.",
        )
        rule = st.selectbox(
            "Acceptance rule",
            RULES,
            key="live_rule",
            persist_state="session",
            help=RULE_HELP,
        )
        tau, epsilon, delta = d.tau, d.epsilon, d.delta
        if rule == "threshold":
            tau = st.number_input(
                "τ: accept when p/q ≥ τ", 0.0, 10.0, d.tau, 0.05, key="live_tau", persist_state="session"
            )
        if rule == "typical":
            c1, c2 = st.columns(2)
            epsilon = c1.number_input("ε", 0.0, 1.0, d.epsilon, 0.01, key="live_epsilon", persist_state="session")
            delta = c2.number_input("δ", 0.0, 1.0, d.delta, 0.05, key="live_delta", persist_state="session")
        temperature = st.slider(
            "Temperature (0 = greedy)", 0.0, 2.0, d.temperature, 0.05, key="live_temperature", persist_state="session"
        )
        c1, c2 = st.columns(2)
        top_k = c1.number_input("top-k (0 = off)", 0, 100_000, d.top_k, key="live_top_k", persist_state="session")
        top_p = c2.number_input("top-p (1 = off)", 0.01, 1.0, d.top_p, 0.05, key="live_top_p", persist_state="session")
        c1, c2 = st.columns(2)
        seed = c1.number_input("Seed", 0, 2**31 - 1, d.seed, key="live_seed", persist_state="session")
        max_new = c2.number_input(
            "Max new tokens", 1, 2048, d.max_new_tokens, key="live_max_new", persist_state="session"
        )
    return LiveSettings(
        target=target.strip(),
        draft=draft.strip(),
        prompt=text,
        chat=chat,
        gamma=int(gamma),
        rule=str(rule),
        tau=float(tau),
        epsilon=float(epsilon),
        delta=float(delta),
        temperature=float(temperature),
        top_k=int(top_k),
        top_p=float(top_p),
        seed=int(seed),
        max_new_tokens=int(max_new),
        compare=compare,
        adaptive=bool(adaptive),
        confidence=float(confidence),
        lookup_below=float(lookup_below),
        tree=str(tree),
    )
