"""What the command line prints: one line per message, printable on any terminal.

Imports: the standard library only.
"""

from __future__ import annotations

import sys

__all__ = ["TRACE_SUFFIXES", "clean", "one_line", "say"]

TRACE_SUFFIXES = (".json", ".json.gz", ".jsonl")


def say(text: str) -> None:
    print(text, file=sys.stderr)


def one_line(s: str) -> str:
    """Messages from libraries can span lines (a hub error quotes its own); stderr gets one."""
    return clean(" ".join(s.split()))


def clean(s: str) -> str:
    """Text from a trace, printable on any terminal (a JSON string may hold lone surrogates)."""
    return s.encode("utf-8", "backslashreplace").decode("utf-8")
