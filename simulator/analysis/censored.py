"""Per-attempt rates and durations by maximum likelihood, keeping the attempts cut off.

Why: an attempt still running when the 30-minute window closes (or when the log ends) has no
outcome. Skipping it biases the rates: a Windows retry that times out always runs past the
window (it would end at 21 + 20 > 30), so dropping cut-off attempts drops timeouts and biases
the timeout rate low, by about 4.5% of it at p = 0.05. And a success slower than the OS
provisioning timeout is logged as that timeout (the simulator's rule, and the platform's),
so counting logged timeouts biases the drawn timeout rate high where successes are slow.

The model is the simulator's own: an attempt's outcome o has probability p_o and its
duration a distribution F_o (a timeout code: fixed at its timeout, the median of its logged
durations; any other outcome: lognormal, or fixed when every logged duration is the same).
Each attempt contributes a_i . p to the likelihood, where a_i says how each outcome could
have produced what was seen: a complete attempt with outcome o has a_io = f_o(d) (one entry);
an OS provisioning timeout of a create or attach could also be a success slower than the
timeout T, a_i,Succeeded = P(D_success > T); an attempt cut off at c could be any outcome
still running at c, a_io = P(D_o > c) (a success only if c < T). Maximized by EM: the E-step
shares each attempt among the outcomes that could explain it; the M-step sets p_o to the
shared counts over all attempts and refits each lognormal to its complete durations plus its
share of the cut-off ones as right-censored (with 0/1 shares this is exactly
`scipy.stats.lognorm.fit(scipy.stats.CensoredData(...), floc=0)`, which the tests check).

Intervals: the observed information of log L(p) = sum_i log(a_i . p) (durations held at
their fit) gives Var(p_o); the interval is Wilson's at the effective sample size
p_o (1 - p_o) / Var(p_o). With nothing cut off and no slow successes that is exactly the
Wilson interval of k of n.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from ..model import policy as P
from .stats import Interval, wilson_ci

TIMEOUT_CODES = (P.OS_PROVISIONING_TIMED_OUT, P.VM_START_TIMED_OUT)


@dataclass(frozen=True)
class DurationModel:
    """An outcome's duration: fixed at `value`, or lognormal with log-mean `mu`, `sigma`."""

    kind: str
    value: float = math.nan
    mu: float = math.nan
    sigma: float = math.nan

    @property
    def median(self) -> float:
        return self.value if self.kind == "fixed" else math.exp(self.mu)

    def sf(self, c: np.ndarray) -> np.ndarray:
        """P(D > c), elementwise."""
        c = np.asarray(c, dtype=float)
        if self.kind == "fixed":
            return (c < self.value).astype(float)
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(c, 1e-300)) - self.mu) / self.sigma
        return special.ndtr(-z)


def lognormal_fit(complete: np.ndarray, censored_at: np.ndarray, weights: np.ndarray,
                  start: tuple[float, float] | None = None) -> tuple[float, float]:
    """(mu, sigma) maximizing sum log f(d) over complete durations plus sum w log P(D > c)
    over right-censored ones with weights w (the EM M-step; weights 1 give the plain censored
    MLE). Without censored weight it is the closed form: mean and (n-denominator) std of logs."""
    logs = np.log(complete)
    keep = (weights > 1e-12) & (censored_at > 0)  # a cut at 0 minutes says nothing
    c, w = np.log(censored_at[keep]), weights[keep]
    mu0, s0 = (float(logs.mean()), float(logs.std())) if len(logs) else (float(c.mean()), 1.0)
    if not len(c):
        return mu0, s0
    n, sum1, sum2 = len(logs), float(logs.sum()), float((logs ** 2).sum())

    def nll(theta: np.ndarray) -> float:
        mu, log_s = theta
        s = math.exp(log_s)
        square = (sum2 - 2 * mu * sum1 + n * mu * mu) / (2 * s * s)
        return n * log_s + square - float(np.dot(w, special.log_ndtr(-(c - mu) / s)))

    mu, s = start if start is not None else (mu0, max(s0, 1e-3))
    res = optimize.minimize(nll, np.array([mu, math.log(max(s, 1e-6))]), method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 4000})
    return float(res.x[0]), float(math.exp(res.x[1]))


@dataclass(frozen=True)
class OperationFit:
    """Maximum-likelihood rates and durations of one operation's attempts."""

    operation: str
    outcomes: tuple[str, ...]  # Succeeded first, then codes in sorted order
    p: np.ndarray
    variance: np.ndarray
    durations: dict[str, DurationModel]
    attempts: int  # all attempts, cut-off ones included
    censored: int
    iterations: int

    def interval(self, outcome: str, confidence: float) -> Interval:
        """Wilson at the effective sample size p (1 - p) / Var(p)."""
        k = self.outcomes.index(outcome)
        p, var = float(self.p[k]), float(self.variance[k])
        n_eff = p * (1 - p) / var if var > 0 and 0 < p < 1 else float(self.attempts)
        n_eff = min(max(n_eff, 1.0), float(self.attempts))
        iv = wilson_ci(p * n_eff, n_eff, confidence)
        return Interval(p, min(iv.low, p), max(iv.high, p), self.attempts, "Wilson (censored "
                        "MLE)", confidence)


def _models(outcomes: tuple[str, ...], complete: dict[str, np.ndarray], timeout_ops: bool
            ) -> dict[str, DurationModel]:
    out = {}
    for o in outcomes:
        d = complete[o]
        if (timeout_ops and o in TIMEOUT_CODES) or d.min() == d.max() or d.min() <= 0:
            out[o] = DurationModel("fixed", value=float(np.median(d)))
        else:
            logs = np.log(d)
            out[o] = DurationModel("lognormal", mu=float(logs.mean()), sigma=float(logs.std()))
    return out


def _explain(outcomes: tuple[str, ...], models: dict[str, DurationModel], observed: np.ndarray,
             durations: np.ndarray, censored: np.ndarray, os_timeout: float | None) -> np.ndarray:
    """The matrix a (attempts x outcomes): how each outcome could explain each attempt (the
    densities of complete attempts cancel out of p's likelihood and are left as 1)."""
    a = np.zeros((len(observed), len(outcomes)))
    for k, o in enumerate(outcomes):
        a[:, k] = np.where(censored, models[o].sf(durations), observed == o)
    succ = outcomes.index(P.SUCCEEDED) if P.SUCCEEDED in outcomes else None
    if os_timeout is not None and succ is not None:
        slow = float(models[P.SUCCEEDED].sf(np.array([os_timeout]))[0])
        a[~censored & (observed == P.OS_PROVISIONING_TIMED_OUT), succ] = slow
        a[censored & (durations >= os_timeout), succ] = 0.0  # it would have ended at T
    return a


def _information_variance(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Var(p_o) from the observed information of sum_i log(a_i . p) on the simplex."""
    k = len(p)
    if k == 1:
        return np.zeros(1)
    b = a[:, :-1] - a[:, -1:]
    fitted = a @ p
    ok = fitted > 0
    info = (b[ok] / fitted[ok, None]).T @ (b[ok] / fitted[ok, None])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.full(k, math.nan)
    last = float(cov.sum())
    return np.append(np.diag(cov), last)


def fit_operation(operation: str, outcome: np.ndarray, duration: np.ndarray,
                  censored: np.ndarray, tol: float = 1e-9, max_iter: int = 500) -> OperationFit:
    """EM over one operation's attempts: `outcome` (ignored where `censored`), `duration`
    (how long it ran: its duration, or until it was cut off)."""
    outcome = np.asarray(outcome, dtype=object)
    duration = np.asarray(duration, dtype=float)
    censored = np.asarray(censored, dtype=bool)
    seen = sorted({str(o) for o in outcome[~censored]})
    outcomes = tuple(sorted(seen, key=lambda o: (o != P.SUCCEEDED, o)))
    complete = {o: duration[~censored & (outcome == o)] for o in outcomes}
    timeout_ops = operation in ("create", "attach")
    models = _models(outcomes, complete, timeout_ops)
    os_timeout = (models[P.OS_PROVISIONING_TIMED_OUT].value
                  if timeout_ops and P.OS_PROVISIONING_TIMED_OUT in models else None)
    p = np.array([len(complete[o]) for o in outcomes], dtype=float)
    p /= p.sum()
    it = 0
    for it in range(1, max_iter + 1):
        a = _explain(outcomes, models, outcome, duration, censored, os_timeout)
        w = a * p
        total = w.sum(axis=1, keepdims=True)
        w /= np.where(total > 0, total, 1.0)
        new_p = w.sum(axis=0) / max(int((total > 0).sum()), 1)  # attempts the model can explain
        moved = float(np.abs(new_p - p).max())
        p = new_p
        for k, o in enumerate(outcomes):
            m = models[o]
            if m.kind != "lognormal":
                continue
            cut = censored.copy()
            at = np.where(cut, duration, 0.0)
            if o == P.SUCCEEDED and os_timeout is not None:  # slow successes end at T
                slow = ~censored & (outcome == P.OS_PROVISIONING_TIMED_OUT)
                cut |= slow
                at = np.where(slow, os_timeout, at)
            mu, sigma = lognormal_fit(complete[o], at[cut], w[cut, k], (m.mu, m.sigma))
            moved = max(moved, abs(mu - m.mu), abs(sigma - m.sigma))
            models[o] = DurationModel("lognormal", mu=mu, sigma=sigma)
        if moved < tol:
            break
    a = _explain(outcomes, models, outcome, duration, censored, os_timeout)
    return OperationFit(operation, outcomes, p, _information_variance(a, p), models,
                        len(outcome), int(censored.sum()), it)
