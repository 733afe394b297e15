"""Self-checks for notebook 06 (Shapley values, LIME's surrogate fit, LIME is not f(x + eps*w), AOPC)."""

from __future__ import annotations

import numpy as np

from . import call, exercise, expect


def _and_model(Z: np.ndarray) -> np.ndarray:
    """The toy model of exercise 06.3: "high income" only when both words are present."""
    Z = np.asarray(Z, dtype=float)
    return Z[:, 0] * Z[:, 1]


def _reference_lime(Z, y, distances, kernel_width=25.0) -> np.ndarray:
    from lime.lime_base import LimeBase

    from ..explain import lime_kernel

    base = LimeBase(lambda d: lime_kernel(d, kernel_width), random_state=0)
    _, exp, _, _ = base.explain_instance_with_data(np.asarray(Z, float), np.asarray(y, float)[:, None],
                                                   np.asarray(distances, float), 0, Z.shape[1], feature_selection="none")
    w = np.zeros(Z.shape[1])
    for j, v in exp:
        w[j] = v
    return w


@exercise("06.1", title="Shapley values by enumeration",
          hint="For each player i, loop over the subsets S of the other players (itertools.combinations) and add "
               "|S|! (n-|S|-1)! / n! * (value(S | {i}) - value(S)); value takes a frozenset of player indices.")
def _shapley(fn) -> None:
    from ..explain import shapley_from_values

    glove = call(fn, lambda S: 1.0 if 0 in S and (1 in S or 2 in S) else 0.0, 3)
    got = np.asarray(glove, dtype=float)
    expect(got.shape == (3,), f"return one value per player (shape (3,)), got shape {got.shape}.")
    expect(np.allclose(got, [2 / 3, 1 / 6, 1 / 6], atol=1e-9),
           f"the glove game should give (2/3, 1/6, 1/6), got {np.round(got, 4)}.")
    rng = np.random.default_rng(0)
    for n in (2, 4):
        table = rng.normal(size=2**n)
        value = lambda S, t=table: float(t[sum(1 << i for i in S)])  # noqa: E731
        got = np.asarray(call(fn, value, n), dtype=float)
        want = shapley_from_values(table, n)
        expect(got.shape == (n,) and np.allclose(got, want, atol=1e-9),
               f"on a random {n}-player game you return {np.round(got, 4)}, expected {np.round(want, 4)}.")
        expect(abs(got.sum() - (table[-1] - table[0])) < 1e-9, "efficiency fails: the values must sum to v(N) - v({}).")


@exercise("06.2", title="LIME's surrogate: weighted ridge regression",
          hint="pi = sqrt(exp(-d**2 / kernel_width**2)); sklearn.linear_model.Ridge(alpha=1, fit_intercept=True)"
               ".fit(Z, y, sample_weight=pi).coef_ is what LimeBase computes.")
def _lime_fit(fn) -> None:
    from ..explain import lime_samples

    rng = np.random.default_rng(1)
    for n_words, seed in ((6, 0), (12, 1)):
        Z, d = lime_samples(n_words, 400, seed)
        y = 1 / (1 + np.exp(-(Z @ rng.normal(size=n_words) + 0.5 * Z[:, 0] * Z[:, 1])))
        got = np.asarray(call(fn, Z, y, d, 25.0), dtype=float).reshape(-1)
        want = _reference_lime(Z, y, d, 25.0)
        expect(got.shape == want.shape, f"return one coefficient per word ({n_words}), got shape {got.shape}.")
        expect(np.allclose(got, want, atol=1e-6),
               f"coefficients {np.round(got[:4], 4)}... differ from LIME's {np.round(want[:4], 4)}...: check the "
               "kernel (a square root of exp) and that each sample is weighted, with ridge alpha = 1 and an intercept.")


@exercise("06.3", title="LIME is a regression over hidden words, not y = f(x + eps * w)",
          hint="Z, d = ex.lime_samples(2, num_samples, seed); y = Z[:, 0] * Z[:, 1]; return your lime_fit(Z, y, d, 25.0) "
               "(or the Ridge fit with the LIME kernel).")
def _lime_and(fn) -> None:
    from ..explain import lime_samples

    for num_samples, seed in ((200, 0), (500, 3)):
        got = np.asarray(call(fn, num_samples, seed), dtype=float).reshape(-1)
        Z, d = lime_samples(2, num_samples, seed)
        want = _reference_lime(Z, _and_model(Z), d)
        expect(got.shape == (2,), f"return LIME's two word weights, got shape {got.shape}.")
        expect(np.allclose(got, want, atol=1e-6), f"LIME's weights are {np.round(want, 4)}, you return {np.round(got, 4)}.")
    # the formula's answer would be the model's sensitivity at x = (1, 1): d(z0*z1)/dz = (1, 1)
    expect(not np.allclose(got, [1.0, 1.0], atol=0.05), "these are the gradient (1, 1), not LIME's weights.")


@exercise("06.4", title="AOPC of a deletion curve",
          hint="curve[0] is f(x) with nothing hidden; AOPC = mean over k = 0..K of (curve[0] - curve[k]).")
def _aopc(fn) -> None:
    for curve in ([0.9, 0.5, 0.2, 0.1], [0.8, 0.8], list(np.linspace(0.95, 0.05, 11))):
        got = float(call(fn, np.asarray(curve)))
        want = float(np.mean(curve[0] - np.asarray(curve)))
        expect(abs(got - want) < 1e-9, f"for the curve {np.round(curve, 3).tolist()} expected AOPC {want:.4f}, got {got:.4f}.")



