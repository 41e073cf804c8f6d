"""What validation shares: number checks, the problem list, and what the meta block says."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass


def short(value: object) -> str:
    """A value, shortened for a message. Safe on anything JSON can hold (deep nesting, huge ints)."""
    if isinstance(value, str):
        s = repr(value)
    elif isinstance(value, bool) or value is None:
        s = json.dumps(value)
    elif isinstance(value, int):
        s = str(value) if value.bit_length() < 100 else f"an integer of {value.bit_length()} bits"
    elif isinstance(value, float):
        s = repr(value)
    elif isinstance(value, dict):
        s = f"an object with {len(value)} keys"
    elif isinstance(value, list):
        s = f"an array of {len(value)}"
    else:
        s = type(value).__name__
    return s if len(s) <= 40 else s[:37] + "..."


# ---------------------------------------------------------------- validation


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _num(x: object) -> float | None:
    """x as a finite float, or None when it is not a number (bools are not numbers here)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    try:
        f = float(x)
    except OverflowError:  # an int beyond float range
        return None
    return f if math.isfinite(f) else None


def _prob(x: object) -> float | None:
    f = _num(x)
    return f if f is not None and 0.0 <= f <= 1.0 else None


def _nonneg_int(x: object) -> bool:
    return _is_int(x) and x >= 0  # type: ignore[operator]


class _Problems:
    def __init__(self, limit: int) -> None:
        self.items: list[str] = []
        self.limit = limit

    def add(self, where: str, what: str) -> None:
        if len(self.items) < self.limit:
            self.items.append(f"{where}: {what}" if where else what)

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit


@dataclass
class _Meta:
    """What the step checks need from meta; None where meta did not say (or said it badly)."""

    rule: str | None = None
    params: dict[str, float] | None = None
    gamma: int | None = None
    eos: set[int] | None = None
    budget: int | None = None
    top_k: int | None = None
    strict: bool = True  # False: optional data (q, p, r, top, timings, ...) may be missing

    def needs(self, present: bool) -> bool:
        """True when a field is missing and that is a problem (always in strict mode)."""
        return self.strict and not present
