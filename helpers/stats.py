"""Uncertainty of a measured rate: percentile-bootstrap intervals over the units measured (sentences, rows).

Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13: resample the ``n`` units with
replacement ``n_boot`` times, recompute the statistic on each resample, and report the ``(1 - level)/2`` and
``(1 + level)/2`` quantiles. :func:`paired_bootstrap` compares two measurements taken *on the same units*
(two models on the same sentences): it resamples units, not measurements, so the correlation between the two
is kept, and the interval of the difference is narrower than two separate intervals suggest.

An interval describes the uncertainty from *which* units were measured; it ignores the randomness of training
(compare seeds for that). :func:`welch_interval` does that comparison: the difference of two means over a few
independent runs each (seeds), with Welch's t interval.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Interval(NamedTuple):
    """A measured mean and its bootstrap interval (``low``, ``high``) at confidence ``level``."""

    estimate: float
    low: float
    high: float
    level: float

    def excludes(self, value: float = 0.0) -> bool:
        """True when ``value`` lies outside [low, high]."""
        return not self.low <= value <= self.high


def _check(level: float, n_boot: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level is a confidence level between 0 and 1 (e.g. 0.95), got {level!r}.")
    if int(n_boot) != n_boot or n_boot < 100:
        raise ValueError(f"n_boot must be a whole number of at least 100 resamples, got {n_boot!r}.")


def _values(x, name: str) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f"{name} must be a 1-d array of at least 2 per-unit values, got shape {v.shape}.")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return v


def paired_bootstrap(a, b, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, Interval]:
    """Means of ``a`` and ``b`` (shape (n,), one value per unit, the same units in the same order) and of
    their difference ``mean(a) - mean(b)``, each with a percentile-bootstrap interval from the same resamples
    of the units. Returns ``{"a": Interval, "b": Interval, "difference": Interval}``. 0/1 values give rates
    (e.g. ``flipped``), so ``difference`` is a difference of two rates measured on the same units.
    """
    _check(level, n_boot)
    a, b = _values(a, "a"), _values(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold one value per unit for the same units; got {len(a)} and {len(b)}.")
    idx = np.random.default_rng(seed).integers(0, len(a), size=(int(n_boot), len(a)))
    q = [(1 - level) / 2, (1 + level) / 2]
    out = {}
    for key, est, boot in (("a", a.mean(), a[idx].mean(1)), ("b", b.mean(), b[idx].mean(1)),
                           ("difference", a.mean() - b.mean(), (a - b)[idx].mean(1))):
        low, high = np.quantile(boot, q)
        out[key] = Interval(float(est), float(low), float(high), float(level))
    return out


def bootstrap_mean(x, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Mean of ``x`` (shape (n,), one value per unit) with a percentile-bootstrap interval."""
    x = _values(x, "x")
    return paired_bootstrap(x, np.zeros_like(x), n_boot=n_boot, level=level, seed=seed)["a"]


def welch_interval(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int, *,
                   level: float = 0.95) -> Interval:
    """``mean_a - mean_b`` with Welch's t interval (Welch 1947), from each sample's mean, standard deviation
    (``ddof=1``) and size: for two sets of independent runs, e.g. a score over ``n_a`` seeds of one setting and
    ``n_b`` seeds of another. Standard error :math:`s = \\sqrt{s_a^2/n_a + s_b^2/n_b}`, degrees of freedom by
    Welch-Satterthwaite, :math:`\\nu = s^4 / \\big((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1)\\big)`; the interval is
    the difference :math:`\\pm t_{\\nu,(1+\\text{level})/2}\\, s`. With a handful of runs it is wide, as it should be:
    the standard deviations are themselves estimated from those few runs. Two identical constant samples
    (both sds 0) give a zero-width interval. Needs ``n_a, n_b >= 2``.
    """
    from scipy.stats import t

    if not 0 < level < 1:
        raise ValueError(f"level is a confidence level between 0 and 1 (e.g. 0.95), got {level!r}.")
    if min(n_a, n_b) < 2 or int(n_a) != n_a or int(n_b) != n_b:
        raise ValueError(f"each sample needs at least 2 runs to estimate its spread; got n_a={n_a!r}, n_b={n_b!r}.")
    values = np.array([mean_a, sd_a, mean_b, sd_b], dtype=np.float64)
    if not np.isfinite(values).all() or sd_a < 0 or sd_b < 0:
        raise ValueError(f"means must be finite and standard deviations finite and >= 0; got {values.tolist()}.")
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    estimate, se = float(mean_a - mean_b), float(np.sqrt(va + vb))
    if se == 0:
        return Interval(estimate, estimate, estimate, float(level))
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    half = float(t.ppf((1 + level) / 2, df)) * se
    return Interval(estimate, estimate - half, estimate + half, float(level))


def describe_interval(interval: Interval, name: str) -> str:
    """A phrase on where an interval for a difference lies relative to 0: wholly above (``low > 0``), wholly below
    (``high < 0``) or including 0 (the data cannot tell the difference from 0). ``name`` names the interval, e.g.
    ``"Welch interval over 5 draws"``."""
    span = f"{interval.level:.0%} {name}: {interval.low:+.3f} to {interval.high:+.3f}"
    if interval.low > 0:
        return f"{span}, wholly above 0"
    if interval.high < 0:
        return f"{span}, wholly below 0"
    return f"{span}, which includes 0, so this run cannot tell it from 0"


def gap_noise(n_a: int, n_b: int) -> float:
    r"""Two standard errors, at worst, of a difference of two accuracies measured on ``n_a`` and ``n_b`` units.

    :math:`2\sqrt{0.25/n_a + 0.25/n_b}`: each accuracy is a binomial proportion with variance
    :math:`p(1-p)/n \le 0.25/n`, and the two sets (train and validation, members and non-members) are disjoint,
    so the variances add. A train - validation gap larger than this is overfitting beyond sampling noise.
    """
    for name, n in (("n_a", n_a), ("n_b", n_b)):
        if int(n) != n or n < 1:
            raise ValueError(f"{name} must be a positive whole number of units, got {n!r}.")
    return float(2 * np.sqrt(0.25 / n_a + 0.25 / n_b))
