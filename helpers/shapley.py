"""Exact game-theoretic attributions: Shapley values, Owen values for a hierarchy, and the games they explain.

A *game* gives every coalition S of n players (words, or phrases of a sentence) a value v(S): here the model's
score with only the words in S kept. Two attributions of the same game:

* **Shapley value** (Shapley 1953): player i's marginal contribution v(S + i) - v(S) averaged over all n!
  orders in which the players can arrive (:func:`shapley_from_values`).
* **Owen value** (Owen 1977, "Values of games with a priori unions"; for nested hierarchies Winter 1989,
  "A value for cooperative games with levels structure of cooperation"): the same average, but only over the
  orders in which every group of a hierarchy arrives as a block - its members one after another, in any order
  (:func:`owen_from_values`). With a flat hierarchy (one group of everyone, or every player alone) it is the
  Shapley value; otherwise it is a *different* quantity, not an approximation of it.

SHAP's Partition explainer (``shap.explainers.Partition``) computes Owen values for its hierarchy (a binary tree
over the words): given enough evaluations it returns them exactly; with fewer it stops refining and shares a
group's credit among its members in proportion to their number. Kernel SHAP (``shap.KernelExplainer``;
Lundberg & Lee 2017, Theorem 2) estimates Shapley values as LIME does - a weighted linear regression on
coalitions - but with the Shapley kernel and the efficiency constraint (:func:`kernel_shap`).

:func:`phrase_game` turns a :class:`helpers.explain.MaskedText` into a game whose players are the sentence's
phrases, so a whole sentence can be explained exactly with 2^G model calls for G phrases.

Value tables: ``values[m]`` is v(S) for the coalition whose members are the set bits of ``m`` (bit i = player i),
shape (2^n,). Hierarchies: nested tuples of player indices, e.g. ``((0, 1), (2, 3))``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence

import numpy as np

Hierarchy = int | Sequence["Hierarchy"]


def all_masks(n: int) -> np.ndarray:
    """Every boolean mask over ``n`` players, shape (2^n, n); row ``m`` has bit ``i`` of ``m`` in column ``i``."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)


def _table(values, n: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (2**n,):
        raise ValueError(f"Expected {2**n} coalition values for n={n}, got shape {values.shape}.")
    return values


def shapley_from_values(values: np.ndarray, n: int) -> np.ndarray:
    """Shapley values from a table of all ``2^n`` coalition values.

    ``values[m]`` is ``v(S)`` for the coalition whose members are the set bits of ``m`` (bit ``i`` =
    player ``i``). Formula (Shapley 1953):
    :math:`\\phi_i = \\sum_{S \\subseteq N \\setminus \\{i\\}} \\frac{|S|!\\,(n-|S|-1)!}{n!}\\,(v(S \\cup \\{i\\}) - v(S))`.
    """
    values = _table(values, n)
    masks = np.arange(2**n)
    size = np.array([bin(m).count("1") for m in masks])
    weight = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])
    phi = np.empty(n)
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        phi[i] = np.sum(weight[size[without]] * (values[without | (1 << i)] - values[without]))
    return phi


def _leaves(node: Hierarchy) -> list[int]:
    if isinstance(node, (int, np.integer)):
        return [int(node)]
    return [leaf for child in node for leaf in _leaves(child)]


def _orders(node: Hierarchy) -> list[tuple[int, ...]]:
    """Every order of the node's players in which each sub-group of the hierarchy stays contiguous."""
    if isinstance(node, (int, np.integer)):
        return [(int(node),)]
    kids = [_orders(child) for child in node]
    out = []
    for perm in itertools.permutations(range(len(kids))):
        for combo in itertools.product(*(kids[k] for k in perm)):
            out.append(tuple(itertools.chain.from_iterable(combo)))
    return out


def _n_orders(node: Hierarchy) -> int:
    if isinstance(node, (int, np.integer)):
        return 1
    return math.factorial(len(node)) * math.prod(_n_orders(child) for child in node)


def owen_from_values(values: np.ndarray, n: int, hierarchy: Hierarchy, *, max_orders: int = 2_000_000) -> np.ndarray:
    """Owen values (Winter values for a nested hierarchy) from a table of all ``2^n`` coalition values.

    :math:`\\phi_i = \\frac{1}{|\\Pi_H|} \\sum_{\\pi \\in \\Pi_H} \\big(v(P_i^\\pi \\cup \\{i\\}) - v(P_i^\\pi)\\big)`, where
    :math:`\\Pi_H` is the set of orders of the players in which every group of the hierarchy ``H`` is contiguous
    and :math:`P_i^\\pi` are the players before ``i`` in :math:`\\pi`. For one level of groups
    :math:`B_1..B_m` this is Owen's (1977) formula
    :math:`\\sum_{R \\subseteq M \\setminus k} \\sum_{T \\subseteq B_k \\setminus i}
    \\frac{|R|!(m-|R|-1)!}{m!} \\frac{|T|!(b_k-|T|-1)!}{b_k!} (v(Q_R \\cup T \\cup i) - v(Q_R \\cup T))`.
    Efficiency holds (the values sum to ``v(N) - v(empty)``). ``hierarchy`` (nested tuples) must contain
    each of 0..n-1 exactly once.
    """
    values = _table(values, n)
    leaves = _leaves(hierarchy)
    if sorted(leaves) != list(range(n)):
        raise ValueError(f"The hierarchy must contain each player 0..{n - 1} exactly once, got {sorted(leaves)}.")
    if _n_orders(hierarchy) > max_orders:
        raise ValueError(f"The hierarchy allows {_n_orders(hierarchy)} orders, more than max_orders={max_orders}.")
    orders = np.array(_orders(hierarchy), dtype=np.int64)  # (K, n)
    bits = np.left_shift(1, orders)
    after = np.cumsum(bits, axis=1)
    contrib = values[after] - values[after - bits]  # (K, n): marginal contribution of orders[k, j]
    phi = np.zeros(n)
    np.add.at(phi, orders.ravel(), contrib.ravel())
    return phi / len(orders)


def hierarchy_from_linkage(linkage) -> Hierarchy:
    """A scipy-style linkage matrix (n-1, >=2; row r joins its first two entries into node n + r) as nested
    tuples, e.g. :func:`helpers.explain.contiguous_tree` ``(4)`` -> ``((0, 1), (2, 3))``."""
    z = np.asarray(linkage)
    n = len(z) + 1
    if n == 1:
        return (0,)
    nodes: dict[int, Hierarchy] = {i: i for i in range(n)}
    for r, row in enumerate(z):
        nodes[n + r] = (nodes.pop(int(row[0])), nodes.pop(int(row[1])))
    return nodes[2 * n - 2]


# --------------------------------------------------------------------------------------------
# Games on a sentence
# --------------------------------------------------------------------------------------------


class PhraseGame:
    """A :class:`helpers.explain.MaskedText` whose players are phrases: runs of neighbouring words hidden or
    kept together. ``game(keep)`` with ``keep`` (N, G) scores the sentence with the words of the kept phrases;
    every hidden word becomes the mask token, as in the word-level game. Works with every explainer that takes
    a MaskedText (:func:`helpers.explain.exact_shapley`, ``shap_explain``, ``lime_explain``) and with
    :func:`kernel_shap`.
    """

    def __init__(self, m, phrase_of_word: Sequence[int]) -> None:
        g = np.asarray(phrase_of_word, dtype=np.int64)
        if g.shape != (m.n_words,) or g[0] != 0 or np.any(np.diff(g) < 0) or np.any(np.diff(g) > 1):
            raise ValueError(f"phrase_of_word must give each of the {m.n_words} words a phrase number, starting at "
                             "0 and rising by at most 1 from one word to the next (phrases are contiguous).")
        self.base, self.phrase_of_word = m, g
        first = [int(np.flatnonzero(g == k)[0]) for k in range(g[-1] + 1)]
        last = [int(np.flatnonzero(g == k)[-1]) for k in range(g[-1] + 1)]
        self.spans = [(m.spans[a][0], m.spans[b][1]) for a, b in zip(first, last)]
        self.words = [m.text[a:b] for a, b in self.spans]
        self.text, self.label = m.text, m.label

    @property
    def n_words(self) -> int:
        return len(self.words)

    def __call__(self, keep) -> np.ndarray:
        keep = np.asarray(keep, dtype=bool)
        if keep.ndim != 2 or keep.shape[1] != self.n_words:
            raise ValueError(f"Masks must have shape (N, {self.n_words}) (one column per phrase), got {keep.shape}.")
        return self.base(keep[:, self.phrase_of_word])

    def full(self) -> float:
        return self.base.full()

    def empty(self) -> float:
        return self.base.empty()


def phrase_game(m, n_phrases: int) -> PhraseGame:
    """Split ``m``'s sentence into at most ``n_phrases`` phrases and return the :class:`PhraseGame`.

    A phrase ends at a word followed by ``,`` ``;`` or ``.``; while there are more than ``n_phrases``, the
    neighbouring pair with the fewest words together is merged (the leftmost such pair on ties).
    """
    if not isinstance(n_phrases, (int, np.integer)) or n_phrases < 1:
        raise ValueError(f"n_phrases must be a positive integer, got {n_phrases!r}.")
    ends = [bool(re.search(r"[,;.]", m.text[b:(m.spans[j + 1][0] if j + 1 < m.n_words else len(m.text))]))
            for j, (_, b) in enumerate(m.spans)]
    sizes, run = [], 0
    for j, end in enumerate(ends):
        run += 1
        if end or j == m.n_words - 1:
            sizes.append(run)
            run = 0
    while len(sizes) > n_phrases:
        k = int(np.argmin([a + b for a, b in zip(sizes, sizes[1:])]))
        sizes[k:k + 2] = [sizes[k] + sizes[k + 1]]
    return PhraseGame(m, np.repeat(np.arange(len(sizes)), sizes))


def exact_shapley(m, *, max_words: int = 14):
    """Exact Shapley values of every word (or phrase) by evaluating all ``2^W`` masks (W <= ``max_words``)."""
    from .explain.core import _attribution

    if m.n_words > max_words:
        raise ValueError(f"Exact Shapley values need 2^{m.n_words} model calls; allowed up to {max_words} words. "
                         "Use shap_explain for longer texts, or phrase_game to explain phrases.")
    values = m(all_masks(m.n_words))
    return _attribution(m, shapley_from_values(values, m.n_words), "exact Shapley", evaluations=len(values),
                        values=values)


def exact_owen(m, hierarchy: Hierarchy | None = None, *, max_words: int = 14):
    """Exact Owen values of every word (or phrase) for ``hierarchy`` (default: SHAP Partition's own tree,
    :func:`helpers.explain.contiguous_tree`), from all ``2^W`` masks: what Partition computes when its budget
    suffices."""
    from .explain import contiguous_tree
    from .explain.core import _attribution

    if m.n_words > max_words:
        raise ValueError(f"Exact Owen values need 2^{m.n_words} model calls; allowed up to {max_words} words.")
    tree = hierarchy_from_linkage(contiguous_tree(m.n_words)) if hierarchy is None else hierarchy
    values = m(all_masks(m.n_words))
    return _attribution(m, owen_from_values(values, m.n_words, tree), "exact Owen", hierarchy=tree)


def kernel_shap(m, *, nsamples: int = 2048, seed: int = 0):
    """Kernel SHAP (``shap.KernelExplainer``; Lundberg & Lee 2017, Theorem 2) of every word (or phrase).

    LIME's recipe with the Shapley kernel: a linear regression :math:`g(z) = \\phi_0 + \\sum_j \\phi_j z_j` on
    coalitions z, weighted by :math:`\\pi(z) = \\frac{W - 1}{\\binom{W}{|z|}\\,|z|\\,(W - |z|)}`, with no penalty
    and the constraint :math:`\\sum_j \\phi_j = v(N) - v(\\varnothing)`. With ``nsamples >= 2^W - 2`` shap
    enumerates every coalition and the result is the exact Shapley value; with fewer it samples.
    The game is evaluated on masks directly: background "all hidden", input "all kept".
    """
    import shap

    from .config import seeded
    from .explain.core import _attribution

    if nsamples < 2:
        raise ValueError(f"nsamples must be at least 2, got {nsamples}.")
    w = m.n_words
    with seeded(seed):  # shap samples coalitions with NumPy's global generator; the caller's state is left alone
        explainer = shap.KernelExplainer(lambda z: m(np.asarray(z) > 0.5), np.zeros((1, w)))
        phi = explainer.shap_values(np.ones((1, w)), nsamples=int(nsamples), l1_reg=False, silent=True)
    return _attribution(m, np.asarray(phi, dtype=np.float64).reshape(-1), "Kernel SHAP", nsamples=int(nsamples))


def game_table(attributions: Sequence, reference=None) -> "pd.DataFrame":  # noqa: F821
    """One column per attribution (named by its ``method``), one row per player; with ``reference`` (an
    Attribution) a last row ``max |diff| to <reference>``."""
    import pandas as pd

    table = pd.DataFrame({a.method: a.weights for a in attributions}, index=list(attributions[0].tokens))
    if reference is not None:
        table.loc[f"max |difference| to {reference.method}"] = [float(np.max(np.abs(a.weights - reference.weights)))
                                                                for a in attributions]
    return table

