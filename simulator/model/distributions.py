"""Attempt durations: fixed, exponential, lognormal and empirical, in minutes.

Each distribution is sampled by its inverse CDF (`ppf`) from a uniform number, so the
same uniform gives the same duration in two policy arms (common random numbers) and a
scripted scenario can pin every duration with `fixed`.

`ppf` takes one uniform (the SimPy engine) or a numpy array of them (the batch engine) and
gives the same numbers bit for bit either way: the array path applies the C library's `exp`,
`log` and `log1p` element by element (numpy's own vectorised versions may differ in the last
bit) and ports the standard library's normal quantile (Wichura's AS241) operation for
operation.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Annotated, Any, Callable, Literal, Union

import numpy as np
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
Uniform = Union[float, np.ndarray]  # one uniform, or an array of them


def _libm(fn: Callable[[float], float], x: Uniform) -> Uniform:
    """`fn` (a `math` function) on a number, or element by element on an array."""
    if isinstance(x, np.ndarray):
        flat = np.ascontiguousarray(x, np.float64).ravel()
        return np.fromiter(map(fn, memoryview(flat)), np.float64, flat.size).reshape(x.shape)
    return fn(x)


def _clip(u: Uniform, lo: float, hi: float) -> Uniform:
    if isinstance(u, np.ndarray):
        return np.minimum(np.maximum(u, lo), hi)
    return min(max(u, lo), hi)


def _polynomial(coefficients: tuple[float, ...], r: np.ndarray) -> np.ndarray:
    """((c0 r + c1) r + c2) r + ..., evaluated in the order the standard library does."""
    out = coefficients[0] * r
    out += coefficients[1]
    for c in coefficients[2:]:
        out *= r
        out += c
    return out


# Wichura (1988), AS241: the coefficients of statistics.NormalDist.inv_cdf, in its order.
_CENTRAL = ((2.50908_09287_30122_6727e+3, 3.34305_75583_58812_8105e+4,
             6.72657_70927_00870_0853e+4, 4.59219_53931_54987_1457e+4,
             1.37316_93765_50946_1125e+4, 1.97159_09503_06551_4427e+3,
             1.33141_66789_17843_7745e+2, 3.38713_28727_96366_6080e+0),
            (5.22649_52788_52854_5610e+3, 2.87290_85735_72194_2674e+4,
             3.93078_95800_09271_0610e+4, 2.12137_94301_58659_5867e+4,
             5.39419_60214_24751_1077e+3, 6.87187_00749_20579_0830e+2,
             4.23133_30701_60091_1252e+1, 1.0))
_NEAR = ((7.74545_01427_83414_07640e-4, 2.27238_44989_26918_45833e-2,
          2.41780_72517_74506_11770e-1, 1.27045_82524_52368_38258e+0,
          3.64784_83247_63204_60504e+0, 5.76949_72214_60691_40550e+0,
          4.63033_78461_56545_29590e+0, 1.42343_71107_49683_57734e+0),
         (1.05075_00716_44416_84324e-9, 5.47593_80849_95344_94600e-4,
          1.51986_66563_61645_71966e-2, 1.48103_97642_74800_74590e-1,
          6.89767_33498_51000_04550e-1, 1.67638_48301_83803_84940e+0,
          2.05319_16266_37758_82187e+0, 1.0))
_FAR = ((2.01033_43992_92288_13265e-7, 2.71155_55687_43487_57815e-5,
         1.24266_09473_88078_43860e-3, 2.65321_89526_57612_30930e-2,
         2.96560_57182_85048_91230e-1, 1.78482_65399_17291_33580e+0,
         5.46378_49111_64114_36990e+0, 6.65790_46435_01103_77720e+0),
        (2.04426_31033_89939_78564e-15, 1.42151_17583_16445_88870e-7,
         1.84631_83175_10054_68180e-5, 7.86869_13114_56132_59100e-4,
         1.48753_61290_85061_48525e-2, 1.36929_88092_27358_05310e-1,
         5.99832_20655_58879_37690e-1, 1.0))


def std_normal_inv_cdf(p: Uniform) -> Uniform:
    """The standard normal quantile: `NormalDist().inv_cdf` for a number; for an array, the
    same algorithm in numpy, equal bit for bit (tests/test_batch.py)."""
    if not isinstance(p, np.ndarray):
        return _STD_NORMAL.inv_cdf(p)
    q = p - 0.5
    x = np.empty_like(p)
    central = np.abs(q) <= 0.425
    qc = q[central]
    r = 0.180625 - qc * qc
    x[central] = _polynomial(_CENTRAL[0], r) * qc / _polynomial(_CENTRAL[1], r)
    tail = ~central
    qt, pt = q[tail], p[tail]
    r = np.sqrt(-_libm(math.log, np.where(qt <= 0.0, pt, 1.0 - pt)))
    near = r <= 5.0
    xt = np.empty_like(r)
    for mask, shift, (num, den) in ((near, 1.6, _NEAR), (~near, 5.0, _FAR)):
        rs = r[mask] - shift
        xt[mask] = _polynomial(num, rs) / _polynomial(den, rs)
    x[tail] = np.where(qt < 0.0, -xt, xt)
    return 0.0 + x  # mu + x * sigma with mu = 0, sigma = 1, as the standard library returns


class _Distribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    def ppf(self, u: Uniform) -> Uniform:  # pragma: no cover - abstract
        raise NotImplementedError

    def mean(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class Fixed(_Distribution):
    """Always the same duration: for scripted, exact regression scenarios."""

    kind: Literal["fixed"] = "fixed"
    value: float = Field(ge=0)

    def ppf(self, u: Uniform) -> Uniform:
        return np.full(u.shape, self.value) if isinstance(u, np.ndarray) else self.value

    def mean(self) -> float:
        return self.value


class Exponential(_Distribution):
    kind: Literal["exponential"] = "exponential"
    mean_min: PositiveFloat = Field(alias="mean")

    def ppf(self, u: Uniform) -> Uniform:
        return -self.mean_min * _libm(math.log1p, -u)

    def mean(self) -> float:
        return self.mean_min


class Lognormal(_Distribution):
    """Parametrised by its median (minutes) and the sigma of the underlying normal.

    Sigma is at most 10 (a 99th percentile 10^10 times the median): wider is no duration
    anyone observed, and would overflow the inverse CDF."""

    kind: Literal["lognormal"] = "lognormal"
    median: PositiveFloat
    sigma: float = Field(ge=0, le=MAX_SIGMA)

    def ppf(self, u: Uniform) -> Uniform:
        u = _clip(u, _TINY, 1 - _TINY)
        return self.median * _libm(math.exp, self.sigma * std_normal_inv_cdf(u))

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

    def ppf(self, u: Uniform) -> Uniform:
        n = len(self.samples)
        if isinstance(u, np.ndarray):
            return np.asarray(self.samples, np.float64)[np.minimum((u * n).astype(np.int64), n - 1)]
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
#: a distribution that may be left out: None inside the union, so that pydantic still picks
#: the branch by `kind` (as Optional[Distribution] it tried every branch and reported all)
OptionalDistribution = Annotated[
    Union[Fixed, Exponential, Lognormal, Empirical, None],
    BeforeValidator(_number_is_fixed),
    Field(discriminator="kind"),
]
