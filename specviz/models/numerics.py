"""Which dtype a device computes fast, decided by probing the machine, never by a belief about it.

Two numerics, named for students:

- *exact*: float32. Greedy speculative output is token-identical to the evaluation model alone.
- *fast*: the machine's fast dtype (bfloat16 on a GPU or on a CPU with bf16 units). The
  evaluation model then computes every position of a pass the way a one-token pass computes it
  (`row_limit`: passes split into row-invariant pieces, attention one query row at a time, see
  models.rows.rows_attention), so greedy output is still identical where the probe finds the matmuls
  row-invariant; where it is not, outputs may part, and only at a near-tie the trace proves
  (specviz.trace.parting).

`choose(device, "auto")` decides from the CPU's flags plus a measured probe (bf16 against fp32 on
a small model's matmuls — 30 decoder layers' projections and an output layer — one row and nine rows:
what a decode and a verification pass cost), cached per machine (CPU name, family, model and stepping)
in the specviz cache (`SPECVIZ_CACHE`, default ~/.cache/specviz/numerics/). The probe takes a
second or two, once.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from specviz.models import prepack

__all__ = [
    "DTYPES",
    "EXACT",
    "FAST",
    "NumericsChoice",
    "bf16_flags",
    "choose",
    "cpu_model",
    "cpu_name",
    "mode_of",
    "output_probe",
    "packs_output",
    "probe",
    "row_limit",
]

EXACT, FAST = "exact", "fast"
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
# bf16 must beat fp32 by this much on the verification-sized probe to be chosen: a tie is not worth
# giving up exact numerics for
MIN_GAIN = 1.2
# 2: bf16 measured with prepacked weights where oneDNN offers them (models.prepack); 3: a whole model's
# matmuls (attention projections and the output layer too: on one Xeon, prepacked bf16 won the MLP's
# one-row matmuls but lost the small projections' and the model's one-token pass)
# 4: a float32 model's output layer prepacked where output_probe says so (load_model does the same)
PROBE_VERSION = 4
# the shapes of a small decoder layer (SmolLM2-135M: d 576, MLP 1536), rows of a decode and a verification
# one decoder layer of a small model (SmolLM2-135M: q, k, v, o, gate, up, down) and its output layer
_LAYER = ((576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576))
_OUTPUT = (576, 49152)
_DEPTH = 30  # layers per output layer, as in the embedded model
_ROWS = (1, 9)


@dataclass(frozen=True)
class NumericsChoice:
    """What a model loads in and why: `mode` is "exact" for float32, "fast" otherwise."""

    dtype: torch.dtype
    mode: str
    why: str

    def meta(self) -> dict[str, str]:
        return {"mode": self.mode, "dtype": str(self.dtype).removeprefix("torch."), "why": self.why}


def mode_of(dtype: torch.dtype) -> str:
    """exact for float32, fast for any other dtype."""
    return EXACT if dtype == torch.float32 else FAST


def bf16_flags() -> list[str]:
    """The CPU's bf16 capabilities from /proc/cpuinfo (x86: avx512_bf16, amx_bf16; Arm: bf16); [] where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            return sorted(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return []


def cpu_model() -> str:
    """Family, model and stepping from /proc/cpuinfo: virtual machines often name every Xeon generation
    alike ("Intel(R) Xeon(R) Processor"), and a probe from another generation would be wrong here."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("cpu family", "model", "stepping") and key.strip() not in fields:
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return " ".join(f"{k} {v}" for k, v in sorted(fields.items()))


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _linear(w: torch.Tensor, output: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """How a model loaded in w's dtype multiplies by w here: bf16 prepacked where oneDNN offers it
    (load_model prepacks then), a float32 output layer prepacked where `packs_output()`, else torch's linear."""
    if w.dtype == torch.bfloat16 and prepack.available():
        return prepack.packed(w)
    if output and w.dtype == torch.float32 and packs_output():
        return prepack.packed(w, None, prepack.OUTPUT_BATCH)
    return lambda x: torch.nn.functional.linear(x, w)


def output_probe(reps: int = 6) -> dict[str, object]:
    """torch's float32 linear against oneDNN's prepacked one on a small model's output layer (576 → 49,152)
    over 1 and prepack.OUTPUT_BATCH rows, in turns, the fastest of `reps` after a warm-up round, in ms; and
    the decision: pack when oneDNN is clearly faster on the rows of a verification pass (< 0.9x) and at
    most a little slower on one row (≤ 1.15x: the layer is a fifth of a one-token pass). On one Xeon:
    15.2 → 6.5 ms on 8 rows, even on one (docs/BENCHMARKS.md, 2026-12-06 night)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(_OUTPUT[1], _OUTPUT[0], generator=gen) * 0.05
    rows = (1, prepack.OUTPUT_BATCH)
    xs = {r: torch.randn(r, _OUTPUT[0], generator=gen) for r in rows}
    ms: dict[str, dict[str, float]] = {"torch": {}, "onednn": {}}
    try:
        ways = {"torch": lambda x: torch.nn.functional.linear(x, w), "onednn": prepack.packed(w, None, rows[-1])}
        with torch.inference_mode():
            for round_ in range(reps + 1):
                for name, f in ways.items():
                    for r in rows:
                        t0 = time.perf_counter()
                        f(xs[r])
                        t = (time.perf_counter() - t0) * 1e3
                        if round_:
                            ms[name][str(r)] = min(ms[name].get(str(r), t), t)
    except RuntimeError as exc:  # a oneDNN build that cannot run it: torch's own layer
        return {"packed": False, "error": str(exc)[:200]}
    one = ms["onednn"]["1"] / ms["torch"]["1"]
    many = ms["onednn"][str(rows[-1])] / ms["torch"][str(rows[-1])]
    return {"ms": ms, "packed": one <= 1.15 and many < 0.9}


def packs_output() -> bool:
    """Whether a float32 model's output layer computes faster prepacked for oneDNN on this CPU: measured
    once per machine (output_probe) and cached, so every load of a server decides alike."""
    if not prepack.available_fp32():
        return False
    return bool(_cached("output", output_probe).get("packed"))


def _time_ms(dtype: torch.dtype, rows: int, reps: int = 6) -> float:
    """The fastest of `reps` runs of a small model's matmuls (`_DEPTH` decoder layers' linears, then the
    output layer) over `rows` rows, in ms."""
    gen = torch.Generator().manual_seed(0)
    layer = [_linear((torch.randn(o, i, generator=gen) * 0.05).to(dtype)) for i, o in _LAYER]
    out = _linear((torch.randn(_OUTPUT[1], _OUTPUT[0], generator=gen) * 0.05).to(dtype), output=True)
    xs = {i: torch.randn(rows, i, generator=gen).to(dtype) for i in {i for i, _ in _LAYER}}
    best = float("inf")
    with torch.inference_mode():
        for _ in range(reps):
            t0 = time.perf_counter()
            for _layer in range(_DEPTH):
                for (i, _), f in zip(_LAYER, layer, strict=True):
                    f(xs[i])
            out(xs[_OUTPUT[0]])
            best = min(best, time.perf_counter() - t0)
    return best * 1e3


def probe() -> dict[str, object]:
    """Measure fp32 against bf16 on this CPU (ms for a small model's matmuls at 1 and 9 rows, runs interleaved)."""
    out: dict[str, dict[str, float]] = {"float32": {}, "bfloat16": {}}
    for _round in range(2):  # interleaved: a busy moment slows both alike
        for name in out:
            for rows in _ROWS:
                ms = _time_ms(DTYPES[name], rows)
                out[name][str(rows)] = min(out[name].get(str(rows), ms), ms)
    return {"ms": out, "threads": torch.get_num_threads(), "bf16_prepacked": prepack.available()}


def _cache_file(kind: str = "cpu") -> Path:
    root = os.environ.get("SPECVIZ_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "specviz"
    key = json.dumps([PROBE_VERSION, cpu_name(), cpu_model(), bf16_flags(), torch.__version__, torch.get_num_threads()])
    return base / "numerics" / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _cpu_probe() -> dict[str, object]:
    """The cached dtype probe for this machine, measured on first use. A damaged cache is measured again."""
    return _cached("cpu", probe)


def _cached(kind: str, measure: Callable[[], dict[str, object]]) -> dict[str, object]:
    """measure()'s result for this machine, read from the cache or measured once and written there whole."""
    path = _cache_file(kind)
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        pass
    result = {"cpu": cpu_name(), "model": cpu_model(), "flags": bf16_flags(), "torch": torch.__version__, **measure()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)  # whole or not at all
    except OSError:
        pass  # a read-only home: measure again next time
    return result


def choose(device: torch.device, dtype: str = "auto") -> NumericsChoice:
    """The dtype to load models in on `device`, and why. Raises ValueError for an unknown dtype name.

    auto: bf16 on CUDA; on a CPU, bf16 where it has bf16 units and the probe measured a
    verification-sized bf16 pass at least MIN_GAIN × faster than fp32 and a one-row pass no slower,
    else fp32; fp32 elsewhere (MPS)."""
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose auto, {', '.join(DTYPES)}")
        dt = DTYPES[dtype]
        why = f"--dtype {dtype}"
        if device.type == "cpu" and dt != torch.float32 and not bf16_flags():
            why += " (this CPU has no bf16 units: expect it to be slower than float32)"
        return NumericsChoice(dt, mode_of(dt), why)
    if device.type == "cuda":
        return NumericsChoice(torch.bfloat16, FAST, "auto: bfloat16 on CUDA")
    if device.type != "cpu":
        return NumericsChoice(torch.float32, EXACT, f"auto: float32 on {device.type}")
    flags = bf16_flags()
    if not flags:
        return NumericsChoice(
            torch.float32, EXACT, "auto: this CPU has no bf16 units (no avx512_bf16/amx_bf16/bf16 flag)"
        )
    ms = _cpu_probe()["ms"]
    one = ms["float32"]["1"] / ms["bfloat16"]["1"]  # type: ignore[index]
    nine = ms["float32"]["9"] / ms["bfloat16"]["9"]  # type: ignore[index]
    words = (
        f"{', '.join(flags)}; probe: bfloat16 {one:.2f}x float32's speed on a one-row pass, {nine:.2f}x on a 9-row pass"
    )
    # the evaluation model alone and the draft run one-row passes, verification runs several: bf16
    # must win the second and not lose the first (within 5%: timing noise)
    if nine >= MIN_GAIN and one >= 0.95:
        return NumericsChoice(torch.bfloat16, FAST, f"auto: {words}")
    why = f"below {MIN_GAIN}x on 9 rows" if nine < MIN_GAIN else "slower on one row"
    return NumericsChoice(torch.float32, EXACT, f"auto: {words}; {why}: float32 kept")


def row_limit(
    weights: list[torch.Tensor],
    limit: int = 64,
    packed: bool = False,
    layers: Sequence[torch.nn.Module] = (),
    pad_one: bool = False,
) -> int:
    """The most rows a matmul with each of `weights` ([out, in]) takes while every row comes out
    bit-identical to the same row computed alone (1 when even two rows differ). Kernels change
    with the row count (on one AMX Xeon, 576→1536 in bf16 is row-invariant up to 32 rows; on a Zen 4
    EPYC, 1536→576 rounds a one-row call otherwise than any wider one); a pass split into pieces of at
    most this many rows computes each position as a one-token pass does.
    packed: measure the prepacked kernel (models.prepack), which the model then computes with.
    layers: modules measured as they are (models.lowbit's, bf16 inputs), their `weight` giving the width.
    pad_one: "alone" is a row computed as the first of a two-row call (prepack.PackedLinear.pad_one).

    A differing row is rare (one output in ~600 on that EPYC), so each row count is checked on all
    `limit` random rows (of varied scale), in calls of that many rows: a rare row is found at the first
    row count that rounds it otherwise, not at the row count that first reaches it. Each row sits at
    one or two places within a call, so a kernel that rounds by a row's place is found only by chance."""
    gen = torch.Generator().manual_seed(0)
    best = limit
    # (the layer, its input width, the dtype and device it is fed)
    runs = [
        (prepack.packed(w) if packed else partial(F.linear, weight=w), w.shape[1], w.dtype, w.device) for w in weights
    ]
    runs += [(m, m.weight.shape[1], torch.bfloat16, m.weight.device) for m in layers]
    with torch.inference_mode():
        for f, width, dtype, device in runs:
            scale = torch.rand(limit, 1, generator=gen) * 2 + 0.05
            x = (torch.randn(limit, width, generator=gen) * scale).to(dtype).to(device)
            if pad_one:
                alone = torch.cat([f(torch.cat([x[i : i + 1], torch.zeros_like(x[:1])]))[:1] for i in range(limit)])
            else:
                alone = torch.cat([f(x[i : i + 1]) for i in range(limit)])
            m = 1
            # every row, in calls of m + 1 rows (tiled, then the last whole window)
            while m < best and all(
                torch.equal(f(x[s : s + m + 1]), alone[s : s + m + 1])
                for s in [*range(0, limit - m - 1, m + 1), limit - m - 1]
            ):
                m += 1
            best = min(best, m)
    return best
