"""The command line's argument types: each says what it expected and what it got.

argparse turns their ArgumentTypeError into a usage message naming the option, with exit
code 2; the bounds here are resource bounds documented in the README.
"""
from __future__ import annotations

import argparse
import math

#: How long a Dask scheduler may take to answer, by default (the runner's own default, kept
#: here so that `--help` need not import the runner).
SCHEDULER_TIMEOUT_S = 10.0


def clip(text: str, most: int) -> str:
    """`text`, cut to `most` characters: a message quotes what it got, never a whole file."""
    from .model.schema import clip as _clip
    return _clip(text, most)

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
    from .engine.runner import scheduler_address
    try:
        return scheduler_address(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def minutes(text: str) -> list[float]:
    """`30,60` -> [30.0, 60.0]; the range is checked against the scenario's horizon later."""
    try:
        return [finite(part) for part in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"expected minutes separated by commas, e.g. 30,60; "
                                         f"got {clip(repr(text), 40)}") from None


def share(text: str) -> float:
    value = finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 1], e.g. 0.95; got {text}")
    return value
