"""Benchmark placeholder, filled in by the default-pair work."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="default")


def run(args: argparse.Namespace) -> int:
    print("bench: not implemented yet")
    return 2
