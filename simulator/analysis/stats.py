"""Confidence intervals for replication output.

Replications are independent and identically distributed. A metric's level (a count, a
duration, VM-minutes, a share per run) gets a percentile bootstrap interval over
replications: its bounds are means of resampled runs, so they stay within what the runs
themselves showed (never below 0 for a count, within [0, 1] for a share), and it does not
assume the symmetric, unbounded spread a t interval does. A proportion pooled over
operations gets a Wilson interval (it stays inside [0, 1] and behaves at 0 and n); a
percentile an order-statistic interval; a difference between two policy arms run under
common random numbers a paired t interval (a difference may take either sign). The t,
normal and binomial quantiles come from scipy.stats.

With fewer than `MIN_RUNS` replications no interval is meaningful: callers show the
estimate alone (`estimate_only`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
from scipy import stats as _st

__all__ = ["Interval", "Verdict", "decimals_for", "fmt_num", "mean_ci", "wilson_ci",
           "quantile_ci", "bootstrap_mean_cis", "bootstrap_mean_ci", "estimate_only",
           "paired_diff_ci", "welch_diff_ci", "replications_needed", "judge", "MIN_RUNS",
           "BOOTSTRAP_RESAMPLES"]

MIN_RUNS = 5  # below this many replications an interval is not meaningful
BOOTSTRAP_RESAMPLES = 2000
_BOOTSTRAP_STREAM = 0x626F6F74  # keys the resampling stream apart from the replications'
_BOOTSTRAP_BLOCK = 250  # resamples drawn at a time (bounds memory at many replications)
ESTIMATE_ONLY = "estimate only"


# --- numbers ---------------------------------------------------------------------------------
#: a spread below this share of the value (and of 1) is rounding in the sums, not spread:
#: the batch and SimPy engines may add the same VM-minutes in another order
ROUNDING = 1e-9


def decimals_for(x: float, spread: float) -> int:
    """Decimals that show `spread` (a half-width) to one significant digit, two when it starts
    with 1 or 2 (so 0.4 -> 1 decimal, 0.25 -> 2), or `x` to three significant digits (a value
    within rounding of a whole number, or of zero, shows none)."""
    noise = ROUNDING * max(1.0, abs(x)) if math.isfinite(x) else 0.0
    if math.isfinite(spread) and spread > noise:
        exp = math.floor(math.log10(spread))
        lead = spread / 10 ** exp
        return int(min(max(-exp + (1 if lead < 3 else 0), 0), 6))
    if not math.isfinite(x) or abs(x - round(x)) <= noise:
        return 0
    return int(min(max(2 - math.floor(math.log10(abs(x))), 0), 6))


def fmt_num(x: float, decimals: int) -> str:
    """A number for a report: thousands separators, 'n/a' for NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    text = f"{x:,.{decimals}f}"
    return text.removeprefix("-") if round(x, decimals) == 0 else text  # no "-0.00"


@dataclass(frozen=True)
class Interval:
    """An estimate with a two-sided confidence interval.

    `n` is the number of observations used (replications, pairs or trials); `dropped` how many
    were NaN and left out (e.g. replications that never reached the target).
    """

    estimate: float
    low: float
    high: float
    n: int
    method: str
    confidence: float = 0.95
    dropped: int = 0

    @property
    def has_bounds(self) -> bool:
        """False for an estimate shown alone (too few runs for an interval)."""
        return self.method != ESTIMATE_ONLY

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def relative_half_width(self) -> float:
        """Half-width over |estimate|: inf when the estimate is 0 but the interval is not."""
        hw = self.half_width
        if math.isnan(hw) or math.isnan(self.estimate):
            return math.nan
        if self.estimate == 0:
            return 0.0 if hw == 0 else math.inf
        return hw / abs(self.estimate)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def format(self, decimals: int | None = None, scale: float = 1.0, suffix: str = "") -> str:
        """`"12.3 [11.9, 12.7]"`; `scale=100, suffix="%"` shows a proportion as a percentage."""
        est, lo, hi = (v * scale for v in (self.estimate, self.low, self.high))
        if math.isnan(est):
            return "n/a"
        if self.method == ESTIMATE_ONLY:
            d = decimals_for(est, math.nan) if decimals is None else decimals
            return f"{fmt_num(est, d)}{suffix}"
        d = decimals_for(est, (hi - lo) / 2) if decimals is None else decimals
        if math.isnan(lo) and math.isnan(hi):
            return f"{fmt_num(est, d)}{suffix} [n/a]"
        return f"{fmt_num(est, d)}{suffix} [{fmt_num(lo, d)}{suffix}, {fmt_num(hi, d)}{suffix}]"

    def __str__(self) -> str:
        return self.format()


def _clean(values: Iterable[float]) -> tuple[np.ndarray, int]:
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    keep = ~np.isnan(arr)
    return arr[keep], int((~keep).sum())


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


# --- quantiles of t, normal and binomial (scipy.stats) ----------------------------------------
def _t_crit(confidence: float, df: float) -> float:
    return float(_st.t.ppf(1 - (1 - confidence) / 2, df))


def _z_crit(confidence: float) -> float:
    return float(_st.norm.ppf(1 - (1 - confidence) / 2))


# --- intervals -------------------------------------------------------------------------------
def mean_ci(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Student t interval for the mean; NaNs are dropped (and counted), n < 2 gives NaN bounds."""
    _check_confidence(confidence)
    x, dropped = _clean(values)
    n = len(x)
    est = float(x.mean()) if n else math.nan
    if n < 2:
        return Interval(est, math.nan, math.nan, n, "t", confidence, dropped)
    hw = _t_crit(confidence, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(est, est - hw, est + hw, n, "t", confidence, dropped)


def _wilson(p: float, n: float, z: float) -> tuple[float, float]:
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    hw = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - hw), min(1.0, centre + hw)


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a proportion: honest at 0 and n, unlike the Wald interval."""
    _check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "Wilson", confidence)
    p = successes / n
    lo, hi = _wilson(p, n, _z_crit(confidence))
    # rounding can put a bound a hair past p at k = 0 or k = n: an interval contains its estimate
    return Interval(p, min(lo, p), max(hi, p), int(n), "Wilson", confidence)


@lru_cache(maxsize=1024)
def _order_ranks(n: int, q: float, confidence: float) -> tuple[int, int]:
    """1-based ranks (l, u) of the order statistics bounding the q-quantile; 0 when none.

    x_(j) <= quantile iff at least j values fall below it, so [x_(l), x_(u)] covers it with
    probability F(u-1) - F(l-1), F the Binomial(n, q) CDF: l is the largest j with
    F(j-1) <= alpha/2, u the smallest with F(j-1) >= 1 - alpha/2.
    """
    alpha = (1 - confidence) / 2
    cdf = _st.binom.cdf(np.arange(n), n, q)  # F(j - 1) for j = 1..n
    low = int((cdf <= alpha).sum())  # F rises with j: the j with F(j-1) <= alpha are a prefix
    above = np.flatnonzero(cdf >= 1 - alpha)
    return low, (int(above[0]) + 1 if len(above) else 0)


def quantile_ci(values: Iterable[float], q: float, confidence: float = 0.95) -> Interval:
    """Distribution-free interval for the q-quantile from order statistics.

    +inf is a legitimate value (e.g. "never reached the target"). NaNs are dropped. A bound
    that the sample is too small to give (e.g. the upper bound of a p95 from 20 values) is NaN.
    The estimate is the sample quantile that is an observed value (inverted CDF), so it stays
    meaningful when some values are infinite.
    """
    _check_confidence(confidence)
    x, dropped = _clean(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "order statistics", confidence, dropped)
    x = np.sort(x)
    est = float(np.quantile(x, q, method="inverted_cdf"))
    low_rank, high_rank = _order_ranks(n, q, confidence)
    lo = float(x[low_rank - 1]) if low_rank else math.nan
    hi = float(x[high_rank - 1]) if high_rank else math.nan
    return Interval(est, lo, hi, n, "order statistics", confidence, dropped)


def quantile_replications_needed(q: float, confidence: float = 0.95) -> int:
    """Fewest values whose order statistics bound the q-quantile on both sides.

    Below it `quantile_ci` cannot give the far bound (for a p99 at 95%: the upper one needs
    q**n <= 2.5%, so 368 values; a p95 needs 72): the interval says nothing about how bad the
    tail may be. Found from the closed-form start by the same rank rule `quantile_ci` uses.
    """
    _check_confidence(confidence)
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q}")
    alpha = (1 - confidence) / 2
    n = max(1, math.floor(math.log(alpha) / math.log(max(q, 1 - q))) - 1)
    while 0 in _order_ranks(n, q, confidence):
        n += 1
    return n


def estimate_only(iv: Interval) -> Interval:
    """The estimate without bounds: what a report shows when too few runs back an interval."""
    return replace(iv, low=math.nan, high=math.nan, method=ESTIMATE_ONLY)


def _resampled_means(x: np.ndarray, seed: int, resamples: int) -> np.ndarray:
    """Means of the columns of x (runs x metrics) over `resamples` resamples of its runs.

    Run i is drawn c_i times in a resample; the counts come from a generator keyed by (seed,
    number of runs), so every metric of a run is resampled alike and the same call gives the
    same bounds, in any order and on any machine.
    """
    n = x.shape[0]
    rng = np.random.default_rng(np.random.SeedSequence([seed, _BOOTSTRAP_STREAM, n]))
    out = np.empty((resamples, x.shape[1]))
    for start in range(0, resamples, _BOOTSTRAP_BLOCK):
        size = min(_BOOTSTRAP_BLOCK, resamples - start)
        draws = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)
        out[start:start + size] = counts @ x / n
    return out


def bootstrap_mean_cis(x: np.ndarray, confidence: float = 0.95, *, seed: int = 0,
                       resamples: int = BOOTSTRAP_RESAMPLES) -> list[Interval]:
    """Percentile bootstrap intervals for the mean of each column of x (runs x metrics).

    A bound is a percentile of resampled means, so it lies within the column's own range:
    a count or VM-minutes never gets a negative bound, a share stays in [0, 1]. NaNs are
    dropped per column (such a column is resampled over its own runs). Fewer than MIN_RUNS
    values give the estimate alone.
    """
    _check_confidence(confidence)
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    alpha = (1 - confidence) / 2
    complete = np.flatnonzero(~np.isnan(x).any(axis=0))
    bounds: dict[int, tuple[float, float]] = {}
    if len(complete) and len(x) >= MIN_RUNS:  # the common case: one resampling for all
        lows, highs = np.quantile(_resampled_means(x[:, complete], seed, resamples),
                                  [alpha, 1 - alpha], axis=0)
        bounds = dict(zip(complete.tolist(), zip(lows, highs)))
    out = []
    for j in range(x.shape[1]):
        col, dropped = _clean(x[:, j])
        est = float(col.mean()) if len(col) else math.nan
        if len(col) < MIN_RUNS:
            out.append(Interval(est, math.nan, math.nan, len(col), ESTIMATE_ONLY, confidence,
                                dropped))
            continue
        if j not in bounds:
            means = _resampled_means(col[:, None], seed, resamples)[:, 0]
            bounds[j] = tuple(np.quantile(means, [alpha, 1 - alpha]))
        low, high = bounds[j]  # clipped to the sample's range and around the mean (rounding)
        out.append(Interval(est, min(max(float(low), col.min()), est),
                            max(min(float(high), col.max()), est), len(col), "bootstrap",
                            confidence, dropped))
    return out


def bootstrap_mean_ci(values: Iterable[float], confidence: float = 0.95, *, seed: int = 0,
                      resamples: int = BOOTSTRAP_RESAMPLES) -> Interval:
    """Percentile bootstrap interval for one mean (see `bootstrap_mean_cis`)."""
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    return bootstrap_mean_cis(x.reshape(-1, 1), confidence, seed=seed, resamples=resamples)[0]


def _pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, int]:
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.shape != xb.shape:
        raise ValueError(f"paired samples need equal lengths, got {len(xa)} and {len(xb)}")
    keep = ~(np.isnan(xa) | np.isnan(xb))
    return xa[keep] - xb[keep], int((~keep).sum())


def paired_diff_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of a - b over pairs (replication i of both arms), t interval over the differences.

    Under common random numbers the pair shares its noise, so this is far narrower than an
    interval that treats the arms as independent. A pair with a NaN on either side is dropped.
    """
    d, dropped = _pairs(a, b)
    iv = mean_ci(d, confidence)
    return Interval(iv.estimate, iv.low, iv.high, iv.n, "paired t", confidence, dropped)


def welch_diff_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """Difference of means as if the arms were independent (Welch-Satterthwaite df).

    Shown next to the paired interval, to make visible what common random numbers buy.
    """
    _check_confidence(confidence)
    xa, da = _clean(a)
    xb, db = _clean(b)
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        est = float(xa.mean() - xb.mean()) if na and nb else math.nan
        return Interval(est, math.nan, math.nan, na + nb, "Welch t", confidence, da + db)
    va, vb = float(xa.var(ddof=1)) / na, float(xb.var(ddof=1)) / nb
    est = float(xa.mean() - xb.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(est, est, est, na + nb, "Welch t", confidence, da + db)
    df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    hw = _t_crit(confidence, df) * se
    return Interval(est, est - hw, est + hw, na + nb, "Welch t", confidence, da + db)


# --- how many replications -------------------------------------------------------------------
def replications_needed(std: float, half_width: float, confidence: float = 0.95) -> int:
    """Smallest n whose t interval t_{n-1} * std / sqrt(n) is at most `half_width` (n >= 2)."""
    _check_confidence(confidence)
    if not half_width > 0:
        raise ValueError(f"half_width must be positive, got {half_width}")
    if not math.isfinite(std) or std < 0:
        raise ValueError(f"std must be finite and >= 0, got {std}")
    if std == 0:
        return 2
    n = max(2, math.ceil((_z_crit(confidence) * std / half_width) ** 2))  # normal start: a floor
    while _t_crit(confidence, n - 1) * std / math.sqrt(n) > half_width:
        n += 1
    return n


def _wilson_trials_needed(p: float, half_width: float, confidence: float) -> int:
    """Smallest n whose Wilson interval at the same proportion is at most `half_width` wide."""
    z = _z_crit(confidence)

    def hw(n: int) -> float:
        lo, hi = _wilson(p, n, z)
        return (hi - lo) / 2

    hi = 1
    while hw(hi) > half_width:
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if hw(mid) > half_width else (lo, mid)
    return max(hi, 1)


@dataclass(frozen=True)
class Verdict:
    """Whether an interval is narrow enough to draw a conclusion from, and if not how many
    observations (in the interval's own units: replications, pairs or trials) would be."""

    conclusive: bool
    needed: int | None
    target_half_width: float
    reason: str


def judge(iv: Interval, rel_tol: float = 0.10, abs_tol: float = 0.0,
          difference: bool = False) -> Verdict:
    """Too wide to conclude? A level is too wide when its half-width is over `rel_tol` of the
    estimate and over `abs_tol` (the resolution that matters for the metric); a difference is
    too wide when its interval contains 0 and is wider than `abs_tol`.

    The suggested size assumes the spread stays as observed: for t intervals the standard
    deviation is recovered from the interval itself, for Wilson the proportion.
    """
    hw = iv.half_width
    if iv.n < 2 or math.isnan(hw):
        return Verdict(False, None, math.nan, f"only {iv.n} observation(s): no interval")
    if difference:
        target = max(abs(iv.estimate), abs_tol)
        ok = not iv.contains(0.0) or hw <= abs_tol
        reason = ("interval excludes 0" if not iv.contains(0.0) else
                  "difference is within the resolution" if ok else "interval contains 0")
    else:
        target = max(rel_tol * abs(iv.estimate), abs_tol)
        ok = hw <= target
        reason = (f"half-width {hw:.3g} within {target:.3g}" if ok else
                  f"half-width {hw:.3g} over {target:.3g}")
    if ok or target <= 0:
        return Verdict(ok, None, target, reason)
    if iv.method == "Wilson":
        needed = _wilson_trials_needed(iv.estimate, target, iv.confidence)
    else:
        # t intervals: hw = t * s / sqrt(m). For Welch, m is the size of each arm (n/2) and
        # s = sqrt(s_a^2 + s_b^2); the answer is then replications per arm.
        welch = iv.method == "Welch t"
        m = iv.n / 2 if welch else iv.n
        std = hw * math.sqrt(m) / _t_crit(iv.confidence, max(iv.n - 2, 1) if welch else iv.n - 1)
        needed = replications_needed(std, target, iv.confidence)
    return Verdict(False, needed, target, reason)
