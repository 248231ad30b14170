"""The command line's argument types: each says what it expected and what it got.

argparse turns their ArgumentTypeError into a usage message naming the option, with exit
code 2; the bounds here are resource bounds documented in the README.
"""
from __future__ import annotations

import argparse
import math

from .engine.runner import scheduler_address
from .model.schema import clip

#: Most replications a command runs (a resource bound: more is a typo, not a wish for a
#: narrower interval; 100,000 already make it 30 times narrower than 100 do).
MAX_REPLICATIONS = 100_000


def count(text: str, least: int = 0, most: int | None = None) -> int:
    """An argparse type: a whole number >= least (and <= most)."""
    expected = f"a whole number >= {least}" + ("" if most is None else f" and <= {most:,}")
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < least or (most is not None and value > most):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {clip(repr(text), 40)}")
    return value


def replications(text: str) -> int:
    return count(text, 1, MAX_REPLICATIONS)


def port(text: str) -> int:
    return count(text, 0, 65535)


def finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {clip(repr(text), 40)}")
    return value


def positive(text: str) -> float:
    value = finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {clip(repr(text), 40)}")
    return value


#: Most validate-model --scale: its largest case (400 replications) runs 40,000 at most.
MAX_SCALE = 100


def scale(text: str) -> float:
    value = finite(text)
    if not 0 < value <= MAX_SCALE:
        raise argparse.ArgumentTypeError(f"expected a number > 0 and at most {MAX_SCALE}, "
                                         f"got {clip(repr(text), 40)}")
    return value


def scheduler(text: str) -> str:
    """An argparse type: a Dask scheduler address (checked for form only, before any work)."""
    try:
        return scheduler_address(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
