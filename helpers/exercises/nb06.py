"""Self-checks for notebook 06 (Shapley values, LIME's surrogate fit, LIME on an AND model as its sample count grows,
AOPC, what each attribution of the AND model says)."""

from __future__ import annotations

import numpy as np

from . import call, choice, exercise, expect, experiment


def _and_model(Z: np.ndarray) -> np.ndarray:
    """The toy model of exercises 06.3 and 06.5: "high income" only when both words are present."""
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
          hint="A player's value is a weighted average of its marginal contributions value(S + i) - value(S) over "
               "the coalitions S without it. The weight of S is not the same for every size of S: count the orderings "
               "of the players in which exactly S comes before i.",
          forbid=("helpers.explain.shapley_from_values", "helpers.explain.exact_shapley",
                  "helpers.shapley.owen_from_values", "helpers.shapley.exact_owen", "helpers.shapley.kernel_shap"))
def _shapley(fn) -> None:
    from ..explain import shapley_from_values

    glove = call(fn, lambda S: 1.0 if 0 in S and (1 in S or 2 in S) else 0.0, 3)
    got = np.asarray(glove, dtype=float)
    expect(got.shape == (3,), f"return one value per player (shape (3,)), got shape {got.shape}.")
    expect(np.allclose(got, [2 / 3, 1 / 6, 1 / 6], atol=1e-9),
           f"on the glove game (player 0 wins with player 1 or 2) you return {np.round(got, 4)}.")
    rng = np.random.default_rng(0)
    for n in (2, 4, 5):
        table = rng.normal(size=2**n)
        value = lambda S, t=table: float(t[sum(1 << i for i in S)])  # noqa: E731
        got = np.asarray(call(fn, value, n), dtype=float)
        want = shapley_from_values(table, n)
        expect(got.shape == (n,), f"on a {n}-player game return {n} values, got shape {got.shape}.")
        expect(abs(got.sum() - (table[-1] - table[0])) < 1e-9,
               f"on a random {n}-player game your values sum to {got.sum():.4f}, not to v(all) - v(none) = "
               f"{table[-1] - table[0]:.4f} (efficiency).")
        expect(np.allclose(got, want, atol=1e-9), f"on a random {n}-player game your values {np.round(got, 4)} are "
                                                  "efficient but not the Shapley values.")


@exercise("06.2", title="LIME's surrogate: weighted ridge regression",
          hint="Two steps: turn each distance into a weight with the kernel of section 3 (mind the square root), "
               "then fit scikit-learn's ridge regression with alpha = 1 and an intercept, passing those weights as "
               "sample weights. The explanation is the fitted coefficients.",
          forbid=("lime.lime_base.LimeBase.explain_instance_with_data", "helpers.explain.lime_kernel",
                  "helpers.explain.lime_explain"))
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
               f"with {n_words} words your coefficients start {np.round(got[:4], 4)}, which is not LIME's weighted "
               "ridge fit of that neighbourhood.")


SAMPLE_COUNTS = (100, 1000, 10_000, 50_000)


def lime_weights_for_and_model(num_samples: int, seed: int = 0) -> np.ndarray:
    """LIME's two word weights for f(z) = z0 * z1 at x = (1, 1), from ``num_samples`` LimeTextExplainer samples
    (``lime_samples``) fitted by ``lime.lime_base.LimeBase`` (ridge alpha 1, kernel width 25). Shape (2,)."""
    from ..explain import lime_samples

    Z, d = lime_samples(2, num_samples, seed)
    return _reference_lime(Z, _and_model(Z), d)


def _trend(run) -> str:
    """run: {num_samples: weights}. Compare the mean weight at the largest and the smallest sample count."""
    counts = sorted(run)
    first, last = float(np.mean(run[counts[0]])), float(np.mean(run[counts[-1]]))
    return "shrink towards 0" if last < 0.7 * first else ("grow towards 1" if last > 1.3 * first else "stay about the same")


experiment(
    "06.3", "LIME on an AND model as the sample count grows",
    outcomes=("shrink towards 0", "stay about the same", "grow towards 1"),
    observe=_trend,
    reasons={"a": "LIME's weights converge to the gradient (1, 1) as the samples grow",
             "b": "x itself is the only sample in which f = 1 (LIME includes it once); every other sample hides a "
                  "word, so f = 0 there, and the more samples, the less that single point weighs in the fit",
             "c": "the ridge penalty grows with the number of samples",
             "d": "different samples come from different random seeds"},
    correct=lambda observed: "b",
    nudges={"a": "the gradient at x = (1, 1) is (1, 1); look at where the weights are heading.",
            "c": "the penalty alpha = 1 is fixed; the data term grows with the samples.",
            "d": "the run used one seed; the trend is the same for any seed."},
    hint="Tabulate LIME's neighbourhood for two words: which masks can occur, how often, which kernel weight each "
         "gets, and what f is on each. Which of them pulls the weights up?",
)


@exercise("06.4", title="AOPC of a deletion curve",
          hint="Each point k of the curve contributes the drop f(x) - curve[k]; how many points are there, counting "
               "k = 0, and what does the formula of section 6 divide by?",
          forbid=("helpers.explain.aopc",))
def _aopc(fn) -> None:
    from ..explain import aopc

    rng = np.random.default_rng(2)
    curves = [[0.9, 0.5, 0.2, 0.1], [0.8, 0.8], list(np.linspace(0.95, 0.05, 11))]
    curves += [list(np.r_[0.9, rng.uniform(0, 1, k)]) for k in (3, 8, 20)]  # rises too: drops can be negative
    for curve in curves:
        want = aopc(curve)
        got = float(call(fn, np.asarray(curve)))
        expect(abs(got - want) < 1e-9, f"for the curve {np.round(curve, 3).tolist()[:6]}... ({len(curve)} points) you "
                                       f"returned {got:.4f}.")


choice(
    "06.5", "what each attribution of the AND model says",
    options={"a": "LIME is right: with many samples the weights go to 0, so neither word matters",
             "b": "removing either word drops f by 1 (the occlusion effect); the Shapley values split the total "
                  "f(x) - f(nothing) = 1 into 1/2 each because the words matter only together; LIME's weights "
                  "depend on how its neighbourhood is sampled",
             "c": "the gradient (1, 1), the Shapley values and LIME's weights all agree for a model this simple",
             "d": "the Shapley values are (1, 1), like the gradient"},
    correct="b",
    nudges={"a": "remove one word from x and evaluate f: the model's output changes completely.",
            "c": "06.3's run and the gradient already disagree.",
            "d": "efficiency: the Shapley values sum to f(x) - f(nothing) = 1."},
    hint="Evaluate f on all four masks, compute the two Shapley values with your 06.1 function, and compare with "
         "06.3's run.",
)
