"""helpers.shapley: exact Shapley and Owen values against hand-computed games and Owen's formula; shap's
Partition explainer against exact Owen values; Kernel SHAP against exact Shapley values; phrase games."""

import itertools
import math

import numpy as np
import pytest

from helpers import explain as ex
from helpers import shapley as sh


class TableGame:
    """A game given by its value table, with the MaskedText interface the explainers use."""

    def __init__(self, values, n):
        self.values, self.n_words = np.asarray(values, float), n
        self.words = [f"w{i}" for i in range(n)]
        self.spans, self.text, self.label = [(3 * i, 3 * i + 2) for i in range(n)], " ".join(self.words), "x"

    def __call__(self, keep):
        keep = np.asarray(keep, bool)
        return self.values[(keep * (1 << np.arange(self.n_words))).sum(1)]

    def full(self):
        return float(self.values[-1])

    def empty(self):
        return float(self.values[0])


def test_two_of_three_vote_by_hand():
    # v(S) = 1 if at least two of players 0, 1, 2 are in S; player 3 is a dummy.
    # Shapley: 0, 1, 2 are symmetric -> 1/3 each. Owen with groups {0, 1}, {2, 3}: if {0, 1} arrives first, the
    # second of 0 and 1 decides (1/2 each); if {2, 3} arrives first, 2 comes before both 0 and 1 and never
    # decides, and the first of 0 and 1 does (1/2 each). So (1/2, 1/2, 0, 0): the party {0, 1} takes all.
    v = (sh.all_masks(4)[:, :3].sum(1) >= 2).astype(float)
    np.testing.assert_allclose(sh.shapley_from_values(v, 4), [1 / 3, 1 / 3, 1 / 3, 0], atol=1e-12)
    np.testing.assert_allclose(sh.owen_from_values(v, 4, ((0, 1), (2, 3))), [0.5, 0.5, 0, 0], atol=1e-12)
    np.testing.assert_allclose(sh.owen_from_values(v, 4, ((0, 2), (1, 3))), [0.5, 0, 0.5, 0], atol=1e-12)


def _owen_formula(values, n, groups):
    """Owen (1977), one level of groups, written as the double sum over R (other groups) and T (own group)."""
    m, phi = len(groups), np.zeros(n)
    for k, group in enumerate(groups):
        others = [g for j, g in enumerate(groups) if j != k]
        for i in group:
            rest = [p for p in group if p != i]
            for r in range(m):
                for R in itertools.combinations(others, r):
                    q = sum(1 << p for g in R for p in g)
                    for t in range(len(group)):
                        for T in itertools.combinations(rest, t):
                            s = q + sum(1 << p for p in T)
                            w = (math.factorial(r) * math.factorial(m - r - 1) / math.factorial(m)
                                 * math.factorial(t) * math.factorial(len(group) - t - 1) / math.factorial(len(group)))
                            phi[i] += w * (values[s | (1 << i)] - values[s])
    return phi


@pytest.mark.parametrize("groups", [((0, 1, 2), (3, 4)), ((0,), (1, 2), (3, 4)), ((0, 4), (1,), (2, 3))])
def test_owen_matches_owens_formula_and_is_efficient(groups):
    v = np.random.default_rng(0).normal(size=32)
    phi = sh.owen_from_values(v, 5, groups)
    np.testing.assert_allclose(phi, _owen_formula(v, 5, groups), atol=1e-12)
    assert phi.sum() == pytest.approx(v[-1] - v[0])


def test_flat_hierarchies_give_shapley_values():
    v = np.random.default_rng(1).normal(size=16)
    for flat in ((0, 1, 2, 3), ((0,), (1,), (2,), (3,)), ((0, 1, 2, 3),)):
        np.testing.assert_allclose(sh.owen_from_values(v, 4, flat), sh.shapley_from_values(v, 4), atol=1e-12)
    with pytest.raises(ValueError):
        sh.owen_from_values(v, 4, ((0, 1), (1, 3)))


def test_hierarchy_from_linkage():
    assert sh.hierarchy_from_linkage(ex.contiguous_tree(4)) == ((0, 1), (2, 3))
    assert sh.hierarchy_from_linkage(ex.contiguous_tree(5)) == (((0, 1), 2), (3, 4))


@pytest.mark.parametrize("n", [4, 7])
def test_shap_partition_computes_owen_values_not_shapley_values(n):
    v = np.random.default_rng(n).normal(size=2**n)
    game = TableGame(v, n)
    part = ex.shap_explain(game, max_evals=10_000).weights
    owen = sh.exact_owen(game).weights
    np.testing.assert_allclose(part, owen, atol=1e-10)
    assert np.max(np.abs(part - sh.shapley_from_values(v, n))) > 0.01


def test_kernel_shap_with_every_coalition_is_exact_shapley():
    v = np.random.default_rng(2).normal(size=32)
    game = TableGame(v, 5)
    np.testing.assert_allclose(sh.kernel_shap(game, nsamples=64).weights, sh.shapley_from_values(v, 5), atol=1e-8)
    approx = sh.kernel_shap(game, nsamples=12).weights  # sampled: efficiency still holds
    assert approx.sum() == pytest.approx(v[-1] - v[0])


def test_phrase_game_splits_at_punctuation_and_merges_small_neighbours():
    text = "A 29-year-old woman, never married, works 40 hours; degree. Born here."
    spans = [(m.start(), m.end()) for m in ex._WORD.finditer(text)]

    class Words(TableGame):
        def __init__(self):
            super().__init__(np.arange(2.0 ** len(spans)), len(spans))
            self.text, self.spans = text, spans

    game = sh.phrase_game(Words(), 9)
    assert game.words == ["A 29-year-old woman", "never married", "works 40 hours", "degree", "Born here"]
    merged = sh.phrase_game(Words(), 3)
    assert merged.words == ["A 29-year-old woman", "never married, works 40 hours", "degree. Born here"]
    keep = np.array([[True, False, True]])
    assert merged(keep)[0] == Words()(np.array([[1] * 5 + [0] * 5 + [1] * 3]))[0]
    with pytest.raises(ValueError):
        sh.phrase_game(Words(), 0)
