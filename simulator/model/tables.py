"""The base of every scenario table, so the whole format is equally strict.

No unknown keys, no infinities, and strict scalars: a number is not a string, a count not a
boolean or a float (`"5"`, `true` and `5.0` are errors for a count); a whole number is
accepted where a float is expected (`horizon_min = 60`).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False, strict=True)
