"""Attempt durations: fixed, exponential, lognormal and empirical, in minutes.

Each distribution is sampled by its inverse CDF (`ppf`) from a uniform number, so the
same uniform gives the same duration in two policy arms (common random numbers) and a
scripted scenario can pin every duration with `fixed`.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    Strict,
    model_validator,
)

_STD_NORMAL = NormalDist()
_TINY = 1e-12
MAX_SIGMA = 10.0


class _Distribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    def ppf(self, u: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def mean(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class Fixed(_Distribution):
    """Always the same duration: for scripted, exact regression scenarios."""

    kind: Literal["fixed"] = "fixed"
    value: float = Field(ge=0)

    def ppf(self, u: float) -> float:
        return self.value

    def mean(self) -> float:
        return self.value


class Exponential(_Distribution):
    kind: Literal["exponential"] = "exponential"
    mean_min: PositiveFloat = Field(alias="mean")

    def ppf(self, u: float) -> float:
        return -self.mean_min * math.log1p(-u)

    def mean(self) -> float:
        return self.mean_min


class Lognormal(_Distribution):
    """Parametrised by its median (minutes) and the sigma of the underlying normal.

    Sigma is at most 10 (a 99th percentile 10^10 times the median): wider is no duration
    anyone observed, and would overflow the inverse CDF."""

    kind: Literal["lognormal"] = "lognormal"
    median: PositiveFloat
    sigma: float = Field(ge=0, le=MAX_SIGMA)

    def ppf(self, u: float) -> float:
        u = min(max(u, _TINY), 1 - _TINY)
        return self.median * math.exp(self.sigma * _STD_NORMAL.inv_cdf(u))

    def mean(self) -> float:
        return self.median * math.exp(self.sigma ** 2 / 2)


class Empirical(_Distribution):
    """Resamples observed durations (a bootstrap): each sample equally likely."""

    kind: Literal["empirical"] = "empirical"
    samples: tuple[Annotated[float, Strict(), Field(ge=0)], ...] = Field(min_length=1, strict=False)

    @model_validator(mode="after")
    def _sorted(self) -> "Empirical":
        object.__setattr__(self, "samples", tuple(sorted(self.samples)))
        return self

    def ppf(self, u: float) -> float:
        n = len(self.samples)
        return self.samples[min(int(u * n), n - 1)]

    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)


def _number_is_fixed(value: Any) -> Any:
    """Let a scenario write `5` for `{kind = "fixed", value = 5}`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"kind": "fixed", "value": value}
    return value


Distribution = Annotated[
    Union[Fixed, Exponential, Lognormal, Empirical],
    BeforeValidator(_number_is_fixed),
    Field(discriminator="kind"),
]
