"""The base of every scenario table, so the whole format is equally strict; and `clip`, how a
message quotes a value from the input.

No unknown keys, no infinities, and strict scalars: a number is not a string, a count not a
boolean or a float (`"5"`, `true` and `5.0` are errors for a count); a whole number is
accepted where a float is expected (`horizon_min = 60`).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False, strict=True)


def clip(text: str, most: int = 120) -> str:
    """A text from the input, cut short for a message (a key or value may be huge)."""
    return text if len(text) <= most else text[:most - 3] + "..."
