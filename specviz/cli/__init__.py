"""The command line, `python -m specviz` (commands: record, replay, summarize, validate, bench, …).
Nothing imports it.

Imports: every layer but the UI and training.
"""

from specviz.cli.commands import main

__all__ = ["main"]
