"""Words and token text: visible tokens, safe literal text, escaping for Plotly, plurals, the end mark.

Token text comes from trace files, which may be hostile, and Plotly renders a subset of HTML in
labels and hovers (and LaTeX between dollar signs where MathJax is loaded): every piece of trace
text goes through `esc` before it reaches a figure. Outside figures, `visible` (tokens) and
`literal` (prompts, outputs, names) show control, bidi and format characters as escapes.
"""

from __future__ import annotations

import html
import re
import unicodedata

from specviz.trace import Trace

__all__ = [
    "END_MARK",
    "END_TOKEN",
    "END_TOKEN_MARK",
    "end_tokens",
    "esc",
    "esc_name",
    "esc_sentence",
    "fmt_num",
    "literal",
    "plural",
    "readable_output",
    "recent",
    "visible",
]


_WS = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "↵"}


# control, format (bidi overrides, zero-width), line/paragraph separators, lone surrogates
_HIDDEN = ("Cc", "Cf", "Zl", "Zp", "Cs")


def _escape_hidden(ch: str) -> str:
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


END_MARK = " ■ (end of turn)"  # in output text
END_TOKEN_MARK = "■"  # the same token in a token list, a table, a timeline (U+25A0: in every font, ⏹ is not)
# the end-of-turn / end-of-text tokens of the common chat templates (ChatML, Llama 3, Gemma, SentencePiece):
# shown as ■ wherever a token is shown, whether or not the trace's meta names its eos ids
END_TOKEN = re.compile(r"<\|(?:im_end|endoftext|end_of_text|eot_id|eom_id|end)\|>|</s>|<eos>|<end_of_turn>")


def end_tokens(trace: Trace) -> list[str]:
    """The text of the end-of-sequence tokens this trace logged (e.g. "<|im_end|>")."""
    eos = set(trace.get("meta", {}).get("eos_token_ids") or [])
    found = {
        e["token"]
        for s in trace["steps"]
        for e in [*s["draft"], *([s["next"]] if s.get("next") else [])]
        if e["token_id"] in eos and e["token"]
    }
    return sorted(found)


def readable_output(text: str, trace: Trace) -> str:
    """Output text for people: an end-of-turn token shown as a marked end, not as "<|im_end|>".

    The trace's own eos tokens and the common templates' end tokens (`END_TOKEN`) both count, so a
    baseline's output, which the trace's steps never logged, reads the same way.
    """
    for tok in end_tokens(trace):
        text = text.replace(tok, END_MARK)
    # a template's end token only where a turn ends: at the end of the text (not "</s>" inside generated HTML)
    return re.sub(rf"(?:{END_TOKEN.pattern})(?=\s*$)", END_MARK, text)


def recent(text: str, limit: int) -> str:
    """The last `limit` characters of free text, safe (`literal`), saying how much came before.

    For context that can be long (a 2,000-token prompt): what a step continues from is its end.
    """
    if len(text) <= limit:
        return literal(text)
    hidden = len(text) - limit
    return f"… ({hidden:,} earlier characters not shown) " + literal(text[-limit:])


def plural(n: int, word: str) -> str:
    """ "1 token", "2 tokens", "0 tokens"."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def visible(text: str) -> str:
    """Token text with whitespace and control characters made visible: ' the\\n' → '␣the⏎'.

    Bidi overrides (U+202E), zero-width and other invisible characters become \\uXXXX, so a token
    can neither hide nor reorder the text around it.
    """
    if text == "":
        return "∅"
    if END_TOKEN.fullmatch(text):
        return END_TOKEN_MARK
    out = []
    for ch in text:
        if ch in _WS:
            out.append(_WS[ch])
        elif unicodedata.category(ch) in _HIDDEN:
            out.append(_escape_hidden(ch))
        else:
            out.append(ch)
    return "".join(out)


def literal(text: object, limit: int | None = None) -> str:
    """Free text from a trace (a prompt, an output, a model name) as plain, safe characters.

    Newlines and tabs stay (they are layout); every other control, bidi or format character becomes
    \\uXXXX. Not escaped for markdown or HTML: pair it with the escaping of the place it goes.
    """
    s = text if isinstance(text, str) else str(text)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    if all(ch.isprintable() or ch in "\n\t" for ch in s):  # the common case, fast
        return s
    return "".join(ch if ch in "\n\t" or unicodedata.category(ch) not in _HIDDEN else _escape_hidden(ch) for ch in s)


def _plotly_safe(text: str) -> str:
    """HTML-escaped, and $ as an entity so Plotly never takes "$...$" for LaTeX."""
    return html.escape(text, quote=False).replace("$", "&#36;")


def esc(text: str, limit: int | None = None) -> str:
    """Visible and HTML-escaped, for Plotly labels and hovers (which render a subset of HTML)."""
    shown = visible(text)
    if limit is not None and len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return _plotly_safe(shown)


def esc_sentence(text: str, limit: int = 160) -> str:
    """A sentence (whose token parts are already visible()) escaped for Plotly."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _plotly_safe(text)


def fmt_num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def esc_name(text: str, limit: int = 40) -> str:
    """A trace's or run's name for a label: HTML-escaped, cut; spaces stay spaces (it is not a token)."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(shown, quote=False)
