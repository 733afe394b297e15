"""helpers.stats: percentile-bootstrap intervals against scipy.stats.bootstrap and hand cases."""

import numpy as np
import pytest
from scipy import stats as sps

from helpers import stats


def test_paired_bootstrap_matches_scipy_percentile_intervals():
    rng = np.random.default_rng(0)
    a = (rng.uniform(size=300) < 0.3).astype(float)
    b = np.where(rng.uniform(size=300) < 0.8, a, 1 - a)  # correlated with a
    got = stats.paired_bootstrap(a, b, n_boot=20000, seed=1)
    ref_diff = sps.bootstrap((a, b), lambda x, y: np.mean(x) - np.mean(y), paired=True, vectorized=False,
                             n_resamples=20000, method="percentile", random_state=2).confidence_interval
    ref_a = sps.bootstrap((a,), np.mean, n_resamples=20000, method="percentile", random_state=3).confidence_interval
    assert got["difference"].estimate == pytest.approx(a.mean() - b.mean())
    assert got["difference"].low == pytest.approx(ref_diff.low, abs=0.01)
    assert got["difference"].high == pytest.approx(ref_diff.high, abs=0.01)
    assert got["a"].low == pytest.approx(ref_a.low, abs=0.01) and got["a"].high == pytest.approx(ref_a.high, abs=0.01)
    # pairing: the difference's interval is narrower than the sum of the two half-widths would suggest
    width = got["difference"].high - got["difference"].low
    assert width < (got["a"].high - got["a"].low) + (got["b"].high - got["b"].low)


def test_paired_bootstrap_hand_cases():
    a = np.array([1.0, 0.0, 1.0, 1.0])
    same = stats.paired_bootstrap(a, a - 0.25)  # every pair differs by exactly 0.25
    assert same["difference"] == stats.Interval(0.25, 0.25, 0.25, 0.95)
    assert not same["difference"].excludes(0.25) and same["difference"].excludes(0.0)
    m = stats.bootstrap_mean([2.0, 2.0, 2.0])
    assert (m.estimate, m.low, m.high) == (2.0, 2.0, 2.0)
    ones = stats.bootstrap_mean([0.0, 1.0], n_boot=1000, level=0.5)
    assert ones.estimate == 0.5 and 0.0 <= ones.low <= 0.5 <= ones.high <= 1.0


@pytest.mark.parametrize("kwargs", [dict(a=[1.0], b=[1.0]), dict(a=[1.0, 2.0], b=[1.0]), dict(a=[1.0, np.nan], b=[0, 0]),
                                    dict(a=[1.0, 2.0], b=[0, 0], level=1.5), dict(a=[1.0, 2.0], b=[0, 0], n_boot=10)])
def test_paired_bootstrap_bad_input(kwargs):
    with pytest.raises(ValueError):
        stats.paired_bootstrap(**kwargs)


def test_welch_interval_matches_scipy_ttest_ind():
    rng = np.random.default_rng(0)
    for n_a, n_b in [(3, 3), (5, 3), (2, 7)]:
        a, b = rng.normal(0.06, 0.01, n_a), rng.normal(0.02, 0.03, n_b)
        got = stats.welch_interval(a.mean(), a.std(ddof=1), n_a, b.mean(), b.std(ddof=1), n_b, level=0.9)
        ref = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.9)
        assert got.estimate == pytest.approx(a.mean() - b.mean())
        assert (got.low, got.high) == (pytest.approx(ref.low, rel=1e-9), pytest.approx(ref.high, rel=1e-9))


def test_welch_interval_hand_case_and_bad_input():
    # equal sds and sizes: se = sqrt(2 * 1 / 2) = 1, df = 2 -> half-width t_{2, 0.975} = 4.3027
    got = stats.welch_interval(3.0, 1.0, 2, 1.0, 1.0, 2)
    assert got.estimate == 2.0 and got.high - 2.0 == pytest.approx(4.302652729749464)
    assert not got.excludes(0.0)
    assert stats.welch_interval(1.0, 0.0, 3, 1.0, 0.0, 3) == stats.Interval(0.0, 0.0, 0.0, 0.95)
    for bad in [dict(n_a=1), dict(sd_a=float("nan")), dict(sd_b=-1.0), dict(level=0.0)]:
        kwargs = dict(mean_a=1.0, sd_a=0.1, n_a=3, mean_b=0.0, sd_b=0.1, n_b=3) | bad
        with pytest.raises(ValueError):
            stats.welch_interval(**kwargs)


def test_describe_interval_names_each_side_of_zero():
    assert stats.describe_interval(stats.Interval(0.05, 0.01, 0.09, 0.95), "Welch interval") == \
        "95% Welch interval: +0.010 to +0.090, wholly above 0"
    assert stats.describe_interval(stats.Interval(-0.05, -0.09, -0.01, 0.95), "Welch interval").endswith(
        "-0.090 to -0.010, wholly below 0")
    for low, high in ((-0.02, 0.03), (0.0, 0.03), (-0.03, 0.0)):  # touching 0 is not excluding it
        assert stats.describe_interval(stats.Interval(0.0, low, high, 0.9), "x").endswith("cannot tell it from 0")
