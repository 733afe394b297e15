"""Uncertainty of a measured rate: percentile-bootstrap intervals over the units measured (sentences, rows).

Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13: resample the ``n`` units with
replacement ``n_boot`` times, recompute the statistic on each resample, and report the ``(1 - level)/2`` and
``(1 + level)/2`` quantiles. :func:`paired_bootstrap` compares two measurements taken *on the same units*
(two models on the same sentences): it resamples units, not measurements, so the correlation between the two
is kept, and the interval of the difference is narrower than two separate intervals suggest.

An interval describes the uncertainty from *which* units were measured; it ignores the randomness of training
(compare seeds for that).
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
