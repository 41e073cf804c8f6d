"""The trace format: building, reading and writing, validation and summaries. Pure Python, no torch.

A trace is a JSON object (also .json.gz, and JSONL: a header line, one line per step, then an
output line, so an interrupted run still leaves a readable file). docs/TRACE_FORMAT.md describes
every field; docs/trace.schema.json is the JSON Schema of its structure. Loading treats every
file as hostile: `loads` raises only TraceError, and `validate` never raises at all.

`validate` is strict by default: a trace must carry everything specviz records (q, p, r, top
lists, timings). `validate(trace, strict=False)` accepts a *minimal* trace, the kind another
engine's log or an event-log import gives: only the decisions are required (each draft's token
and `accepted`, `n_accepted`), and every optional field that *is* present is checked as strictly
as ever. What a minimal trace lacks is the UI's business to say (specviz.figures.missing_parts).

The package holds one concern per module: `schema` (the version, the types, building a trace),
`io` (reading and writing), `validate` with `problems` and `steps` (checking), `summary`.

Imports: the standard library only (no torch: traces are read anywhere).
"""

from specviz.trace.io import (
    JsonlWriter,
    dump,
    dumps,
    load,
    loads,
    read_file,
)
from specviz.trace.io import (
    check_unicode as check_unicode,
)
from specviz.trace.io import (
    parse_line as parse_line,
)
from specviz.trace.io import (
    raw_decode as raw_decode,
)
from specviz.trace.io import (
    read_text as read_text,
)
from specviz.trace.parting import Parting, first_parting
from specviz.trace.problems import (
    short as short,
)
from specviz.trace.schema import (
    FORMAT,
    VERSION,
    Step,
    StepTree,
    TopEntry,
    Trace,
    TraceError,
    TreeNode,
    finish,
    new_trace,
    no_draft_words,
    output_ids,
    rate,
    undefined_words,
)
from specviz.trace.schema import (
    GZIP_MAGIC as GZIP_MAGIC,
)
from specviz.trace.schema import (
    MAX_BYTES as MAX_BYTES,
)
from specviz.trace.schema import (
    MAX_INT_DIGITS as MAX_INT_DIGITS,
)
from specviz.trace.schema import (
    MAX_PROBLEMS as MAX_PROBLEMS,
)
from specviz.trace.schema import (
    MAX_STEPS as MAX_STEPS,
)
from specviz.trace.schema import (
    NEXT_KINDS as NEXT_KINDS,
)
from specviz.trace.schema import (
    NO_DRAFT_REASONS as NO_DRAFT_REASONS,
)
from specviz.trace.schema import (
    RULE_NAMES as RULE_NAMES,
)
from specviz.trace.schema import (
    STOP_REASONS as STOP_REASONS,
)
from specviz.trace.schema import (
    TOL as TOL,
)
from specviz.trace.schema import (
    UPGRADES as UPGRADES,
)
from specviz.trace.schema import (
    DraftEntry as DraftEntry,
)
from specviz.trace.schema import (
    NextToken as NextToken,
)
from specviz.trace.schema import (
    VerifyEntry as VerifyEntry,
)
from specviz.trace.schema import (
    byte_label as byte_label,
)
from specviz.trace.schema import (
    library_versions as library_versions,
)
from specviz.trace.schema import (
    no_draft_reason as no_draft_reason,
)
from specviz.trace.schema import (
    rule_of as rule_of,
)
from specviz.trace.schema import (
    token_bytes as token_bytes,
)
from specviz.trace.schema import (
    whole_text as whole_text,
)
from specviz.trace.summary import (
    summarize,
)
from specviz.trace.validate import (
    DRAFT_KINDS as DRAFT_KINDS,
)
from specviz.trace.validate import (
    _validate as _validate,
)
from specviz.trace.validate import (
    validate,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "JsonlWriter",
    "Parting",
    "Step",
    "StepTree",
    "TopEntry",
    "Trace",
    "TraceError",
    "TreeNode",
    "dump",
    "dumps",
    "finish",
    "first_parting",
    "load",
    "loads",
    "new_trace",
    "no_draft_words",
    "output_ids",
    "parse_line",
    "rate",
    "raw_decode",
    "read_file",
    "rule_of",
    "short",
    "summarize",
    "undefined_words",
    "validate",
    "whole_text",
]
