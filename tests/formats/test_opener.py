"""The upload opener: each kind of file goes to its reader; anything else is refused with the kinds named."""

from __future__ import annotations

from pathlib import Path

import pytest

from specviz.formats.opener import ACCEPTED_KINDS, head_text, load_record, loads_record, sniff
from specviz.trace import TraceError

DATA = Path(__file__).parents[1] / "data"


def test_each_kind_goes_to_its_reader() -> None:
    assert load_record(DATA / "valid" / "tiny.json")["format"] == "specviz-trace"
    summary = load_record(DATA / "engines" / "sglang_generate.json")
    assert summary["format"] != "specviz-trace" and "engine" in summary
    log = loads_record(b"step,position,draft_token,accepted\n0,0,the,1\n", "log.csv")
    assert log["meta"]["source"]["format"] == "csv"


def test_an_unknown_file_is_refused_with_the_kinds_that_are_read() -> None:
    with pytest.raises(TraceError, match="specviz reads a specviz trace") as err:
        loads_record(b"hello, world", "notes.txt")
    assert ACCEPTED_KINDS in str(err.value)


def test_sniff_reads_only_the_head_and_survives_damaged_gzip() -> None:
    assert head_text(b"\x1f\x8bgarbage") is None
    assert sniff(b"\x1f\x8bgarbage", "x.gz") == "trace"  # the trace reader then says it is damaged
    assert sniff(b"step,position,draft_token\n" + b"0,0,a\n" * 10_000, "big") == "eventlog"
